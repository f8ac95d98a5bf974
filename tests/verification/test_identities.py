"""The identity checks every case gets: invariants (synchronous rounds and event-engine
updates, with every message's bits re-encoded) and reductions; they pass on the real
algorithms and fail, for the reason they name, on injected bugs; bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.cli import main
from convcheck.verification.cases import CaseFileError
from tests.helpers import RIDGE_CASE, own_checks, verify_case

GDSEC = 'name = "gd-sec"\nalpha = "0.5/L"\nxi = 0.2\nbeta = 0.5'
ASYNC_TABLES = '\n[async]\ncompute = { model = "exponential", mean = 1.0, spread = 2.0 }\n'
DGS = ('name = "dgs"\nalpha = "0.05/L"\nmomentum = 0.5\nrho_up = 0.5\nrho_down = 0.5\n'
       'layers = 2\nresync = 7')
ASYNC_TOPK = 'name = "async-sparse-sgd"\nalpha = "0.05/L"\nratio = 0.4'


def rows(document, name):
    return [c for c in document["checks"] if c["name"] == name]


def control(name, bound, inject, extra=""):
    return (f'[[negative_controls]]\nname = "{name}"\nbound = "{bound}"\nwhy = "a bug"\n'
            f'inject = "{inject}"\n{extra}')


def test_a_synchronous_case_gets_invariants_and_reductions(tmp_path):
    document = verify_case(tmp_path, '[[checks]]\nbound = "gd-sec/nonconvex"\n',
                           algorithm=GDSEC, iterations=120)
    (invariants,) = rows(document, "invariants")
    (reductions,) = rows(document, "reductions")
    assert invariants["outcome"] == "pass" and invariants["sides"] == "identity"
    assert "identities hold on 120 rounds" in invariants["reason"]
    assert set(invariants["extra"]["identities"]) >= {"direction", "server-memory",
                                                     "bits-re-encoded"}
    assert reductions["outcome"] == "pass" and "xi-zero-is-gd" in reductions["reason"]
    assert document["summary"]["passed"]


@pytest.mark.parametrize(("bound", "inject", "words"), [
    ("invariants", "error-not-cleared", "error-below-threshold"),
    ("invariants", "uplink-priced-dense", "bits-re-encoded"),
    ("invariants", "step-x1.3", "step"),
    ("reductions", "step-x0.5", "xi-zero-is-gd"),
])
def test_identities_fail_on_injected_bugs(tmp_path, bound, inject, words):
    """As negative controls the identity checks must be violated by each bug: they can fail."""
    document = verify_case(tmp_path, control("bug", bound, inject), algorithm=GDSEC,
                           iterations=60)
    (check,) = own_checks(document)
    assert check["outcome"] == "pass" and check["holds"] is False, check["reason"]
    assert words in check["reason"], check["reason"]


def test_a_restricted_invariants_check_does_not_see_other_bugs(tmp_path):
    """``names`` restricts the identities: the mispriced uplink breaks only the bit check."""
    only_direction = control("bug", "invariants", "uplink-priced-dense",
                             'names = ["direction", "server-memory"]\n')
    (check,) = own_checks(verify_case(tmp_path, only_direction, algorithm=GDSEC,
                                      iterations=40))
    assert check["outcome"] == "fail" and "did not fail" in check["reason"]


@pytest.mark.parametrize(("algorithm", "inject", "words"), [
    (DGS, "resync-keeps-accumulators", "model-is-sync-plus-accumulated"),
    (DGS, "downlink-priced-dense", "downlink bits"),
    (ASYNC_TOPK, "stale-reply", "replies-are-the-model"),
    (ASYNC_TOPK, "k-plus-one", "compression-rule"),
])
def test_asynchronous_identities(tmp_path, algorithm, inject, words):
    checks = '[[checks]]\nbound = "invariants"\n\n' + control("bug", "invariants", inject)
    document = verify_case(tmp_path, checks, algorithm=algorithm, iterations=60,
                           split="iid", tables=ASYNC_TABLES)
    real, bug = document["checks"]
    assert real["outcome"] == "pass" and "identities hold on 60 rounds" in real["reason"]
    assert bug["outcome"] == "pass" and words in bug["reason"], bug["reason"]


def test_a_diverging_run_is_checked_on_the_rounds_it_made(tmp_path):
    """GD at 3/L diverges (the engine stops it); its identities still hold until then."""
    document = verify_case(tmp_path, '[[checks]]\nbound = "invariants"\n',
                           algorithm='name = "gd"\nalpha = "3/L"', iterations=3000)
    (check,) = rows(document, "invariants")
    assert check["status"] == "diverged" and check["outcome"] == "pass", check["reason"]
    assert f"hold on {check['iterations']} rounds" in check["reason"]


@pytest.mark.parametrize(("checks", "algorithm", "field", "words"), [
    ('[[checks]]\nbound = "gd/nonconvex"\nnames = ["step"]\n', 'name = "gd"', "names",
     "only invariants"),
    ('[[checks]]\nbound = "invariants"\nnames = ["nosuch"]\n', GDSEC, "names",
     "identities of gd-sec: sent-iff-above-threshold"),
    ('[[checks]]\nbound = "invariants"\ntolerance = 0\n', GDSEC, "tolerance", "> 0"),
    ('[[checks]]\nbound = "reductions"\n', DGS, "bound", "runs synchronous rounds"),
    (control("bug", "invariants", "nosuch"), GDSEC, "inject", "error-not-cleared"),
])
def test_bad_identity_checks_are_refused_when_read(tmp_path, checks, algorithm, field, words):
    with pytest.raises(CaseFileError) as info:
        verify_case(tmp_path, checks, algorithm=algorithm)
    assert info.value.field == field and words in str(info.value), str(info.value)


def test_bad_identity_names_exit_2_naming_the_file(tmp_path, capsys):
    case = tmp_path / "case.toml"
    text = (f'description = "x"\n[problem]\nfamily = "ridge"\ndataset = "synthetic-regression"\n'
            f'{RIDGE_CASE["problem_extra"]}\n[algorithm]\n{GDSEC}\n[run]\niterations = 5\n'
            '[[checks]]\nbound = "invariants"\nnames = ["nosuch"]\n')
    case.write_text(text)
    assert main(["verify", str(case), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "case.toml" in error and "'names'" in error and "direction" in error
    assert not (tmp_path / "out").exists()


def test_a_message_that_does_not_decode_back_breaks_the_bit_check(tmp_path, monitor_codecs):
    """An index width of ⌊log₂ d⌋ (d = 5: index 4 wraps to 0) prices the ledger and the
    re-encoding alike; only decoding the messages sees it."""
    from convcheck import encoding

    monitor_codecs.setattr(encoding, "index_bits", lambda d: max(1, int(d).bit_length() - 1))
    document = verify_case(tmp_path, '[[checks]]\nbound = "gd-sec/nonconvex"\n', algorithm=GDSEC,
                           iterations=40)
    (invariants,) = rows(document, "invariants")
    assert invariants["holds"] is False and invariants["outcome"] == "fail"
    assert "bits-re-encoded" in invariants["reason"] and "decode" in invariants["reason"]


def test_prices_are_swept_against_encodings_at_every_count(tmp_path, monitor_codecs):
    """A pricing table wrong at one count that no message of the run has is still caught
    (round 0): every count of nonzeros is priced and encoded when the run starts."""
    from convcheck import encoding

    real = encoding._sparse_table.__wrapped__

    def table(d, value_bits):
        out = real(d, value_bits).copy()
        out[min(3, d)] += 1
        return out

    monitor_codecs.setattr(encoding, "_sparse_table", table)
    document = verify_case(tmp_path, '[[checks]]\nbound = "gd-sec/nonconvex"\n', algorithm=GDSEC,
                           iterations=20)
    (invariants,) = rows(document, "invariants")
    assert invariants["holds"] is False
    assert "prices a message of 3 nonzeros out of 5" in invariants["reason"]


@pytest.fixture
def monitor_codecs(monkeypatch):
    """``monkeypatch`` for the encoding module, with its cached table emptied around the
    test (a patched width must not leave wrong tables behind)."""
    from convcheck import encoding

    encoding._sparse_table.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    encoding._sparse_table.cache_clear()


def test_a_gradient_at_the_servers_model_breaks_the_own_model_identity(tmp_path, monkeypatch):
    """An event engine that computes a worker's gradient at the server's current model
    instead of the model the worker holds (DGS: the sparsified replies make them differ;
    asynchronous SGD computes as soon as it reads, when the two are equal)."""
    algorithm = DGS
    from convcheck.algorithms.base import put_rows, take_rows
    from convcheck.engine import events

    def at_server(self, k):  # compute_message with one change: the server's θ
        row = slice(k, k + 1)
        mine = take_rows(self.workers_state, row)
        gradient = self.gradients(k, self.server.theta, self.batch, self.rng)
        message = self.algorithm.worker(mine, gradient[None], self.models[k], self.rng)[0]
        put_rows(self.workers_state, row, mine)
        if self.on_compute is not None:
            self.on_compute(k, gradient, message, self)
        return message

    checks = '[[checks]]\nbound = "invariants"\n'
    (check,) = rows(verify_case(tmp_path, checks, algorithm=algorithm, iterations=60,
                                split="iid", tables=ASYNC_TABLES), "invariants")
    assert check["outcome"] == "pass", check["reason"]
    monkeypatch.setattr(events._Cluster, "compute_message", at_server)
    (check,) = rows(verify_case(tmp_path, checks, algorithm=algorithm, iterations=60,
                                split="iid", tables=ASYNC_TABLES), "invariants")
    assert check["outcome"] == "fail" and "gradient-at-own-model" in check["reason"]


def test_a_diagnostic_column_off_its_definition_breaks_the_trace_check(tmp_path, monkeypatch):
    """EF21's G measured with the old estimates (a column the EF21 bounds read): only the
    trace check, which recomputes G from the states, sees it."""
    from convcheck.algorithms.ef21 import EF21

    def stale(self, s, w, gradients):
        gap = w.estimates - gradients
        return (float(np.mean(np.sum(gap * gap, axis=1))),)

    ef21 = 'name = "ef21"\nalpha = "0.2/L"\ncompressor = "top-k"\nk = 2'
    checks = '[[checks]]\nbound = "invariants"\n'
    (check,) = rows(verify_case(tmp_path, checks, algorithm=ef21, iterations=60), "invariants")
    assert check["outcome"] == "pass" and "trace-diagnostics" in check["extra"]["identities"]
    monkeypatch.setattr(EF21, "diagnostics", stale)
    (check,) = rows(verify_case(tmp_path, checks, algorithm=ef21, iterations=60), "invariants")
    assert check["outcome"] == "fail" and "trace column ef21_G at row" in check["reason"]


def test_dgs_links_are_checked_against_their_declared_ratios(tmp_path, monkeypatch):
    """A downlink compressor built from ρ_up instead of ρ_down: the algorithm and its own
    compressor agree, the ratio declared for the link does not."""
    from convcheck.algorithms import dgs as module
    from convcheck.compressors import PartitionTopK

    real = module.DGS.prepare

    def swapped(self, d):
        real(self, d)
        self.sparsify_down = PartitionTopK(self.sparsify_down.groups, self.rho_up)

    dgs = DGS.replace("rho_down = 0.5", "rho_down = 1.0")  # d = 5 in layers of 3 and 2
    checks = '[[checks]]\nbound = "invariants"\n'
    (check,) = rows(verify_case(tmp_path, checks, algorithm=dgs, iterations=60, split="iid",
                                tables=ASYNC_TABLES), "invariants")
    assert check["outcome"] == "pass", check["reason"]
    monkeypatch.setattr(module.DGS, "prepare", swapped)
    (check,) = rows(verify_case(tmp_path, checks, algorithm=dgs, iterations=60, split="iid",
                                tables=ASYNC_TABLES), "invariants")
    assert check["outcome"] == "fail" and "replies-accumulated" in check["reason"]
