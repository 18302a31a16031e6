"""Mistake fingerprints: which classic error of hand-derived conv backprop a wrong gradient shows.

Each :class:`Fingerprint` is one mathematical mistake.  It either computes what the mistake
produces on the problem with the reference machinery of :mod:`gradcheck.formulas.conv` (``compute``), or,
for the generic ones (a constant factor, all zero, a lower precision), fits its prediction to
the user's gradient (``fit``).  :func:`diagnose` reports every entry of :data:`CATALOGUE` each
wrong gradient matches to rounding.  Add an entry to teach it a new mistake.

The rule, with R the right gradient (computed here in float64 or complex128), M the mistaken
one, U the user's and B the caller's bound on ``|U − R|`` for a correct U::

    B* = B + ρ_R                                          (ρ_R: our own rounding of R)
    U is wrong    ⇔  |U − R| > B*  somewhere
    U matches M   ⇔  |U − M| <= B* + β_M  everywhere  and  |M − R| > 2·B* + β_M  somewhere

``β_M = (γ_m(dtype) + γ_m(float64))·Σ|terms of M|`` is M's rounding, once in the user's dtype
and once in ours, and ``ρ_R = γ_m(float64)·Σ|terms of R|``, with ``m = n + 2``: a mistaken
formula sums at most the n products of the right one (:func:`gradcheck.judge.compare.analytic_bounds`),
plus one scaling and one cast.  ``Σ|terms|`` is the formula on |x|, |w|, |δ|, |b|; for complex
dtypes γ is multiplied by √2 (a complex product's rounding, Higham §3.6).  The last clause
drops mistakes invisible on this problem, and by the triangle inequality no U within B* of R
meets both clauses: a correct gradient is never diagnosed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradcheck.errors import invalid
from gradcheck.explain.localize import LABELS, named_factors, number_text
from gradcheck.explain.mistaken import (
    bias_mean_over_positions,
    channels_swapped,
    crop_swapped,
    dilation_ignored,
    dw_convolution,
    forward_convolves,
    groups_crossed,
    kernel_not_flipped,
    kernel_transposed,
    right_answer,
    scaled,
    shifted_crop,
    stride_ignored_dw,
    stride_ignored_dx,
    tail_not_zeroed,
)
from gradcheck.floating import gamma, unit_roundoff
from gradcheck.geometry.problem import ConvProblem
from gradcheck.judge.bounds import analytic_bounds

Compute = Callable[[ConvProblem], "np.ndarray | None"]
Prediction = tuple[np.ndarray, np.ndarray, str]  # (M, β_M, detail)


@dataclass(frozen=True)
class Evidence:
    """One wrong gradient: the user's value U, the bound B*, the right R and its Σ|terms|.

    ``wide`` and ``absolute`` are the problem in float64 (complex128) and on |x|, |w|, |δ|, |b|;
    ``terms`` is ``m = n + 2``.
    """

    problem: ConvProblem
    wide: ConvProblem
    absolute: ConvProblem
    gradient: str
    user: np.ndarray
    bound: np.ndarray
    reference: np.ndarray
    magnitude: np.ndarray
    terms: int


@dataclass(frozen=True)
class Fingerprint:
    """One classic mistake, for one gradient (``"dx"``, ``"dw"``, ``"db"`` or ``"y"``).

    ``sentence`` is what a person reads (``{detail}`` is filled in), ``fix`` the right formula.
    Exactly one of ``compute`` (the mistaken formula on a problem; None where it does not apply)
    and ``fit`` (M and β_M fitted to the evidence; None where they do not match) is given.
    ``fallback`` entries are reported only when no other entry explains the gradient.
    """

    name: str
    gradient: str
    sentence: str
    fix: str
    compute: Compute | None = None
    fit: Callable[[Evidence], Prediction | None] | None = None
    fallback: bool = False


@dataclass(frozen=True)
class Diagnosis:
    """A catalogue entry a user's gradient matched; ``detail`` e.g. the constant factor."""

    name: str
    gradient: str
    sentence: str
    fix: str
    detail: str = ""


