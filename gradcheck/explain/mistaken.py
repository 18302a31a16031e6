"""The classic mistakes of hand-derived conv backprop, as formulas on a problem.

Each function computes what one mistake produces on a :class:`ConvProblem`, built from the
reference machinery of :mod:`gradcheck.formulas.conv` so that it reads like the wrong formula; it
returns None where the mistake cannot be computed on that geometry (a kernel that does not fit
once the stride and dilation are swapped, say).  Whether a mistake is *visible* on a problem is
not decided here: :mod:`gradcheck.explain.fingerprints` compares each prediction with the right
gradient under the one rounding rule.  :mod:`gradcheck.explain.catalogue` says which of these
formulas belong to which family and gradient.

Notation: ``δ↑s`` the upstream gradient with s − 1 zeros between samples, ``w↑r`` the dilated
kernel, ``x_pad`` the zero-padded input, ``R`` the right gradient.  Every function is linear in
each of x, w, b, δ (or in R), so on ``|x|, |w|, |b|, |δ|`` it gives the Σ|terms| of its sums.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from gradcheck.explain.localize import shift, unreached_tail
from gradcheck.formulas.conv import (
    conv_backward,
    conv_forward,
    flip,
    grouped_correlation,
    pad,
    swap_channels,
    windows,
    zero_insert,
)
from gradcheck.geometry.problem import ConvProblem, remembered

Compute = Callable[[ConvProblem], "np.ndarray | None"]
Ints = tuple[int, ...]


# --------------------------------------------------------------------------- the right answers


def right_answers(p: ConvProblem) -> dict[str, np.ndarray | None]:
    """The reference ``dx``, ``dw``, ``db`` (None without bias) and ``y`` on ``p``.

    Remembered by content (:func:`gradcheck.geometry.problem.remembered`) and dtype, so the
    float64 cast an explanation makes of the same problem again and again is computed once.
    """
    def compute() -> dict[str, np.ndarray | None]:
        dx, dw, db = conv_backward(p.dy, p.x, p.w, p.b, p.spec)
        return {"dx": dx, "dw": dw, "db": db, "y": conv_forward(p.x, p.w, p.b, p.spec)}

    return remembered(p, f"explain: reference in {p.dtype}", compute)


def right_answer(p: ConvProblem, gradient: str) -> np.ndarray | None:
    """The reference ``dx``, ``dw``, ``db`` (None without bias) or ``y`` on ``p``."""
    return right_answers(p)[gradient]


# --------------------------------------------------------------------------- building blocks


def spatial(*slices: slice | int) -> tuple[slice | int, ...]:
    """Index keeping the batch and channel axes whole and indexing the spatial ones."""
    return (slice(None), slice(None), *slices)


def _ones(p: ConvProblem) -> Ints:
    return (1,) * p.spec.dims


def w_in(p: ConvProblem) -> np.ndarray:
    """``(C, F/G, K…)``: the kernel seen from the input channels, group by group."""
    return swap_channels(p.w, p.spec.groups)


def dx_pad_from(p: ConvProblem, delta: np.ndarray, kernel: np.ndarray, gap: Ints) -> np.ndarray:
    """``(delta ⋆ kernel)_full`` written from the start of a zero x_pad (the tail stays 0).

    ``delta`` is padded by ``gap·(K − 1)`` on both sides and correlated with ``kernel``
    (C, F/G, K…) with taps ``gap`` apart: with ``δ↑s``, ``flip(w_in)`` and the dilation r that
    is the right ``dx_pad = δ↑s * w↑r``.
    """
    margin = tuple((g * (k - 1),) * 2 for g, k in zip(gap, kernel.shape[2:]))
    full = grouped_correlation(pad(delta, margin), kernel, p.spec.groups, _ones(p), gap)
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(p.x.shape[2:], p.spec.padding))
    out = np.zeros(p.x.shape[:2] + padded, dtype=full.dtype)
    part = spatial(*(slice(0, min(m, q)) for m, q in zip(full.shape[2:], padded)))
    out[part] = full[part]
    return out


def dx_from(p: ConvProblem, delta: np.ndarray, kernel: np.ndarray, gap: Ints) -> np.ndarray:
    """``dx = dx_pad_from(…)[lo : lo + S]``."""
    return crop(dx_pad_from(p, delta, kernel, gap), p)


def crop(dx_pad: np.ndarray, p: ConvProblem, starts: Ints | None = None) -> np.ndarray:
    """``dx_pad[start : start + S]`` per spatial dim; the start defaults to the padding lo."""
    starts = tuple(lo for lo, _ in p.spec.padding) if starts is None else starts
    return dx_pad[spatial(*(slice(a, a + s) for a, s in zip(starts, p.x.shape[2:])))]


def right_dx_pad(p: ConvProblem) -> np.ndarray:
    """``δ↑s * w↑r`` over the whole of x_pad (the tail no window reaches is 0)."""
    return dx_pad_from(p, zero_insert(p.dy, p.spec.stride), flip(w_in(p)), p.spec.dilation)


def dw_from(p: ConvProblem, delta: np.ndarray, gap: Ints, x_pad: np.ndarray | None = None,
            offset: Ints | None = None) -> np.ndarray | None:
    """``dw[f, c', t] = Σ_{n,i} delta[n, f, i] · x_pad[n, c, offset + i + gap·t]``.

    None when the windows run past the end of x_pad (the formula cannot be evaluated there).
    With ``delta = δ↑s``, ``gap = r`` and no offset it is the right dw.
    """
    x_pad = pad(p.x, p.spec.padding) if x_pad is None else x_pad
    offset = (0,) * p.spec.dims if offset is None else offset
    length, taps = delta.shape[2:], p.w.shape[2:]
    if any(a + m + g * (k - 1) > q for a, m, g, k, q in
           zip(offset, length, gap, taps, x_pad.shape[2:])):
        return None
    x_pad = x_pad[spatial(*(slice(a, None) for a in offset))]
    lags = windows(x_pad, length, gap, _ones(p))
    lags = lags[spatial(*(slice(0, k) for k in taps))]  # (N, C, K…, L…)
    table = np.einsum("nckl,nfl->cfk", lags.reshape(*lags.shape[:2], math.prod(taps), -1),
                      delta.reshape(*delta.shape[:2], -1))  # (C, F, ∏K)
    return paired(p, table.reshape(*table.shape[:2], *taps), np.arange(p.w.shape[0]))


def paired(p: ConvProblem, table: np.ndarray, partner: np.ndarray) -> np.ndarray:
    """``dw[f, c'] = T[g(f)·C/G + c', partner[f]]`` with ``g(f) = f // (F/G)``."""
    f, c_g = p.w.shape[:2]
    channels = (np.arange(f) // (f // p.spec.groups))[:, None] * c_g + np.arange(c_g)
    return table[channels, partner[:, None]]


def round_robin(p: ConvProblem) -> np.ndarray:
    """``π(g·F/G + j) = j·G + g``: filter j·G + g put in group g (f mod G), not f // (F/G)."""
    f, groups = p.w.shape[0], p.spec.groups
    rows = np.arange(f)
    return (rows % (f // groups)) * groups + rows // (f // groups)


def subsets(axes: Ints) -> list[Ints]:
    """Every subset of ``axes``, smallest first."""
    return [c for k in range(len(axes) + 1) for c in itertools.combinations(axes, k)]


def axes_text(axes: Ints) -> str:
    return "spatial axis " + ", ".join(map(str, axes)) if len(axes) == 1 else (
        "spatial axes " + ", ".join(map(str, axes)) if axes else "no spatial axis")


# --------------------------------------------------------------------------- dx


def dx_flipped(p: ConvProblem, axes: Ints) -> np.ndarray:
    """dx with the kernel flipped along the spatial ``axes`` only (right: all of them)."""
    kernel = np.flip(w_in(p), axis=tuple(2 + a for a in axes)) if axes else w_in(p)
    return dx_from(p, zero_insert(p.dy, p.spec.stride), kernel, p.spec.dilation)


def dx_flipped_everything(p: ConvProblem) -> np.ndarray:
    """dx with ``np.flip(w)``: filters and channels reversed as well as the taps."""
    kernel = swap_channels(np.flip(p.w), p.spec.groups)
    return dx_from(p, zero_insert(p.dy, p.spec.stride), kernel, p.spec.dilation)


def dx_transposed(p: ConvProblem, order: Ints) -> np.ndarray | None:
    """dx with the flipped kernel's spatial axes put in ``order`` (square kernels)."""
    kernel = flip(w_in(p)).transpose(0, 1, *(2 + a for a in order))
    if kernel.shape != w_in(p).shape:
        return None
    return dx_from(p, zero_insert(p.dy, p.spec.stride), kernel, p.spec.dilation)


def dx_geometry(p: ConvProblem, up: Ints, gap: Ints) -> np.ndarray:
    """``dx = (δ↑up * w↑gap)[lo : lo + S]``: the stride or the dilation replaced."""
    return dx_from(p, zero_insert(p.dy, up), flip(w_in(p)), gap)


def dx_cropped_at(p: ConvProblem, starts: Ints) -> np.ndarray | None:
    """``dx = dx_pad[start : start + S]`` with dx_pad read as zero outside itself."""
    offsets = tuple(lo - a for (lo, _), a in zip(p.spec.padding, starts))
    if all(k == 0 for k in offsets):
        return None
    return crop(shift(right_dx_pad(p), offsets, tuple(range(2, p.x.ndim))), p)


def dx_tail(p: ConvProblem) -> np.ndarray | None:
    """``δ↑s * w↑r`` aligned with the end of x_pad: shifted by the unreached tail τ."""
    tail = unreached_tail(p)
    if not any(tail):
        return None
    return crop(shift(right_dx_pad(p), tail, tuple(range(2, p.x.ndim))), p)


def dx_overwritten(p: ConvProblem, last: str) -> np.ndarray:
    """dx_pad written with ``=`` instead of ``+=``: where windows overlap, one write survives.

    The contribution of output o through tap t is ``Σ_f δ[n, f, o]·w[f, c', t]`` at
    ``i = s·o + r·t``; a loop over the taps (``last="tap"``) leaves the last tap's value, a loop
    over the windows (``last="window"``) the last window's (row-major order).
    """
    s, r, d = p.spec.stride, p.spec.dilation, p.spec.dims
    outs, taps = p.dy.shape[2:], p.w.shape[2:]
    kernel = w_in(p)  # (C, F/G, K…)
    groups, c = p.spec.groups, p.x.shape[1]
    delta = p.dy.reshape(p.dy.shape[0], groups, -1, math.prod(outs))  # (N, G, F/G, ∏O)
    kern = kernel.reshape(groups, c // groups, -1, math.prod(taps))  # (G, C/G, F/G, ∏K)
    contrib = np.einsum("ngfo,gcft->ngcot", delta, kern).reshape(
        p.dy.shape[0], c, math.prod(outs) * math.prod(taps))
    o_idx = np.array(list(np.ndindex(*outs))).reshape(-1, d) if outs else np.zeros((1, 0), int)
    t_idx = np.array(list(np.ndindex(*taps))).reshape(-1, d)
    pos = (np.asarray(s) * o_idx[:, None, :] + np.asarray(r) * t_idx[None, :, :])
    padded = tuple(q + lo + hi for q, (lo, hi) in zip(p.x.shape[2:], p.spec.padding))
    flat = np.ravel_multi_index(tuple(pos.reshape(-1, d).T), padded)  # order (o, t)
    rank = np.arange(flat.size).reshape(len(o_idx), len(t_idx))
    if last == "tap":
        rank = (np.arange(len(t_idx))[None, :] * len(o_idx) + np.arange(len(o_idx))[:, None])
    winner = np.full(math.prod(padded), -1)
    np.maximum.at(winner, flat, rank.reshape(-1))
    order = np.argsort(rank.reshape(-1))  # the (o, t) pair of each rank
    hit = winner >= 0
    out = np.zeros((*p.x.shape[:2], math.prod(padded)), dtype=contrib.dtype)
    out[..., hit] = contrib[..., order[winner[hit]]]
    return crop(out.reshape(*p.x.shape[:2], *padded), p)


def dx_groups_crossed(p: ConvProblem) -> np.ndarray | None:
    """dx with filter ``j·G + g`` paired with the kernel rows of group g (round-robin)."""
    if p.spec.groups in (1, p.w.shape[0]):
        return None
    delta = zero_insert(p.dy[:, round_robin(p)], p.spec.stride)
    return dx_from(p, delta, flip(w_in(p)), p.spec.dilation)


def dx_channels_reshaped(p: ConvProblem) -> np.ndarray:
    """dx with the kernel seen from the input by a *reshape* to (C, F/G, K…), not a transpose."""
    kernel = p.w.reshape(p.x.shape[1], p.w.shape[0] // p.spec.groups, *p.w.shape[2:])
    return dx_from(p, zero_insert(p.dy, p.spec.stride), flip(kernel), p.spec.dilation)


# --------------------------------------------------------------------------- dw


def dw_geometry(p: ConvProblem, up: Ints, gap: Ints) -> np.ndarray | None:
    """``dw[t] = Σ δ↑up[i] · x_pad[i + gap·t]``: the stride or the dilation replaced."""
    return dw_from(p, zero_insert(p.dy, up), gap)


def dw_unpadded(p: ConvProblem) -> np.ndarray | None:
    """``dw[t] = Σ δ↑s[i] · x[i + r·t]``: x not padded (zeros past its end)."""
    if not any(lo or hi for lo, hi in p.spec.padding):
        return None
    extra = tuple((0, lo + hi) for lo, hi in p.spec.padding)
    return dw_from(p, zero_insert(p.dy, p.spec.stride), p.spec.dilation, pad(p.x, extra))


def dw_tail(p: ConvProblem) -> np.ndarray | None:
    """``dw[t] = Σ δ↑s[i] · x_pad[τ + i + r·t]``: windows aligned with the end of x_pad."""
    tail = unreached_tail(p)
    if not any(tail):
        return None
    return dw_from(p, zero_insert(p.dy, p.spec.stride), p.spec.dilation, offset=tail)


def dw_groups_crossed(p: ConvProblem) -> np.ndarray | None:
    """``dw[g·F/G + j, c'] = (x_pad ⋆ δ↑s)[channel g·C/G + c', filter j·G + g]``."""
    if p.spec.groups in (1, p.w.shape[0]):
        return None
    delta = zero_insert(p.dy[:, round_robin(p)], p.spec.stride)
    return dw_from(p, delta, p.spec.dilation)


def dw_channels_reshaped(p: ConvProblem) -> np.ndarray:
    """Each group's dw block accumulated as (C/G, F/G) and reshaped, not transposed."""
    (f, c_g), groups = p.w.shape[:2], p.spec.groups
    right = right_answer(p, "dw")
    assert right is not None
    blocks = right.reshape(groups, f // groups, c_g, *p.w.shape[2:])
    return blocks.swapaxes(1, 2).reshape(p.w.shape)


# --------------------------------------------------------------------------- the batch


def sub_batch(p: ConvProblem, samples: np.ndarray) -> ConvProblem:
    """The problem restricted to the batch ``samples``."""
    return ConvProblem(p.x[samples], p.w, p.b, p.dy[samples], p.spec)


def samples_only(p: ConvProblem, gradient: str, samples: np.ndarray) -> np.ndarray | None:
    """The gradient with only the batch ``samples`` taken into account."""
    if len(samples) in (0, p.x.shape[0]):
        return None
    if gradient == "dx":
        keep = np.zeros(p.x.shape[0], dtype=bool)
        keep[samples] = True
        dx = right_answer(p, "dx")
        return None if dx is None else dx * keep.reshape(-1, *(1,) * (dx.ndim - 1))
    return right_answer(sub_batch(p, samples), gradient)


# --------------------------------------------------------------------------- bias and forward


def y_flipped(p: ConvProblem, axes: Ints | None) -> np.ndarray:
    """The forward with the kernel flipped along the spatial ``axes`` (None: ``np.flip(w)``)."""
    w = np.flip(p.w) if axes is None else np.flip(p.w, axis=tuple(2 + a for a in axes))
    return conv_forward(p.x, w, p.b, p.spec)


def y_bias_repeated(p: ConvProblem, times: int) -> np.ndarray | None:
    """``y + (times − 1)·b``: the bias added once per tap (or per tap and channel)."""
    if p.b is None or times == 1:
        return None
    return conv_forward(p.x, p.w, times * p.b, p.spec)


def db_first_position(p: ConvProblem) -> np.ndarray | None:
    """``db[f] = Σ_n δ[n, f, 0…]``: summed over the batch, the positions forgotten."""
    if p.b is None:
        return None
    return p.dy[spatial(*(0,) * p.spec.dims)].sum(axis=0)
