"""The named mistakes of the convolution's family, and the explanation of a family failure.

Each mistake is a *prediction*: what the wrong layer computes (y or a gradient), derived from
the reference formulas applied to changed data or geometry, in float64.  A user's wrong array
U is named after mistake M when U equals M's prediction to rounding **and** the prediction is
told apart from the right answer R on this problem (a mistake that changes nothing here is not
named)::

    |U − M| <= τ  everywhere,  |M − R| > τ  somewhere,   τ = 4·β + γ_64·(|M| + |R|)

β the entrywise bound of a correct computation (:mod:`gradcheck.judge.family_bounds`); the
second term lets the wrong formula round like any other sum of its size in the user's dtype.

Transposed convolution (``dx = conv(δ, w)`` with the same geometry, first S outputs)
    output_padding ignored, kernel not flipped, in/out channel axes swapped, stride ignored,
    dilation ignored, groups mixed, crop on the wrong side.
Max pooling (δ routed to each window's maximum ``s·o − lo + r·t*``)
    gradient to every window entry, gradient to a fixed window position, overwrite instead of
    accumulate, stride ignored in the routing, padding offset in the routing.
Average pooling (``y = Σ_window x / |W(o)|``)
    padding never counted, padding always counted, K instead of ∏K, partial windows divided
    by the full size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gradcheck.explain.explanation import LABEL, Explanation
from gradcheck.explain.fingerprints import Diagnosis
from gradcheck.explain.heatmap import text_heatmap
from gradcheck.explain.localize import Localisation
from gradcheck.floating import error_over_bound, gamma
from gradcheck.formulas.conv import conv_forward, flip, swap_channels
from gradcheck.formulas.conv_transpose import (
    conv_transpose_backward,
    crop_or_extend,
    full_transposed,
)
from gradcheck.formulas.pool import avg_pool_divisor
from gradcheck.geometry.family_problem import ConvTransposeProblem, PoolProblem
from gradcheck.geometry.family_spec import pool_window_starts
from gradcheck.geometry.spec import ConvSpec
from gradcheck.judge.family_bounds import (
    GRADIENTS,
    FamilyProblem,
    analytic_bounds,
    forward_bound,
    reference_backward,
    reference_forward,
    widened,
)

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Mistake:
    """A named mistake: what it gets wrong, how to fix it, and what it computes.

    ``applies(problem)``: the confusion itself exists on the configuration (K vs ∏K needs
    ∏K != K[0]); elsewhere its numbers are another mistake's, and the search names it only if
    some failure it explains is one where it applies.
    """

    name: str
    family: str
    sentence: str
    fix: str
    predict: Callable[[Any], Arrays]
    applies: Callable[[Any], bool] = lambda problem: True


# --------------------------------------------------------------------------- transposed


def _spatial(index: tuple[slice, ...]) -> tuple[slice, ...]:
    """``(:, :, *index)``: the same slices of every batch sample and channel."""
    return (slice(None), slice(None), *index)


def _first_s(a: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    index = (slice(None), slice(None), *(slice(0, n) for n in sizes))
    return a[index]


def _dx_with(p: ConvTransposeProblem, **geometry: Any) -> Arrays:
    """dx = conv(δ, w) with some of stride, dilation changed, first S outputs."""
    s = p.spec
    spec = ConvSpec(s.dims, geometry.get("stride", s.stride), s.padding,
                    geometry.get("dilation", s.dilation), s.groups)
    return {"dx": _first_s(conv_forward(p.dy, p.w, None, spec), p.x.shape[2:])}


def _tail_mask(p: ConvTransposeProblem) -> np.ndarray:
    """1 on the first O − a outputs of every dim, 0 on the output padding."""
    mask = np.ones(p.dy.shape[2:])
    for axis, a in enumerate(p.spec.output_padding):
        if a:
            index = [slice(None)] * p.spec.dims
            index[axis] = slice(p.dy.shape[2 + axis] - a, None)
            mask[tuple(index)] = 0
    return mask


def _output_padding_ignored(p: ConvTransposeProblem) -> Arrays:
    mask = _tail_mask(p)
    y = reference_forward(p, "conv_transpose") * mask
    dx, dw, db = conv_transpose_backward(p.dy * mask, p.x, p.w, p.b, p.spec)
    out = {"y": y, "dx": dx, "dw": dw}
    if db is not None:
        out["db"] = db
    return out


def _crop_wrong_side(p: ConvTransposeProblem) -> Arrays:
    s = p.spec
    full = full_transposed(p.x, p.w, s.groups, s.stride, s.dilation)
    y = crop_or_extend(full, [hi for _, hi in s.padding], p.dy.shape[2:])
    if p.b is not None:
        y = y + p.b.reshape((1, -1) + (1,) * s.dims)
    return {"y": y}


def _groups_mixed(p: ConvTransposeProblem) -> Arrays:
    rolled = np.roll(p.dy, -p.w.shape[1], axis=1)  # group g reads δ of group g + 1
    return {"dx": conv_transpose_backward(rolled, p.x, p.w, None, p.spec)[0]}


def _channels_swapped(p: ConvTransposeProblem) -> Arrays:
    dw = conv_transpose_backward(p.dy, p.x, p.w, None, p.spec)[1]
    return {"dw": swap_channels(dw, p.spec.groups).reshape(p.w.shape)}


TRANSPOSED = (
    Mistake("transpose-output-padding-ignored", "conv_transpose",
            "the output padding is left at zero (or δ's last output_padding positions are "
            "dropped): the extra positions get neither the kernel's taps that reach them nor "
            "the bias", "compute the full O = (S−1)·s − lo − hi + r·(K−1) + a + 1 positions "
            "before cropping, and add the bias to all of them", _output_padding_ignored),
    Mistake("transpose-kernel-not-flipped", "conv_transpose",
            "dL/dx uses the kernel flipped: the transposed convolution's input gradient is a "
            "plain correlation of δ with w (conv_forward(δ, w)), no flip",
            "dx[c, i] = Σ_{j,t} w[c, j, t]·δ_pad[j, s·i + r·t] — the forward flips, the "
            "backward does not",
            lambda p: {"dx": conv_transpose_backward(p.dy, p.x, flip(p.w), None, p.spec)[0]}),
    Mistake("transpose-in-out-channel-axes-swapped", "conv_transpose",
            "dL/dw is laid out as a convolution kernel (C_out, C_in/G, K…) and reshaped, not "
            "transposed, into the ConvTranspose layout (C_in, C_out/G, K…)",
            "build dw[c, j, t] with the input channel first (or swap the axes per group)",
            _channels_swapped),
    Mistake("transpose-stride-ignored", "conv_transpose",
            "dL/dx reads δ at i + r·t instead of s·i + r·t: the stride is ignored in the "
            "backward", "gather δ_pad[s·i + r·t] (conv_forward(δ, w) with the layer's stride)",
            lambda p: _dx_with(p, stride=(1,) * p.spec.dims)),
    Mistake("transpose-dilation-ignored", "conv_transpose",
            "dL/dx reads δ at s·i + t instead of s·i + r·t: the dilation is ignored in the "
            "backward", "gather δ_pad[s·i + r·t] (conv_forward(δ, w) with the layer's dilation)",
            lambda p: _dx_with(p, dilation=(1,) * p.spec.dims)),
    Mistake("transpose-groups-mixed", "conv_transpose",
            "dL/dx of group g is computed from δ's channels of another group",
            "input channel c of group g = c // (C_in/G) pairs with output channels "
            "g·C_out/G … (g+1)·C_out/G − 1 only", _groups_mixed),
    Mistake("transpose-crop-on-the-wrong-side", "conv_transpose",
            "the forward crops hi positions from the start and lo from the end of the full "
            "result instead of lo from the start", "y[o] = full[lo + o]", _crop_wrong_side),
)


# --------------------------------------------------------------------------- pooling


def _spread(p: PoolProblem, weights: np.ndarray) -> np.ndarray:
    """``dx[p] = Σ_{o, t : s·o − lo + r·t = p} weights[o]``: every tap of every window."""
    c, s = p.x.shape[1], p.spec
    ones = np.ones((c, 1, *s.kernel_size))
    full = full_transposed(weights.astype(np.float64), ones, c, s.stride, s.dilation)
    return crop_or_extend(full, [lo for lo, _ in s.padding], p.x.shape[2:])


def _window_sums(p: PoolProblem) -> np.ndarray:
    divisor = avg_pool_divisor(p.x.shape[2:], p.spec)
    return reference_forward(p, "avg_pool") * divisor


def _route(p: PoolProblem, start: Callable[[np.ndarray, int, int, int], np.ndarray],
           tap: Callable[[PoolProblem], tuple[np.ndarray, ...]], overwrite: bool = False
           ) -> np.ndarray:
    """Route δ_o to position ``start(o, s, lo, d) + r·tap`` per dim, where inside the input."""
    s = p.spec
    out = s.output_size(p.x.shape[2:])
    taps = tap(p)
    grids = np.meshgrid(*(np.arange(o) for o in out), indexing="ij")
    positions = [start(g, st, lo, d) + r * t for d, (g, st, (lo, _), r, t) in
                 enumerate(zip(grids, s.stride, s.padding, s.dilation, taps))]
    n, c = p.x.shape[:2]
    dx = np.zeros((n * c, int(np.prod(p.x.shape[2:]))))
    inside = np.all([(q >= 0) & (q < size) for q, size in zip(positions, p.x.shape[2:])],
                    axis=0)
    flat = np.ravel_multi_index(tuple(np.where(inside, q, 0) for q in positions),
                                p.x.shape[2:])
    delta = p.dy.reshape(n * c, *out).astype(np.float64)
    for row in range(n * c):
        keep, where, value = inside[row], flat[row], delta[row]
        if overwrite:  # windows in row-major order, the last writer wins
            order = np.flatnonzero(keep)
            dx[row, where.ravel()[order]] = value.ravel()[order]
        else:
            np.add.at(dx[row], where[keep], value[keep])
    return dx.reshape(p.x.shape)


def _argmax_taps(p: PoolProblem) -> tuple[np.ndarray, ...]:
    """Per dim, the tap index of each window's first maximum, (N·C, O…) each."""
    s = p.spec
    starts = pool_window_starts(p.x.shape[2:], s)
    padded = [(lo, max(hi, int(st[-1]) + lo + r * (k - 1) + 1 - size - lo))
              for (lo, hi), st, r, k, size in zip(s.padding, starts, s.dilation,
                                                  s.kernel_size, p.x.shape[2:])]
    xp = np.pad(p.x.astype(np.float64), ((0, 0), (0, 0), *padded), constant_values=-np.inf)
    out = s.output_size(p.x.shape[2:])
    values = []
    for t in np.ndindex(*s.kernel_size):
        index = tuple(slice(r * ti, r * ti + st * (o - 1) + 1, st)
                      for r, ti, st, o in zip(s.dilation, t, s.stride, out))
        values.append(xp[_spatial(index)])
    best = np.argmax(np.stack(values), axis=0)
    n, c = p.x.shape[:2]
    return tuple(a.reshape(n * c, *out) for a in np.unravel_index(best, s.kernel_size))


