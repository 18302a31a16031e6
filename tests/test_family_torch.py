"""The family's reference formulas equal torch's, forward and autograd backward, in float64.

Bounds, entrywise: two correct implementations of a sum of n products each lie within
``γ_n·Σ|aᵢ||bᵢ|`` of the exact value, hence within ``2·γ_n·Σ|aᵢ||bᵢ|`` of each other; the
magnitudes ``Σ|aᵢ||bᵢ|`` are our formulas applied to absolute values.  (Measured: the largest
difference relative to the largest entry is ~3e-14 for the transposed convolution and exactly 0
for pooling.)

Torch pads symmetrically; asymmetric (lo, hi) is compared through an equivalent: the transposed
convolution without padding, cropped by slicing; pooling of ``F.pad``-ed input (−∞ for max,
0 for average, which counts the padding as input: count_include_pad, floor mode).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck.floating import gamma
from gradcheck.formulas.conv_transpose import conv_transpose_backward, conv_transpose_forward
from gradcheck.formulas.pool import (
    avg_pool_backward,
    avg_pool_forward,
    max_pool_backward,
    max_pool_forward,
)
from gradcheck.harness.family_strategies import conv_transpose_problems, pool_problems

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _close(ours: np.ndarray, theirs, terms: int, magnitude: np.ndarray) -> None:
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape
    bound = 2 * gamma(terms, np.float64) * magnitude
    assert np.all(np.abs(ours - theirs) <= bound), float(np.max(np.abs(ours - theirs) - bound))


def _torch_conv_transpose(x, w, b, spec, symmetric: bool):
    d = spec.dims
    function = getattr(F, f"conv_transpose{d}d")
    if symmetric:
        return function(x, w, b, stride=spec.stride, padding=[lo for lo, _ in spec.padding],
                        output_padding=spec.output_padding, groups=spec.groups,
                        dilation=spec.dilation)
    # no padding, output padding max(0, a − hi) (< max(s, r)), then crop [lo : lo + O]
    extra = [max(0, a - hi) for a, (_, hi) in zip(spec.output_padding, spec.padding)]
    full = function(x, w, b, stride=spec.stride, padding=0, output_padding=extra,
                    groups=spec.groups, dilation=spec.dilation)
    sizes = spec.output_size(x.shape[2:], w.shape[2:])
    crop = tuple(slice(lo, lo + o) for (lo, _), o in zip(spec.padding, sizes))
    return full[(slice(None), slice(None), *crop)]


@pytest.mark.parametrize("padding", ["symmetric", "asymmetric"])
@given(data=st.data())
def test_conv_transpose_equals_torch(padding, data):
    p = data.draw(conv_transpose_problems(padding=padding))
    x, w = torch.tensor(p.x, requires_grad=True), torch.tensor(p.w, requires_grad=True)
    b = None if p.b is None else torch.tensor(p.b, requires_grad=True)
    y = _torch_conv_transpose(x, w, b, p.spec, padding == "symmetric")
    y.backward(torch.tensor(p.dy))

    c_g = p.x.shape[1] // p.spec.groups
    taps = int(np.prod(p.w.shape[2:]))
    abs_x, abs_w, abs_dy = np.abs(p.x), np.abs(p.w), np.abs(p.dy)
    abs_b = None if p.b is None else np.abs(p.b)
    _close(conv_transpose_forward(p.x, p.w, p.b, p.spec), y, c_g * taps + 1,
           conv_transpose_forward(abs_x, abs_w, abs_b, p.spec))
    dx, dw, db = conv_transpose_backward(p.dy, p.x, p.w, p.b, p.spec)
    mag_x, mag_w, mag_b = conv_transpose_backward(abs_dy, abs_x, abs_w, abs_b, p.spec)
    _close(dx, x.grad, p.w.shape[1] * taps, mag_x)
    _close(dw, w.grad, p.x.shape[0] * int(np.prod(p.x.shape[2:])), mag_w)
    if b is not None:
        _close(db, b.grad, p.dy.shape[0] * int(np.prod(p.dy.shape[2:])), mag_b)


def _torch_pool(kind: str, x, spec, symmetric: bool):
    d = spec.dims
    if symmetric:
        padding = [lo for lo, _ in spec.padding]
    else:
        pads = [amount for pair in reversed(spec.padding) for amount in pair]
        x = F.pad(x, pads, value=-np.inf if kind == "max" else 0.0)
        padding = 0
    if kind == "max":
        return getattr(F, f"max_pool{d}d")(x, spec.kernel_size, spec.stride, padding,
                                           spec.dilation, ceil_mode=spec.ceil_mode)
    return getattr(F, f"avg_pool{d}d")(x, spec.kernel_size, spec.stride, padding,
                                       ceil_mode=spec.ceil_mode,
                                       count_include_pad=spec.count_include_pad)


@pytest.mark.parametrize("padding", ["symmetric", "asymmetric"])
@pytest.mark.parametrize("kind", ["max", "avg"])
@given(data=st.data())
def test_pooling_equals_torch(kind, padding, data):
    # torch's average pooling has no dilation
    p = data.draw(pool_problems(kind=kind, padding=padding, dilation=kind == "max"))
    spec = p.spec
    if padding == "asymmetric":  # the F.pad equivalent holds in floor mode, padding counted
        spec = replace(spec, ceil_mode=False, count_include_pad=True)
    x = torch.tensor(p.x, requires_grad=True)
    y = _torch_pool(kind, x, spec, padding == "symmetric")
    dy = np.random.default_rng(0).standard_normal(tuple(y.shape))
    y.backward(torch.tensor(dy))

    taps = int(np.prod(spec.kernel_size))
    windows_per_position = int(np.prod([-(-e // s) for e, s in zip(spec.extent, spec.stride)]))
    if kind == "max":
        np.testing.assert_array_equal(max_pool_forward(p.x, spec), y.detach().numpy())
        _close(max_pool_backward(dy, p.x, spec), x.grad, windows_per_position,
               max_pool_backward(np.abs(dy), p.x, spec))
    else:
        _close(avg_pool_forward(p.x, spec), y, taps + 1, avg_pool_forward(np.abs(p.x), spec))
        _close(avg_pool_backward(dy, p.x, spec), x.grad, windows_per_position + 1,
               avg_pool_backward(np.abs(dy), p.x, spec))
