"""Verdicts cannot pass by accident: every way a check can fail to decide is an error verdict
(exit 1), a negative control passes only when it fails the way it names, and a run that
refutes a certificate is reported as such."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.theory import BOUNDS
from convcheck.theory import certified as certified_module
from convcheck.theory.base import NotEvaluable
from convcheck.theory.bounds import GDNonconvex
from convcheck.theory.check import envelope_problem
from convcheck.verification.cases import CaseFileError
from tests.helpers import NONCONVEX_CASE as NONCONVEX
from tests.helpers import own_checks
from tests.helpers import verify_case as document_of


def only(document):
    """The case's one check (the identity checks every synchronous case gets left out)."""
    (check,) = own_checks(document)
    return check


def assert_error(document, *words):
    check = only(document)
    assert check["outcome"] == "error" and not check["passed"], check["reason"]
    assert not document["summary"]["passed"]
    for word in words:
        assert word in check["reason"], check["reason"]
    return check


def test_positive_check_that_is_not_applicable_is_an_error(tmp_path):
    document = document_of(tmp_path, '[[checks]]\nbound = "gd-sec/nonconvex"\n',
                           algorithm='name = "gd-sec"\nalpha = "0.95/L"\nxi = 0.2')
    assert_error(document, "not applicable", "c = 1 − Lα")


def test_negative_control_on_a_negative_formula_is_an_error_not_a_pass(tmp_path):
    """The issue's example: GD-SEC at 0.95/L converges, yet its c < 0 formula is negative and
    was reported as "violated, as it must"."""
    control = ('[[negative_controls]]\nname = "c < 0"\nbound = "gd-sec/nonconvex"\n'
               'why = "evaluated anyway"\n')
    document = document_of(tmp_path, control, problem=NONCONVEX, iterations=300,
                           algorithm='name = "gd-sec"\nalpha = "0.95/L"\nxi = 0.2')
    check = assert_error(document, "cannot be evaluated", "≤ 0")
    assert check["holds"] is None and check["max_ratio"] is None


def test_negative_control_on_a_bound_about_another_algorithm_is_an_error(tmp_path):
    control = ('[[negative_controls]]\nname = "other"\nbound = "ef21/pl"\n'
               'why = "ef21 is not gd"\n')
    assert_error(document_of(tmp_path, control), "not applicable", "ef21")


def test_converges_without_a_target_is_refused_before_running(tmp_path):
    """A case file cannot ask for convergence without saying to what: bad input (exit 2),
    reported when the file is read, not a verdict."""
    with pytest.raises(CaseFileError, match="'target'.*'converges' check measures reaching it"):
        document_of(tmp_path, '[[checks]]\nbound = "converges"\n')


class _Fake(GDNonconvex):
    """gd/nonconvex with a hand-made envelope, to force the cannot-evaluate paths."""

    def __init__(self, values=None, failing_seed=None):
        self.values, self.failing_seed = values, failing_seed

    def evaluate(self, run, problem, constants):
        if run.meta["seed"] == self.failing_seed:
            raise NotEvaluable("this seed is not evaluable")
        bound, start = super().evaluate(run, problem, constants)
        return (bound if self.values is None else self.values(bound)), start


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (lambda b: np.where(np.isnan(b), np.nan, np.inf), ("not finite",)),
        (lambda b: -b, ("negative",)),
        (lambda b: np.full_like(b, np.nan), ("undefined at every",)),
        (lambda b: np.where(np.isnan(b), np.nan, 0.0), ("is 0",)),
    ],
)
@pytest.mark.parametrize("kind", ["checks", "negative_controls"])
def test_an_envelope_that_is_not_finite_and_positive_is_an_error(tmp_path, monkeypatch, values,
                                                                words, kind):
    monkeypatch.setitem(BOUNDS, "gd/nonconvex", _Fake(values))
    extra = 'name = "x"\nwhy = "y"\n' if kind == "negative_controls" else ""
    document = document_of(tmp_path, f'[[{kind}]]\nbound = "gd/nonconvex"\n{extra}')
    assert_error(document, "cannot be evaluated", *words)


def test_a_dropped_seed_is_an_error(tmp_path, monkeypatch):
    """Seeds 0 and 2 hold; seed 1 cannot be evaluated: the check is not decided on the rest."""
    monkeypatch.setitem(BOUNDS, "gd/nonconvex", _Fake(failing_seed=1))
    document = document_of(tmp_path, '[[checks]]\nbound = "gd/nonconvex"\n', seeds="[0, 1, 2]")
    assert_error(document, "seed(s) [1]", "this seed is not evaluable")


