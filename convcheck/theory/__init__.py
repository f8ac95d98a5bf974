"""Closed-form bounds with provenance, certificates and rate fits (THEORY.md §5)."""
