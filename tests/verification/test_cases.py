"""Case files: a valid file parses; every malformed one names the file, the field, the values."""

from __future__ import annotations

import pytest

from convcheck.verification.cases import CaseFileError, find_cases, load_case, load_suite
from tests.helpers import TINY_CASE

VALID = TINY_CASE


def write(tmp_path, text, name="case.toml"):
    path = tmp_path / "group" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_valid_case(tmp_path):
    case = load_case(write(tmp_path, VALID))
    assert case.name == "group/case"
    assert case.suites == ("quick",)
    assert case.problem.family == "ridge" and case.problem.options["workers"] == 3
    assert case.algorithm_params() == {"alpha": "1/L"}
    assert case.run.seeds == (0, 1) and case.run.target == 1e-6
    positive, control = case.checks
    assert positive.kind == "positive" and control.kind == "negative_control"
    assert case.run.updated(control.run, "x").iterations == 2


@pytest.mark.parametrize(
    "old, new, field, allowed",
    [
        ('alpha = "1/L"', 'alpha = "1/L"\nspeed = 3', "speed", "a parameter of gd: alpha"),
        ("workers = 3", 'workers = "three"', "workers", "an integer >= 1 (got a string)"),
        ('dataset = "synthetic-regression"', "", "dataset", "(required)"),
        ('dataset = "synthetic-regression"', 'dataset = "nosuch"', "dataset", "breast-cancer"),
        ('name = "gd"', 'name = "gdx"', "name", "gd-sec"),
        ('bound = "converges"\n\n[[neg', 'bound = "nosuch"\n\n[[neg', "bound", "converges"),
        ('suites = ["quick"]', 'suites = ["fast"]', "suites", "quick, full"),
        ("seeds = [0, 1]", "seeds = [-1]", "seeds", "integers >= 0"),
        ("iterations = 50", "iterations = 0", "iterations", "an integer >= 1"),
        ('family = "ridge"', 'family = "lasso"', "family", "logistic"),
        ('why = "two rounds', 'inject = "bogus"\nwhy = "two rounds', "inject",
         "frozen-error-memory"),
        ("run = { iterations = 2 }", "run = { iterations = 2, speed = 1 }", "speed",
         "unknown key"),
        ("target = 1e-6", "target = -1.0", "target", "a real number > 0"),
    ],
)
def test_malformed_cases_name_file_field_and_allowed(tmp_path, old, new, field, allowed):
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(CaseFileError) as info:
        load_case(path)
    message = str(info.value)
    assert str(path) in message and repr(field) in message and allowed in message
    assert info.value.field == field


def test_not_toml_and_missing_file(tmp_path):
    path = write(tmp_path, "description = ")
    with pytest.raises(CaseFileError, match="a valid TOML file"):
        load_case(path)
    with pytest.raises(CaseFileError, match="an existing"):
        load_case(tmp_path / "nope.toml")


def test_a_case_needs_a_check(tmp_path):
    text = VALID[: VALID.index("[[checks]]")]
    with pytest.raises(CaseFileError, match="at least one"):
        load_case(write(tmp_path, text))


def test_suites_select_cases_and_names_are_unique(tmp_path):
    write(tmp_path, VALID, "a.toml")
    write(tmp_path, VALID.replace('["quick"]', '["full"]'), "b.toml")
    assert [c.name for c in load_suite([tmp_path], "quick")] == ["group/a"]
    assert [c.name for c in load_suite([tmp_path])] == ["group/a", "group/b"]
    assert len(find_cases([tmp_path, tmp_path / "group" / "a.toml"])) == 2
    with pytest.raises(CaseFileError, match="an existing case file or folder"):
        find_cases([tmp_path / "missing"])


def test_algorithm_parameters_are_validated_with_overrides(tmp_path):
    text = VALID.replace('why = "two rounds', 'algorithm = { alpha = -1.0 }\nwhy = "two rounds')
    with pytest.raises(CaseFileError) as info:
        load_case(write(tmp_path, text))
    assert info.value.field == "alpha" and "too few iterations" in str(info.value)


