"""Reproducible experiments behind the project's result notes (``docs/*-results.md``).

Each module regenerates its note's tables and figures from the command line, e.g.
``python -m convcheck.experiments.asynchronous all --out docs/async-figures``.
"""
