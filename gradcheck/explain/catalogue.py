"""The catalogue of classic conv-backprop mistakes, generated from one description.

:data:`FAMILIES` is the description: each :class:`Family` is one mistake, with the gradients it
can hit and, per gradient, the *variants* it takes on a problem's geometry (which axes a flip
forgets, which offset a crop is off by, …), each a formula of :mod:`gradcheck.explain.mistaken`.
:data:`CATALOGUE` is the product: one :class:`Fingerprint` per (family, gradient), with a
stable name, a sentence and a fix.  :mod:`gradcheck.explain.fingerprints` matches users'
gradients against it under one rounding rule, and ``examples/catalogue.py`` builds one wrong
layer per entry from the same description.

Add a mistake by adding a family (or a gradient to one): everything else follows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from gradcheck.explain import mistaken as m
from gradcheck.explain.localize import LABELS
from gradcheck.geometry.problem import ConvProblem

Compute = Callable[[ConvProblem], "np.ndarray | None"]
Variant = tuple[str, Compute]  # (detail, the mistaken formula)
Variants = Callable[[ConvProblem, str], Iterable[Variant]]

GRADIENTS = ("y", "dx", "dw", "db")

#: The right formula of each array: the fix every entry of that gradient starts from.
FIX = {
    "dx": "dx = (δ↑s * w↑r)[lo : lo + S]: δ↑s padded by r·(K − 1), correlated with flip(w↑r)",
    "dw": "dw[f, c', t] = Σ_{n,i} δ↑s[n, f, i] · x_pad[n, c, i + r·t] (x_pad ⋆ δ↑s at lags r·t)",
    "db": "db[f] = Σ_{n,o} δ[n, f, o]",
    "y": "y[n, f, o] = b[f] + Σ_{c,t} w[f, c', t] · x_pad[n, c, s·o + r·t] (correlation)",
}


@dataclass(frozen=True)
class Family:
    """One mistake, described once for every gradient it can hit.

    ``names`` overrides the entry's name per gradient (default: the family's ``name``);
    ``sentence`` and ``fix`` are templates with ``{d}`` (the gradient's label) and ``{detail}``
    (the variant matched), ``fix`` appended to the gradient's right formula.  ``variants``
    gives the (detail, formula) pairs on a problem's geometry.  ``fallback`` entries are
    reported only when no other entry explains the gradient.
    """

    name: str
    gradients: tuple[str, ...]
    sentence: str
    fix: str
    variants: Variants | None = None
    names: dict[str, str] = field(default_factory=dict)
    fallback: bool = False


@dataclass(frozen=True)
class Fingerprint:
    """One catalogue entry: a family applied to one gradient (``dx``, ``dw``, ``db`` or ``y``).

    Exactly one of ``variants`` (the mistaken formulas on a problem) and ``fit`` (a prediction
    fitted to the user's gradient, in :mod:`gradcheck.explain.fingerprints`) is used.
    """

    name: str
    family: str
    gradient: str
    sentence: str
    fix: str
    variants: Callable[[ConvProblem], Iterable[Variant]] | None
    fallback: bool = False


# --------------------------------------------------------------------------- variants


def _one(detail: str, compute: Compute) -> list[Variant]:
    return [(detail, compute)]


def _scaled(factor: Callable[[ConvProblem], float]) -> Variants:
    """``c·R`` for a factor of the problem (no variant when c = 1)."""
    def variants(p: ConvProblem, g: str) -> list[Variant]:
        c = factor(p)
        return [] if c == 1 else _one("", lambda q: _times(c, m.right_answer(q, g)))

    return variants


def _times(c: float, a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else c * a


def _scaled_right(p: ConvProblem, gradient: str, c: float) -> np.ndarray | None:
    return _times(c, m.right_answer(p, gradient))


def _flipped_right(p: ConvProblem, gradient: str, axes: tuple[int, ...]) -> np.ndarray | None:
    return _flip(m.right_answer(p, gradient), axes)


def _transposed_right(p: ConvProblem, gradient: str, order: tuple[int, ...]) -> np.ndarray | None:
    return _transpose(m.right_answer(p, gradient), order)


def _spatial(p: ConvProblem) -> tuple[int, ...]:
    return tuple(range(p.spec.dims))


def _flip_none_or_all(p: ConvProblem, g: str) -> list[Variant]:
    if math.prod(p.w.shape[2:]) == 1:
        return []
    every = _spatial(p)
    if g == "dx":
        return _one("", lambda q: m.dx_flipped(q, ()))
    if g == "dw":
        return _one("", lambda q: _flip(m.right_answer(q, "dw"), every))
    return _one("", lambda q: m.y_flipped(q, every))


def _flip(a: np.ndarray | None, axes: tuple[int, ...]) -> np.ndarray | None:
    return None if a is None else np.flip(a, axis=tuple(2 + k for k in axes))


def _flip_partly(p: ConvProblem, g: str) -> list[Variant]:
    every = _spatial(p)
    found: list[Variant] = []
    for axes in m.subsets(every)[1:-1]:  # nonempty, not all
        text = f"flipped along {m.axes_text(axes)} only"
        if g == "dx":
            found.append((text, partial(m.dx_flipped, axes=axes)))
        elif g == "dw":
            found.append((text, partial(_flipped_right, gradient="dw", axes=axes)))
        else:
            found.append((text, partial(m.y_flipped, axes=axes)))
    return found


def _flip_everything(p: ConvProblem, g: str) -> list[Variant]:
    if p.w.shape[0] * p.w.shape[1] == 1:
        return []
    if g == "dx":
        return _one("", m.dx_flipped_everything)
    if g == "dw":
        return _one("", lambda q: _flip_all(m.right_answer(q, "dw")))
    return _one("", lambda q: m.y_flipped(q, None))


def _flip_all(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.flip(a)


def _transposed(p: ConvProblem, g: str) -> list[Variant]:
    found: list[Variant] = []
    for order in itertools.permutations(_spatial(p)):
        if order == tuple(sorted(order)):
            continue
        text = f"spatial axes in the order {order}"
        if g == "dx":
            found.append((text, partial(m.dx_transposed, order=order)))
        else:
            found.append((text, partial(_transposed_right, gradient=g, order=order)))
    return found


def _transpose(a: np.ndarray | None, order: tuple[int, ...]) -> np.ndarray | None:
    if a is None:
        return None
    moved = a.transpose(0, 1, *(2 + k for k in order))
    return moved if moved.shape == a.shape else None


def _geometry(which: str) -> Variants:
    """The stride ignored (δ dense), the dilation ignored (taps 1 apart), or the two swapped."""
    def variants(p: ConvProblem, g: str) -> list[Variant]:
        s, r, ones = p.spec.stride, p.spec.dilation, (1,) * p.spec.dims
        up, gap = {"stride": (ones, r), "dilation": (s, ones), "swapped": (r, s)}[which]
        if (up, gap) == (s, r):
            return []
        make = m.dx_geometry if g == "dx" else m.dw_geometry
        return _one("", lambda q: make(q, up, gap))

    return variants


def _crop_offsets(p: ConvProblem, g: str) -> list[Variant]:
    """dx cropped 1 or 2 positions early or late, along one spatial axis or all of them."""
    found: list[Variant] = []
    d = p.spec.dims
    choices = [(k,) * d for k in (1, -1, 2, -2)]
    if d > 1:
        choices += [tuple(k if i == a else 0 for i in range(d)) for a in range(d)
                    for k in (1, -1, 2, -2)]
    for offset in choices:
        starts = tuple(lo - k for (lo, _), k in zip(p.spec.padding, offset))
        how = ", ".join(f"{abs(k)} {'early' if k > 0 else 'late'}" if k else "right"
                        for k in offset)
        found.append((f"dx_pad read from {list(starts)} instead of lo ({how})",
                      partial(m.dx_cropped_at, starts=starts)))
    return found


def _crop_swapped(p: ConvProblem, g: str) -> list[Variant]:
    his = tuple(hi for _, hi in p.spec.padding)
    return [] if his == tuple(lo for lo, _ in p.spec.padding) else _one(
        "", lambda q: m.dx_cropped_at(q, his))


def _padding_ignored(p: ConvProblem, g: str) -> list[Variant]:
    if g == "dx":
        return _one("", lambda q: m.dx_cropped_at(q, (0,) * q.spec.dims))
    return _one("", m.dw_unpadded)


def _tail(p: ConvProblem, g: str) -> list[Variant]:
    return _one("", m.dx_tail if g == "dx" else m.dw_tail)


def _overwritten(p: ConvProblem, g: str) -> list[Variant]:
    return [("the last tap's write kept", lambda q: m.dx_overwritten(q, "tap")),
            ("the last window's write kept", lambda q: m.dx_overwritten(q, "window"))]


def _samples(which: str) -> Variants:
    def variants(p: ConvProblem, g: str) -> list[Variant]:
        n = p.x.shape[0]
        samples = {"first": np.arange(1), "last": np.arange(n - 1, n),
                   "dropped": np.arange(n - 1)}[which]
        return _one("", lambda q: m.samples_only(q, g, samples))

    return variants


def _channels_reshaped(p: ConvProblem, g: str) -> list[Variant]:
    return _one("", m.dx_channels_reshaped if g == "dx" else m.dw_channels_reshaped)


def _groups_crossed(p: ConvProblem, g: str) -> list[Variant]:
    return _one("", m.dx_groups_crossed if g == "dx" else m.dw_groups_crossed)


def _bias_per_tap(p: ConvProblem, g: str) -> list[Variant]:
    taps, c_g = math.prod(p.w.shape[2:]), p.w.shape[1]
    found: list[Variant] = []
    for times, text in ((taps, "once per kernel tap (∏K times)"),
                        (taps * c_g, "once per tap and input channel (C/G·∏K times)")):
        if g == "y":
            found.append((text, partial(m.y_bias_repeated, times=times)))
        elif times > 1:
            found.append((text, partial(_scaled_right, gradient="db", c=times)))
    return found


def _first_position(p: ConvProblem, g: str) -> list[Variant]:
    return _one("", m.db_first_position)


def _batch(p: ConvProblem) -> int:
    return p.x.shape[0]


def _positions(p: ConvProblem) -> int:
    return math.prod(p.dy.shape[2:])


# --------------------------------------------------------------------------- the description

_BACKWARD = ("dx", "dw", "db")

FAMILIES: tuple[Family, ...] = (
    Family("correlation-convolution-swapped", ("y", "dx", "dw"),
           "{d} matches {what}", "{why}", _flip_none_or_all,
           names={"y": "forward-convolves", "dx": "kernel-not-flipped", "dw": "dw-convolution"}),
    Family("kernel-flipped-partly", ("y", "dx", "dw"),
           "{d} matches the kernel (or its lags) {detail}: a flip over the wrong axes",
           "; flip(k)[t] = k[K − 1 − t] reverses every spatial axis, and dx alone has it",
           _flip_partly),
    Family("kernel-flipped-over-channels", ("y", "dx", "dw"),
           "{d} matches np.flip over every axis of the kernel: filters and channels reversed "
           "as well as the taps", "; flip the spatial axes only: np.flip(w, axis=(2, …))",
           _flip_everything),
    Family("kernel-transposed", ("dx", "dw"),
           "{d} matches the kernel's spatial axes transposed ({detail}): rot180 is not a "
           "transpose", "; flip(w)[t] = w[K − 1 − t] keeps the axes' order", _transposed),
    Family("stride-ignored", ("dx", "dw"),
           "{d} matches δ used densely, not zero-inserted to δ↑s: the stride was ignored",
           "; δ↑s[s·o] = δ[o], zeros in between", _geometry("stride"),
           names={"dx": "stride-ignored-dx", "dw": "stride-ignored-dw"}),
    Family("dilation-ignored", ("dx", "dw"),
           "{d} matches the undilated kernel (taps 1 apart, not r): the dilation was ignored",
           "; taps and lags are r apart", _geometry("dilation"),
           names={"dx": "dilation-ignored", "dw": "dilation-ignored-dw"}),
    Family("stride-dilation-swapped", ("dx", "dw"),
           "{d} matches δ↑r with taps s apart: the stride and the dilation were swapped",
           "; δ is spread by the stride s, the taps by the dilation r", _geometry("swapped")),
    Family("padding-not-cropped-offset", ("dx",),
           "{d} matches {detail}: the padding was cropped at the wrong offset (as when the "
           "full convolution pads δ↑s by r·(K − 1) ± 1)", "; crop exactly lo", _crop_offsets),
    Family("padding-crop-swapped", ("dx",),
           "{d} matches dx_pad[hi : hi + S]: the padding was cropped with lo and hi swapped",
           "; the input starts after the lo leading zeros", _crop_swapped),
    Family("padding-ignored", ("dx", "dw"),
           "{d} matches {what}: the padding was ignored", "{why}", _padding_ignored),
    Family("stride-remainder-not-trimmed", ("dx", "dw"),
           "{d} matches {what}: the stride remainder (positions no window reaches) was not "
           "trimmed", "; the unreached tail stays 0 and is never read", _tail,
           names={"dx": "tail-not-zeroed"}),
    Family("overlap-overwritten", ("dx",),
           "{d} matches dx_pad written with = instead of += ({detail}): where windows "
           "overlap only one contribution survives", "; accumulate: dx_pad[s·o + r·t] += …",
           _overwritten),
    Family("batch-averaged", _BACKWARD,
           "{d} is the right gradient divided by the batch size N: averaged over the batch "
           "instead of summed", "; a loss that averages puts the 1/N into δ already",
           _scaled(lambda p: 1 / _batch(p))),
    Family("first-sample-only", _BACKWARD,
           "{d} takes only the first sample of the batch into account", "; sum over every n",
           _samples("first")),
    Family("last-sample-only", _BACKWARD,
           "{d} takes only the last sample into account: overwritten (=) in a loop over the "
           "batch instead of accumulated (+=)", "; accumulate over every n", _samples("last")),
    Family("last-sample-dropped", _BACKWARD,
           "{d} leaves out the last sample of the batch: range(N − 1), an off-by-one",
           "; sum over n = 0 … N − 1", _samples("dropped")),
    Family("bias-not-summed-spatially", ("db",),
           "{d} matches Σ_n mean_o δ: averaged over the output positions instead of summed "
           "(a shared parameter sums its uses)", "", _scaled(lambda p: 1 / _positions(p))),
    Family("bias-averaged", ("db",),
           "{d} matches mean_{n,o} δ: averaged over the batch and the positions instead of "
           "summed", "", _scaled(lambda p: 1 / (_batch(p) * _positions(p)))),
    Family("bias-first-position-only", ("db",),
           "{d} matches Σ_n δ[n, f, 0]: summed over the batch, the output positions forgotten",
           "", _first_position),
    Family("sign-flipped", GRADIENTS,
           "{d} is the right one negated: the descent step's minus sign was folded in",
           "; the optimiser subtracts", _scaled(lambda p: -1)),
    Family("scaled-by-two", GRADIENTS,
           "{d} is twice the right one: a factor 2 (as from d(y²)/dy) applied although δ "
           "already is dL/dy", "; no factor, the layer is linear", _scaled(lambda p: 2)),
    Family("channels-swapped", ("dx", "dw"),
           "{d} matches the (filter, channel) axes of each group reshaped, not transposed: "
           "filter and channel axes are swapped", "; swap axes, never reshape across them",
           _channels_reshaped),
    Family("groups-crossed", ("dx", "dw"),
           "{d} pairs filter f with the channels of group f mod G (round-robin) instead of "
           "f // (F/G) (blocks): the groups were crossed", "; filter f belongs to group "
           "f // (F/G)", _groups_crossed),
    Family("bias-per-tap", ("y", "db"),
           "{d} matches the bias added {detail}, not once per output", "; y = b + Σ w·x_pad: "
           "b once per output entry, db = Σ δ", _bias_per_tap),
    Family("all-zero", GRADIENTS,
           "{d} is zero everywhere (to rounding), where the right one is not: never written, "
           "or written to a copy", "", lambda p, g: _one("", lambda q: _zero(q, g))),
    Family("constant-scale", GRADIENTS,
           "{d} is a constant multiple of the right one: c = {detail}", "", fallback=True),
    Family("precision-loss", _BACKWARD,
           "{d} errs like the rounding noise of {detail}: computed in a lower precision than "
           "its inputs", "; in the inputs' precision", fallback=True),
)

#: Per (family, gradient): what the mistake computes and why it is wrong, where the family's
#: sentence depends on the gradient.
_WHAT = {
    ("correlation-convolution-swapped", "y"): (
        "b + x_pad * w (a true convolution, kernel flipped) instead of b + x_pad ⋆ w: the "
        "forward convolves", ""),
    ("correlation-convolution-swapped", "dx"): (
        "δ↑s ⋆ w↑r (correlation) instead of δ↑s * w↑r (convolution): the kernel was not "
        "flipped", ""),
    ("correlation-convolution-swapped", "dw"): (
        "x_pad * δ↑s (convolution: lags flipped) instead of x_pad ⋆ δ↑s (correlation)",
        "; no flip in dw"),
    ("padding-ignored", "dx"): ("dx_pad[0 : S], the padding never cropped off",
                                "; crop dx_pad[lo : lo + S]"),
    ("padding-ignored", "dw"): ("x ⋆ δ↑s with x unpadded", "; correlate x_pad, not x"),
    ("stride-remainder-not-trimmed", "dx"): (
        "δ↑s * w↑r aligned with the end of x_pad, not its start", ""),
    ("stride-remainder-not-trimmed", "dw"): (
        "x_pad ⋆ δ↑s with the windows aligned with the end of x_pad, not its start", ""),
}


def _zero(p: ConvProblem, g: str) -> np.ndarray | None:
    right = m.right_answer(p, g)
    return None if right is None else np.zeros_like(right)


def _entry(family: Family, g: str) -> Fingerprint:
    what, why = _WHAT.get((family.name, g), ("", ""))
    variants = None if family.variants is None else (
        lambda p, v=family.variants, g=g: v(p, g))
    return Fingerprint(
        family.names.get(g, family.name), family.name, g,
        family.sentence.replace("{d}", LABELS[g]).replace("{what}", what),
        FIX[g] + family.fix.replace("{why}", why), variants, family.fallback)


CATALOGUE: tuple[Fingerprint, ...] = tuple(
    _entry(family, g) for family in FAMILIES for g in family.gradients)