# --------------------------------------------------------------------------- fitted entries


def _fits(value: np.ndarray, slack: np.ndarray, ev: Evidence) -> bool:
    return bool(np.all(np.abs(ev.user - value) <= ev.bound + slack))


def _visible(value: np.ndarray, slack: np.ndarray, ev: Evidence) -> bool:
    """``|M − R| > 2·B* + β_M`` somewhere: no correct gradient can match M."""
    return bool(np.any(np.abs(value - ev.reference) > 2 * ev.bound + slack))


def _gamma(m: int, dtype: np.dtype) -> float:
    """γ_m of ``dtype``, times √2 for complex dtypes (a complex product's rounding)."""
    return gamma(m, dtype) * (math.sqrt(2) if np.dtype(dtype).kind == "c" else 1.0)


def _rounding(ev: Evidence, magnitude: np.ndarray) -> np.ndarray:
    """``β = (γ_m(dtype) + γ_m(float64))·Σ|terms|``: the user's rounding and ours."""
    return (_gamma(ev.terms, ev.problem.dtype) + _gamma(ev.terms, ev.wide.dtype)) * magnitude


def _fit_scale(ev: Evidence) -> Prediction | None:
    """``U = c·R``, β = |c|·β_R: the named factors (−1, 2, 1/N, 1/∏O …) first, then the fit.

    The least-squares ``c = ⟨R, U⟩ / ⟨R, R⟩`` is tried only with >= 2 nonzero entries (a single
    entry is a multiple of anything).
    """
    energy = np.vdot(ev.reference, ev.reference).real
    if energy == 0:
        return None
    fitted = complex(np.vdot(ev.reference, ev.user) / energy)
    candidates = list(named_factors(ev.problem))
    if np.count_nonzero(ev.reference) > 1:
        candidates.append((fitted, number_text(fitted)))
    for c, text in candidates:
        value, slack = c * ev.reference, abs(c) * _rounding(ev, ev.magnitude)
        if c not in (0, 1) and _visible(value, slack, ev) and _fits(value, slack, ev):
            return value, slack, text
    return None


def _fit_zero(ev: Evidence) -> Prediction | None:
    """``U = 0`` everywhere, where R is not."""
    zero = np.zeros_like(ev.reference)
    visible = _visible(zero, zero.real, ev)
    return (zero, zero.real, "") if visible and not np.any(ev.user) else None


#: (name, unit roundoff u, underflow η = half the smallest subnormal), most precise first.
LOWER_PRECISIONS = (("float32", 2.0**-24, 2.0**-150), ("float16", 2.0**-11, 2.0**-25),
                    ("bfloat16", 2.0**-8, 2.0**-134))


def _fit_precision(ev: Evidence) -> Prediction | None:
    """Errors like the rounding noise of the most precise lower format p that explains them.

    U is wrong, and with ``e = |U − R|``, ``A = Σ|terms|``, ``m = n + 2`` (inputs rounded to p,
    an n-term sum in p, an exact cast back)::

        e <= B* + γ_m(u_p)·A + m·η_p          everywhere (Higham's bound, with underflow)
        ‖e‖₂ <= 3·√m·u_p·‖A‖₂ + ‖B* + m·η_p‖₂  (rounding noise grows like √m·u, not m·u)

    The second is statistical: independent roundings of at most u each, on partial sums of at
    most A, give ``E e_i² <= m·u²·A_i²``.  It keeps an O(1) structural error from passing as
    noise when ``m·u_p`` is large.  A coarser format passes wherever a finer one does, so only
    errors beyond the finer one's bounds name the coarser one.
    """
    error = np.abs(ev.user - ev.reference)
    if not np.any(error > ev.bound):
        return None
    m = ev.terms
    for name, u, eta in LOWER_PRECISIONS:
        if u <= unit_roundoff(ev.problem.dtype) or m * u >= 1:
            continue
        slack = m * u / (1 - m * u) * ev.magnitude + m * eta  # γ_m(u_p)·A + m·η_p
        noise = 3 * math.sqrt(m) * u * np.linalg.norm(ev.magnitude)
        if np.all(error <= ev.bound + slack) and (
                np.linalg.norm(error) <= noise + np.linalg.norm(ev.bound + m * eta)):
            return ev.reference, slack, f"{name} (u = {u:.2g}), not {ev.problem.dtype}"
    return None


