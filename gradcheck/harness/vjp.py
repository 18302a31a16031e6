"""Check the hand-written VJP of *any* function, not only a convolution.

``check_vjp(f, vjp, inputs)`` compares each entry ``g_j`` of ``vjp(δ, *inputs)`` with the
derivative of ``L(x) = ⟨δ, f(x)⟩`` along ``e_j``, estimated in float64 from a *ladder* of
steps, and returns only one of four verdicts per entry: agree, **mismatch** (three witnesses
agree with each other and not with g), **kink** (left and right derivatives differ) or
**inconclusive** (no step could decide).  The check passes only when every entry agrees
within a bound that is at most ``RESOLUTION`` of the input's largest gradient entry.

Rounding model (stated, not proved: f is a black box).  f and its VJP are taken to be
backward stable, computed as sums of at most κ products (κ = total input and output size) of
their slightly perturbed arguments, so one evaluation of L at a point p is within::

    ε(p) = γ_κ · ( ⟨|δ|, |f(p)|⟩  +  Σ_k |g_k|·|p_k| )

(γ_κ in the dtype f returns).  The first term is the rounding of the outputs; the second is
the *conditioning*: an argument perturbed by u·|p_k| (rounding of x itself, of ``x − max x``
in a softmax, of the point ``x_j + h``) moves L by ``|∂L/∂x_k|·u·|p_k|`` — for ``sin`` at
|x| = 1e8 that is 1e-8·|cos x|, far above u·|sin x|.  Under the hypothesis being tested,
``∂L/∂x = g``, so |g| stands for |∂L/∂x|.  Each analytic entry is within ``γ_κ·‖g‖_∞``.

Steps.  Entry j starts at ``h_0 = 2^round(log2(2^-10·max(|x_j|, s)))``, s = max|x| of its
input (1 if that is 0): relative to the entry, with the input's own scale as the floor
(2^-10 ≈ u^(1/5), the step that balances an O(h⁴) rule against ε/h).  One *level* evaluates
L at ``x`` and ``x ± h_m·e_j``, ``h_m = h·2^-m``, m = 0…3, and forms three ladders:

    central    D_m = (L(x + h_m) − L(x − h_m)) / 2h_m = L' + a·h_m² + b·h_m⁴ + …   (p = 2)
    right/left F_m = ±(L(x ± h_m) − L(x)) / h_m      = L' + a·h_m + …            (p = 1)

each with its rounding bound ``d_m = (ε₊ + ε₋)/(step) + u·|D_m|``, and Richardson's
extrapolations ``R_m = (2^p·D_{m+1} − D_m)/(2^p − 1)``, rounding
``r_m = (2^p·d_{m+1} + d_m)/(2^p − 1)``.

Error bound.  A ladder is *asymptotic* when every pair of successive differences
``Δ_m = D_m − D_{m+1}`` either lies within its rounding (``|Δ_{m+1}| ≤ d_{m+1} + d_{m+2}``)
or shrinks with the rule's order: same sign and ``Δ_m/Δ_{m+1}`` compatible, within rounding,
with ``[0.6·2^p, 8·2^p]`` (2^p from the h^p term, up to 4·2^p from the next one).  A kink
straddled by a rung gives ratio 1/2, a step far beyond the function's scale (sin at 1e8 with
h ≈ 1e5) gives noise: both fail.  On an asymptotic ladder the extrapolations' truncation
errors t_m shrink at least twofold (by 2^(p+1) or more), so ``|t_2| ≤ |t_1 − t_2|`` and::

    |R_2 − L'| ≤ |R_1 − R_2| + r_1 + 2·r_2

— the consistency of successive extrapolations bounds the truncation, the r's bound the
rounding.  This is the bound of every estimate below.

Where the bound cannot reach.  Quiet differences prove smoothness only if L moves at all:
with sin at |x| = 1e16 the argument rounding u·|x| ≈ 1 swamps the whole range of sin, every
rung is "within rounding", and the ladder reads a confident 0.  A ladder therefore *resolves*
only if L changes across its widest rung by ``RESOLVED`` (8) times that change's rounding or
more — or not at all, bit for bit, at any rung (f exactly flat, as ReLU below its kink).

Decision at one level (g the analytic entry, b_g = γ_κ·‖g‖_∞ its rounding):

* kink: both one-sided ladders asymptotic and resolved, ``|R⁺ − R⁻| > B⁺ + B⁻``;
* agree: some asymptotic ladder has ``|g − R| ≤ B + b_g`` (a one-sided one suffices: it is the
  derivative at x whenever the other side straddles a kink or leaves f's domain);
* mismatch: central, right and left all asymptotic and resolved, mutually consistent, and g
  outside every one of their bounds — three witnesses; a straddled kink corrupts only the
  rungs that cross it and fails the ratio test on that side;
* otherwise (a straddled kink, NaN/inf outside f's domain, a step too large for f's scale)
  the step is divided by 16 — on NaN/inf it first drops to the entry's own relative step
  ``2^-10·|x_j|`` — and the level repeated.

A mismatch or a kink must be seen at two successive levels (the mismatch with consistent
values): a geometric ladder of steps far beyond f's scale can alias into a smooth-looking one
(sin at 1e8 with h = 2^13, whose rungs sit near multiples of 2π).  An agreement whose bound is
mostly truncation (more than twice its rounding) is kept while a smaller step is tried for a
tighter one.  The descent ends at ``MAX_LEVELS`` levels, at ``h/8 < 16·u·|x_j|`` (points must
stay distinct), or when rounding alone exceeds ``RESOLUTION`` of the gradient's scale and grows
as the step shrinks; an entry still undecided is **inconclusive** (:class:`VjpInconclusive`),
never silently dropped.

Finally an agreeing entry whose bound exceeds ``RESOLUTION·max(‖g‖_∞, ‖R‖_∞)`` of its input
(τ = 1/8) is inconclusive too.  So a pass guarantees, per input and per entry,
``|g_j − L'_j| ≤ 2τ/(1 − τ)·max(‖g‖_∞, ‖L'‖_∞) < 0.3·max(…)``: a VJP off by a factor 2, a
sign, ×1000 or all zeros cannot pass.  Typical bounds are far tighter (1e-9 relative for sin
at |x| ≤ 1; 1e-5 at 1e8, where argument rounding limits any difference quotient; sin beyond
~1e13 has no correct digit left and is inconclusive).  Verdicts rank mismatch > kink >
inconclusive > pass.  ``fuzz_vjp`` redraws at kinks and inconclusive points and counts them,
by reason, in its :class:`VjpFuzzResult`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import given, reject
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from gradcheck.errors import (
    GradcheckError,
    GradientMismatch,
    LayerError,
    call_user,
    choice,
    integer,
    invalid,
    invalid_type,
)
from gradcheck.floating import gamma, unit_roundoff
from gradcheck.harness.search import search_settings
from gradcheck.judge.result import CheckResult, compare_arrays
from gradcheck.witnesses.differences import DEFAULT_CHUNK_BYTES, METHODS, numeric_gradient

#: First step relative to max(|x_j|, max|x|): 2^-10 ≈ u^(1/5) of float64.
RELATIVE_STEP = 2.0**-10
#: Rungs of one ladder: h, h/2, h/4, h/8.
RUNGS = 4
#: Step reduction between levels, and the number of levels tried.
SHRINK, MAX_LEVELS = 16.0, 14
#: A pass needs every bound <= RESOLUTION × the input's largest gradient entry.
RESOLUTION = 1 / 8
#: A ladder decides a mismatch or a kink only if L moves by RESOLVED × its rounding or more.
RESOLVED = 8.0

_AGREE, _MISMATCH, _KINK, _OPEN = 0, 1, 2, 3
_U = unit_roundoff(np.float64)
#: The smallest first rung: the last rung, h/8, stays a normal number.
_FLOOR = 2.0 ** (RUNGS - 1) * float(np.finfo(np.float64).tiny)

Entry = tuple[int, int]


class NonDifferentiable(GradcheckError):
    """The function has a kink within a finite-difference step of the point checked.

    Attributes
    ----------
    entries : list of (argument index, flat index)
    """

    def __init__(self, message: str, entries: list[Entry]) -> None:
        super().__init__(message)
        self.entries = entries


class VjpInconclusive(GradcheckError):
    """Some entry could be neither confirmed nor refuted; nothing was passed silently.

    Attributes
    ----------
    reasons : dict of str to list of (argument index, flat index)
        ``"non-finite"`` (f is NaN/inf on a side at every step tried), ``"undecided"`` (no
        step gave consistent differences), ``"unresolved"`` (the bound exceeds
        ``RESOLUTION`` of the gradient's scale), ``"nothing-compared"``.
    """

    def __init__(self, message: str, reasons: dict[str, list[Entry]]) -> None:
        super().__init__(message)
        self.reasons = reasons

    @property
    def reason(self) -> str:
        """The first reason (the one named first in the message)."""
        return next(iter(self.reasons), "nothing-compared")


@dataclass(frozen=True)
class VjpFuzzResult:
    """What ``fuzz_vjp`` saw: points checked and passed, points redrawn by reason."""

    checked: int
    redrawn: dict[str, int]


def _as_inputs(inputs: Any) -> tuple[np.ndarray, ...]:
    items = (inputs,) if isinstance(inputs, np.ndarray) else tuple(inputs)
    for i, a in enumerate(items):
        if not isinstance(a, np.ndarray):
            raise invalid_type(f"inputs[{i}]", a, "expected a numpy array")
        if a.dtype.kind != "f":
            raise invalid_type(f"inputs[{i}]", f"array of dtype {a.dtype}",
                               "expected a floating dtype")
        if not np.all(np.isfinite(a)):
            raise invalid(f"inputs[{i}]", "an array with NaN/Inf", "every value must be finite")
    return items


def _call(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    with np.errstate(all="ignore"):  # stepping may leave f's domain on purpose
        return call_user(what, fn, *args)


def _gradients(vjp: Callable[..., Any], dy: np.ndarray,
               inputs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    out = _call("vjp", vjp, dy, *inputs)
    grads = (out,) if isinstance(out, np.ndarray) and len(inputs) == 1 else out
    if not isinstance(grads, (tuple, list)) or len(grads) != len(inputs):
        raise LayerError(f"vjp returned {type(out).__name__}: expected {len(inputs)} "
                         "gradient(s), one per input", "wrong-count")
    for i, (g, a) in enumerate(zip(grads, inputs)):
        if not isinstance(g, np.ndarray) or g.shape != a.shape:
            raise LayerError(f"vjp returned gradient {i} of shape {getattr(g, 'shape', None)}: "
                             f"expected {a.shape}", "wrong-shape")
        if not np.all(np.isfinite(g)):
            raise LayerError(f"vjp returned NaN/Inf in gradient {i}", "returned-nan")
    return tuple(grads)


class _Loss:
    """``L(p) = ⟨δ, f(…, p, …)⟩`` at points p of input i, with the model's bound ε(p)."""

    def __init__(self, f: Callable[..., Any], dy: np.ndarray, inputs: tuple[np.ndarray, ...],
                 grads: tuple[np.ndarray, ...], i: int, gamma_f: float) -> None:
        self.f, self.dy, self.inputs, self.i, self.gamma_f = f, dy, inputs, i, gamma_f
        self.abs_g = np.abs(grads[i]).astype(np.float64)
        self.others = sum(float(np.sum(np.abs(g) * np.abs(a)))
                          for k, (g, a) in enumerate(zip(grads, inputs)) if k != i)
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = np.empty(len(points), dtype=np.result_type(points, np.float64))
        errors = np.empty(len(points))
        with np.errstate(all="ignore"):
            for b, point in enumerate(points):
                args = list(self.inputs)
                args[self.i] = point
                y = np.asarray(_call("f", self.f, *args))
                values[b] = np.sum(self.dy * y)
                errors[b] = self.gamma_f * (np.sum(np.abs(self.dy) * np.abs(y)) + self.others
                                            + np.sum(self.abs_g * np.abs(point)))
        self._last = (points, errors)
        return values, errors

    def values(self, points: np.ndarray) -> np.ndarray:
        return self(points)[0]

    def errors(self, points: np.ndarray) -> np.ndarray:
        """ε at the points just evaluated (numeric_gradient asks right after the values)."""
        if self._last is not None and self._last[0] is points:
            return self._last[1]
        return self(points)[1]


def _extrapolate(D: np.ndarray, d: np.ndarray, p: int):
    """Richardson on rungs ``D`` (RUNGS, n) with rounding ``d``; see the module docstring.

    Returns (value R_2, bound |R_1 − R_2| + r_1 + 2 r_2, asymptotic flag, rounding r_1 + 2 r_2).
    """
    k = 2.0**p
    with np.errstate(all="ignore"):
        R = (k * D[1:] - D[:-1]) / (k - 1)
        r = (k * d[1:] + d[:-1]) / (k - 1)
        noise = r[-2] + 2 * r[-1]
        bound = np.abs(R[-2] - R[-1]) + noise
        delta, spread = D[:-1] - D[1:], d[:-1] + d[1:]
        ok = np.all(np.isfinite(D), axis=0) & np.isfinite(bound)
        for m in range(RUNGS - 2):
            a, b, na, nb = np.abs(delta[m]), np.abs(delta[m + 1]), spread[m], spread[m + 1]
            quiet = b <= nb
            shrinks = ((a > na) & (delta[m] * delta[m + 1] > 0)
                       & (a + na >= 0.6 * k * (b - nb)) & (a - na <= 8 * k * (b + nb)))
            ok &= quiet | shrinks
    return R[-1], np.where(ok, bound, np.inf), ok, noise


def _level(loss: _Loss, flat: np.ndarray, shape: tuple[int, ...], entries: np.ndarray,
           h: np.ndarray, center: tuple[float, float]):
    """Central, right and left ladders at steps h·2^-m for each entry (one batched call)."""
    rungs = h[None, :] * 2.0 ** -np.arange(RUNGS)[:, None]  # (RUNGS, n)
    offsets = np.stack([rungs, -rungs]).reshape(2 * RUNGS, -1)  # (2·RUNGS, n)
    columns = np.broadcast_to(entries, offsets.shape)
    chunk = max(1, DEFAULT_CHUNK_BYTES // (max(flat.nbytes, 1) * 2 * RUNGS))
    parts = []
    for start in range(0, len(entries), chunk):  # at most DEFAULT_CHUNK_BYTES of points
        block = slice(start, start + chunk)
        step, column = offsets[:, block].reshape(-1), columns[:, block].reshape(-1)
        points = np.repeat(flat[None], step.size, axis=0)
        points[np.arange(step.size), column] += step
        values, errors = loss(points.reshape(-1, *shape))
        parts.append((values.reshape(2 * RUNGS, -1), errors.reshape(2 * RUNGS, -1)))
    values = np.concatenate([v for v, _ in parts], axis=1).reshape(2, RUNGS, -1)
    errors = np.concatenate([e for _, e in parts], axis=1).reshape(2, RUNGS, -1)
    (lp, lm), (ep, em) = values, errors
    l0, e0 = center
    ladders = []
    with np.errstate(all="ignore"):
        for change, noise, width, p in ((lp - lm, ep + em, 2 * rungs, 2),
                                        (lp - l0, ep + e0, rungs, 1),
                                        (l0 - lm, em + e0, rungs, 1)):
            rule = change / width
            # resolved: L moves by well over its rounding across the widest rung, or not at
            # all at any rung (f exactly flat); otherwise quiet differences prove nothing
            resolved = np.all(change == 0, axis=0) | (np.abs(change[0]) >= RESOLVED * noise[0])
            ladders.append((*_extrapolate(rule, noise / width + _U * np.abs(rule), p), resolved))
    return tuple(ladders)


def _decide(g: np.ndarray, g_bound: float, central, right, left):
    """Verdict per entry at one level, with the witness value and bound that decided it."""
    (c, bc, okc, _, sure_c), (r, br, okr, _, sure_r), (lv, bl, okl, _, sure_l) = (
        central, right, left)
    with np.errstate(all="ignore"):
        kink = okr & sure_r & okl & sure_l & (np.abs(r - lv) > br + bl)
        near = [okc & (np.abs(g - c) <= bc + g_bound), okr & (np.abs(g - r) <= br + g_bound),
                okl & (np.abs(g - lv) <= bl + g_bound)]
        agree = ~kink & (near[0] | near[1] | near[2])
        mismatch = (~kink & ~agree & okc & sure_c & okr & sure_r & okl & sure_l
                    & (np.abs(c - r) <= bc + br) & (np.abs(c - lv) <= bc + bl))
    verdict = np.select([kink, agree, mismatch], [_KINK, _AGREE, _MISMATCH], _OPEN)
    value = np.select(near, [c, r, lv], c)
    bound = np.select(near, [bc, br, bl], bc)
    noise = np.select(near, [central[3], right[3], left[3]], central[3])
    return verdict, value, bound, noise


def _first_steps(flat: np.ndarray) -> np.ndarray:
    """``h_0 = 2^round(log2(2^-10·max(|x_j|, s)))``, s = max|x| (1 when x is all zeros)."""
    magnitude = np.abs(flat)
    scale = float(magnitude.max(initial=0.0)) or 1.0
    return _power_of_two(RELATIVE_STEP * np.maximum(magnitude, scale))


def _power_of_two(h: np.ndarray) -> np.ndarray:
    """The nearest power of two, and at least ``2^(RUNGS − 1)`` × the smallest normal."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.exp2(np.round(np.log2(h))), _FLOOR)


def _open_reason(central, right, left, noisy: np.ndarray, h: np.ndarray,
                 unconfirmed: np.ndarray) -> list[tuple[str, str]]:
    """Why each entry stopped undecided: (reason key, detail)."""
    reasons = []
    for k in range(len(h)):
        sides = [name for name, ladder in (("right", right), ("left", left))
                 if not np.isfinite(ladder[0][k])]
        smallest = h[k] * 2.0 ** (1 - RUNGS)
        if unconfirmed[k] != _OPEN:
            what = "mismatch" if unconfirmed[k] == _MISMATCH else "kink"
            reasons.append(("undecided", f"a {what} seen at h = {smallest:.3g} could not be "
                            "confirmed at a smaller step"))
        elif sides:
            reasons.append(("non-finite", f"f is NaN/inf on the {' and '.join(sides)} side(s) at "
                            f"every step down to h = {smallest:.3g}"))
        elif noisy[k]:
            reasons.append(("undecided", "rounding exceeded the resolution before the "
                            f"differences became consistent (h = {smallest:.3g})"))
        else:
            reasons.append(("undecided", "no step down to h = "
                            f"{smallest:.3g} gave consistent differences"))
    return reasons


def _examine(loss: _Loss, x: np.ndarray, g: np.ndarray, g_bound: float, method: str):
    """Verdict, witness value, witness bound per flat entry of x, and reasons for open ones."""
    flat, gf = x.reshape(-1), g.reshape(-1).astype(np.float64)
    n = flat.size
    verdict, value, bound = np.full(n, _OPEN), np.zeros(n), np.full(n, np.inf)
    reasons: dict[int, tuple[str, str]] = {}
    l0, e0 = (float(v[0].real) for v in loss(x[None]))
    if not np.isfinite(l0):
        return verdict, value, bound, {j: ("non-finite", "f is NaN/inf at the point itself")
                                       for j in range(n)}
    active = np.arange(n)
    if method != "richardson":  # the chosen rule first; the ladder decides what it cannot
        first = numeric_gradient(loss.values, x, method=method, error_bound=loss.errors)
        v, b = first.value.reshape(-1).real, first.error.reshape(-1)
        with np.errstate(all="ignore"):  # accepted when tight; otherwise the ladder decides
            ok = (np.isfinite(v) & (np.abs(gf - v) <= b + g_bound)
                  & (first.truncation.reshape(-1) <= first.roundoff.reshape(-1))
                  & (b + g_bound <= RESOLUTION * float(np.abs(gf).max(initial=0.0))))
        verdict[ok], value[ok], bound[ok] = _AGREE, v[ok], b[ok]
        active = np.flatnonzero(~ok)
    h, floor = _first_steps(flat), np.maximum(16 * _U * np.abs(flat), _FLOOR)
    own = _power_of_two(RELATIVE_STEP * np.abs(flat))  # the entry's own relative step
    scale_g = float(np.abs(gf).max(initial=0.0))
    pending, pending_value, pending_bound = np.full(n, _OPEN), np.zeros(n), np.full(n, np.inf)
    last_noise = np.full(n, np.inf)
    for level in range(MAX_LEVELS):
        if not active.size:
            break
        central, right, left = _level(loss, flat, x.shape, active, h[active], (l0, e0))
        v, val, b, b_noise = _decide(gf[active], g_bound, central, right, left)
        # a mismatch or kink must repeat at the next level (values consistent for a
        # mismatch): a ladder of steps far beyond f's scale can alias into a smooth-looking one
        seen_before = pending[active]
        with np.errstate(all="ignore"):
            confirmed = (v != _OPEN) & (v == seen_before) & (
                (v == _KINK) | (np.abs(val - pending_value[active])
                                <= b + pending_bound[active]))
        with np.errstate(all="ignore"):
            seen = np.stack([np.where(np.isfinite(w[0]), np.abs(w[0]), 0.0)
                             for w in (central, right, left)]).max(axis=0)
            noise = np.fmin(np.fmin(central[3], right[3]), left[3])
            # too noisy to resolve, and the noise grows as the step shrinks (it falls while
            # h >> |x_j| if argument rounding u·|x_j + h| dominates): no smaller step helps
            noisy = ((noise > RESOLUTION * np.maximum(scale_g, seen)) & np.isfinite(noise)
                     & ~(noise < last_noise[active]))
        last_noise[active] = noise
        # an agreement whose bound is mostly truncation (|R_1 − R_2| > rounding) is kept and a
        # smaller step tried for a tighter one, until the bound is rounding-limited or grows
        agree = v == _AGREE
        better = agree & (b < bound[active])
        verdict[active[better]], value[active[better]], bound[active[better]] = (
            _AGREE, val[better], b[better])
        done = (agree & ((b <= 2 * b_noise) | ~better)) | confirmed
        v = np.where(agree, _AGREE, v)
        val, b = np.where(agree, value[active], val), np.where(agree, bound[active], b)
        pending[active] = np.where(done | agree, _OPEN, v)
        pending_value[active], pending_bound[active] = val, b
        verdict[active[done]], value[active[done]], bound[active[done]] = v[done], val[done], b[
            done]
        last = (h[active] / SHRINK * 2.0 ** (1 - RUNGS) < floor[active]) | (
            level == MAX_LEVELS - 1)
        stop = ~done & (noisy | last) & (verdict[active] != _AGREE)
        settle = ~done & (noisy | last) & (verdict[active] == _AGREE)
        done |= settle
        c_stop, r_stop, l_stop = (tuple(part[stop] for part in w) for w in (central, right, left))
        why = _open_reason(c_stop, r_stop, l_stop, noisy[stop], h[active[stop]], v[stop])
        reasons.update(zip(active[stop].tolist(), why))
        # leaving f's domain (NaN/inf on a rung): jump to the entry's own relative step
        jump = ~np.all(np.isfinite(np.stack([central[0], right[0], left[0]])), axis=0)
        h[active[jump]] = np.minimum(h[active[jump]], own[active[jump]] * SHRINK)
        active = active[~done & ~stop]
        h[active] /= SHRINK
    return verdict, value, bound, reasons


def _describe(entries: list[Entry], detail: dict[Entry, str], wide: tuple[np.ndarray, ...]) -> str:
    shown = [f"d input {i}[{j}] (x = {wide[i].reshape(-1)[j]:.6g}): {detail[i, j]}"
             for i, j in entries[:3]]
    more = f"; and {len(entries) - 3} more" if len(entries) > 3 else ""
    return "; ".join(shown) + more


def check_vjp(
    f: Callable[..., Any],
    vjp: Callable[..., Any],
    inputs: np.ndarray | Sequence[np.ndarray],
    *,
    dy: np.ndarray | None = None,
    seed: int = 0,
    method: str = "richardson",
) -> CheckResult:
    """Check a hand-written VJP against finite differences of f; raise unless it agrees.

    Parameters
    ----------
    f : callable
        ``f(*inputs) -> y``, any function of numpy arrays (evaluated in float64).
    vjp : callable
        ``vjp(dy, *inputs) -> (d_input_0, d_input_1, …)`` (or one array for one input).
    inputs : ndarray or sequence of ndarray
    dy : ndarray, optional
        The upstream gradient δ; default standard normal from ``seed``.
    method : {"richardson", "four-point", "central", "complex-step"}
        The first witness.  "richardson" is the ladder of the module docstring; any other
        rule is tried first and the ladder decides every entry it does not confirm.

    Returns
    -------
    CheckResult
        When every entry agrees within a bound of at most ``RESOLUTION`` × the largest
        gradient entry of its input: ``|g_j − ∂L/∂x_j| <= bound_j`` with
        ``L = ⟨δ, f(x)⟩`` (see the module docstring for the bound).

    Raises
    ------
    GradientMismatch
        Some entry disagrees with three consistent witnesses (central, left, right).
    NonDifferentiable
        No mismatch, but left and right derivatives differ at some entry (a kink in reach).
    VjpInconclusive
        No mismatch or kink, but some entry could not be decided (NaN/inf on every step,
        no consistent step, bound too wide) — or nothing was compared at all.
    LayerError
        f or vjp raised or returned the wrong shape/count/NaN.
    """
    __tracebackhide__ = True
    method = choice("method", method, METHODS)
    inputs = _as_inputs(inputs)
    y = np.asarray(_call("f", f, *inputs))
    if dy is None:
        dy = np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)
    elif not isinstance(dy, np.ndarray) or dy.shape != y.shape:
        raise invalid("dy.shape", getattr(dy, "shape", dy), f"expected the output shape {y.shape}")
    grads = _gradients(vjp, dy, inputs)
    kappa = sum(a.size for a in inputs) + dy.size
    wide = tuple(a.astype(np.float64) for a in inputs)
    y64 = np.asarray(_call("f", f, *wide))
    gamma_f = gamma(kappa, y64.dtype if y64.dtype.kind in "fc" else np.float64)
    comparisons = []
    verdicts: dict[int, list[Entry]] = {_MISMATCH: [], _KINK: [], _AGREE: []}
    open_entries: dict[str, list[Entry]] = {}
    detail: dict[Entry, str] = {}
    for i, (g, x) in enumerate(zip(grads, wide)):
        loss = _Loss(f, dy.astype(np.float64), wide, grads, i, gamma_f)
        g_bound = gamma(kappa, g.dtype) * float(np.abs(g).max(initial=0.0))
        verdict, value, bound, reasons = _examine(loss, x, g, g_bound, method)
        decided = (verdict == _AGREE) | (verdict == _MISMATCH)
        scale = max(float(np.abs(g).max(initial=0.0)),
                    float(np.abs(value[decided]).max(initial=0.0)))
        for j in np.flatnonzero((verdict == _AGREE) & (bound + g_bound > RESOLUTION * scale)):
            verdict[j] = _OPEN
            reasons[int(j)] = ("unresolved", f"bound {bound[j] + g_bound:.3g} exceeds "
                               f"{RESOLUTION} of the gradient's scale {scale:.3g}")
        for key in verdicts:
            verdicts[key] += [(i, int(j)) for j in np.flatnonzero(verdict == key)]
        for j, (why, text) in sorted(reasons.items()):
            if verdict[j] == _OPEN:
                open_entries.setdefault(why, []).append((i, j))
                detail[i, j] = text
        used = (verdict == _AGREE) | (verdict == _MISMATCH)
        expected = np.where(used, value, g.reshape(-1)).reshape(g.shape)
        comparisons.append(compare_arrays(
            f"d input {i}", "richardson ladder", g, expected,
            np.where(used, bound + g_bound, np.inf).reshape(g.shape)))
    skipped = len(verdicts[_KINK]) + sum(map(len, open_entries.values()))
    result = CheckResult(
        "vjp", tuple(comparisons),
        f"rounding model γ_κ (κ = {kappa}) with argument conditioning + Richardson-ladder bound"
        + (f"; {skipped} entries not compared (kinks/inconclusive)" if skipped else ""),
        f"inputs {[a.shape for a in inputs]} -> y{y.shape}")
    if verdicts[_MISMATCH]:
        raise GradientMismatch(result.summary(), result)
    kinks = verdicts[_KINK]
    if kinks:
        raise NonDifferentiable(
            f"non-differentiable at this point: left and right derivatives differ at "
            f"{len(kinks)} entr{'y' if len(kinks) == 1 else 'ies'} {kinks[:5]}; draw another "
            "point or move it away from the kink", kinks)
    if open_entries or not verdicts[_AGREE]:
        if not open_entries:
            open_entries = {"nothing-compared": []}
        flat_open = [e for entries in open_entries.values() for e in entries]
        raise VjpInconclusive(
            f"inconclusive, not passed: {len(flat_open)} entr"
            f"{'y' if len(flat_open) == 1 else 'ies'} undecided ({', '.join(open_entries)})"
            + (f": {_describe(flat_open, detail, wide)}" if flat_open else
               ": nothing was compared"), open_entries)
    return result


def fuzz_vjp(
    f: Callable[..., Any],
    vjp: Callable[..., Any],
    strategy: st.SearchStrategy[Any],
    *,
    examples: int = 100,
    seed: int = 0,
    method: str = "richardson",
) -> VjpFuzzResult:
    """Fuzz ``check_vjp`` over inputs drawn from ``strategy``; redraw at kinks/inconclusive.

    ``strategy`` draws one array or a tuple of arrays.  Raises the (shrunk) GradientMismatch
    or LayerError when one is found, and :class:`VjpInconclusive` when no point at all could
    be checked.  Returns how many points passed and how many were redrawn, by reason
    (``"non-differentiable"``, ``"inconclusive: <reason>"``).
    """
    checked = 0
    redrawn: dict[str, int] = {}

    @hypothesis_seed(seed)
    @search_settings(integer("examples", examples, low=1))
    @given(strategy)
    def run(inputs: Any) -> None:
        nonlocal checked
        try:
            check_vjp(f, vjp, inputs, seed=seed, method=method)
        except NonDifferentiable:
            redrawn["non-differentiable"] = redrawn.get("non-differentiable", 0) + 1
            reject()
        except VjpInconclusive as error:
            key = f"inconclusive: {error.reason}"
            redrawn[key] = redrawn.get(key, 0) + 1
            reject()
        checked += 1

    with contextlib.suppress(Unsatisfiable):  # every draw redrawn: reported just below
        run()
    if not checked:
        raise VjpInconclusive(f"fuzz_vjp: no point could be checked; redrawn {redrawn}",
                              {"nothing-compared": []})
    return VjpFuzzResult(checked, dict(redrawn))