def _standard(o: np.ndarray, s: int, lo: int, d: int) -> np.ndarray:
    return s * o - lo


MAX = (
    Mistake("max-pool-gradient-to-every-window-entry", "max_pool",
            "dL/dx gives δ to every entry of each window, not only to its maximum",
            "route δ only to the window's argmax (the first maximum): dx[s·o − lo + r·t*] += δ",
            lambda p: {"dx": _spread(p, p.dy)}),
    Mistake("max-pool-gradient-to-a-fixed-window-position", "max_pool",
            "dL/dx gives δ to the same position of every window (its first tap) instead of "
            "to the window's maximum", "find each window's argmax t* and route to s·o − lo + r·t*",
            lambda p: {"dx": _route(p, _standard, lambda q: tuple(
                np.zeros((q.x.shape[0] * q.x.shape[1], *q.dy.shape[2:]), dtype=int)
                for _ in q.spec.kernel_size))}),
    Mistake("max-pool-overwrite-instead-of-accumulate", "max_pool",
            "dL/dx assigns δ where windows overlap (dx[p] = δ) instead of accumulating: a "
            "position that is the maximum of two windows keeps only one window's δ",
            "accumulate: np.add.at(dx, positions, δ) (dx[positions] += δ drops repeats too)",
            lambda p: {"dx": _route(p, _standard, _argmax_taps, overwrite=True)}),
    Mistake("max-pool-stride-ignored-in-the-routing", "max_pool",
            "dL/dx routes window o's δ to o − lo + r·t* instead of s·o − lo + r·t*: the "
            "stride is ignored where δ goes back", "route to s·o − lo + r·t*",
            lambda p: {"dx": _route(p, lambda o, s, lo, d: o - lo, _argmax_taps)}),
    Mistake("max-pool-padding-offset-in-the-routing", "max_pool",
            "dL/dx routes window o's δ to s·o + r·t*, a position in the padded input, without "
            "subtracting the padding lo", "route to s·o − lo + r·t* (or crop dx_pad by lo)",
            lambda p: {"dx": _route(p, lambda o, s, lo, d: s * o, _argmax_taps)}),
)


