"""Fuzz a user's layer with hypothesis inside its support claim, down to minimal failures."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, reject, settings, target
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky, Unsatisfiable

from gradcheck.errors import GradientMismatch, LayerError, invalid
from gradcheck.geometry.problem import ConvProblem
from gradcheck.harness.check import MODES, Inconclusive, check_layer
from gradcheck.harness.corpus import save_regression
from gradcheck.harness.guard import DEFAULT_DEADLINE
from gradcheck.harness.layer import as_layer, supports_of
from gradcheck.harness.progress import Progress
from gradcheck.harness.strategies import conv_problems


class _StopFuzzing(BaseException):
    """Ends a hypothesis run at once, without shrinking (hypothesis only catches Exception)."""


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
    status : {"passed", "mismatch", "layer-error", "inconclusive"}
        ``"inconclusive"``: every configuration drawn was too long a low-precision sum to
        judge (see :class:`Inconclusive`); ``inconclusive`` counts those skipped.
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
    explanation: Any = None
    inconclusive: int = 0

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def fuzz_layer(
    layer: Any,
    *,
    max_examples: int = 100,
    seed: int = 0,
    mode: str = "auto",
    method: str = "central",
    reference_forward: bool = True,
    deadline: float | None = DEFAULT_DEADLINE,
    show_progress: bool = False,
    save_regressions: str | Path | None = None,
    explain: bool = True,
    plot: str | Path | None = None,
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
    mode : {"auto", "full", "fast"}
        As for :func:`check_layer`; ``"auto"`` picks per problem (full when small).
    method, reference_forward, deadline
        As for :func:`check_layer`.
    show_progress : bool
        A progress line on stderr.
    explain : bool
        Explain a mismatch (:mod:`gradcheck.explain.explanation`): ``result.explanation``.
    plot : path, optional
        Directory for one PNG error map per wrong gradient (needs the ``plot`` extra).
    save_regressions : path, optional
        Directory where the minimal failing case is saved as a regression corpus entry
        (see :mod:`gradcheck.harness.corpus`).
    **claim
        Supports keys that narrow the layer's own claim (``dims=(2,)``, ``max_stride=1`` …).

    Returns
    -------
    FuzzResult
        With the minimal failing problem and its error when a check failed.
    """
    layer = as_layer(layer)
    if mode not in MODES:
        raise invalid("mode", mode, f"expected one of {MODES}")
    supports = supports_of(layer, **claim)
    state: dict[str, Any] = {"count": 0, "failure": None, "worst": 0.0, "failures": [],
                             "inconclusive": 0}
    progress = Progress(max_examples, "fuzz", enabled=show_progress)

    @hypothesis_seed(seed)
    @settings(max_examples=max_examples, database=None, deadline=None, derandomize=False,
              report_multiple_bugs=False, suppress_health_check=list(HealthCheck))
    @given(conv_problems(supports))
    def run(problem: ConvProblem) -> None:
        state["count"] += 1
        progress.step(f"{problem.spec.dims}-d x{problem.x.shape}")
        try:
            report = check_layer(layer, problem, mode=mode, method=method,
                                 reference_forward=reference_forward, deadline=deadline,
                                 explain=False, rounding=supports.rounding)
        except Inconclusive:
            state["inconclusive"] += 1
            reject()  # too long a low-precision sum to judge: draw another configuration
        except (GradientMismatch, LayerError) as error:
            state["failure"] = (problem, error)
            state["failures"].append((problem, error))
            if isinstance(error, LayerError) and error.reason == "slow":
                raise _StopFuzzing from error  # shrinking a slow layer would take forever
            raise
        state["worst"] = max(state["worst"], report.ratio)
        target(report.ratio, label="error/bound")

    unsatisfied = False
    try:
        run()
    except (GradientMismatch, LayerError, _StopFuzzing):
        pass
    except Unsatisfiable:
        unsatisfied = True
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
    base["inconclusive"] = state["inconclusive"]
    if state["failure"] is None:
        return FuzzResult("inconclusive" if unsatisfied else "passed", **base)
    problem, error = _smallest(state["failure"], state["failures"])
    status = "layer-error" if isinstance(error, LayerError) else "mismatch"
    explanation = None
    if status == "mismatch" and (explain or plot is not None):
        from gradcheck.explain.explanation import explain_search, write_error_maps

        seen = sorted(state["failures"], key=lambda item: _size_key(item[0]))
        explanation = explain_search(problem, error.result, seen)
        if plot is not None:
            write_error_maps(explanation, plot, problem.describe())
    result = FuzzResult(status, problem=problem, error=error, explanation=explanation, **base)
    if save_regressions is not None:
        save_failure(result, save_regressions)
    return result


def save_failure(
    result: FuzzResult,
    directory: str | os.PathLike[str],
    *,
    target: str | None = None,
) -> Path | None:
    """Save a failed fuzz run's minimal problem as a regression case; return its json path.

    Returns None when the run passed or found no problem to save (a layer error before any
    problem was drawn).  The meta holds the status, seed, number of examples, the error's
    class, reason and message, the support claim and ``target`` (how to find the layer, e.g.
    ``"examples/mistakes.py:sign_flipped"``).
    """
    if result.passed or result.problem is None:
        return None
    error = result.error
    meta = {
        "target": target,
        "status": result.status,
        "seed": result.seed,
        "examples": result.examples,
        "error_type": None if error is None else type(error).__name__,
        "reason": getattr(error, "reason", None),
        "error": None if error is None else str(error),
        "claim": result.claim,
    }
    return save_regression(result.problem, directory, meta=meta)
