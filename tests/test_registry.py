"""Plug-ins: an installed package's compressor, algorithm and dataset found through their entry
points, usable everywhere a built-in one is; broken plug-ins are reported clearly."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from convcheck.algorithms import ALGORITHMS, make_algorithm
from convcheck.cli import main
from convcheck.compressors import COMPRESSORS, make_compressor
from convcheck.contracts import check_compressor
from convcheck.data import DATASETS, load_dataset
from convcheck.engine import run
from convcheck.errors import InputError
from convcheck.registry import PluginError
from convcheck.verification.cases import load_case, parse_case
from convcheck.verification.runner import run_case
from tests.helpers import IDENTITY_CHECKS, engine_problem

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
    DATASETS.reload()


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
    for _ in range(2):  # at every use, not only the first
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


#: A dataset plug-in: a loader and its description.
DATASET_PLUGIN = '''
import numpy as np
from convcheck.data import DatasetInfo, make_dataset

def load(n_samples=40):
    X = np.random.default_rng(7).normal(size=(n_samples, 5))
    return make_dataset("demo-data", X, X @ np.arange(1.0, 6.0), task="regression",
                        source="demo_data generator")

DEMO = DatasetInfo(load, "demo least squares", "regression", needs_data_dir=False)
NOT_INFO = load
WRONG = DatasetInfo(lambda: "rows", "returns no Dataset", "regression", needs_data_dir=False)
'''

CASE = """
description = "GD on a plug-in dataset"
[problem]
family = "ridge"
dataset = "demo-data"
dataset_params = { n_samples = 60 }
workers = 3
[algorithm]
name = "gd"
alpha = "1/L"
[run]
iterations = 300
target = 1e-6
[[checks]]
bound = "converges"
"""


def test_an_installed_dataset_is_named_in_a_case_file_and_on_the_command_line(
        site, tmp_path, capsys):
    install(site, "demo_data", DATASET_PLUGIN, "[convcheck.problems]\ndemo-data = demo_data:DEMO\n")
    DATASETS.reload()
    assert "demo-data" in DATASETS and DATASETS.origin("demo-data") == "demo_data 0.1"
    assert load_dataset("demo-data", n_samples=30).X.shape == (30, 5)
    (tmp_path / "case.toml").write_text(CASE)
    result = run_case(load_case(tmp_path / "case.toml"))
    assert result["skipped"] is None
    [verdict] = [v for v in result["verdicts"] if v.name not in IDENTITY_CHECKS]
    assert verdict.passed, verdict

    out = tmp_path / "trace.json"
    assert main(["run", "--algorithm", "gd", "--problem", "ridge", "--dataset", "demo-data",
                 "--workers", "2", "--iters", "5", "--no-cross-check", "--out", str(out)]) == 0
    assert "demo_data generator" in out.read_text()
    assert main(["list"]) == 0
    assert "demo least squares" in capsys.readouterr().out


@pytest.mark.parametrize(("entry", "message"), [
    ("demo-data = demo_data:NOT_INFO",
     r"'demo-data' \(demo_data:NOT_INFO\) of package demo_data 0\.1 is <function load.*not a "
     r"convcheck\.data\.DatasetInfo; entry points of 'convcheck\.problems' must name a "
     r"convcheck\.data\.DatasetInfo\(loader, description, task, needs_data_dir\)"),
    ("iris = demo_data:DEMO", r"demo_data 0\.1 registers the name 'iris', already registered by "
                              r"convcheck; names must be unique"),
    ("demo-data = demo_data:MISSING", r"'demo-data' \(demo_data:MISSING\) of package demo_data "
                                      r"0\.1 failed to import: AttributeError"),
])
def test_a_bad_dataset_plugin_is_named_with_its_package(site, capsys, entry, message):
    install(site, "demo_data", DATASET_PLUGIN, f"[convcheck.problems]\n{entry}\n")
    DATASETS.reload()
    with pytest.raises(PluginError, match=message):
        load_dataset("iris")
    assert main(["run", "--algorithm", "gd", "--problem", "ridge", "--dataset", "iris",
                 "--iters", "5"]) == 2  # bad input, before any work
    assert "plug-in" in capsys.readouterr().err


def test_a_dataset_plugin_whose_loader_returns_no_dataset(site):
    install(site, "demo_data", DATASET_PLUGIN, "[convcheck.problems]\nwrong = demo_data:WRONG\n")
    DATASETS.reload()
    with pytest.raises(PluginError, match="dataset 'wrong' of demo_data 0.1: its loader "
                                          "returned str, not a convcheck.data.Dataset"):
        load_dataset("wrong")
