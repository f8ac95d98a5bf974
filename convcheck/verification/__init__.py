"""Verification: case files → problems and runs → checks → verdicts (``convcheck verify``).

``load_suite`` reads and validates case files (:mod:`convcheck.verification.cases`), ``verify`` runs
them and returns the report document that :func:`convcheck.report.write_report` writes.
"""

from convcheck.verification.cases import Case, CaseFileError, default_folder, load_case, load_suite
from convcheck.verification.runner import run_case, verify
from convcheck.verification.verdict import Verdict

__all__ = [
    "Case",
    "CaseFileError",
    "Verdict",
    "default_folder",
    "load_case",
    "load_suite",
    "run_case",
    "verify",
]
