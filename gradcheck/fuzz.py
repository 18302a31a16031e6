"""Check a user's layer on one problem, or fuzz it with hypothesis down to a minimal failure.

``check_layer`` runs, in order: the layer's forward against the reference forward (a wrong
forward makes a self-consistent but wrong layer), determinism, the layer's backward against
finite differences of the layer's own forward, and the adjoint identity between the two.
``fuzz_layer`` draws problems inside the layer's support claim and lets hypothesis shrink the
first failure to the smallest configuration that still fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings, target
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky

from gradcheck.check import analytic_bounds, compare_adjoint, compare_finite_differences
from gradcheck.conv import conv_forward
from gradcheck.errors import GradientMismatch, LayerError
from gradcheck.guard import DEFAULT_DEADLINE, call_backward, call_forward
from gradcheck.layer import as_layer, supports_of
from gradcheck.problem import ConvProblem
from gradcheck.progress import Progress
from gradcheck.result import CheckResult, compare_arrays
from gradcheck.strategies import conv_problems
from gradcheck.tolerance import gamma


class _StopFuzzing(BaseException):
    """Ends a hypothesis run at once, without shrinking (hypothesis only catches Exception)."""


@dataclass(frozen=True)
class LayerReport:
    """Every check run on one problem; ``passed`` when all of them passed."""

    problem: ConvProblem
    results: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def ratio(self) -> float:
        return max((r.ratio for r in self.results), default=0.0)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def summary(self) -> str:
        lines = [f"problem: {self.problem.describe()}"]
        lines += [r.summary() for r in self.failures or self.results]
        return "\n".join(lines)


def compare_forward(problem: ConvProblem, y: np.ndarray) -> CheckResult:
    """The layer's y against the reference forward, within both sides' rounding bounds.

    Each y entry is ``b + Σ w·x`` over ``n = C/G·∏K`` products: ``γ_{n+1}·(conv(|x|, |w|) + |b|)``
    in the layer's dtype, plus the same in float64 for the reference.
    """
    p = problem
    wide = np.result_type(p.dtype, np.float64)
    x, w = p.x.astype(wide), p.w.astype(wide)
    b = None if p.b is None else p.b.astype(wide)
    reference = conv_forward(x, w, b, p.spec)
    magnitude = conv_forward(np.abs(x), np.abs(w), None if b is None else np.abs(b), p.spec)
    n = p.w.shape[1] * int(np.prod(p.w.shape[2:])) + 1
    bound = (gamma(n, p.dtype) + gamma(n, np.float64)) * magnitude
    return CheckResult(
        "forward", (compare_arrays("y", "reference forward", y, reference, bound),),
        "γ_n·(conv(|x|, |w|) + |b|) per output, layer dtype + float64 reference",
        p.describe(),
    )


def _determinism(problem: ConvProblem, first: tuple, second: tuple) -> CheckResult:
    """Two backward calls on the same inputs agree within twice the rounding bound.

    Each is within the bound of the exact value, so a correct layer's two answers are within
    twice it, whatever order a parallel reduction takes; noise beyond that is nondeterminism.
    """
    bounds = analytic_bounds(problem)
    comparisons = tuple(
        compare_arrays(name, "second call", a, b, 2 * bound)
        for name, a, b, bound in zip(("dx", "dw", "db"), first, second, bounds)
        if a is not None
    )
    return CheckResult("determinism", comparisons, "twice the analytic bound", problem.describe())


def _numeric_dtype(layer: Any, problem: ConvProblem, method: str) -> np.dtype:
    """float64 (complex128 for the complex step) where the layer accepts it, else its own dtype."""
    accepted = supports_of(layer).dtypes
    complex_wanted = method == "complex-step" or problem.dtype.kind == "c"
    if complex_wanted and "complex128" in accepted:
        return np.dtype(np.complex128)
    if problem.dtype.kind == "c":
        return problem.dtype
    return np.dtype(np.float64) if "float64" in accepted else problem.dtype


def check_layer(
    layer: Any,
    problem: ConvProblem,
    *,
    method: str = "central",
    reference_forward: bool = True,
    deadline: float | None = DEFAULT_DEADLINE,
    seed: int = 0,
) -> LayerReport:
    """Check a layer's backward on one problem; raise on the first failed check.

    Parameters
    ----------
    layer : Layer
        ``forward(x, w, b, spec)`` and ``backward(dy, x, w, b, spec)``.
    problem : ConvProblem
    method : finite-difference method (see :mod:`gradcheck.numeric`)
    reference_forward : bool
        Compare the layer's forward with the reference convolution (turn off for layers that
        are deliberately not the standard convolution).
    deadline : float or None
        Seconds allowed per forward or backward call.
    seed : int
        Seed of the adjoint identity's random vectors.

    Raises
    ------
    GradientMismatch
        A check failed; ``.result`` is the :class:`LayerReport`.
    LayerError
        The layer misbehaved (``.reason`` says how); no gradient verdict.
    """
    __tracebackhide__ = True
    layer = as_layer(layer)
    p = problem
    y = call_forward(layer, p, deadline=deadline)
    gradients = call_backward(layer, p, deadline=deadline)
    again = call_backward(layer, p, deadline=deadline)
    results: list[CheckResult] = []
    determinism = _determinism(p, gradients, again)
    if not determinism.passed:
        raise LayerError(
            "the layer's backward is nondeterministic: two calls on the same inputs differ "
            f"beyond rounding\n{determinism.summary()}", "nondeterministic",
        )
    if reference_forward:
        results.append(compare_forward(p, y))

    def forward(x, w, b, spec):
        return call_forward(layer, p, x=x, w=w, b=b, deadline=deadline)

    def backward(dy, x, w, b, spec):
        return call_backward(layer, p, dy=dy, b=b, deadline=deadline)

    results.append(compare_finite_differences(
        p, backward, forward, method=method, gradients=gradients,
        numeric_dtype=_numeric_dtype(layer, p, method),
    ))
    results.append(compare_adjoint(p, backward, forward, seed=seed))
    report = LayerReport(p, tuple(results))
    if not report.passed:
        raise GradientMismatch(report.summary(), report)
    return report


def _size_key(problem: ConvProblem) -> tuple[int, ...]:
    """Smaller is simpler: fewer dims, fewer values, then milder geometry."""
    s = problem.spec
    geometry = sum(s.stride) + sum(s.dilation) + sum(map(sum, s.padding)) + s.groups
    return (s.dims, problem.x.size + problem.w.size + problem.dy.size, geometry,
            problem.b is not None)


def _smallest(
    reported: tuple[ConvProblem, Exception], seen: list[tuple[ConvProblem, Exception]]
) -> tuple[ConvProblem, Exception]:
    """The simplest failing problem of the same kind as the one hypothesis reported.

    Hypothesis shrinks in its own order over the drawn choices; among every failure it met
    (generation and shrinking), the one with the fewest values and mildest geometry is the
    clearest to read, so that one is reported.
    """
    kind = type(reported[1])
    candidates = [item for item in seen if type(item[1]) is kind] or [reported]
    return min(candidates, key=lambda item: _size_key(item[0]))


@dataclass(frozen=True)
class FuzzResult:
    """The outcome of fuzzing a layer.

    Attributes
    ----------
    status : {"passed", "mismatch", "layer-error"}
    examples : int
        Configurations checked (including those hypothesis tried while shrinking).
    seed : int
    problem : ConvProblem or None
        The minimal failing configuration.
    error : GradientMismatch or LayerError or None
    """

    status: str
    examples: int
    seed: int
    problem: ConvProblem | None = None
    error: Exception | None = None
    worst_ratio: float = 0.0
    claim: dict[str, Any] = field(default_factory=dict)
    max_examples: int = 0

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def fuzz_layer(
    layer: Any,
    *,
    max_examples: int = 100,
    seed: int = 0,
    method: str = "central",
    reference_forward: bool = True,
    deadline: float | None = DEFAULT_DEADLINE,
    show_progress: bool = False,
    save_regressions: str | Path | None = None,
    **claim: Any,
) -> FuzzResult:
    """Fuzz a layer with hypothesis inside its support claim; shrink the first failure.

    Parameters
    ----------
    layer : Layer
    max_examples : int
        Configurations to draw before declaring a pass.
    seed : int
        Hypothesis seed: the same seed draws the same configurations.
    method, reference_forward, deadline
        As for :func:`check_layer`.
    show_progress : bool
        A progress line on stderr.
    save_regressions : path, optional
        Directory where the minimal failing case is saved as a regression corpus entry
        (see :mod:`gradcheck.corpus`).
    **claim
        Supports keys that narrow the layer's own claim (``dims=(2,)``, ``max_stride=1`` …).

    Returns
    -------
    FuzzResult
        With the minimal failing problem and its error when a check failed.
    """
    layer = as_layer(layer)
    supports = supports_of(layer, **claim)
    state: dict[str, Any] = {"count": 0, "failure": None, "worst": 0.0, "failures": []}
    progress = Progress(max_examples, "fuzz", enabled=show_progress)

    @hypothesis_seed(seed)
    @settings(max_examples=max_examples, database=None, deadline=None, derandomize=False,
              report_multiple_bugs=False, suppress_health_check=list(HealthCheck))
    @given(conv_problems(supports))
    def run(problem: ConvProblem) -> None:
        state["count"] += 1
        progress.step(f"{problem.spec.dims}-d x{problem.x.shape}")
        try:
            report = check_layer(layer, problem, method=method,
                                 reference_forward=reference_forward, deadline=deadline)
        except (GradientMismatch, LayerError) as error:
            state["failure"] = (problem, error)
            state["failures"].append((problem, error))
            if isinstance(error, LayerError) and error.reason == "slow":
                raise _StopFuzzing from error  # shrinking a slow layer would take forever
            raise
        state["worst"] = max(state["worst"], report.ratio)
        target(report.ratio, label="error/bound")

    try:
        run()
    except (GradientMismatch, LayerError, _StopFuzzing):
        pass
    except Flaky as error:
        problem = state["failure"][0] if state["failure"] else None
        flaky = LayerError(f"the layer's verdict changed between identical calls: {error}",
                           "nondeterministic")
        state["failure"] = (problem, flaky)
    finally:
        progress.close()
    base = {"examples": state["count"], "seed": seed, "worst_ratio": state["worst"],
            "max_examples": max_examples,
            "claim": vars(supports).copy()}
    if state["failure"] is None:
        return FuzzResult("passed", **base)
    problem, error = _smallest(state["failure"], state["failures"])
    status = "layer-error" if isinstance(error, LayerError) else "mismatch"
    result = FuzzResult(status, problem=problem, error=error, **base)
    if save_regressions is not None:
        from gradcheck.corpus import save_failure

        save_failure(result, save_regressions)
    return result