def _divided(p: PoolProblem, divisor: np.ndarray) -> Arrays:
    """Average pooling with another divisor: y = sums / divisor, dx = spread(δ / divisor)."""
    return {"y": _window_sums(p) / divisor, "dx": _spread(p, p.dy / divisor)}


def _with_pad_rule(include: bool) -> Callable[[PoolProblem], Arrays]:
    def predict(p: PoolProblem) -> Arrays:
        spec = replace(p.spec, count_include_pad=include)
        return _divided(p, avg_pool_divisor(p.x.shape[2:], spec).astype(np.float64))
    return predict


def _first_kernel_size(p: PoolProblem) -> Arrays:
    """Divide every window by K[0]."""
    return _divided(p, np.full(p.dy.shape[2:], float(p.spec.kernel_size[0])))


def _k_differs(p: PoolProblem) -> bool:
    """K[0] and ∏K differ: where "avg-pool-k-instead-of-prod-k" is itself, not another
    mistake's numbers."""
    return int(np.prod(p.spec.kernel_size)) != p.spec.kernel_size[0]


def _full_size(p: PoolProblem) -> Arrays:
    if not p.spec.count_include_pad:
        return {}
    return _divided(p, np.full(p.dy.shape[2:], float(np.prod(p.spec.kernel_size))))


