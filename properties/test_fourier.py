"""The Fourier witness: it agrees with the direct formulas within derived bounds, and has teeth."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, target
from hypothesis import strategies as st

from gradcheck.errors import InvalidArgument, LayerError
from gradcheck.formulas.conv import conv_backward, conv_forward, flip
from gradcheck.geometry.problem import ConvProblem
from gradcheck.geometry.spec import ConvSpec, output_shape
from gradcheck.judge.bounds import analytic_bounds
from gradcheck.strategies import conv_problems
from gradcheck.witnesses.fourier import (
    fourier_backward,
    fourier_error_bound,
    full_spec,
    transfer_function_check,
)

PROBLEMS = conv_problems(bias=False, dtypes=("float64", "float32"))


def direct_bounds(p: ConvProblem, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """γ_n · (backward on |δ|, |x|, |w|): the direct formulas' rounding, n terms per entry."""
    problem = p if w is None else ConvProblem(p.x, w, None, p.dy, p.spec)
    bound_dx, bound_dw, _ = analytic_bounds(problem)
    return bound_dx, bound_dw


def convolving_forward(x, w, b, spec):
    """Wrong: a true convolution (kernel flipped) instead of a cross-correlation."""
    return conv_forward(x, flip(w), b, spec)


def dilation_ignoring_forward(x, w, b, spec):
    """Wrong: taps at s·o + t instead of s·o + r·t (the output shape still honours r)."""
    undilated = ConvSpec(spec.dims, spec.stride, spec.padding, 1, spec.groups)
    y = conv_forward(x, w, b, undilated)
    return y[tuple(slice(0, m) for m in output_shape(x.shape, w.shape, spec))]


# --- Properties -----------------------------------------------------------------------------


@given(PROBLEMS)
def test_fourier_backward_agrees_with_the_direct_formulas(problem):
    p = problem
    f_dx, f_dw = fourier_backward(p.dy, p.x, p.w, p.spec)
    assert (f_dx.shape, f_dw.shape) == (p.x.shape, p.w.shape)
    assert f_dx.dtype == f_dw.dtype == np.float64
    e_dx, e_dw = fourier_error_bound(p.dy, p.x, p.w, p.spec)
    b_dx, b_dw = direct_bounds(p)
    d_dx, d_dw, _ = conv_backward(p.dy, p.x, p.w, None, p.spec)
    pairs = (("dx", f_dx, d_dx, e_dx + b_dx), ("dw", f_dw, d_dw, e_dw + b_dw))
    for name, ours, direct, bound in pairs:
        ratio = float(np.max(np.abs(ours - direct) / bound))
        target(ratio, label=f"{name}: |fourier − direct| / bound")
        assert ratio <= 1, f"{name}: error/bound = {ratio:.3g}"


@given(PROBLEMS, st.integers(0, 2**16))
def test_transfer_identity_holds_for_the_reference_forward(problem, seed):
    p = problem
    result = transfer_function_check(conv_forward, p.x, p.w, p.spec, seed=seed)
    target(result.worst_ratio, label="transfer: error / bound")
    assert result.passed, result.detail
    assert 0 < result.frequencies_used <= result.frequencies_total


@given(PROBLEMS)
def test_transfer_identity_rejects_convolution_instead_of_correlation(problem):
    p = problem
    assume(max(p.w.shape[2:]) > 1)  # a single tap is its own flip
    result = transfer_function_check(convolving_forward, p.x, p.w, p.spec)
    assert not result.passed and result.spectrum_ratio > 1, result.detail
    assert result.independence_ratio <= 1, result.detail  # still linear in the kernel


@given(PROBLEMS)
def test_transfer_identity_rejects_a_forward_that_ignores_dilation(problem):
    p = problem
    assume(any(r > 1 and k > 1 for r, k in zip(p.spec.dilation, p.w.shape[2:], strict=True)))
    result = transfer_function_check(dilation_ignoring_forward, p.x, p.w, p.spec)
    assert not result.passed and result.spectrum_ratio > 1, result.detail


@given(PROBLEMS)
def test_fourier_dx_tells_an_unflipped_kernel_apart(problem):
    """dx = δ↑s ⋆ w↑r (kernel not flipped) is the classic mistake; the witness must see it."""
    p = problem
    wrong_dx, _, _ = conv_backward(p.dy, p.x, flip(p.w), None, p.spec)  # flip(flip(w)) = w
    right_dx, _, _ = conv_backward(p.dy, p.x, p.w, None, p.spec)
    e_dx, _ = fourier_error_bound(p.dy, p.x, p.w, p.spec)
    b_right, b_wrong = direct_bounds(p)[0], direct_bounds(p, flip(p.w))[0]
    # Flipping can be invisible (one output window centred on a lone input sample): demand a
    # difference only where the two direct formulas are themselves clearly apart.
    assume(np.any(np.abs(wrong_dx - right_dx) > 2 * (e_dx + b_right + b_wrong)))
    f_dx, _ = fourier_backward(p.dy, p.x, p.w, p.spec)
    assert np.any(np.abs(f_dx - wrong_dx) > e_dx + b_wrong)


# --- Examples -------------------------------------------------------------------------------


def _small() -> ConvProblem:
    rng = np.random.default_rng(0)
    spec = ConvSpec(2, (2, 1), ((1, 0), (0, 2)), (2, 1), 2)
    x, w = rng.standard_normal((1, 4, 6, 5)), rng.standard_normal((2, 2, 2, 3))
    return ConvProblem(x, w, None, rng.standard_normal(output_shape(x.shape, w.shape, spec)), spec)


def test_full_spec_pads_by_the_dilated_extent_with_stride_one():
    spec = ConvSpec(2, (2, 3), ((1, 0), (0, 2)), (2, 1), 2)
    assert full_spec(spec, (4, 1, 3, 2)) == ConvSpec(2, 1, ((5, 4), (1, 3)), (2, 1), 2)


@pytest.mark.parametrize("name", ["dy", "x", "w"])
@pytest.mark.parametrize("function", [fourier_backward, fourier_error_bound])
def test_complex_arrays_are_rejected_by_name(function, name):
    p = _small()
    args = {"dy": p.dy, "x": p.x, "w": p.w}
    args[name] = args[name] * (1 + 1j)
    with pytest.raises(InvalidArgument, match=rf"^{name}\.dtype='complex128'"):
        function(args["dy"], args["x"], args["w"], p.spec)


@pytest.mark.parametrize("name", ["x", "w"])
def test_transfer_check_rejects_complex_arrays_by_name(name):
    p = _small()
    args = {"x": p.x, "w": p.w}
    args[name] = args[name] * (1 + 1j)
    with pytest.raises(InvalidArgument, match=rf"^{name}\.dtype='complex128'"):
        transfer_function_check(conv_forward, args["x"], args["w"], p.spec)


@pytest.mark.parametrize(
    ("forward", "reason"),
    [
        pytest.param(lambda x, w, b, spec: conv_forward(x, w, b, spec)[..., :-1], "wrong-shape",
                     id="drops-the-last-output"),
        pytest.param(lambda x, w, b, spec: 1 / 0, "raised", id="raises"),
    ],
)
def test_a_misbehaving_forward_is_a_layer_error(forward, reason):
    p = _small()
    with pytest.raises(LayerError) as info:
        transfer_function_check(forward, p.x, p.w, p.spec)
    assert info.value.reason == reason
