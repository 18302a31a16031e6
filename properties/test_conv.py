"""Mathematical facts about the reference convolution and its backward formulas."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, target
from hypothesis import strategies as st

from gradcheck.formulas.conv import conv_backward, conv_forward
from gradcheck.geometry.spec import output_shape
from gradcheck.judge.compare import compare_adjoint, compare_finite_differences
from gradcheck.strategies import conv_problems

ALL_DTYPES = ("float64", "float32")


@given(conv_problems(dtypes=ALL_DTYPES))
def test_output_shape_is_the_shape_conv_forward_returns(problem):
    p = problem
    y = conv_forward(p.x, p.w, p.b, p.spec)
    assert y.shape == output_shape(p.x.shape, p.w.shape, p.spec)
    assert y.dtype == p.dtype  # float32 in, float32 out: no silent upcast


@given(conv_problems(dtypes=ALL_DTYPES))
def test_gradient_shapes_and_dtypes_match_their_arguments(problem):
    p = problem
    dx, dw, db = conv_backward(p.dy, p.x, p.w, p.b, p.spec)
    assert (dx.shape, dw.shape) == (p.x.shape, p.w.shape)
    assert dx.dtype == dw.dtype == p.dtype
    assert (db is None) == (p.b is None)
    if db is not None:
        assert db.shape == p.b.shape


@given(conv_problems(dtypes=ALL_DTYPES), st.sampled_from(["central", "complex-step"]))
def test_analytic_gradients_equal_finite_differences(problem, method):
    result = compare_finite_differences(problem, method=method)
    target(result.ratio, label=f"error/bound, {method}")
    assert result.passed, result.summary()


@given(conv_problems(dtypes=("float64",)), st.sampled_from(["four-point", "richardson"]))
def test_higher_order_differences_agree_too(problem, method):
    result = compare_finite_differences(problem, method=method)
    assert result.passed, result.summary()


@given(conv_problems(dtypes=(*ALL_DTYPES, "complex128")), st.integers(0, 2**16))
def test_adjoint_identity_in_x_and_w(problem, seed):
    result = compare_adjoint(problem, seed=seed)
    target(result.ratio, label="adjoint error/bound")
    assert result.passed, result.summary()


@given(conv_problems(dims=1, max_stride=1, dilation=False, groups=False, padding="none",
                     max_channels=1, max_batch=1, bias=False))
def test_single_channel_forward_is_scipy_correlate_valid(problem):
    p = problem
    y = conv_forward(p.x, p.w, None, p.spec)
    expected = scipy.signal.correlate(p.x[0, 0], p.w[0, 0], mode="valid", method="direct")
    np.testing.assert_allclose(y[0, 0], expected, rtol=1e-12, atol=1e-12)


@given(conv_problems(dims=(2, 3), max_stride=1, dilation=False, groups=False,
                     padding="none", max_channels=1, max_batch=1, bias=False))
def test_single_channel_gradients_are_scipy_correlate_and_convolve(problem):
    """dw = x ⋆ δ (valid correlation); dx = δ * w (full convolution) — the seed formulas."""
    p = problem
    dx, dw, _ = conv_backward(p.dy, p.x, p.w, None, p.spec)
    x, w, delta = p.x[0, 0], p.w[0, 0], p.dy[0, 0]
    np.testing.assert_allclose(dw[0, 0], scipy.signal.correlate(x, delta, "valid", "direct"),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx[0, 0], scipy.signal.convolve(delta, w, "full", "direct"),
                               rtol=1e-10, atol=1e-12)


@given(conv_problems(dtypes=ALL_DTYPES))
def test_forward_is_bilinear_taylor_exact(problem):
    """L(x + h·u, w + h·v) − L − h(⟨∂L/∂x, u⟩ + ⟨∂L/∂w, v⟩) = h²·⟨δ, conv(u, v)⟩ exactly."""
    p = problem
    rng = np.random.default_rng(0)
    x, w, dy = (a.astype(np.float64) for a in (p.x, p.w, p.dy))
    u, v = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    dx, dw, _ = conv_backward(dy, x, w, None, p.spec)
    h = 0.5

    def loss(xx, ww):
        return float(np.sum(dy * conv_forward(xx, ww, None, p.spec)))

    residual = loss(x + h * u, w + h * v) - loss(x, w) - h * (np.sum(dx * u) + np.sum(dw * v))
    second = h**2 * float(np.sum(dy * conv_forward(u, v, None, p.spec)))
    scale = float(np.sum(np.abs(dy) * conv_forward(np.abs(x) + np.abs(u), np.abs(w) + np.abs(v),
                                                   None, p.spec)))
    assert abs(residual - second) <= 1e-12 * scale


def _torch_reference(problem):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    p = problem
    x = torch.tensor(p.x, requires_grad=True)
    w = torch.tensor(p.w, requires_grad=True)
    b = None if p.b is None else torch.tensor(p.b, requires_grad=True)
    pads = [amount for lo_hi in reversed(p.spec.padding) for amount in lo_hi]
    conv = (functional.conv1d, functional.conv2d, functional.conv3d)[p.spec.dims - 1]
    y = conv(functional.pad(x, pads), w, b, stride=p.spec.stride, dilation=p.spec.dilation,
             groups=p.spec.groups)
    y.backward(torch.tensor(p.dy))
    grads = (x.grad.numpy(), w.grad.numpy(), None if b is None else b.grad.numpy())
    return y.detach().numpy(), grads


@given(conv_problems(dtypes=("float64",)))
def test_agrees_with_torch_to_rounding(problem):
    """torch.nn.functional.conv1d/2d/3d + autograd; asymmetric padding through F.pad."""
    p = problem
    y_torch, grads_torch = _torch_reference(p)
    y = conv_forward(p.x, p.w, p.b, p.spec)
    np.testing.assert_allclose(y, y_torch, rtol=1e-10, atol=1e-12)
    for ours, theirs in zip(conv_backward(p.dy, p.x, p.w, p.b, p.spec), grads_torch):
        if ours is None:
            assert theirs is None
        else:
            np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
