"""`gradcheck verify`'s rows for the convolution's family: the built-in formulas of the
transposed convolution and of max and average pooling against their witnesses.

Per family, drawn problems (:mod:`gradcheck.harness.family_strategies`, float64 and float32)
go through the reference backward against full-Jacobian central differences of the reference
forward, and — for the linear maps — the adjoint identity between the reference forward and
backward; the transposed convolution also against the convolution theorem
(:mod:`gradcheck.judge.transpose_fourier`).  The rows join ``gradcheck verify``'s table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given, target
from hypothesis import seed as hypothesis_seed

from gradcheck.harness.family_strategies import conv_transpose_problems, pool_problems
from gradcheck.harness.search import search_settings
from gradcheck.judge.family_bounds import (
    GRADIENTS,
    arguments,
    reference_backward,
    reference_forward,
)
from gradcheck.judge.family_compare import compare_family_adjoint, compare_family_differences
from gradcheck.judge.result import CheckResult
from gradcheck.judge.transpose_fourier import compare_transpose_fourier


def _gradients(p: Any, family: str) -> dict[str, np.ndarray]:
    return {n: g for n, g in zip(GRADIENTS[family], reference_backward(p, family))
            if g is not None}


def _differences(family: str) -> Callable[[Any], CheckResult]:
    def check(p: Any) -> CheckResult:
        def evaluate(which: str, points: np.ndarray) -> np.ndarray:
            return np.stack([reference_forward(p, family, **{which: point}) for point in points])
        return compare_family_differences(p, family, _gradients(p, family), evaluate)
    return check


def _adjoint(family: str) -> Callable[[Any], CheckResult]:
    def check(p: Any) -> CheckResult:
        bias = {"b": None} if "b" in arguments(p) else {}

        def apply(which: str, v: np.ndarray) -> np.ndarray:
            return reference_forward(p, family, **{which: v}, **bias)

        def transpose(u: np.ndarray) -> dict[str, np.ndarray]:
            values = reference_backward(p, family, dy=u, **bias)
            return {n: g for n, g in zip(GRADIENTS[family], values) if g is not None}
        return compare_family_adjoint(p, family, apply, transpose)
    return check


#: Row name -> (family, checks); each family's problems are drawn once for all its rows.
FAMILY_CHECKS: dict[str, tuple[str, Callable[[Any], CheckResult]]] = {
    "conv_transpose: central differences": ("conv_transpose", _differences("conv_transpose")),
    "conv_transpose: adjoint identity": ("conv_transpose", _adjoint("conv_transpose")),
    "conv_transpose: Fourier identity": ("conv_transpose", compare_transpose_fourier),
    "max_pool: central differences (step < margin/2)": ("max_pool", _differences("max_pool")),
    "avg_pool: central differences": ("avg_pool", _differences("avg_pool")),
    "avg_pool: adjoint identity": ("avg_pool", _adjoint("avg_pool")),
}


def _strategy(family: str, dtypes: tuple[str, ...]) -> Any:
    if family == "conv_transpose":
        return conv_transpose_problems(dtypes=dtypes)
    return pool_problems(kind=family[:3], dtypes=dtypes)


def verify_families(report: Any, examples: int, seed: int,
                    dtypes: tuple[str, ...] = ("float64", "float32")) -> None:
    """Record every family row into ``report`` (a VerifyReport), ``examples`` draws a family."""
    for family in ("conv_transpose", "max_pool", "avg_pool"):
        _search(report, family, examples, seed, dtypes)


def _search(report: Any, family: str, examples: int, seed: int,
            dtypes: tuple[str, ...]) -> None:
    rows = {name: check for name, (f, check) in FAMILY_CHECKS.items() if f == family}

    @hypothesis_seed(seed)
    @search_settings(examples)
    @given(_strategy(family, dtypes))
    def run(problem: Any) -> None:
        worst = 0.0
        for name, check in rows.items():
            result = check(problem)
            report.record(name, result)
            worst = max(worst, result.ratio)
        target(worst, label="worst error/bound")

    run()