def test_theta0(tmp_path):
    case = load_case(write(tmp_path, VALID.replace("target = 1e-6",
                                                   "target = 1e-6\ntheta0 = [1, 2.5]")))
    assert case.run.theta0 == (1.0, 2.5)
    with pytest.raises(CaseFileError) as info:
        load_case(write(tmp_path, VALID.replace("target = 1e-6",
                                                'target = 1e-6\ntheta0 = ["a"]')))
    assert info.value.field == "theta0"


CONTROL = 'why = "two rounds'
BOUND_CHECK = VALID.replace('[[checks]]\nbound = "converges"', '[[checks]]\nbound = "gd/nonconvex"')


@pytest.mark.parametrize(
    "text, field, allowed",
    [
        (BOUND_CHECK.replace('bound = "gd/nonconvex"', 'bound = "gd/nonconvex"\ntolerance = 0'),
         "tolerance", "a real number > 0"),
        (BOUND_CHECK.replace('bound = "gd/nonconvex"', 'bound = "gd/nonconvex"\ntolerance = -1'),
         "tolerance", "a real number > 0"),
        (VALID.replace('[[checks]]\nbound = "converges"',
                       '[[checks]]\nbound = "converges"\ntolerance = 0.1'),
         "tolerance", "converges takes none"),
        (VALID.replace('[[checks]]\nbound = "converges"',
                       '[[checks]]\nbound = "below-reference"\ntolerance = 1.5\n'
                       'reference = { name = "gd" }'),
         "tolerance", "(0, 1)"),
        (VALID.replace(CONTROL, 'expect = "violated"\n' + CONTROL), "expect",
         "for converges: one of target-missed"),
        (VALID.replace(CONTROL, 'expect = "sideways"\n' + CONTROL), "expect", "one of"),
        (VALID.replace('[[checks]]\nbound = "converges"', '[[checks]]\nbound = "below-reference"'),
         "reference", "(required)"),
        (VALID.replace(CONTROL, 'reference = { name = "gd" }\n' + CONTROL), "reference",
         "only below-reference"),
        (VALID.replace('[[checks]]\nbound = "converges"',
                       '[[checks]]\nbound = "below-reference"\nreference = { name = "gdx" }'),
         "name", "gd-sec"),
        (VALID.replace(CONTROL, 'ran_with = { speed = 2 }\n' + CONTROL), "speed",
         "a parameter of gd"),
        (VALID.replace(CONTROL, 'ran_with = { name = "ef" }\n' + CONTROL), "name",
         "no name in ran_with"),
        (VALID.replace('[[checks]]\nbound = "converges"',
                       '[[checks]]\nbound = "converges"\nran_with = { alpha = 1.0 }'),
         "ran_with", "unknown key"),
        (VALID.replace('[[checks]]\nbound = "converges"',
                       '[[checks]]\nbound = "converges"\nexpect = "target-missed"'),
         "expect", "unknown key"),
    ],
)
def test_check_fields_are_validated(tmp_path, text, field, allowed):
    path = write(tmp_path, text)
    with pytest.raises(CaseFileError) as info:
        load_case(path)
    message = str(info.value)
    assert info.value.field == field and allowed in message and str(path) in message


def test_control_fields_parse(tmp_path):
    text = BOUND_CHECK.replace(CONTROL, 'ran_with = { alpha = "0.5/L" }\n' + CONTROL)
    text = text.replace('bound = "gd/nonconvex"', 'bound = "gd/nonconvex"\ntolerance = 1e-6')
    case = load_case(write(tmp_path, text))
    positive, control = case.checks
    assert positive.tolerance == 1e-6 and positive.expect == ""
    assert control.expect == "target-missed" and control.ran_with == {"alpha": "0.5/L"}


def test_bad_case_exits_2_before_any_case_runs(tmp_path, capsys):
    from convcheck.cli import main

    good = write(tmp_path, VALID, "a.toml")
    bad = write(tmp_path, VALID.replace(CONTROL, 'expect = "sideways"\n' + CONTROL), "b.toml")
    out = tmp_path / "report"
    assert main(["verify", str(good.parent), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert str(bad) in error and "'expect'" in error and "target-missed" in error
    assert not out.exists()
