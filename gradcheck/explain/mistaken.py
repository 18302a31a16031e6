"""The classic mistakes of hand-derived conv backprop, as formulas on a problem.

Each function computes what one mistake produces on a :class:`ConvProblem`, built from the
reference machinery of :mod:`gradcheck.formulas.conv` so that it reads like the wrong formula; it
returns None where the mistake is not applicable or cannot show (all strides 1 for a stride
mistake, a single tap for a flip).  :mod:`gradcheck.explain.fingerprints` matches users' gradients
against them.
"""

from __future__ import annotations

import math
import weakref
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
    zero_insert,
)
from gradcheck.geometry.problem import ConvProblem

Compute = Callable[[ConvProblem], "np.ndarray | None"]


# --------------------------------------------------------------------------- the right answers

#: The reference results of each live problem, computed once (problems are immutable).
_RIGHT: weakref.WeakKeyDictionary[ConvProblem, dict] = weakref.WeakKeyDictionary()


def right_answer(p: ConvProblem, gradient: str) -> np.ndarray | None:
    """The reference ``dx``, ``dw``, ``db`` (None without bias) or ``y`` on ``p``."""
    if p not in _RIGHT:
        dx, dw, db = conv_backward(p.dy, p.x, p.w, p.b, p.spec)
        _RIGHT[p] = {"dx": dx, "dw": dw, "db": db, "y": conv_forward(p.x, p.w, p.b, p.spec)}
    return _RIGHT[p][gradient]


def _dx_pad(p: ConvProblem, delta: np.ndarray, kernel: np.ndarray, gap: tuple[int, ...]):
    """``delta ⋆ kernel`` over the full range, written from the start of a zero x_pad.

    ``delta`` is padded by ``gap·(K − 1)`` on both sides and correlated with ``kernel`` (taps
    ``gap`` apart): with ``δ↑s``, ``flip(w)`` and ``r`` that is ``δ↑s * w↑r``.
    """
    margin = tuple((g * (k - 1),) * 2 for g, k in zip(gap, kernel.shape[2:]))
    full = grouped_correlation(pad(delta, margin), kernel, p.spec.groups, (1,) * len(gap), gap)
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(p.x.shape[2:], p.spec.padding))
    out = np.zeros(p.x.shape[:2] + padded, dtype=full.dtype)
    part = (slice(None), slice(None), *(slice(0, min(m, q)) for m, q in zip(full.shape[2:],
                                                                             padded)))
    out[part] = full[part]
    return out


def _delta_up(p: ConvProblem) -> np.ndarray:
    return zero_insert(p.dy, p.spec.stride)  # δ↑s


def _w_in(p: ConvProblem) -> np.ndarray:
    return swap_channels(p.w, p.spec.groups)  # (C, F/G, K…): the kernel seen from the input


def _right_dx_pad(p: ConvProblem) -> np.ndarray:
    return _dx_pad(p, _delta_up(p), flip(_w_in(p)), p.spec.dilation)  # δ↑s * w↑r


def _crop(dx_pad: np.ndarray, p: ConvProblem, starts: tuple[int, ...] | None = None):
    """``dx_pad[start : start + S]`` per spatial dim; the start defaults to the padding lo."""
    starts = tuple(lo for lo, _ in p.spec.padding) if starts is None else starts
    return dx_pad[(slice(None), slice(None),
                   *(slice(a, a + s) for a, s in zip(starts, p.x.shape[2:])))]


def shifted_crop(p: ConvProblem, offsets: tuple[int, ...]) -> np.ndarray:
    """``dx = dx_pad'[lo : lo + S]`` with ``dx_pad'[i] = dx_pad[i − offset]`` (zeros shifted in)."""
    return _crop(shift(_right_dx_pad(p), offsets, tuple(range(2, p.x.ndim))), p)


def _lags(p: ConvProblem, delta: np.ndarray) -> np.ndarray:
    """``T[c, f, t] = Σ_{n,i} delta[n, f, i] · x_pad[n, c, i + r·t]`` for every (c, f) pair."""
    x_pad = pad(p.x, p.spec.padding)
    table = grouped_correlation(x_pad.swapaxes(0, 1), delta.swapaxes(0, 1), 1,
                                p.spec.dilation, (1,) * p.spec.dims)
    return table[(slice(None), slice(None), *(slice(0, k) for k in p.w.shape[2:]))]


