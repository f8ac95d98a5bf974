"""Plug-ins: an installed package's compressor and algorithm found through their entry points,
usable everywhere a built-in one is; broken plug-ins are reported clearly."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from convcheck.algorithms import ALGORITHMS, make_algorithm
from convcheck.compressors import COMPRESSORS, make_compressor
from convcheck.contracts import check_compressor
from convcheck.engine import run
from convcheck.errors import InputError
from convcheck.registry import PluginError
from convcheck.verify.cases import parse_case
from tests.helpers import engine_problem

#: The plug-in's whole source: a compressor in four lines of user code.
PLUGIN = '''
from convcheck.compressors import TopK

class HalfTopK(TopK):
    name = "half-top-k"
    def __init__(self, *, value_bits=32):
        super().__init__(ratio=0.5, value_bits=value_bits)
'''


def install(root: Path, package: str, source: str, entry_points: str) -> None:
    """A package installed in ``root`` as pip would leave it: the module and its dist-info."""
    (root / f"{package}.py").write_text(textwrap.dedent(source))
    info = root / f"{package.replace('_', '-')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fresh site folder on sys.path; the registries re-read their entry points."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("demo_")]:
        del sys.modules[name]
    monkeypatch.undo()
    COMPRESSORS.reload()
    ALGORITHMS.reload()


def test_an_installed_compressor_is_found_checked_named_in_a_case_and_runs_on_torch(site):
    install(site, "demo_compressors", PLUGIN,
            "[convcheck.compressors]\nhalf-top-k = demo_compressors:HalfTopK\n")
    COMPRESSORS.reload()
    assert "half-top-k" in COMPRESSORS
    assert COMPRESSORS.origin("half-top-k") == "demo_compressors 0.1"
    compressor = make_compressor("half-top-k")
    assert check_compressor(compressor, max_examples=15).passed
    case = parse_case({
        "description": "EF with a plug-in compressor",
        "problem": {"family": "ridge", "dataset": "synthetic-regression", "workers": 3,
                    "dataset_params": {"n_samples": 60, "n_features": 6}},
        "algorithm": {"name": "ef", "alpha": "0.5/L", "compressor": "half-top-k"},
        "run": {"iterations": 20, "target": 1e-3},
        "checks": [{"bound": "converges"}],
    }, "plugin-case.toml")
    problem = engine_problem("ridge", "sorted", n_features=8)
    params = case.algorithm_params()
    numpy_run = run(make_algorithm("ef", problem.constants, **params), problem, 20)
    assert np.all(numpy_run.columns["nnz_up"][1:] == 4 * problem.objective.n_workers)

    torch = pytest.importorskip("torch")
    from convcheck.torch.oracle import ObjectiveOracle
    from convcheck.torch.runner import Runner

    runner = Runner(make_algorithm("ef", problem.constants, **params),
                    ObjectiveOracle(problem.objective), torch.zeros(8, dtype=torch.float64))
    runner.run(20)
    np.testing.assert_allclose(runner.theta.numpy(), numpy_run.theta, rtol=0, atol=1e-12)


def test_a_plugin_that_fails_to_import_is_named(site):
    install(site, "demo_broken", "raise RuntimeError('boom')\n",
            "[convcheck.compressors]\nbroken = demo_broken:Nothing\n")
    COMPRESSORS.reload()
    with pytest.raises(PluginError, match=r"plug-in 'broken'.*demo_broken 0\.1.*boom"):
        make_compressor("top-k", k=1)


def test_a_name_registered_twice_is_refused(site):
    install(site, "demo_twice", PLUGIN, "[convcheck.compressors]\ntop-k = demo_twice:HalfTopK\n")
    COMPRESSORS.reload()
    with pytest.raises(PluginError, match="'top-k', already registered by convcheck"):
        list(COMPRESSORS)


def test_an_algorithm_without_its_halves_is_refused(site):
    source = '''
    from convcheck.algorithms import Algorithm

    class Half(Algorithm):
        name = "half"
        summary = "only a worker"
        parameters = ()
        def worker(self, w, gradients, model, rng):
            return gradients
    '''
    install(site, "demo_half", source, "[convcheck.algorithms]\nhalf = demo_half:Half\n")
    ALGORITHMS.reload()
    with pytest.raises(PluginError, match="it lacks .*server.*both halves"):
        make_algorithm("gd", alpha=1.0)


def test_a_case_naming_a_plugin_that_is_not_installed():
    with pytest.raises(InputError, match="plug-in's name needs its package installed"):
        make_compressor("half-top-k")