def test_envelope_rules():
    envelope_problem(np.array([np.nan, 2.0, 1.0, 0.0]))  # zeros after a positive start: underflow
    for values in ([np.nan, np.nan], [np.nan, 0.0, 1.0], [1.0, -1e-300], [1.0, np.inf]):
        with pytest.raises(NotEvaluable):
            envelope_problem(np.array(values))


class _Unsound:
    """A certificate from a broken certifier: V(s) = Σ_a ‖s_a‖² and a rate it never proved."""

    def __init__(self, model, rho):
        self.model, self.rho, self.certified = model, rho, True
        self.reason, self.seconds = "forced by the test", 0.0
        self.rho_low, self.gap, self.lower_bound_method = None, None, "none"
        self.assumptions = "none: a broken certifier"
        self.P = np.eye(len(model.states))

    def lyapunov(self, state):
        return float(np.sum(np.asarray(state) ** 2))

    def max_eigenvalue(self):
        return 1.0


@pytest.fixture
def unsound_certifier(monkeypatch):
    def certify(model, tol, lower_bound=True):
        return _Unsound(model, 0.9)

    monkeypatch.setattr(certified_module, "_certify_cached", certify)


EF_CASE = {"family": "logistic", "dataset": "breast-cancer", "problem_extra": "lam = 0.01"}
EF_ALGORITHM = 'name = "ef"\nalpha = "0.5/L"\ncompressor = "top-k"\nk = 3'
NO_CERTIFICATE = ('[[negative_controls]]\nname = "no certified linear rate"\n'
                  'bound = "lmi/distance"\nexpect = "no-certificate"\nwhy = "heterogeneous"\n')


def test_no_certificate_control_passes_with_the_real_certifier(tmp_path):
    document = document_of(tmp_path, NO_CERTIFICATE, problem=EF_CASE, algorithm=EF_ALGORITHM,
                           iterations=300)
    check = only(document)
    assert check["outcome"] == "pass" and "no linear rate certified" in check["reason"]


def test_no_certificate_control_without_an_lmi_model_is_an_error(tmp_path):
    """rand-k has no sure bound, hence no model: "no certificate" would prove nothing."""
    algorithm = EF_ALGORITHM.replace('"top-k"', '"rand-k"')
    document = document_of(tmp_path, NO_CERTIFICATE, problem=EF_CASE, algorithm=algorithm,
                           iterations=20)
    assert_error(document, "no LMI model")


def test_a_violation_control_without_a_certificate_is_an_error(tmp_path):
    """The old EF control: no certificate, so nothing to violate — it used to pass."""
    control = NO_CERTIFICATE.replace('expect = "no-certificate"\n', "")
    document = document_of(tmp_path, control, problem=EF_CASE, algorithm=EF_ALGORITHM,
                           iterations=300)
    assert_error(document, "cannot be evaluated", "a certified rate")


def test_no_certificate_control_catches_an_unsound_certifier(tmp_path, unsound_certifier):
    """The EF control once passed even with a broken certifier; the plateauing run now refutes
    the rate the certifier should never have found."""
    document = document_of(tmp_path, NO_CERTIFICATE, problem=EF_CASE, algorithm=EF_ALGORITHM,
                           iterations=300)
    check = only(document)
    assert check["outcome"] == "refuted" and not document["summary"]["passed"]
    assert "unsound" in check["reason"]
    assert document["summary"]["outcomes"]["refuted"] == 1


def test_a_certificate_refuted_by_a_run_of_the_algorithm_itself(tmp_path, monkeypatch):
    """GD's exact rate on this problem is far slower than ρ = 0.3: the run refutes it."""

    def certify(model, tol, lower_bound=True):
        return _Unsound(model, 0.3)

    monkeypatch.setattr(certified_module, "_certify_cached", certify)
    document = document_of(tmp_path, '[[checks]]\nbound = "lmi/distance"\n')
    check = only(document)
    assert check["outcome"] == "refuted" and "certificate is wrong" in check["reason"]


def test_an_inconclusive_statistical_test_is_an_error(tmp_path, monkeypatch):
    """The mean over seeds with an interval straddling the bound decides nothing."""
    from convcheck.theory import asynchronous

    monkeypatch.setattr(asynchronous, "verdict", lambda interval, bound: "inconclusive")
    problem = {"family": "nonconvex-logistic", "dataset": "wine", "problem_extra": "lam_nc = 0.01"}
    document = document_of(tmp_path, '[[checks]]\nbound = "async-sparse-sgd/nonconvex"\n',
                           problem=problem, iterations=50, seeds="[0, 1]",
                           algorithm='name = "async-sparse-sgd"\nalpha = "0.001/L"\n'
                                     'compressor = "top-k"\nk = 5')
    assert_error(document, "straddles")


