"""Stability regions on a small grid: the three regions agree with the certificates and the
runs they summarize, the output files are written, the same grid on a Dask cluster gives the
same data, and a bad grid is refused before any work."""

from __future__ import annotations

import json

import pytest

from convcheck.errors import InputError
from convcheck.executor import make_executor
from convcheck.experiments import regions as maps

GRID = {"steps": (0.05, 0.5), "values": (0.3,), "iterations": 200}


@pytest.mark.slow
def test_small_map_is_consistent(tmp_path):
    with make_executor(1) as executor:
        document = maps.regions(["ef21"], tmp_path, executor=executor, **GRID)
    (data,) = document["maps"]
    assert data["grid"] == {"alpha_L": [0.05, 0.5], "axis": "delta", "values": [0.3]}
    assert data["seeds"] == [0] and data["iterations"] == 200
    for point in data["points"]:
        assert point["delta"] == point["k"] / 30  # breast-cancer: d = 30, k rounded
        if point["certified"]:
            assert point["rho"] < 1 and point["rho_low"] <= point["rho"]
        if point["diverges"]:
            assert not point["certified"] and point["rho_low"] >= 1
    (row,) = data["boundaries"]
    assert row["largest_certified"] == 0.05 and row["smallest_diverging"] == 0.5
    written = json.loads((tmp_path / "regions.json").read_text())
    assert written["maps"][0]["points"] == json.loads(json.dumps(data["points"]))
    assert (tmp_path / "regions-ef21.png").read_bytes()[:4] == b"\x89PNG"


def test_the_same_map_on_a_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = maps.SPECS["gd"]
    with make_executor(1) as executor:
        local = maps.region_map(spec, executor, steps=(0.5, 2.5), iterations=100)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        with make_executor(scheduler=cluster.scheduler_address) as executor:
            remote = maps.region_map(spec, executor, steps=(0.5, 2.5), iterations=100)
    assert remote["points"] == local["points"]
    inside, outside = local["points"]
    assert inside["certified"] and not outside["certified"] and outside["diverges"]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"steps": ()}, "'steps'"),
    ({"steps": (0.1, -1.0)}, "'steps'"),
    ({"values": ()}, "'values'"),
    ({"values": (1.5,)}, "'values'"),
    ({"seeds": ()}, "'seeds'"),
    ({"iterations": 1}, "'iterations'"),
])
def test_bad_grids_name_the_field(kwargs, field):
    arguments = {"steps": (0.1,), "values": None, "iterations": 100, "seeds": (0,), **kwargs}
    with pytest.raises(InputError, match=field):
        maps.validate_grid(["ef21"], **arguments)
    with pytest.raises(InputError, match="'algorithms'"):
        maps.validate_grid(["adam"], (0.1,), None, 100, (0,))
