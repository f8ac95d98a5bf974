"""The case runner: verdicts independent of --jobs, missing data skipped, errors fail loudly."""

from __future__ import annotations

import pytest

from convcheck.errors import InputError, OptimumError
from convcheck.verification import CaseFileError, load_suite, verify
from convcheck.verification.verdict import thin
from tests.helpers import TINY_CASE, own_checks


def _suite(tmp_path, **texts):
    for name, text in texts.items():
        (tmp_path / f"{name}.toml").write_text(text)
    return load_suite([tmp_path])


def _rows(document):
    return [{k: v for k, v in c.items() if k != "seconds"} for c in document["checks"]]


def test_parallel_jobs_give_the_same_verdicts(tmp_path):
    cases = _suite(tmp_path, a=TINY_CASE, b=TINY_CASE.replace("workers = 3", "workers = 2"))
    one = verify(cases, jobs=1)
    two = verify(cases, jobs=2)
    assert _rows(one) == _rows(two)
    # each case: its check and the invariants every synchronous case gets (GD: no reduction)
    assert one["summary"]["passed"] and one["summary"]["positive"] == 4


def test_missing_shared_data_skips_the_case(tmp_path, monkeypatch):
    monkeypatch.delenv("CONVCHECK_DATA", raising=False)  # nowhere else to find a9a
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    text = TINY_CASE.replace('family = "ridge"', 'family = "logistic"').replace(
        'dataset = "synthetic-regression"', 'dataset = "a9a"').replace(
        "dataset_params = { n_samples = 60, n_features = 4 }\n", "")
    empty = tmp_path / "no-data"
    empty.mkdir()
    document = verify(_suite(tmp_path, libsvm=text), data_dir=str(empty))
    case = document["cases"][0]
    assert case["skipped"] and "a9a" in case["skipped"]
    assert [c["outcome"] for c in document["checks"]] == ["skipped", "skipped"]
    assert not any(c["passed"] for c in document["checks"])
    assert document["summary"]["outcomes"]["skipped"] == 2 and not document["summary"]["passed"]


def test_a_case_that_cannot_run_is_refused_before_any_case_runs(tmp_path, monkeypatch):
    """k > d is only known once the data is loaded: the preflight finds it, names the file and
    the check, and nothing runs (not even the valid case beside it)."""
    from convcheck.verification import runner

    ran = []
    monkeypatch.setattr(runner, "run_case", lambda case, **kw: ran.append(case))
    text = TINY_CASE.replace('name = "gd"', 'name = "ef"\nk = 50')  # k > d = 4
    with pytest.raises(CaseFileError) as info:
        verify(_suite(tmp_path, a_valid=TINY_CASE, broken=text))
    assert "broken.toml" in str(info.value) and "d=4" in str(info.value)
    assert ran == []


def test_a_check_that_fails_while_running_fails_the_suite(tmp_path, monkeypatch):
    from convcheck.verification import checks

    def broken(*args):
        raise OptimumError("solver stalled")

    monkeypatch.setattr(checks, "evaluate_check", broken)
    document = verify(_suite(tmp_path, a=TINY_CASE))
    assert document["summary"]["verdict"] == "failed"
    assert all(c["holds"] is None and "solver stalled" in c["reason"]
               for c in own_checks(document))
    assert all(c["outcome"] == "error" and not c["passed"] for c in own_checks(document))


def test_seed_and_jobs_are_validated(tmp_path):
    cases = _suite(tmp_path, a=TINY_CASE)
    with pytest.raises(InputError):
        verify(cases, jobs=0)
    with pytest.raises(InputError):
        verify(cases, seed=-1)


def test_thin_keeps_first_and_last():
    assert thin(5).tolist() == [0, 1, 2, 3, 4]
    index = thin(10_000, 50)
    assert index[0] == 0 and index[-1] == 9999 and len(index) <= 52
    assert (index[1:] > index[:-1]).all()


SCRIPT = """
from convcheck.theory import certify
from convcheck.verification import CaseFileError, load_suite, verify

if __name__ == "__main__":
    certify("gd-sec", L=1.0, mu=0.1, workers=4, alpha=0.5, xi=0.2)  # solver threads now running
    document = verify(load_suite([{case!r}]), jobs=2)
    print("passed" if document["summary"]["passed"] else "failed")
"""


def test_parallel_cases_after_sdp_solves_in_the_parent_do_not_hang(tmp_path):
    """Forked workers deadlocked inside Clarabel once the parent had solved SDPs; the pool now
    starts fresh interpreters. Run in a subprocess so that a regression fails by timeout."""
    import subprocess
    import sys
    from pathlib import Path

    problems = Path(__file__).resolve().parents[2] / "problems"
    case = problems / "gd-sec" / "logistic-heterogeneous.toml"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(case=str(case)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("passed")
