"""Check a user's layer on one problem, or fuzz it with hypothesis down to a minimal failure.

``check_layer`` runs, in order: the layer's forward against the reference forward (a wrong
forward makes a self-consistent but wrong layer), determinism, the layer's backward against
finite differences of the layer's own forward — the full Jacobian (``mode="full"``) or
directional derivatives along random directions (``mode="fast"``,
:mod:`gradcheck.judge.directional`)
— and the adjoint identity between the two.  ``fuzz_layer`` draws problems inside the layer's
support claim and lets hypothesis shrink the first failure to the smallest configuration that
still fails; with ``mode="auto"`` each problem gets the full Jacobian when it is small and
directional derivatives when it is large.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck.errors import GradcheckError, GradientMismatch, LayerError, invalid
from gradcheck.geometry.family_problem import ConvTransposeProblem, PoolProblem
from gradcheck.geometry.problem import ConvProblem
from gradcheck.harness.corpus import case_paths, list_regressions, load_regression
from gradcheck.harness.family_check import check_family_layer
from gradcheck.harness.guard import call_backward, call_forward
from gradcheck.harness.layer import as_layer, describe_layer, supports_of
from gradcheck.harness.outcome import problem_text
from gradcheck.harness.request import AUTO_FULL_MAX, CheckOptions  # noqa: F401 (re-exported)
from gradcheck.harness.request import resolve_mode as choose_mode
from gradcheck.judge.bounds import analytic_bounds, perturbation_count, refuse_full_jacobian
from gradcheck.judge.compare import (
    compare_adjoint,
    compare_finite_differences,
    compare_forward,
)
from gradcheck.judge.directional import compare_directional
from gradcheck.judge.result import CheckResult, LayerReport, compare_arrays


def resolve_mode(mode: str, problem: ConvProblem) -> str:
    """``"full"`` or ``"fast"``: the mode ``check_layer`` uses for ``mode`` on ``problem``."""
    return choose_mode(mode, perturbation_count(problem))


class Inconclusive(GradcheckError):
    """A check passed only because its rounding bound is too wide to see a formula mistake.

    Attributes
    ----------
    gradient : str
    resolution : float
        Median bound / |gradient entry|.
    """

    def __init__(self, message: str, gradient: str, resolution: float) -> None:
        super().__init__(message)
        self.gradient, self.resolution = gradient, resolution


def _determinism(problem: ConvProblem, first: tuple, second: tuple,
                 rounding: str = "entrywise") -> CheckResult:
    """Two backward calls on the same inputs agree within twice the rounding bound.

    Each is within the bound of the exact value, so a correct layer's two answers are within
    twice it, whatever order a parallel reduction takes; noise beyond that is nondeterminism.
    (Identical answers need no bound, the common case.)
    """
    identical = all(a is None or np.array_equal(a, b) for a, b in zip(first, second))
    bounds = analytic_bounds(problem, rounding=rounding)
    comparisons = tuple(
        compare_arrays(name, "second call", a, b, np.zeros(()) if identical else 2 * bound)
        for name, a, b, bound in zip(("dx", "dw", "db"), first, second, bounds)
        if a is not None and bound is not None
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
    problem: ConvProblem | ConvTransposeProblem | PoolProblem,
    options: CheckOptions | None = None,
    **changes: Any,
) -> LayerReport:
    """Check a layer's backward on one problem; raise on the first failed check.

    Parameters
    ----------
    layer : Layer
        ``forward(x, w, b, spec)`` and ``backward(dy, x, w, b, spec)``.
    problem : ConvProblem, ConvTransposeProblem or PoolProblem
        A family problem goes to :func:`gradcheck.harness.family_check.check_family_layer`
        (the layer's ``supports["family"]`` says max or average pooling).
    options : CheckOptions, optional
        All of the following at once; keywords override it.
    mode : {"auto", "full", "fast"}
        ``"full"``: the whole Jacobian by finite differences, every entry of dx, dw, db
        against its own bound (refused above ``check.FULL_JACOBIAN_MAX`` perturbations).
        ``"fast"``: directional derivatives along Gaussian directions
        (:mod:`gradcheck.judge.directional`, ``DEFAULT_DIRECTIONS`` per argument group, besides the
        adjoint identity's own random projection): a formula mistake passes with probability
        essentially zero; rounding-sized errors need to be ~√n times larger than in full mode.
        ``"auto"``: full up to ``AUTO_FULL_MAX`` perturbations (x.size + w.size + b.size),
        fast above.
    method : finite-difference method (see :mod:`gradcheck.witnesses.differences`)
    reference_forward : bool
        Compare the layer's forward with the reference convolution (turn off for layers that
        are deliberately not the standard convolution).  Finite differences use the
        convolution's structure — x's points folded into the batch axis, entries with
        disjoint outputs perturbed together — only when it is on (the forward has then been
        shown to be that convolution); off, one forward call per perturbation.
    deadline : float or None
        Seconds allowed per forward or backward call on the problem's batch; a call on a
        folded batch B times as large is allowed B times as long.
    seed : int
        Seed of the adjoint identity's random vectors and of fast mode's directions.
    explain : bool
        On failure, lead the message with the explanation
        (:mod:`gradcheck.explain.explanation`): the
        odd witness out and the classic mistake matched.

    Raises
    ------
    GradientMismatch
        A check failed; ``.result`` is the :class:`LayerReport`.
    LayerError
        The layer misbehaved (``.reason`` says how); no gradient verdict.
    InvalidArgument
        ``mode="full"`` on a problem with more than ``check.FULL_JACOBIAN_MAX``
        perturbations.
    """
    __tracebackhide__ = True
    options = CheckOptions.create(options, **changes)
    layer = as_layer(layer)
    if not isinstance(problem, ConvProblem):  # the family: ConvTransposeProblem, PoolProblem
        return check_family_layer(layer, problem, options)
    if options.rounding is None:  # the layer's own claim
        options = replace(options, rounding=supports_of(layer).rounding)
    _check_method_fits(layer, problem, options.method)
    formula = _formula_problem(layer, problem)
    try:
        report = _run_checks(layer, problem, options)
        if report.passed and formula is not None:
            # The formulas in float64 (exact cast of the same data): low-precision bounds grow
            # like n·u while a gradient grows like √n, so on long sums only float64 can see a
            # mistake.
            wide = _run_checks(layer, formula, options)
            if not wide.passed:
                report = wide
    except LayerError as error:
        note = _raise_if_normwise(layer, problem, options, error)
        if note:
            raise LayerError(f"{error}\n{note}", error.reason) from error
        raise
    if not report.passed:
        note = _raise_if_normwise(layer, problem, options, report)
        explanation = None
        if options.explain:
            from gradcheck.explain.explanation import explain_failure

            explanation = explain_failure(report.problem, report)
        message = problem_text(describe_layer(layer), report, explanation, note)
        raise GradientMismatch(message, report, note)  # the fuzz report renders the note too
    if formula is None:
        _require_resolution(report, options.rounding or "entrywise")
    return report


#: A check whose rounding bound is this fraction of the typical gradient entry or more cannot
#: see formula mistakes (which change entries by O(1) relative): it is inconclusive.
RESOLUTION_LIMIT = 0.25


def _formula_problem(layer: Any, problem: ConvProblem) -> ConvProblem | None:
    """The problem cast exactly to float64, when it is lower precision and the layer takes it."""
    if problem.dtype.kind != "f" or problem.dtype.itemsize >= 8:
        return None
    if "float64" not in supports_of(layer).dtypes:
        return None
    p = problem
    return ConvProblem(p.x.astype(np.float64), p.w.astype(np.float64),
                       None if p.b is None else p.b.astype(np.float64),
                       p.dy.astype(np.float64), p.spec)


def _require_resolution(report: LayerReport, rounding: str = "entrywise") -> None:
    """Raise Inconclusive when the bounds of a passing low-precision check are vacuous."""
    p = report.problem
    if p.dtype.itemsize >= 8 and p.dtype.kind == "f":
        return
    from gradcheck.formulas.conv import conv_backward
    from gradcheck.judge.bounds import analytic_bounds, resolution

    wide = np.result_type(p.dtype, np.float64)
    reference = conv_backward(p.dy.astype(wide), p.x.astype(wide), p.w.astype(wide),
                              None if p.b is None else p.b.astype(wide), p.spec)
    for name, bound, right in zip(("dx", "dw", "db"), analytic_bounds(p, rounding=rounding),
                                  reference):
        if bound is None or right is None:
            continue
        seen = resolution(bound, right)
        if seen >= RESOLUTION_LIMIT:
            raise Inconclusive(
                f"{name}: in {p.dtype} the rounding bound of this problem is {seen:.2g} of a "
                "typical entry, so a formula mistake could pass; check a smaller problem, or "
                "let the layer accept float64 (supports dtypes) so the formulas are checked "
                f"there ({p.describe()})", name, seen)


def _check_method_fits(layer: Any, problem: ConvProblem, method: str) -> None:
    if method != "complex-step":
        return
    if problem.dtype.kind == "c":
        raise invalid("method", method, "the complex step needs a real problem: its imaginary "
                      "part carries the derivative")
    if "complex128" not in supports_of(layer).dtypes:
        raise invalid("method", method, "the complex step evaluates the layer at complex "
                      "points; the layer does not claim complex128 (supports dtypes)")


#: Layer-error reasons that a geometry the layer does not handle typically causes.
_GEOMETRY_REASONS = ("raised", "wrong-shape", "wrong-count", "returned-none", "wrong-type")


def _claim_hint(layer: Any, problem: ConvProblem) -> str:
    """For a layer with no ``supports``: the keys (and flags) that would exclude this problem.

    A layer that declares nothing is fuzzed over everything gradcheck can draw; when it then
    breaks, the likeliest cause is a geometry it never meant to handle.
    """
    s = problem.spec
    others = tuple(d for d in (1, 2, 3) if d != s.dims)
    keys: list[tuple[str, str]] = [(f"'dims': {others}", f"--dims {','.join(map(str, others))}")]
    if max(s.stride) > 1:
        keys.append(("'max_stride': 1", "--max-stride 1"))
    if max(s.dilation) > 1:
        keys.append(("'dilation': False", "--no-dilation"))
    if s.groups > 1:
        keys.append(("'groups': False", "--no-groups"))
    if any(lo != hi for lo, hi in s.padding):
        keys.append(("'padding': 'symmetric'", "--padding symmetric"))
    if problem.b is not None:
        keys.append(("'bias': False", "--no-bias"))
    claim = ", ".join(k for k, _ in keys)
    flags = " ".join(f for _, f in keys)
    return (f"\nhint: the layer declares no `supports`, so every geometry is drawn (dims 1-3, "
            f"stride up to 3, dilation, groups, asymmetric padding, bias; float64). If it does "
            f"not handle this configuration, declare what it handles on the layer, e.g. "
            f"supports={{{claim}}}, or pass {flags} (claim={{...}} in Python).")


def _run_checks(layer: Any, problem: ConvProblem, options: CheckOptions) -> LayerReport:
    """Forward, determinism, finite differences (full or fast) and adjoint on one problem."""
    try:
        return _checks(layer, problem, options)
    except LayerError as error:
        if error.reason in _GEOMETRY_REASONS and getattr(layer, "supports", None) is None:
            raise LayerError(f"{error}{_claim_hint(layer, problem)}", error.reason) from None
        raise


def _checks(layer: Any, problem: ConvProblem, options: CheckOptions) -> LayerReport:
    p = problem
    method, deadline, seed = options.method, options.deadline, options.seed
    reference_forward, rounding = options.reference_forward, options.rounding or "entrywise"
    mode = resolve_mode(options.mode, p)
    if mode == "full":
        refuse_full_jacobian(p)  # before the layer is called
    y = call_forward(layer, p, deadline=deadline)
    gradients = call_backward(layer, p, deadline=deadline)
    again = call_backward(layer, p, deadline=deadline)
    results: list[CheckResult] = []
    determinism = _determinism(p, gradients, again, rounding)
    if not determinism.passed:
        raise LayerError(
            "the layer's backward is nondeterministic: two calls on the same inputs differ "
            f"beyond rounding\n{determinism.summary()}", "nondeterministic",
        )
    if reference_forward:
        results.append(compare_forward(p, y, rounding))

    def forward(x, w, b, spec):
        scale = max(1.0, len(x) / len(p.x))
        allowed = None if deadline is None else deadline * scale
        return call_forward(layer, p, x=x, w=w, b=b, deadline=allowed)

    def backward(dy, x, w, b, spec):
        return call_backward(layer, p, dy=dy, b=b, deadline=deadline)

    numeric_dtype = _numeric_dtype(layer, p, method)
    if mode == "full":
        results.append(compare_finite_differences(
            p, backward, forward, method=method, gradients=gradients, y=y,
            assume_conv=reference_forward, numeric_dtype=numeric_dtype, rounding=rounding))
    else:
        results.append(compare_directional(
            p, backward, forward, seed=seed, method=method, gradients=gradients, y=y,
            assume_conv=reference_forward, numeric_dtype=numeric_dtype, rounding=rounding))
    results.append(compare_adjoint(p, backward, forward, seed=seed, rounding=rounding))
    return LayerReport(p, tuple(results), gradients=gradients, y=y, mode=mode)


# --------------------------------------------------------------------------- undeclared normwise
# A layer computed by FFT or Winograd that did not say so fails the entrywise bounds on entries
# whose exact value is (near) 0.  That is not a gradient mistake, so it must not be reported as
# one; passing it silently would hide that the layer's claim is wrong.  It is reported as a
# LayerError subclass: like a wrong dtype claim, the layer did not do what it claimed, the message
# says what to declare, and every face already renders a LayerError (never as a MISMATCH).

#: The reason of :class:`UndeclaredRounding`.
NORMWISE_REASON = "normwise-rounding"

#: LayerError reasons that come from a rounding bound (the folded-batch check, determinism).
_BOUND_REASONS = ("batch-dependent", "nondeterministic")


class UndeclaredRounding(LayerError):
    """The layer fails under the entrywise model it claims and passes under the normwise one.

    Attributes
    ----------
    reason : str
        ``"normwise-rounding"``.
    report : LayerReport
        The passing checks under the normwise model.
    entrywise : LayerReport or LayerError
        What failed under the entrywise model.
    """

    def __init__(self, message: str, report: LayerReport,
                 entrywise: LayerReport | LayerError) -> None:
        super().__init__(message, NORMWISE_REASON)
        self.report, self.entrywise = report, entrywise


def _raise_if_normwise(layer: Any, problem: ConvProblem, options: CheckOptions,
                       failure: LayerReport | LayerError) -> str | None:
    """Rerun a failed entrywise check under the normwise model; raise UndeclaredRounding if the
    layer then passes (the problem and, when there is one, its float64 cast) and the normwise
    bound can still see a formula mistake there.

    Returns a note for the entrywise verdict when the layer passes under normwise but that
    bound is too wide to tell rounding from a mistake (short float16 sums): the verdict stays
    the entrywise one the layer claims, with the note saying so — never "not a mistake".
    """
    if options.rounding != "entrywise" or options.method == "complex-step":
        return None
    if isinstance(failure, LayerError) and failure.reason not in _BOUND_REASONS:
        return None
    normwise = replace(options, rounding="normwise")
    reports = []
    for candidate in (problem, _formula_problem(layer, problem)):
        if candidate is None:
            continue
        try:
            reports.append(_run_checks(layer, candidate, normwise))
        except GradcheckError:
            return None
        if not reports[-1].passed:
            return None
    # A pass under the normwise bound absolves the layer only where that bound can still see a
    # formula mistake; where it is a quarter of a typical entry or more (short float16 sums)
    # the entrywise verdict stands, with a note.
    try:
        _require_resolution(reports[-1], "normwise")
    except Inconclusive as wide:
        return (f"note: the errors are within the normwise (FFT/Winograd) bound, but in "
                f"{reports[-1].problem.dtype} that bound is {wide.resolution:.2g} of a typical "
                f"{wide.gradient} entry and cannot tell rounding from a mistake; if the layer "
                "computes by FFT or Winograd, check it in float32 or float64")
    if isinstance(failure, LayerReport):
        seen = f"worst error/bound {failure.ratio:.3g} under entrywise rounding"
    else:
        seen = f"entrywise rounding: {failure.reason}"
    raise UndeclaredRounding(
        "this looks like FFT/Winograd rounding: the layer's errors are within the normwise "
        f"bound ({seen}, {max(r.ratio for r in reports):.3g} under normwise); declare "
        "supports={'rounding': 'normwise'} or pass --rounding normwise "
        f"({problem.describe()})", reports[0], failure)


# --------------------------------------------------------------------------- replaying a corpus


def check_regression(
    layer: Any, path: str | os.PathLike[str], **check_kwargs: Any
) -> LayerReport:
    """Run :func:`check_layer` on one saved case.

    Raises
    ------
    GradientMismatch, LayerError
        As ``check_layer`` does, the message prefixed ``regression case <name> (<path>):``;
        ``.result`` / ``.reason`` are kept.
    """
    __tracebackhide__ = True
    name, problem, _ = load_regression(path)
    _, json_path, _ = case_paths(Path(path))
    prefix = f"regression case {name} ({json_path})"
    try:
        return check_layer(layer, problem, **check_kwargs)
    except GradientMismatch as error:
        raise GradientMismatch(f"{prefix}: {error}", error.result, error.note) from None
    except LayerError as error:
        raise LayerError(f"{prefix}: {error}", error.reason) from None


def check_regressions(
    layer: Any, directory: str | os.PathLike[str], **check_kwargs: Any
) -> list[LayerReport]:
    """Replay every case in ``directory`` against ``layer``, in name order.

    Returns the reports of all cases when every one passes; raises the first failure as
    :func:`check_regression` does.  ``check_kwargs`` go to ``check_layer`` (``method``,
    ``reference_forward``, ``deadline``, ``seed``).
    """
    __tracebackhide__ = True
    return [check_regression(layer, path, **check_kwargs)
            for path in list_regressions(directory)]