AVG = (
    Mistake("avg-pool-padding-never-counted-in-the-divisor", "avg_pool",
            "the divisor counts only the window's input positions although count_include_pad "
            "is set", "with count_include_pad, divide by the window's positions inside the "
            "padded input [−lo, S + hi)", _with_pad_rule(False)),
    Mistake("avg-pool-padding-counted-in-the-divisor", "avg_pool",
            "the divisor counts the window's padding positions although count_include_pad "
            "is off", "without count_include_pad, divide by the window's positions inside "
            "the input [0, S)", _with_pad_rule(True)),
    Mistake("avg-pool-k-instead-of-prod-k", "avg_pool",
            "the divisor is the first kernel size K instead of the window's size ∏K",
            "divide by the product of the kernel sizes (less what the window leaves out)",
            _first_kernel_size, _k_differs),
    Mistake("avg-pool-partial-windows-divided-by-the-full-size", "avg_pool",
            "ceil_mode's partial windows, which reach past the padded input, are divided by "
            "the full window size ∏K", "count only the taps inside [−lo, S + hi) "
            "(count_include_pad) for the last, partial windows", _full_size),
)

MISTAKES = {"conv_transpose": TRANSPOSED, "max_pool": MAX, "avg_pool": AVG}


# --------------------------------------------------------------------------- explanation


def _wide_reference(problem: FamilyProblem, family: str) -> Arrays:
    wide = widened(problem)
    out = {"y": reference_forward(wide, family)}
    for name, value in zip(GRADIENTS[family], reference_backward(wide, family)):
        if value is not None:
            out[name] = value
    return out


def family_diagnoses(problem: FamilyProblem, family: str, user: Arrays,
                     reference: Arrays, bounds: Arrays, dtype: np.dtype) -> list[Diagnosis]:
    """Every catalogue mistake whose prediction the user's wrong arrays match (module notes)."""
    wide = widened(problem)
    found = []
    for mistake in MISTAKES[family]:
        predicted = mistake.predict(wide)
        for name in ("y", *GRADIENTS[family]):
            if name not in predicted or name not in user:
                continue
            m, r, u = predicted[name], reference[name], user[name]
            slack = 4 * bounds[name] + gamma(64, dtype) * (np.abs(m) + np.abs(r))
            if (np.all(error_over_bound(u - m, slack) <= 1)
                    and np.any(error_over_bound(m - r, slack) > 1)):
                found.append(Diagnosis(mistake.name, name, mistake.sentence, mistake.fix,
                                       family=family))
                break
    return found


def _localisation(name: str, user: np.ndarray, expected: np.ndarray,
                  bound: np.ndarray) -> Localisation:
    error = np.abs(user.astype(np.complex128) - expected)
    ratio = error_over_bound(error, bound)
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    wrong = int(np.count_nonzero(ratio > 1))
    return Localisation(name, tuple(int(i) for i in worst), float(np.real(user[worst])),
                        float(np.real(expected[worst])), float(error[worst]),
                        float(np.broadcast_to(bound, ratio.shape)[worst]), float(ratio[worst]),
                        wrong, int(ratio.size), ())