def _paired(p: ConvProblem, table: np.ndarray, partner: np.ndarray) -> np.ndarray:
    """``dw[f, c'] = T[g(f)·C/G + c', partner[f]]`` with ``g(f) = f // (F/G)``."""
    f, c_g = p.w.shape[:2]
    channels = (np.arange(f) // (f // p.spec.groups))[:, None] * c_g + np.arange(c_g)
    return table[channels, partner[:, None]]


# --------------------------------------------------------------------------- the mistakes


def kernel_not_flipped(p: ConvProblem) -> np.ndarray | None:
    """``dx = (δ↑s ⋆ w↑r)[lo : lo + S]``: correlation, the flip forgotten."""
    if math.prod(p.w.shape[2:]) > 1:
        return _crop(_dx_pad(p, _delta_up(p), _w_in(p), p.spec.dilation), p)
    return None


def stride_ignored_dx(p: ConvProblem) -> np.ndarray | None:
    """``dx = (δ * w↑r)[lo : lo + S]``: δ used densely, without the zeros of δ↑s."""
    if max(p.spec.stride) > 1:
        return _crop(_dx_pad(p, p.dy, flip(_w_in(p)), p.spec.dilation), p)
    return None


def dilation_ignored(p: ConvProblem) -> np.ndarray | None:
    """``dx = (δ↑s * w)[lo : lo + S]``: the undilated kernel, taps 1 apart."""
    if max(p.spec.dilation) > 1:
        return _crop(_dx_pad(p, _delta_up(p), flip(_w_in(p)), (1,) * p.spec.dims), p)
    return None


def kernel_transposed(p: ConvProblem) -> np.ndarray | None:
    """``dx = (δ↑s ⋆ flip(w↑r)ᵀ)[lo : lo + S]``, spatial axes reversed (square kernels, d >= 2)."""
    if p.spec.dims == 1 or len(set(p.w.shape[2:])) > 1:
        return None
    transposed = flip(_w_in(p)).transpose(0, 1, *reversed(range(2, p.w.ndim)))
    return _crop(_dx_pad(p, _delta_up(p), transposed, p.spec.dilation), p)


def crop_swapped(p: ConvProblem) -> np.ndarray | None:
    """``dx = dx_pad[hi : hi + S]``."""
    if any(lo != hi for lo, hi in p.spec.padding):
        return _crop(_right_dx_pad(p), p, tuple(hi for _, hi in p.spec.padding))
    return None


def tail_not_zeroed(p: ConvProblem) -> np.ndarray | None:
    """``dx_pad[P − len : P] = δ↑s * w↑r``: aligned with the end, i.e. shifted by the tail τ."""
    return shifted_crop(p, unreached_tail(p)) if any(unreached_tail(p)) else None


def dw_convolution(p: ConvProblem) -> np.ndarray | None:
    """``dw[t] = (x_pad ⋆ δ↑s)[r·(K − 1 − t)]``: the lags flipped."""
    return flip(right_answer(p, "dw")) if math.prod(p.w.shape[2:]) > 1 else None


def stride_ignored_dw(p: ConvProblem) -> np.ndarray | None:
    """``dw[f, c', t] = Σ_{n,o} δ[n, f, o] · x_pad[n, c, o + r·t]``: δ dense, not δ↑s."""
    if max(p.spec.stride) > 1:
        return _paired(p, _lags(p, p.dy), np.arange(p.w.shape[0]))
    return None


def groups_crossed(p: ConvProblem) -> np.ndarray | None:
    """``dw[g·F/G + j, c'] = (x_pad ⋆ δ↑s)[channel g·C/G + c', filter j·G + g]``."""
    f, groups = p.w.shape[0], p.spec.groups
    if groups in (1, f):
        return None
    rows = np.arange(f)
    round_robin = (rows % (f // groups)) * groups + rows // (f // groups)
    return _paired(p, _lags(p, _delta_up(p)), round_robin)


def channels_swapped(p: ConvProblem) -> np.ndarray | None:
    """Each group's ``dw`` block (F/G, C/G) transposed in memory, then reshaped back."""
    (f, c_g), groups = p.w.shape[:2], p.spec.groups
    if c_g == 1 or f == groups:
        return None
    blocks = right_answer(p, "dw").reshape(groups, f // groups, c_g, *p.w.shape[2:])
    return blocks.swapaxes(1, 2).reshape(p.w.shape)


def bias_mean_over_positions(p: ConvProblem) -> np.ndarray | None:
    """``db[f] = Σ_n mean_o δ[n, f, o]``."""
    if p.b is not None and math.prod(p.dy.shape[2:]) > 1:
        return p.dy.sum(axis=0).mean(axis=tuple(range(1, p.dy.ndim - 1)))
    return None


def forward_convolves(p: ConvProblem) -> np.ndarray | None:
    """``y = b + x_pad * w = b + x_pad ⋆ flip(w)``."""
    return conv_forward(p.x, flip(p.w), p.b, p.spec) if math.prod(p.w.shape[2:]) > 1 else None


def scaled(factor: Callable[[ConvProblem], float], gradient: str) -> Compute:
    """``c·R`` for the right gradient R and a factor of the problem (None when c = 1)."""
    def compute(p: ConvProblem) -> np.ndarray | None:
        right, c = right_answer(p, gradient), factor(p)
        return None if right is None or c == 1 else c * right

    return compute


