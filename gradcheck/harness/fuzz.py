"""Fuzz a user's layer with hypothesis inside its support claim, down to minimal failures.

One run looks for every distinct bug, not just the first.  It searches in rounds: the first
round draws up to ``request.examples`` configurations and shrinks the first failure to a
minimal configuration; each later round draws more and counts as failing only what no earlier
round explained — a layer-error
reason not seen yet, or a mismatch in an array (y, dx, dw, db) not yet known to be wrong — so
each new failure is shrunk on its own and shrinking one bug never hides another (a bias bug is
shrunk with a bias present, because without one it is not a new failure).  Rounds stop at the
first round that finds nothing new, when the budget is spent, or after ``MAX_FAILURES``.

**The budget.**  In all, the rounds draw at most ``(1 + EXTRA_SHARE)·request.examples``
configurations, and a later round at most as many as the first round checked (drawn plus
shrinking steps) or ``LATER_ROUND_FLOOR`` of the budget, whichever is more: a layer with a
single bug pays about twice what its first failure cost, plus at most a quarter of the budget
when that failure was found at once.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from hypothesis import given, reject, target
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky, Unsatisfiable

from gradcheck.errors import GradientMismatch, LayerError, invalid
from gradcheck.geometry.problem import ConvProblem
from gradcheck.geometry.supports import Supports
from gradcheck.harness.check import NORMWISE_REASON, Inconclusive, check_layer
from gradcheck.harness.corpus import save_regression
from gradcheck.harness.family_check import check_family_layer
from gradcheck.harness.family_strategies import family_problems
from gradcheck.harness.layer import as_layer, describe_layer, supports_of
from gradcheck.harness.outcome import ARRAYS, Failure, FuzzResult
from gradcheck.harness.progress import Progress
from gradcheck.harness.request import Request
from gradcheck.harness.search import search_settings
from gradcheck.harness.strategies import conv_problems

#: After the first failure, later rounds may draw the examples the first round did not use
#: plus this share of ``request.examples`` again, looking for other bugs (module notes).
EXTRA_SHARE = 0.5

#: A later round may always draw at least this share of ``request.examples`` (a first bug
#: found at once must not leave the search for the next one a handful of draws).
LATER_ROUND_FLOOR = 0.25

#: At most this many distinct failures are looked for in one run.
MAX_FAILURES = 6


class _StopFuzzing(BaseException):
    """Ends a hypothesis run at once, without shrinking (hypothesis only catches Exception)."""


Kind = tuple[str, frozenset[str]]


def _kind(error: Exception) -> Kind:
    """``("layer-error", {reason})`` or ``("mismatch", {wrong arrays})``.

    A wrong forward counts as ``{"y"}`` alone: the gradients are checked against differences
    of the layer's own forward, so where y is wrong their discrepancies cannot be told apart
    from its consequences; a gradient bug of its own shows where the forward is right.
    """
    if isinstance(error, LayerError):
        return "layer-error", frozenset({error.reason})
    result = getattr(error, "result", None)
    wrong = set(result.wrong() if result is not None else ())
    if "y" in wrong:
        wrong = {"y"}
    return "mismatch", frozenset(wrong or ("consistency",))


def _size_key(problem: ConvProblem) -> tuple[int, ...]:
    """Smaller is simpler: fewer dims, fewer values, then milder geometry (any family)."""
    s = problem.spec
    w, b = getattr(problem, "w", None), getattr(problem, "b", None)
    geometry = (sum(s.stride) + sum(s.dilation) + sum(map(sum, s.padding))
                + getattr(s, "groups", 1) + sum(getattr(s, "output_padding", ()))
                + getattr(s, "ceil_mode", False))
    return (s.dims, problem.x.size + (0 if w is None else w.size) + problem.dy.size, geometry,
            b is not None)


def _fundamental(failure: Failure) -> tuple[int, int]:
    """Layer errors first, then the forward, then dx, dw, db; last, errors that look like an
    undeclared FFT/Winograd rounding (a claim to fix, not a mistake in the formulas)."""
    if failure.reason == NORMWISE_REASON:
        return 2, 0
    if failure.status == "layer-error":
        return 0, 0
    ranks = [ARRAYS.index(n) for n in failure.wrong if n in ARRAYS]
    return 1, min(ranks, default=len(ARRAYS))


def _distinct(failures: list[Failure]) -> list[Failure]:
    """Drop a mismatch whose named mistake an earlier one already has: the same bug seen in a
    configuration that showed one more array (a bias present, say) is not another bug."""
    kept: list[Failure] = []
    named: set[str] = set()
    for failure in failures:
        diagnoses = failure.explanation.diagnoses if failure.explanation is not None else ()
        name = diagnoses[0].name if diagnoses else None
        if failure.status == "mismatch" and name is not None and name in named:
            continue
        if name is not None:
            named.add(name)
        kept.append(failure)
    return kept


@dataclass
class _Round:
    """What one round of the search saw."""

    drawn: int = 0
    first_at: int | None = None
    seen: list[tuple[ConvProblem, Exception]] = field(default_factory=list)
    reported: tuple[ConvProblem | None, Exception] | None = None


@dataclass
class _Search:
    """The state of one fuzz run across its rounds."""

    layer: Any
    request: Request
    supports: Supports
    progress: Progress
    drawn: int = 0
    shrink_steps: int = 0
    worst: float = 0.0
    inconclusive: int = 0
    unsatisfied: bool = False
    stopped: bool = False
    known_reasons: set[str] = field(default_factory=set)
    known_arrays: set[str] = field(default_factory=set)
    found: list[tuple[ConvProblem | None, Exception, int, list]] = field(default_factory=list)

    def is_new(self, kind: Kind) -> bool:
        status, names = kind
        known = self.known_reasons if status == "layer-error" else self.known_arrays
        return not names <= known

    def learn(self, kind: Kind) -> None:
        status, names = kind
        (self.known_reasons if status == "layer-error" else self.known_arrays).update(names)

    def round(self, number: int, examples: int) -> bool:
        """One hypothesis search; True when it found a new failure."""
        state = _Round()
        request = self.request
        options = replace(request.check_options, rounding=self.supports.rounding)

        family = self.supports.family

        @hypothesis_seed(request.seed + number)
        @search_settings(examples, request.database)
        @given(conv_problems(self.supports) if family == "conv"
               else family_problems(self.supports))
        def run(problem: ConvProblem) -> None:
            if state.first_at is None:
                state.drawn += 1
                self.progress.step(f"{problem.spec.dims}-d x{problem.x.shape}")
            else:
                self.shrink_steps += 1
            try:
                report = (check_layer(self.layer, problem, options) if family == "conv" else
                          check_family_layer(self.layer, cast(Any, problem), options, family))
            except Inconclusive:
                self.inconclusive += 1
                if state.first_at is None:
                    state.drawn -= 1  # not checked: the budget counts judged configurations
                reject()  # too long a low-precision sum to judge: draw another configuration
            except (GradientMismatch, LayerError) as error:
                result = getattr(error, "result", None)
                if result is not None:
                    self.worst = max(self.worst, result.ratio)
                if not self.is_new(_kind(error)):
                    return  # explained by an earlier round: not what this round looks for
                if state.first_at is None:
                    state.first_at = self.drawn + state.drawn
                state.seen.append((problem, error))
                if isinstance(error, LayerError) and error.reason == "slow":
                    state.reported = (problem, error)
                    self.stopped = True
                    raise _StopFuzzing from error  # shrinking a slow layer would take forever
                raise
            self.worst = max(self.worst, report.ratio)
            target(report.ratio, label="error/bound")

        try:
            run()
        except (GradientMismatch, LayerError) as failed:
            state.reported = (state.seen[-1][0] if state.seen else None, failed)
        except _StopFuzzing:
            pass
        except Unsatisfiable:
            self.unsatisfied = True
        except Flaky as flaky:
            first = state.seen[0][0] if state.seen else None
            state.reported = (first, LayerError(
                f"the layer's verdict changed between identical calls: {flaky}",
                "nondeterministic"))
        self.drawn += state.drawn
        if state.reported is None:
            return False
        smallest, error = self._smallest(state)
        self.learn(_kind(error))
        self.found.append((smallest, error, state.first_at or self.drawn, state.seen))
        return True

    @staticmethod
    def _smallest(state: _Round) -> tuple[ConvProblem | None, Exception]:
        """The simplest failing problem of the same kind as the one hypothesis reported.

        Hypothesis shrinks in its own order over the drawn choices; among every failure of
        the same kind it met (generation and shrinking), the one with the fewest values and
        mildest geometry is the clearest to read, so that one is reported.
        """
        assert state.reported is not None
        kind = _kind(state.reported[1])
        same = [item for item in state.seen if _kind(item[1]) == kind]
        if not same:
            return state.reported
        return min(same, key=lambda item: _size_key(item[0]))


def fuzz_layer(layer: Any, request: Request | None = None, /, **options: Any) -> FuzzResult:
    """Fuzz a layer with hypothesis inside its support claim; every distinct failure, shrunk.

    Parameters
    ----------
    layer : Layer
        ``forward(x, w, b, spec)`` and ``backward(dy, x, w, b, spec)``.
    request : Request, optional
        The whole run at once; keywords override it.
    **options
        Fields of :class:`Request`: ``examples``, ``seed``, ``mode``, ``method``,
        ``reference_forward``, ``deadline``, ``database``, ``plot``, ``save_regressions``,
        ``explain``, ``progress``, and ``claim`` — a dict of support-claim keys that narrow the
        layer's own ``supports`` (``claim={"dims": (2,)}``).

    Returns
    -------
    FuzzResult
        ``str(result)`` is the report; ``result.failures`` every distinct failure, most
        fundamental first (layer errors, then the forward, then dx, dw, db).

    Raises
    ------
    InvalidArgument
        An unknown option (named as an option), a bad claim key or value.
    """
    request = Request.create(request, **options)
    layer = as_layer(layer)
    supports = supports_of(layer, **request.claim_dict)
    if request.method == "complex-step":  # its imaginary part carries the derivative: real data
        real = tuple(d for d in supports.dtypes if not d.startswith("complex"))
        if not real:
            raise invalid("method", request.method, "the complex step needs real problems, "
                          f"and the claim draws only {supports.dtypes}")
        supports = replace(supports, dtypes=real)
    progress = Progress(request.examples, "fuzz", enabled=request.progress)
    search = _Search(layer, request, supports, progress)
    budget = request.examples + math.ceil(EXTRA_SHARE * request.examples)
    try:
        found = search.round(0, request.examples)
        first_cost = max(search.drawn + search.shrink_steps,
                         math.ceil(LATER_ROUND_FLOOR * request.examples))
        number = 1
        while found and not search.stopped and number < MAX_FAILURES:
            examples = min(budget - search.drawn, first_cost)
            found = examples >= 1 and search.round(number, examples)
            number += 1
    finally:
        progress.close()
    return _result(layer, request, supports, search)


def _result(layer: Any, request: Request, supports: Supports, search: _Search) -> FuzzResult:
    failures = []
    for problem, error, found_after, seen in search.found:
        failure = Failure("layer-error" if isinstance(error, LayerError) else "mismatch",
                          problem, error, found_after)
        failures.append(_explained(failure, request, seen, supports.family))
    failures = _distinct(sorted(failures, key=_fundamental))
    if request.plot is not None:
        _plot(failures, Path(request.plot))
    name = request.target or describe_layer(layer)
    if request.save_regressions is not None:
        failures = [_saved(f, request, supports, name) for f in failures]
    status = failures[0].status if failures else (
        "inconclusive" if search.unsatisfied else "passed")
    worst = max([search.worst, *(f.ratio for f in failures)])
    return FuzzResult(request=request, layer=name, status=status,
                      examples=search.drawn, shrink_steps=search.shrink_steps,
                      worst_ratio=worst, failures=tuple(failures),
                      inconclusive=search.inconclusive, claim=asdict(supports))


def _plot(failures: list[Failure], directory: Path) -> None:
    """PNG error maps of every explained failure: the first's in ``directory``, the k-th's in
    its subdirectory ``failure-k`` (each failure's dx.png apart)."""
    from gradcheck.explain.explanation import write_error_maps

    for number, failure in enumerate(failures, 1):
        if failure.explanation is None or failure.problem is None:
            continue
        where = directory if number == 1 else directory / f"failure-{number}"
        write_error_maps(failure.explanation, where, failure.problem.describe())


def _explained(failure: Failure, request: Request, seen: list, family: str = "conv") -> Failure:
    """The failure with its explanation (when asked for, or for PNG maps)."""
    if failure.status != "mismatch" or failure.report is None or failure.problem is None:
        return failure
    if not (request.explain or request.plot is not None):
        return failure
    from gradcheck.explain.explanation import explain_search

    ordered = sorted(seen, key=lambda item: _size_key(item[0]))
    if isinstance(failure.problem, ConvProblem):
        explanation = explain_search(failure.problem, failure.report, ordered)
    else:
        from gradcheck.explain.family_mistakes import explain_family_search

        explanation = explain_family_search(failure.problem, family, failure.report, ordered)
    return Failure(failure.status, failure.problem, failure.error, failure.found_after,
                   explanation)


def _saved(failure: Failure, request: Request, supports: Supports, layer: str) -> Failure:
    path = save_failure(failure, request, supports, request.save_regressions or ".", layer)
    if path is None:
        return failure
    return Failure(failure.status, failure.problem, failure.error, failure.found_after,
                   failure.explanation, str(path))


def save_failure(failure: Failure, request: Request, supports: Supports,
                 directory: str | os.PathLike[str], layer: str | None = None) -> Path | None:
    """Save a failure's minimal problem as a regression case; return its json path.

    Returns None when there is no problem to save (a layer error before any problem was
    drawn).  The meta holds the layer (``layer``: the target, or the user's object as
    ``module:name``), the status, the request (its command reproduces the run), the error's
    class, reason and message, and the support claim.
    """
    if failure.problem is None:
        return None
    meta = {
        "target": request.target or layer,
        "status": failure.status,
        "seed": request.seed,
        "examples": request.examples,
        "command": request.command(),
        "error_type": type(failure.error).__name__,
        "reason": failure.reason,
        "wrong": list(failure.wrong),
        "error": str(failure.error),
        "claim": asdict(supports),
    }
    return save_regression(failure.problem, directory, meta=meta)
