"""PEPit [PEP], an independent package, agrees with our certificates.

One step of GD, and of compressed GD without memory (an inexact gradient with relative error
``ε = √(1 − δ)``, one worker), from ``‖θ⁰ − θ*‖² ≤ 1`` on ``S(μ, L)``: PEPit's worst-case
``‖θ¹ − θ*‖²`` is ``ρ²`` of our sector certificate (a one-state Lyapunov function ``p‖x‖²``;
for two points the interpolation conditions reduce to the sector constraint), to ``1e-6``. Where
PEPit's worst case is ``≥ 1``, the sector LMI certifies no rate. The interpolation model (function
values, two rounds) may certify a smaller asymptotic rate than the one-step contraction of the
distance, never below the rate of the explicit instance it reports.
"""

from __future__ import annotations

import math

import pytest

from convcheck.theory.certified import certify

PEPit = pytest.importorskip("PEPit")
TOLERANCE = 1e-6


def pep_one_step(alpha: float, mu: float, L: float, epsilon: float) -> float:
    from PEPit.functions import SmoothStronglyConvexFunction
    from PEPit.primitive_steps import inexact_gradient_step

    problem = PEPit.PEP()
    f = problem.declare_function(SmoothStronglyConvexFunction, mu=mu, L=L)
    optimum = f.stationary_point()
    x0 = problem.set_initial_point()
    problem.set_initial_condition((x0 - optimum) ** 2 <= 1)
    if epsilon == 0:
        x1 = x0 - alpha * f.gradient(x0)
    else:
        x1, _, _ = inexact_gradient_step(x0, f, gamma=alpha, epsilon=epsilon, notion="relative")
    problem.set_performance_metric((x1 - optimum) ** 2)
    return float(problem.solve(verbose=0, solver="CLARABEL"))


CASES = [
    (1.0, 0.1, 1.0, 1.0),
    (1.5, 0.1, 1.0, 1.0),
    (0.4, 0.02, 2.0, 1.0),
    (1.0, 0.3, 1.0, 0.9),
    (0.5, 0.5, 1.0, 0.6),
    (0.5, 0.2, 1.0, 0.5),  # PEPit ≥ 1: no rate
    (0.3, 0.05, 1.0, 0.1),  # PEPit ≥ 1: no rate
]


@pytest.mark.parametrize(("alpha", "mu", "L", "delta"), CASES)
def test_pepit_agrees_with_the_certificate(alpha, mu, L, delta):
    tau = pep_one_step(alpha, mu, L, math.sqrt(1.0 - delta))
    common = {"L": L, "mu": mu, "alpha": alpha, "tol": 1e-8}
    if delta == 1.0:
        name = "gd"
    else:
        name = "compressed-gd"
        common.update(delta=delta, sparsifier=False)
    certificate = certify(name, model="sector", lower_bound=False, **common)
    if tau < 1.0:
        assert certificate.certified
        assert abs(certificate.rho**2 - tau) <= TOLERANCE
    else:
        assert not certificate.certified
    sharp = certify(name, model="interpolation", **common)
    if sharp.certified:
        assert sharp.rho_low - 1e-9 <= sharp.rho <= (certificate.rho or 1.0) + 1e-6
