"""Extreme eigenvalues: exact path against eigvalsh of assembled matrices, Lanczos path bounds."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck import spectrum as spectrum_module
from convcheck.spectrum import extreme_eigenvalues
from tests.helpers import small_problem


def assembled(objective):
    M = objective.n_workers
    grams = []
    for m in range(M):
        rows = (
            np.asarray(objective.shards.worker_rows(m).todense())
            if hasattr(objective.shards.worker_rows(m), "todense")
            else objective.shards.worker_rows(m)
        )
        grams.append(rows.T @ rows / rows.shape[0])
    return np.array(grams), np.mean(grams, axis=0)


@pytest.mark.parametrize("sparse", [False, True])
def test_exact_path_matches_assembled_gram_matrices(sparse):
    objective = small_problem("ridge", 0.0, 0.0, sparse=sparse)
    grams, global_gram = assembled(objective)
    spectrum = extreme_eigenvalues(objective.shards, need_min=True)
    np.testing.assert_allclose(spectrum.worker_max, np.linalg.eigvalsh(grams)[:, -1], rtol=1e-12)
    eigenvalues = np.linalg.eigvalsh(global_gram)
    assert spectrum.global_max == pytest.approx(eigenvalues[-1], rel=1e-12)
    assert spectrum.global_min == pytest.approx(eigenvalues[0], rel=1e-10)
    np.testing.assert_allclose(spectrum.worker_min, np.linalg.eigvalsh(grams)[:, 0], rtol=1e-10)
    assert spectrum.method == "eigh" and spectrum.safety_factor == 1.0
    assert extreme_eigenvalues(objective.shards, need_min=False).worker_min is None


def test_wide_shards_use_the_small_gram_and_singular_h_has_zero_min():
    objective = small_problem("ridge", 0.0, 0.0, sizes=(3, 4), d=12)
    grams, global_gram = assembled(objective)
    spectrum = extreme_eigenvalues(objective.shards, need_min=True)
    np.testing.assert_allclose(spectrum.worker_max, np.linalg.eigvalsh(grams)[:, -1], rtol=1e-12)
    assert spectrum.global_min == 0.0


def test_lanczos_path_bounds_the_exact_values(monkeypatch):
    objective = small_problem("ridge", 0.0, 0.0, sizes=(40, 45), d=30)
    exact = extreme_eigenvalues(objective.shards, need_min=True)
    monkeypatch.setattr(spectrum_module, "DENSE_LIMIT", 5)
    lanczos = extreme_eigenvalues(objective.shards, need_min=True)
    assert lanczos.method == "lanczos" and lanczos.safety_factor > 1
    assert np.all(lanczos.worker_max >= exact.worker_max)
    np.testing.assert_allclose(lanczos.worker_max, exact.worker_max, rtol=1e-5)
    assert exact.global_max <= lanczos.global_max <= exact.global_max * (1 + 1e-5)
    assert exact.global_min * (1 - 1e-5) <= lanczos.global_min <= exact.global_min
