"""Bounds with provenance, LMI certificates and rate fits (THEORY.md §5)."""
