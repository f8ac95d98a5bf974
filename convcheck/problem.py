"""A verification problem: objective on a split dataset, its constants and certified optimum.

``build_problem`` is the one function the command line, the case files and the Python API use
to go from names (``"logistic"``, ``"a9a"``, ``"dirichlet"``) to a :class:`Problem`.
"""

from __future__ import annotations

from dataclasses import dataclass

from convcheck.data import Split, add_intercept, load_dataset, scale_features, split_dataset
from convcheck.objectives import Constants, Objective, make_objective
from convcheck.optimum import Optimum, certify_optimum

#: Default L2 weight per family: logistic is made strongly convex, the others are left as is.
DEFAULT_LAM = {"ridge": 0.0, "logistic": 1e-3, "nonconvex-logistic": 0.0}
#: Default nonconvex weight λ_nc.
DEFAULT_LAM_NC = 0.1


@dataclass(frozen=True)
class Problem:
    """Everything a run and its checks need about the function being minimized.

    Attributes
    ----------
    objective : Objective
    split : Split
    constants : Constants
    optimum : Optimum
    settings : dict
        The arguments that built it (dataset, scaling, split, seed, ...), for reports.
    """

    objective: Objective
    split: Split
    constants: Constants
    optimum: Optimum
    settings: dict

    def describe(self) -> dict:
        """Plain-data description for reports and ``convcheck inspect``."""
        return {
            "settings": self.settings,
            "objective": self.objective.describe(),
            "constants": self.constants.as_dict(),
            "optimum": self.optimum.as_dict(),
        }


def build_problem(
    problem: str,
    dataset: str,
    *,
    workers: int = 10,
    split: str = "iid",
    dirichlet_alpha: float | None = None,
    lam: float | None = None,
    lam_nc: float | None = None,
    scaling: str = "maxabs",
    intercept: bool = False,
    seed: int = 0,
    data_dir: str | None = None,
    dataset_params: dict | None = None,
    cross_check: bool | None = None,
) -> Problem:
    """Load ``dataset``, scale it, split it over ``workers`` and certify the optimum of ``problem``.

    Parameters
    ----------
    problem : {"ridge", "logistic", "nonconvex-logistic"}
    dataset : str
        A name from :data:`convcheck.data.DATASETS`, ``"svmlight:PATH"`` or ``"idx:DIR"``.
    workers, split, dirichlet_alpha, seed
        Passed to :func:`convcheck.data.split_dataset`.
    lam, lam_nc
        Regularization; ``None`` takes :data:`DEFAULT_LAM` / :data:`DEFAULT_LAM_NC`.
    scaling, intercept
        Feature scaling (:func:`convcheck.data.scale_features`) and a constant column.
    data_dir
        Folder of the real datasets, searched first (then ``CONVCHECK_DATA``, then the user
        cache: :mod:`convcheck.data.location`).
    dataset_params
        Extra parameters of the dataset loader (e.g. the synthetic generators' knobs).
    cross_check
        Run the cvxpy cross-check (``None``: when the problem is small enough).
    """
    objective, assignment, settings = build_objective(
        problem, dataset, workers=workers, split=split, dirichlet_alpha=dirichlet_alpha,
        lam=lam, lam_nc=lam_nc, scaling=scaling, intercept=intercept, seed=seed,
        data_dir=data_dir, dataset_params=dataset_params,
    )
    return Problem(
        objective=objective,
        split=assignment,
        constants=objective.constants,
        optimum=certify_optimum(objective, with_cross_check=cross_check),
        settings=settings,
    )


def build_objective(
    problem: str,
    dataset: str,
    *,
    workers: int = 10,
    split: str = "iid",
    dirichlet_alpha: float | None = None,
    lam: float | None = None,
    lam_nc: float | None = None,
    scaling: str = "maxabs",
    intercept: bool = False,
    seed: int = 0,
    data_dir: str | None = None,
    dataset_params: dict | None = None,
) -> tuple[Objective, Split, dict]:
    """The objective of :func:`build_problem` without its optimum: ``(objective, split,
    settings)``. Every input is checked here (the optimum only adds its certificate)."""
    lam = DEFAULT_LAM.get(problem, 0.0) if lam is None else lam
    if lam_nc is None:
        lam_nc = DEFAULT_LAM_NC if problem == "nonconvex-logistic" else 0.0
    data = load_dataset(dataset, data_dir=data_dir, **(dataset_params or {}))
    data = scale_features(data, scaling)
    if intercept:
        data = add_intercept(data)
    assignment = split_dataset(data, workers, split, dirichlet_alpha=dirichlet_alpha, seed=seed)
    objective = make_objective(problem, data, assignment, lam=lam, lam_nc=lam_nc)
    settings = {
        "problem": problem,
        "dataset": dataset,
        "dataset_params": dict(dataset_params or {}),
        "source": data.source,
        "scaling": scaling,
        "intercept": intercept,
        "workers": workers,
        "split": split,
        "dirichlet_alpha": dirichlet_alpha,
        "seed": seed,
        "lam": lam,
        "lam_nc": lam_nc,
    }
    return objective, assignment, settings