# --------------------------------------------------------------------------- the catalogue

_FIX = {
    "dx": "dx = (δ↑s * w↑r)[lo : lo + S]: δ↑s padded by r·(K − 1), correlated with flip(w↑r)",
    "dw": "dw[f, c', t] = Σ_{n,i} δ↑s[n, f, i] · x_pad[n, c, i + r·t] (x_pad ⋆ δ↑s at lags r·t)",
    "db": "db[f] = Σ_{n,o} δ[n, f, o]",
    "y": "y[n, f, o] = b[f] + Σ_{c,t} w[f, c', t] · x_pad[n, c, s·o + r·t] (correlation)",
}


def _entry(name: str, gradient: str, sentence: str, compute: Compute, note: str = ""):
    return Fingerprint(name, gradient, sentence, _FIX[gradient] + note, compute)


def _generic(gradient: str) -> tuple[Fingerprint, ...]:
    """Entries for every gradient: sign, doubling, batch mean, a factor, zero, precision."""
    d, fix = LABELS[gradient], _FIX[gradient]
    entries = [
        _entry("sign-flipped", gradient, f"{d} is the right gradient negated: the descent "
               "step's minus sign was folded into the gradient", scaled(lambda p: -1, gradient),
               "; the optimiser subtracts"),
        _entry("scaled-by-two", gradient, f"{d} is twice the right gradient: a factor 2 (as "
               "from d(y²)/dy) applied although δ already is dL/dy",
               scaled(lambda p: 2, gradient), "; no factor, the layer is linear"),
        Fingerprint("constant-scale", gradient, f"{d} is a constant multiple of the right "
                    "gradient: c = {detail}", fix, fit=_fit_scale, fallback=True),
        Fingerprint("all-zero", gradient, f"{d} is zero everywhere, where the right gradient is "
                    "not: never written, or overwritten", fix, fit=_fit_zero),
    ]
    if gradient in ("dw", "db"):  # the gradients that sum over the batch
        entries.insert(2, _entry(
            "batch-averaged", gradient, f"{d} is the right gradient divided by the batch size N: "
            "averaged over the batch instead of summed", scaled(lambda p: 1 / p.x.shape[0],
                                                                 gradient),
            "; a loss that averages puts the 1/N into δ already"))
    if gradient != "y":
        entries.append(Fingerprint(
            "precision-loss", gradient, f"{d} errs like the rounding noise of {{detail}}: "
            "computed in a lower precision than its inputs", fix + "; in the inputs' precision",
            fit=_fit_precision, fallback=True))
    return tuple(entries)


