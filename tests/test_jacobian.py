"""`gradcheck jacobian`: the Jacobians as matrices, their structure, Jᵀδ, the CLI and its errors."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.signal import convolve, correlate

from gradcheck import ConvSpec, InvalidArgument, conv_backward, conv_forward
from gradcheck.explain.jacobian import (
    input_jacobian,
    is_hankel,
    is_toeplitz,
    kernel_jacobian,
    toeplitz_structure,
)
from gradcheck.explain.jacobian_text import explain
from gradcheck.faces.jacobian_command import add_jacobian_parser
from gradcheck.strategies import conv_problems


def one_channel(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)[None, None]


# --- the matrices, by hand --------------------------------------------------------------------

HAND_WRITTEN = [
    pytest.param(
        [1, 2, 3, 4], [1, 0, -1], dict(),
        # ∂y/∂k[o, t] = x[o + t]: rows are the windows of x
        [[1, 2, 3],
         [2, 3, 4]],
        # ∂y/∂x[o, i] = k[i − o]: k slides one step per row
        [[1, 0, -1, 0],
         [0, 1, 0, -1]],
        id="1d-plain",
    ),
    pytest.param(
        [1, 2, 3, 4, 5, 6], [1, -1], dict(stride=2, padding=1, dilation=2),
        # x_pad = 0 1 2 3 4 5 6 0;  ∂y/∂k[o, t] = x_pad[2·o + 2·t]
        [[0, 2],
         [2, 4],
         [4, 6]],
        # ∂y/∂x[o, i] = k[(i + 1 − 2·o) / 2] where that is a tap
        [[0, -1, 0, 0, 0, 0],
         [0, 1, 0, -1, 0, 0],
         [0, 0, 0, 1, 0, -1]],
        id="1d-stride2-pad1-dil2",
    ),
]


@pytest.mark.parametrize(("x", "k", "geometry", "dy_dk", "dy_dx"), HAND_WRITTEN)
def test_jacobians_equal_the_hand_written_matrices(x, k, geometry, dy_dk, dy_dx):
    spec = ConvSpec.create(1, **geometry)
    x4, k4 = one_channel(x), one_channel(k)
    np.testing.assert_array_equal(kernel_jacobian(x4, spec, k4.shape), dy_dk)
    np.testing.assert_array_equal(input_jacobian(k4, spec, x4.shape), dy_dx)


def test_structure_predicates_accept_the_reference_and_reject_a_perturbation():
    spec = ConvSpec.create(1)
    x4, k4 = one_channel([1, 2, 3, 4, 5]), one_channel([2, -1, 3])
    J_k, J_x = kernel_jacobian(x4, spec, k4.shape), input_jacobian(k4, spec, x4.shape)
    assert is_hankel(J_k) and is_toeplitz(J_k[:, ::-1]) and is_toeplitz(J_x)
    assert not is_toeplitz(J_k)  # correlation convention: anti-diagonals, not diagonals
    for J, check in ((J_k, is_hankel), (J_x, is_toeplitz)):
        bent = J.copy()
        bent[1, 1] += 1e-3  # (1, 1) shares its (anti-)diagonal with (0, 2) or (0, 0)
        assert not check(bent)


def test_strided_dilated_2d_structure():
    spec = ConvSpec.create(2, stride=(2, 1), dilation=(1, 2), padding=((1, 0), (0, 2)))
    rng = np.random.default_rng(3)
    x4, k4 = rng.standard_normal((1, 1, 5, 4)), rng.standard_normal((1, 1, 2, 3))
    out = conv_forward(x4, k4, None, spec).shape[2:]
    J_k = kernel_jacobian(x4, spec, k4.shape)
    J_x = input_jacobian(k4, spec, x4.shape)
    assert is_hankel(J_k, spec.stride, spec.dilation, rows=out, cols=(2, 3))
    assert is_toeplitz(J_x, spec.stride, 1, rows=out, cols=(5, 4))
    assert not is_hankel(J_k, 1, 1, rows=out, cols=(2, 3))
    sentence, holds = toeplitz_structure(x4, k4, spec)
    assert holds and "x_pad[(2, 1)·o + (1, 2)·t]" in sentence


def test_toeplitz_structure_needs_one_channel():
    spec = ConvSpec.create(1)
    with pytest.raises(InvalidArgument, match="one sample, one channel, one filter"):
        toeplitz_structure(np.ones((1, 2, 4)), np.ones((1, 2, 2)), spec)


# --- Jᵀδ against closed forms and conv_backward (hypothesis) ---------------------------------

@st.composite
def one_channel_cases(draw, dims: int, uniform: bool = False):
    """A valid single-channel geometry by construction, with small integer values.

    ``uniform``: one stride, dilation and (lo, hi) padding for every axis, as the CLI takes them.
    """
    def per_axis(values):
        return (draw(values),) * dims if uniform else tuple(draw(values) for _ in range(dims))

    taps = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    dilation, stride = per_axis(st.integers(1, 3)), per_axis(st.integers(1, 3))
    padding = per_axis(st.tuples(st.integers(0, 2), st.integers(0, 2)))
    size = tuple(
        max(1, r * (k - 1) + 1 - lo - hi) + draw(st.integers(0, 3))
        for k, r, (lo, hi) in zip(taps, dilation, padding)
    )
    spec = ConvSpec(dims, stride, padding, dilation)
    out = spec.output_size(size, taps)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x, k, delta = (rng.integers(-4, 5, shape).astype(np.float64) for shape in (size, taps, out))
    return x, k, delta, spec


def upsample(a, factors):
    up = np.zeros(tuple((n - 1) * f + 1 for n, f in zip(a.shape, factors)))
    up[tuple(slice(None, None, f) for f in factors)] = a
    return up


@given(st.sampled_from([1, 2]).flatmap(one_channel_cases))
def test_transpose_times_delta_is_correlation_and_full_convolution(case):
    x, k, delta, spec = case
    x4, k4 = x[None, None], k[None, None]
    J_k, J_x = kernel_jacobian(x4, spec, k4.shape), input_jacobian(k4, spec, x4.shape)
    x_pad = np.pad(x, spec.padding)
    # (∂y/∂k)ᵀ δ = x_pad ⋆ δ↑s at lags r·t
    lags = correlate(x_pad, upsample(delta, spec.stride), mode="valid", method="direct")
    x_corr = lags[tuple(slice(0, r * (n - 1) + 1, r) for r, n in zip(spec.dilation, k.shape))]
    # (∂y/∂x)ᵀ δ = δ↑s * k↑r, cropped
    full = convolve(upsample(delta, spec.stride), upsample(k, spec.dilation), method="direct")
    dx_pad = np.zeros(x_pad.shape)
    dx_pad[tuple(slice(0, n) for n in full.shape)] = full
    d_conv = dx_pad[tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape, spec.padding))]
    dx, dw, _ = conv_backward(delta[None, None], x4, k4, None, spec)
    np.testing.assert_allclose((J_k.T @ delta.ravel()).reshape(k.shape), x_corr, atol=1e-12)
    np.testing.assert_allclose((J_x.T @ delta.ravel()).reshape(x.shape), d_conv, atol=1e-12)
    np.testing.assert_allclose(dw[0, 0], x_corr, atol=1e-12)
    np.testing.assert_allclose(dx[0, 0], d_conv, atol=1e-12)
    assert toeplitz_structure(x4, k4, spec)[1]


@given(conv_problems(dims=(1, 2), bias=False, max_batch=2, max_channels=2, max_groups=2))
def test_jacobians_of_batched_grouped_problems(problem):
    x, w, dy, spec = problem.x, problem.w, problem.dy, problem.spec
    J_k, J_x = kernel_jacobian(x, spec, w.shape), input_jacobian(w, spec, x.shape)
    y = conv_forward(x, w, None, spec).ravel()
    np.testing.assert_allclose(J_k @ w.ravel(), y, rtol=1e-12, atol=1e-12)  # y is linear in w
    np.testing.assert_allclose(J_x @ x.ravel(), y, rtol=1e-12, atol=1e-12)  # … and in x
    dx, dw, _ = conv_backward(dy, x, w, None, spec)
    np.testing.assert_allclose(J_k.T @ dy.ravel(), dw.ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(J_x.T @ dy.ravel(), dx.ravel(), rtol=1e-12, atol=1e-12)


@given(st.sampled_from([1, 2]).flatmap(lambda d: one_channel_cases(d, uniform=True)),
       st.integers(0, 2**16))
def test_explain_finds_every_identity(case, seed):
    x, k, _, spec = case
    text = explain(x, k, stride=spec.stride[0], padding=spec.padding[0],
                   dilation=spec.dilation[0], seed=seed)
    assert text.count("equal to rounding: yes") == 2
    assert "Verified entry by entry against x_pad and k: yes" in " ".join(text.split())


# --- explain: golden text and errors ---------------------------------------------------------

def test_explain_golden_matrices_and_answer():
    text = explain([1, 2, 3, 4], [1, 0, -1], delta=[1, -1])
    assert "\n".join([
        "∂y/∂k: shape (O, K) = (2, 3), rows y[o], columns k[t]",
        "           k[0]   k[1]   k[2]",
        "    y[0]      1      2      3",
        "    y[1]      2      3      4",
        "∂y/∂x: shape (O, S) = (2, 4), rows y[o], columns x[i]",
        "           x[0]   x[1]   x[2]   x[3]",
        "    y[0]      1      0     -1      0",
        "    y[1]      0      1      0     -1",
    ]) in text
    assert "δ = dL/dy (given):\n         1     -1" in text
    # x ⋆ δ = (1·1 − 2, 2 − 3, 3 − 4) and δ * k = (1, −1, −1, 1)
    assert "kernel: dL/dk = (∂y/∂k)ᵀ δ =\n        -1     -1     -1" in text
    assert "input:  dL/dx = (∂y/∂x)ᵀ δ =\n         1     -1     -1      1" in text
    assert text.count("equal to rounding: yes") == 2
    flat = " ".join(text.split())
    assert "a Hankel matrix of x" in flat and "a banded Toeplitz matrix of k" in flat
    assert "the linear map 'correlate with x'" in flat and "the 2×3 matrix above" in flat


def test_explain_2d_says_row_major():
    text = explain([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1, 0], [0, -1]])
    assert "row-major" in text and "k[0,0] k[0,1] k[1,0] k[1,1]" in text
    assert text.count("equal to rounding: yes") == 2


def test_explain_is_deterministic_in_the_seed():
    assert explain([1, 2, 3, 4], [1, 2], seed=5) == explain([1, 2, 3, 4], [1, 2], seed=5)
    assert "random small integers, seed 5" in explain([1, 2, 3, 4], [1, 2], seed=5)


BAD_EXPLAIN = [
    pytest.param(dict(input_values=[1, 2], kernel_values=[1, 2, 3]), "exceeds the padded input",
                 id="kernel-too-large"),
    pytest.param(dict(input_values=[1, 2, 3], kernel_values=[[1], [2]]), "kernel_values",
                 id="dims-differ"),
    pytest.param(dict(input_values=[1, np.nan], kernel_values=[1]), "finite", id="nan"),
    pytest.param(dict(input_values=[1, 2, 3], kernel_values=[1], delta=[1, 2]),
                 "shape of y", id="delta-shape"),
    pytest.param(dict(input_values=[1, 2], kernel_values=[1], seed=-1), "seed=-1",
                 id="seed-negative"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_EXPLAIN)
def test_explain_rejects_bad_arguments(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        explain(**kwargs)


# --- the CLI parser ---------------------------------------------------------------------------

def run(capsys, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="gradcheck")
    add_jacobian_parser(parser.add_subparsers(dest="command"))
    try:
        args = parser.parse_args(["jacobian", *argv])
        code = args.run(args)
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_prints_both_matrices_and_the_identities(capsys):
    code, out, err = run(capsys, "--input", "1,2,3,4", "--kernel", "1,0,-1")
    assert code == 0 and not err
    assert out.startswith("case: 1-d") and out == explain([1, 2, 3, 4], [1, 0, -1]) + "\n"
    assert "    y[0]      1      2      3" in out and "    y[0]      1      0     -1      0" in out
    assert out.count("equal to rounding: yes") == 2


def test_cli_2d_with_every_option(capsys):
    code, out, _ = run(capsys, "--input", "1,2,3;4,5,6;7,8,9", "--kernel", "1,0;0,-1",
                       "--stride", "2", "--padding", "0,1", "--dilation", "1",
                       "--delta", "1,2;3,4", "--seed", "3")
    assert code == 0
    assert "padding (0, 1)" in out and "δ = dL/dy (given)" in out
    assert out.count("equal to rounding: yes") == 2


BAD_CLI = [
    pytest.param(["--input", "1,a", "--kernel", "1"],
                 "--input='1,a': expected numbers separated by ','", id="not-a-number"),
    pytest.param(["--input", "1,2,", "--kernel", "1"], "--input='1,2,'", id="trailing-comma"),
    pytest.param(["--input", "1,inf", "--kernel", "1"], "expected finite numbers", id="inf"),
    pytest.param(["--input", "1,2;3", "--kernel", "1"], "every row needs as many numbers",
                 id="ragged-rows"),
    pytest.param(["--input", ",".join(["1"] * 26), "--kernel", "1"], "at most 25 numbers",
                 id="too-large"),
    pytest.param(["--input", "1,2", "--kernel", "1", "--stride", "0"],
                 "--stride=0: expected an integer >= 1", id="stride-zero"),
    pytest.param(["--input", "1,2", "--kernel", "1", "--dilation", "two"],
                 "--dilation='two': expected an integer", id="dilation-text"),
    pytest.param(["--input", "1,2", "--kernel", "1", "--padding", "-1"], "--padding='-1'",
                 id="padding-negative"),
    pytest.param(["--input", "1,2", "--kernel", "1", "--padding", "1,2,3"], "--padding='1,2,3'",
                 id="padding-three"),
    pytest.param(["--input", "1,2", "--kernel", "1", "--seed", "-1"], "--seed=-1",
                 id="seed-negative"),
    pytest.param(["--kernel", "1"], "--input", id="input-missing"),
    # combinations, reported by run_jacobian with the same exit code
    pytest.param(["--input", "1,2", "--kernel", "1,0,-1"],
                 "--kernel='1,0,-1' spans (3,) positions", id="kernel-too-large"),
    pytest.param(["--input", "1,2,3", "--kernel", "1,1", "--dilation", "3"],
                 "--kernel='1,1' spans (4,) positions (with --dilation=3)", id="dilated-too-large"),
    pytest.param(["--input", "1,2,3", "--kernel", "1;1"], "--kernel='1;1' is 2-d but --input is",
                 id="dims-differ"),
    pytest.param(["--input", "1,2,3", "--kernel", "1,1", "--delta", "1,2,3"],
                 "--delta='1,2,3': expected y's shape (2,)", id="delta-shape"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_CLI)
def test_cli_bad_values_exit_2_naming_the_flag(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and not out
    assert message in err