def test_a_control_that_fails_for_another_reason_fails(tmp_path):
    """It expects a run that is too slow; the run it makes is too fast."""
    control = ('[[negative_controls]]\nname = "wrong reason"\nbound = "gd/exact-rate"\n'
               'expect = "too-slow"\nwhy = "y"\nran_with = { alpha = "1.5/L" }\n')
    check = only(document_of(tmp_path, control, iterations=60))
    assert check["outcome"] == "fail" and "'too-fast', not as the control names" in check["reason"]


def test_a_negative_control_that_holds_fails(tmp_path):
    control = ('[[negative_controls]]\nname = "holds"\nbound = "gd/nonconvex"\nwhy = "y"\n')
    check = only(document_of(tmp_path, control))
    assert check["outcome"] == "fail" and "did not fail" in check["reason"]


def test_outcome_and_sides_are_in_results(tmp_path):
    checks = '[[checks]]\nbound = "gd/exact-rate"\n\n[[checks]]\nbound = "gd/nonconvex"\n'
    document = document_of(tmp_path, checks, iterations=60)
    rows = {c["bound"]: c for c in own_checks(document)}
    assert rows["gd/exact-rate"]["sides"] == "two-sided"
    assert rows["gd/nonconvex"]["sides"] == "upper"
    assert all(c["outcome"] == "pass" and c["passed"] for c in rows.values())
    assert document["summary"]["outcomes"]["pass"] == 3 and document["summary"]["passed"]


QUADRATICS = {"family": "ridge", "dataset": "quadratics",
              "problem_extra": 'scaling = "none"\nlam = 0.0\n'
                               "dataset_params = { centers = [[1.0, 2.0], [-2.0, 0.5]] }"}
ATTAINED = '[[checks]]\nbound = "gd/strongly-convex"\nattained = 1e-6\n'


def test_an_attained_bound_holds_on_isotropic_quadratics(tmp_path):
    document = document_of(tmp_path, ATTAINED, problem=QUADRATICS, split="natural", workers=2,
                           algorithm='name = "gd"\nalpha = 0.3', iterations=30)
    check = only(document)
    assert check["outcome"] == "pass", check["reason"]
    assert "lowest measured/bound 1 " in check["reason"]


def test_a_loosened_rate_is_not_attained(tmp_path, monkeypatch):
    """A bound made looser (the rate ρ replaced by √ρ) is still respected by every run; only
    ``attained`` sees it."""
    real = BOUNDS["gd/strongly-convex"].constants

    def looser(algorithm, problem, theta0=None):
        out = real(algorithm, problem, theta0)
        return {**out, "rate": out["rate"] ** 0.5}

    monkeypatch.setattr(BOUNDS["gd/strongly-convex"], "constants", looser)
    document = document_of(tmp_path, ATTAINED, problem=QUADRATICS, split="natural", workers=2,
                           algorithm='name = "gd"\nalpha = 0.3', iterations=30)
    check = only(document)
    assert check["outcome"] == "fail" and "lowest measured/bound 2.25" in check["reason"]


@pytest.mark.parametrize(("extra", "words"), [
    ('bound = "converges"\nattained = 0.1', "only a bound of convcheck list"),
    ('bound = "gd/strongly-convex"\nattained = 1.5', "a real number in (0, 1)"),
    ('bound = "gd/strongly-convex"\nattained = "yes"', "attained"),
])
def test_bad_attained_is_refused_naming_the_field(tmp_path, extra, words):
    with pytest.raises(CaseFileError) as info:
        document_of(tmp_path, f"[[checks]]\n{extra}\n", run_extra="target = 1e-3")
    assert "attained" in str(info.value) and words in str(info.value)


def test_staleness_beyond_the_cases_tau_max_is_an_error(tmp_path, monkeypatch):
    """An engine that stops enforcing τ_max runs messages staler than the case's bound
    assumes: the asynchronous bound is not evaluated for them."""
    from convcheck.engine import events

    monkeypatch.setattr(events._Cluster, "applicable", lambda self, k: True)
    monkeypatch.setattr(events._Cluster, "may_read", lambda self: True)
    tables = ('\n[async]\ntau_max = 1\n'
              'compute = { model = "exponential", mean = 1.0, spread = 2.0 }\n')
    document = document_of(tmp_path, '[[checks]]\nbound = "async-sparse-sgd/nonconvex"\n',
                           problem=NONCONVEX, split="iid", workers=4, tables=tables,
                           algorithm='name = "async-sparse-sgd"\nalpha = "0.01/L"\nratio = 0.5',
                           iterations=300, seeds="[0, 1]")
    assert_error(document, "staleness reaches", "τ_max = 1")
