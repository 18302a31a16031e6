"""The cs231n max-pooling convention: ``max_pool_forward_naive`` / ``max_pool_backward_naive``.

``pool_param = {'pool_height', 'pool_width', 'stride'}``, no padding; the forward returns
``(out, cache)`` and the backward takes ``(dout, cache)``.  ``layer`` wraps the pair with
:func:`gradcheck.harness.layer.layer_from_cs231n_pool`::

    gradcheck fuzz examples/cs231n_pool.py:layer
    gradcheck fuzz examples/cs231n_pool.py:wrong_layer   # δ to every window entry
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck.harness.layer import layer_from_cs231n_pool


def max_pool_forward_naive(x: np.ndarray, pool_param: dict[str, int]) -> tuple[np.ndarray, Any]:
    """out[n, c, i, j] = max of the window at (stride·i, stride·j), pool_height × pool_width."""
    hh, ww, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    n, c, h, w = x.shape
    out = np.zeros((n, c, 1 + (h - hh) // stride, 1 + (w - ww) // stride), dtype=x.dtype)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = x[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww]
            out[:, :, i, j] = window.max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout: np.ndarray, cache: Any) -> np.ndarray:
    """dx: each window's dout to the (first) position of its maximum, accumulated."""
    x, pool_param = cache
    hh, ww, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros(x.shape, dtype=np.result_type(dout, x))
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww]
            flat = window.reshape(*window.shape[:2], -1).argmax(axis=2)
            mask = np.zeros((*window.shape[:2], hh * ww), dtype=bool)
            np.put_along_axis(mask, flat[..., None], True, axis=2)
            mask = mask.reshape(window.shape)
            dx[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww] += (
                mask * dout[:, :, i, j][:, :, None, None])
    return dx


def max_pool_backward_every_entry(dout: np.ndarray, cache: Any) -> np.ndarray:
    """Wrong: every entry of the window gets dout (as if each were the maximum)."""
    x, pool_param = cache
    hh, ww, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros(x.shape, dtype=np.result_type(dout, x))
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dx[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww] += (
                dout[:, :, i, j][:, :, None, None])  # MISTAKE: only the argmax gets dout
    return dx


layer = layer_from_cs231n_pool(max_pool_forward_naive, max_pool_backward_naive)
wrong_layer = layer_from_cs231n_pool(max_pool_forward_naive, max_pool_backward_every_entry)