CATALOGUE: tuple[Fingerprint, ...] = (
    _entry("kernel-not-flipped", "dx", "dL/dx matches δ↑s ⋆ w↑r (correlation) instead of "
           "δ↑s * w↑r (convolution): the kernel was not flipped", kernel_not_flipped),
    _entry("stride-ignored-dx", "dx", "dL/dx matches δ * w↑r with δ used densely: the stride "
           "was ignored (δ not zero-inserted to δ↑s)", stride_ignored_dx),
    _entry("dilation-ignored", "dx", "dL/dx matches δ↑s * w with the undilated kernel: the "
           "dilation was ignored (taps must be r apart)", dilation_ignored),
    _entry("padding-crop-swapped", "dx", "dL/dx matches dx_pad[hi : hi + S]: the padding was "
           "cropped with lo and hi swapped", crop_swapped),
    _entry("padding-not-cropped-offset", "dx", "dL/dx matches dx_pad[lo − 1 : lo − 1 + S]: "
           "cropped one position early (as when the full convolution pads δ↑s by r·(K − 1) + 1 "
           "instead of r·(K − 1))", lambda p: shifted_crop(p, (1,) * p.spec.dims)),
    _entry("padding-not-cropped-offset", "dx", "dL/dx matches dx_pad[lo + 1 : lo + 1 + S]: the "
           "padding was cropped one position late",
           lambda p: shifted_crop(p, (-1,) * p.spec.dims)),
    _entry("tail-not-zeroed", "dx", "dL/dx matches δ↑s * w↑r aligned with the end of x_pad, not "
           "its start: shifted by the tail no window reaches, which got gradient",
           tail_not_zeroed, "; the unreached tail stays 0"),
    _entry("kernel-transposed", "dx", "dL/dx matches δ↑s * (w↑r)ᵀ: the kernel's spatial axes "
           "were transposed as well as flipped (rot180 is not a transpose)", kernel_transposed,
           "; flip(w)[t] = w[K − 1 − t] keeps the axes' order"),
    _entry("dw-convolution", "dw", "dL/dw matches x_pad * δ↑s (convolution: lags flipped) "
           "instead of x_pad ⋆ δ↑s (correlation)", dw_convolution, "; no flip in dw"),
    _entry("stride-ignored-dw", "dw", "dL/dw matches x_pad ⋆ δ with δ used densely: the stride "
           "was ignored (δ not zero-inserted to δ↑s)", stride_ignored_dw),
    _entry("groups-crossed", "dw", "dL/dw pairs filter f with the channels of group f mod G "
           "(round-robin) instead of f // (F/G) (blocks): the groups were crossed",
           groups_crossed, "; filter f belongs to group f // (F/G)"),
    _entry("channels-swapped", "dw", "dL/dw was accumulated as (C/G, F/G) and reshaped, not "
           "transposed, to (F, C/G): the filter and channel axes are swapped", channels_swapped,
           "; swap axes, never reshape across them"),
    _entry("bias-not-summed-spatially", "db", "dL/db matches Σ_n mean_o δ: averaged over the "
           "output positions instead of summed (a shared parameter sums its uses)",
           bias_mean_over_positions),
    _entry("forward-convolves", "y", "y matches b + x_pad * w (true convolution, kernel flipped) "
           "instead of b + x_pad ⋆ w: the forward convolves", forward_convolves),
    *(entry for gradient in ("dx", "dw", "db", "y") for entry in _generic(gradient)),
)


# --------------------------------------------------------------------------- matching


def reference_bounds(problem: ConvProblem) -> dict[str, np.ndarray]:
    """Default bounds B: :func:`analytic_bounds` for dx, dw, db; y's as the forward check's.

    ``B_y = (γ_n(dtype) + γ_n(float64))·(conv(|x|, |w|) + |b|)``, ``n = C/G·∏K + 1``.
    """
    bounds = dict(zip(("dx", "dw", "db"), analytic_bounds(problem)))
    n = problem.w.shape[1] * math.prod(problem.w.shape[2:]) + 1
    bounds["y"] = (gamma(n, problem.dtype) + gamma(n, np.float64)) * right_answer(
        _cast(problem, np.float64, np.abs), "y")
    return {k: v for k, v in bounds.items() if v is not None}


