"""``convcheck verify``: exit statuses 0 / 1 / 3 and what the verdict says."""

from __future__ import annotations

import json

from convcheck.cli import main
from tests.helpers import TINY_CASE

LIBSVM_CASE = TINY_CASE.replace('family = "ridge"', 'family = "logistic"').replace(
    'dataset = "synthetic-regression"', 'dataset = "a9a"').replace(
    "dataset_params = { n_samples = 60, n_features = 4 }\n", "")


def test_a_suite_with_skipped_cases_is_incomplete_not_passed(tmp_path, capsys, monkeypatch):
    for variable in ("CONVCHECK_DATA", "CONVCHECK_DATA_DIR"):  # no data anywhere
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cases, empty = tmp_path / "cases", tmp_path / "no-data"
    cases.mkdir()
    empty.mkdir()
    (cases / "tiny.toml").write_text(TINY_CASE)
    (cases / "libsvm.toml").write_text(LIBSVM_CASE)
    out = tmp_path / "report"
    assert main(["verify", str(cases), "--data-dir", str(empty), "--out", str(out)]) == 3
    printed = capsys.readouterr()
    assert "Verification INCOMPLETE (1 case(s) SKIPPED)" in printed.out
    assert "skip cases/libsvm: dataset 'a9a' not available" in printed.err
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary["verdict"] == "incomplete" and not summary["passed"]
    assert "INCOMPLETE" in (out / "index.md").read_text()


def test_verified_and_failed(tmp_path, capsys):
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "tiny.toml").write_text(TINY_CASE)
    assert main(["verify", str(cases), "--out", str(tmp_path / "a")]) == 0
    assert "Verification PASSED" in capsys.readouterr().out
    # a target 50 rounds cannot reach: the positive check fails
    (cases / "tiny.toml").write_text(TINY_CASE.replace("target = 1e-6", "target = 1e-300"))
    assert main(["verify", str(cases), "--out", str(tmp_path / "a")]) == 1
    assert "Verification FAILED" in capsys.readouterr().out
