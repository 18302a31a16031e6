"""check_vjp / fuzz_vjp on functions that are not convolutions, kinks included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

from gradcheck import GradientMismatch, LayerError
from gradcheck.harness.vjp import NonDifferentiable, check_vjp, fuzz_vjp

NORMAL = st.integers(0, 2**32 - 1).map(lambda s: np.random.default_rng(s).standard_normal(8))


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def softmax_vjp(dy, x):
    s = softmax(x)
    return s * (dy - np.sum(dy * s))


def relu(x):
    return np.maximum(x, 0)


def relu_vjp(dy, x):
    return dy * (x > 0)


def max_pool(x):
    return x.reshape(-1, 2).max(axis=1)


def max_pool_vjp(dy, x):
    pairs = x.reshape(-1, 2)
    g = np.zeros_like(pairs)
    g[np.arange(len(pairs)), pairs.argmax(axis=1)] = dy
    return g.reshape(x.shape)


def matmul(a, b):
    return a @ b


def matmul_vjp(dy, a, b):
    return dy @ b.T, a.T @ dy


CORRECT = [
    pytest.param(softmax, softmax_vjp, id="softmax"),
    pytest.param(relu, relu_vjp, id="relu"),
    pytest.param(max_pool, max_pool_vjp, id="max-pool"),
]


@pytest.mark.parametrize(("f", "vjp"), CORRECT)
def test_correct_vjps_pass_fuzzing_without_false_alarms(f, vjp):
    fuzz_vjp(f, vjp, NORMAL, max_examples=150)


WRONG = [
    pytest.param(softmax, lambda dy, x: softmax(x) * dy, id="softmax-missing-term"),
    pytest.param(softmax, lambda dy, x: 1.0001 * softmax_vjp(dy, x), id="softmax-1e-4-scale"),
    pytest.param(relu, lambda dy, x: dy * (x >= -0.5), id="relu-wrong-threshold"),
    pytest.param(max_pool, lambda dy, x: np.repeat(dy, 2) / 2, id="max-pool-as-average"),
]


@pytest.mark.parametrize(("f", "vjp"), WRONG)
def test_wrong_vjps_are_caught(f, vjp):
    with pytest.raises(GradientMismatch):
        fuzz_vjp(f, vjp, NORMAL, max_examples=150)


def test_several_inputs():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    assert check_vjp(matmul, matmul_vjp, (a, b)).passed
    with pytest.raises(GradientMismatch):  # the classic: a @ dy instead of aᵀ @ dy
        check_vjp(matmul, lambda dy, a, b: (dy @ b.T, a @ dy), (a, b))


def test_a_kink_at_the_point_is_reported_as_non_differentiable():
    x = np.array([1.0, -2.0, 0.0])  # the last entry sits on ReLU's kink
    with pytest.raises(NonDifferentiable, match="non-differentiable at this point") as info:
        check_vjp(relu, relu_vjp, x)
    assert info.value.entries == [(0, 2)]


@pytest.mark.parametrize("distance", [1e-6, 1e-9, 1e-12, -1e-6, -1e-12])
def test_a_kink_near_the_point_is_no_false_alarm(distance):
    # the case: the first step straddles the kink; the one-sided ladder on the far
    # side of it is exact (ReLU is linear there), so the entry is confirmed, not flagged
    x = np.array([1.0, -2.0, distance])
    result = check_vjp(relu, relu_vjp, x)
    assert result.passed and result.comparisons[0].total == 3
    with pytest.raises(GradientMismatch):  # and the same point still catches a wrong VJP
        check_vjp(relu, lambda dy, x: 2 * relu_vjp(dy, x), x)


@pytest.mark.parametrize(
    ("vjp", "reason"),
    [
        pytest.param(lambda dy, x: 1 / 0, "raised", id="raises"),
        pytest.param(lambda dy, x: dy[:-1], "wrong-shape", id="wrong-shape"),
        pytest.param(lambda dy, x: (dy, dy), "wrong-count", id="wrong-count"),
        pytest.param(lambda dy, x: dy * np.nan, "returned-nan", id="nan"),
    ],
)
def test_misbehaving_vjps_are_layer_errors(vjp, reason):
    with pytest.raises(LayerError) as info:
        check_vjp(softmax, vjp, np.ones(3))
    assert info.value.reason == reason