def _cast(p: ConvProblem, dtype: np.dtype, apply: Callable = np.asarray) -> ConvProblem:
    def f(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else apply(a).astype(dtype)

    return ConvProblem(f(p.x), f(p.w), f(p.b), f(p.dy), p.spec)


def _terms(p: ConvProblem, gradient: str) -> int:
    """n: the products summed into one entry of the gradient (as for the analytic bounds)."""
    taps, outputs = math.prod(p.w.shape[2:]), p.dy.shape[0] * math.prod(p.dy.shape[2:])
    return {"dx": p.w.shape[0] // p.spec.groups * taps, "dw": outputs, "db": outputs,
            "y": p.w.shape[1] * taps + 1}[gradient]


def _evidence(problem: ConvProblem, user_gradients: dict, bounds: dict | None):
    """The :class:`Evidence` of each gradient given (None entries and misfit shapes skipped)."""
    wide = _cast(problem, np.result_type(problem.dtype, np.float64))
    absolute = _cast(problem, np.float64, np.abs)
    defaults = {} if set(user_gradients) <= set(bounds or {}) else reference_bounds(problem)
    for name, user in user_gradients.items():
        if name not in LABELS:
            raise invalid("user_gradients", name, "expected the names dx, dw, db and y")
        bound, right = (bounds or {}).get(name, defaults.get(name)), right_answer(wide, name)
        if user is None or bound is None or right is None or np.shape(user) != right.shape:
            continue
        magnitude, m = np.abs(right_answer(absolute, name)), _terms(problem, name) + 2
        bound = np.asarray(bound, dtype=np.float64) + _gamma(m, wide.dtype) * magnitude  # B*
        user = np.asarray(user).astype(right.dtype)
        yield Evidence(problem, wide, absolute, name, user, bound, right, magnitude, m)


def _wrong(problem: ConvProblem, user_gradients: dict, bounds: dict | None):
    """The evidence of each gradient beyond B* of the reference somewhere."""
    for ev in _evidence(problem, user_gradients, bounds):
        if np.any(np.abs(ev.user - ev.reference) > ev.bound):
            yield ev


def _predict(fp: Fingerprint, ev: Evidence) -> Prediction | None:
    if fp.fit is not None:
        return fp.fit(ev)
    value = fp.compute(ev.wide)
    if value is None:
        return None
    slack = _rounding(ev, np.abs(fp.compute(ev.absolute)))
    return (value, slack, "") if _visible(value, slack, ev) else None


def _explain(ev: Evidence) -> list[Diagnosis]:
    """Every entry for ``ev.gradient`` that U matches; fallbacks only when nothing else does."""
    found: list[Diagnosis] = []
    fallback: list[Diagnosis] = []
    for fp in (fp for fp in CATALOGUE if fp.gradient == ev.gradient):
        prediction = _predict(fp, ev)
        if prediction is not None and _fits(prediction[0], prediction[1], ev):
            detail = prediction[2]
            (fallback if fp.fallback else found).append(Diagnosis(
                fp.name, fp.gradient, fp.sentence.format(detail=detail), fp.fix, detail))
    return found or fallback


def mismatched(problem: ConvProblem, user_gradients: dict[str, np.ndarray | None],
               bounds: dict[str, np.ndarray] | None = None) -> tuple[str, ...]:
    """Names of the gradients that are wrong (beyond B* of the reference): those diagnosed."""
    return tuple(ev.gradient for ev in _wrong(problem, user_gradients, bounds))


def diagnose(problem: ConvProblem, user_gradients: dict[str, np.ndarray | None],
             bounds: dict[str, np.ndarray] | None = None) -> list[Diagnosis]:
    """Every catalogue entry matched by every wrong gradient, in catalogue order per gradient.

    Parameters
    ----------
    problem : ConvProblem
    user_gradients : dict
        ``"dx"``, ``"dw"``, ``"db"``, ``"y"`` to the user's arrays; None entries are skipped.
    bounds : dict, optional
        The same names to the bounds B that judged them (default, and for missing names:
        :func:`reference_bounds`).

    Returns
    -------
    list of Diagnosis
        Empty when no gradient is wrong or nothing matches (the rule: module docstring).
    """
    return [d for ev in _wrong(problem, user_gradients, bounds) for d in _explain(ev)]


def match(problem: ConvProblem, name: str, user: np.ndarray, bound: np.ndarray) -> list[Diagnosis]:
    """The catalogue entries the user's gradient ``name`` (dx, dw, db or y) matches, under B."""
    return diagnose(problem, {name: user}, {name: bound})