def explain_family(problem: FamilyProblem, family: str, report: Any) -> Explanation:
    """Explain a failed family :class:`LayerReport`: wrong arrays, the mistake named, where."""
    gradients = getattr(report, "gradients", None) or ()
    user: Arrays = {n: np.asarray(v) for n, v in zip(GRADIENTS[family], gradients)
                    if v is not None}
    if getattr(report, "y", None) is not None:
        user["y"] = np.asarray(report.y)
    reference = _wide_reference(problem, family)
    bounds = {**analytic_bounds(problem, family), "y": forward_bound(problem, family)}
    wrong = tuple(n for n in ("y", *GRADIENTS[family]) if n in user and np.any(
        error_over_bound(user[n] - reference[n], bounds[n]) > 1))
    diagnoses = tuple(family_diagnoses(problem, family, user, reference, bounds,
                                       problem.dtype))
    localisations = tuple(_localisation(n, user[n], reference[n], bounds[n]) for n in wrong)
    heatmaps = tuple((n, text_heatmap(np.abs(user[n] - reference[n]), bounds[n]))
                     for n in wrong if user[n].ndim >= 3)
    failed = sorted({r.check for r in getattr(report, "results", ()) if not r.passed})
    if diagnoses:
        headline = diagnoses[0].sentence
    elif wrong:
        loc = localisations[0]
        headline = (f"{LABEL[wrong[0]]} is wrong in {loc.wrong} of {loc.total} entries; it "
                    "matches none of the named mistakes of this family")
    else:
        headline = (f"your arrays agree with the reference formulas, but the "
                    f"{' and '.join(failed)} check failed against your own forward")
    kind = family.replace("_", " ")
    witnesses = ("your forward disagrees with the reference " + kind
                 if "y" in wrong else "your forward matches the reference " + kind)
    if [n for n in wrong if n != "y"]:
        witnesses += "; " + " and ".join(LABEL[n] for n in wrong if n != "y") + \
            (" disagrees" if len([n for n in wrong if n != "y"]) == 1 else " disagree") + \
            " with the reference formulas"
    if failed:
        witnesses += f"; failed checks: {', '.join(failed)}"
    arrays = {n: (user[n], reference[n], np.broadcast_to(bounds[n], user[n].shape))
              for n in wrong}
    return Explanation(headline, witnesses, wrong, diagnoses, localisations, heatmaps,
                       arrays)


def explain_family_search(problem: FamilyProblem, family: str, report: Any,
                          seen: list[tuple[Any, Exception]], tries: int = 30) -> Explanation:
    """The minimal failure explained, its name chosen by the whole search.

    On a small configuration several mistakes can compute the same numbers (in 1-d, "K instead
    of ∏K" divides like "padding counted" does).  Every failure the search met (smallest
    first, at most ``tries``) votes for the mistakes that match it.  The mistake that explains
    the most of them leads, provided its confusion applies to one of them
    (:attr:`Mistake.applies`); the minimal configuration's own order breaks ties.
    """
    e = explain_family(problem, family, report)
    votes: Counter[str] = Counter(d.name for d in e.diagnoses)
    known = {d.name: d for d in e.diagnoses}
    applies = {m.name: m.applies for m in MISTAKES[family]}
    visible = {d.name for d in e.diagnoses if applies[d.name](widened(problem))}
    examined = 1
    for other, error in seen[:tries]:
        result = getattr(error, "result", None)
        if other is problem or result is None or not hasattr(result, "gradients"):
            continue
        examined += 1
        found = explain_family(other, family, result).diagnoses
        votes.update({d.name for d in found})
        known.update({d.name: d for d in found if d.name not in known})
        visible.update(d.name for d in found if applies[d.name](other))
    ranked = [name for name in votes if name in visible] or list(votes)
    if not ranked:
        return e
    best = max(ranked, key=lambda name: votes[name])
    if e.diagnoses and best == e.diagnoses[0].name:
        return e
    lead = known[best]
    mine = e.diagnoses[0].name if e.diagnoses else "no named mistake"
    headline = (f"{lead.sentence} (it explains {votes[best]} of the {examined} failing "
                f"configurations examined; on the minimal one {mine} matches first)")
    rest = tuple(d for d in e.diagnoses if d.name != best)
    return Explanation(headline, e.witnesses, e.wrong, (lead, *rest), e.localisations,
                       e.heatmaps, e.arrays, e.facts)
