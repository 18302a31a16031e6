"""A convolution layer in the cs231n assignment convention, correct, and one wrong variant.

The convention (Stanford CS231n, assignment 2)::

    out, cache = conv_forward_naive(x, w, b, conv_param)
    dx, dw, db = conv_backward_naive(dout, cache)

    x (N, C, H, W)    w (F, C, HH, WW)    b (F,)    out, dout (N, F, H', W')
    conv_param = {'stride': s, 'pad': p}
    H' = 1 + (H + 2p − HH) // s,  W' = 1 + (W + 2p − WW) // s

Two spatial dims, the same stride and the same symmetric padding for both, no dilation, no
groups, always a bias.  Written the typical vectorised way: a loop over the HH·WW kernel taps,
each tap one strided slice of the padded input and one channel contraction.  The backward is
the *adjoint* of that loop: each tap scatters ``dout · w[:, :, i, j]`` back onto the slice it
read from, which is the full convolution with the flipped kernel without writing the flip.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# What the convention covers, in the keys of a layer's ``supports``.
supports: dict[str, object] = {
    "dims": (2,),
    "padding": "symmetric",
    "uniform": True,  # one stride and one padding for both spatial dims
    "dilation": False,
    "groups": False,
    "bias": True,  # the functions always take a bias; for b = None an adapter passes zeros
    "dtypes": ("float32", "float64", "complex128"),
}

Cache = tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]


def _tap(i: int, j: int, stride: int, h_out: int, w_out: int) -> tuple[slice, ...]:
    """Index of ``x_pad[n, c, s·h + i, s·w + j]`` for all output positions (h, w)."""
    return (
        slice(None),
        slice(None),
        slice(i, i + stride * (h_out - 1) + 1, stride),
        slice(j, j + stride * (w_out - 1) + 1, stride),
    )


def conv_forward_naive(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any]
) -> tuple[np.ndarray, Cache]:
    """``out[n, f, h, w] = b[f] + Σ_{c, i, j} w[f, c, i, j] · x_pad[n, c, s·h + i, s·w + j]``.

    Parameters
    ----------
    x : (N, C, H, W)
    w : (F, C, HH, WW)
    b : (F,)
    conv_param : {'stride': s, 'pad': p}

    Returns
    -------
    out : (N, F, H', W')
    cache : (x, w, b, conv_param), for :func:`conv_backward_naive`
    """
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, H, W = x.shape
    _, _, HH, WW = w.shape
    h_out = 1 + (H + 2 * pad - HH) // stride
    w_out = 1 + (W + 2 * pad - WW) // stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((x.shape[0], w.shape[0], h_out, w_out), dtype=np.result_type(x, w, b))
    for i in range(HH):
        for j in range(WW):
            patch = x_pad[_tap(i, j, stride, h_out, w_out)]  # (N, C, H', W')
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])
    out += b[None, :, None, None]
    return out, (x, w, b, conv_param)


def conv_backward_naive(
    dout: np.ndarray, cache: Cache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of the loss with respect to x, w and b, given ``dout = dL/dout``.

    Returns
    -------
    dx : (N, C, H, W)
    dw : (F, C, HH, WW)
    db : (F,)

    Notes
    -----
    Per tap (i, j), with ``patch = x_pad[:, :, s·h + i, s·w + j]``::

        dw[f, c, i, j]                 = Σ_{n, h, w} dout[n, f, h, w] · patch[n, c, h, w]
        dx_pad[n, c, s·h + i, s·w + j] += Σ_f dout[n, f, h, w] · w[f, c, i, j]
        db[f]                          = Σ_{n, h, w} dout[n, f, h, w]

    and ``dx = dx_pad[:, :, p : p + H, p : p + W]``.  Positions no window reaches get nothing.
    """
    x, w, _, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, H, W = x.shape
    _, _, HH, WW = w.shape
    _, _, h_out, w_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros(x_pad.shape, dtype=np.result_type(dout, w))
    dw = np.zeros(w.shape, dtype=np.result_type(dout, x))
    for i in range(HH):
        for j in range(WW):
            tap = _tap(i, j, stride, h_out, w_out)
            dw[:, :, i, j] = np.einsum("nfhw,nchw->fc", dout, x_pad[tap])
            dx_pad[tap] += np.einsum("nfhw,fc->nchw", dout, w[:, :, i, j])
    dx = dx_pad[:, :, pad : pad + H, pad : pad + W]
    db = dout.sum(axis=(0, 2, 3))
    return np.ascontiguousarray(dx), dw, db


def conv_backward_wrong(
    dout: np.ndarray, cache: Cache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`conv_backward_naive` but with the kernel flipped in the scatter loop.

    The mistake: having read "dx = dout convolved with the kernel rotated by 180°", the author
    rotates the kernel, ``w[:, :, HH-1-i, WW-1-j]``, inside a loop that scatters each tap back
    to where it was read, which already *is* that convolution.  The flip is applied twice,
    so dx is ``dout`` correlated with the unflipped kernel.
    Right: scatter ``dout · w[:, :, i, j]`` with the tap's own weight.
    dw and db are right; dx is wrong whenever HH > 1 or WW > 1.
    """
    x, w, _, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, H, W = x.shape
    _, _, HH, WW = w.shape
    _, _, h_out, w_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros(x_pad.shape, dtype=np.result_type(dout, w))
    dw = np.zeros(w.shape, dtype=np.result_type(dout, x))
    for i in range(HH):
        for j in range(WW):
            tap = _tap(i, j, stride, h_out, w_out)
            dw[:, :, i, j] = np.einsum("nfhw,nchw->fc", dout, x_pad[tap])
            w_rot180 = w[:, :, HH - 1 - i, WW - 1 - j]  # MISTAKE: the loop already flips
            dx_pad[tap] += np.einsum("nfhw,fc->nchw", dout, w_rot180)
    dx = dx_pad[:, :, pad : pad + H, pad : pad + W]
    db = dout.sum(axis=(0, 2, 3))
    return np.ascontiguousarray(dx), dw, db


class Cs231nConv:
    """The correct cs231n functions as a gradcheck layer, with the convention's honest claim.

    This is what the README calls ``MyConv``: a user's own class with ``forward``, ``backward``
    and a ``supports`` that says what it handles (2-d, one stride and one symmetric padding
    for both dims, no dilation, no groups), so that fuzzing draws nothing else.
    """

    supports = supports

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: Any) -> np.ndarray:
        bias = np.zeros(w.shape[0], dtype=w.dtype) if b is None else b
        out, _ = conv_forward_naive(x, w, bias, _conv_param(spec))
        return out

    def backward(self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                 spec: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        bias = np.zeros(w.shape[0], dtype=w.dtype) if b is None else b
        _, cache = conv_forward_naive(x, w, bias, _conv_param(spec))
        dx, dw, db = conv_backward_naive(dy, cache)
        return dx, dw, None if b is None else db


def _conv_param(spec: Any) -> dict[str, int]:
    """``{'stride', 'pad'}`` of a uniform, symmetric ConvSpec (what ``supports`` promises)."""
    return {"stride": spec.stride[0], "pad": spec.padding[0][0]}
