"""check_vjp / fuzz_vjp on functions that are not convolutions, kinks included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

from gradcheck import GradientMismatch, InvalidArgument, LayerError
from gradcheck.harness.vjp import NonDifferentiable, VjpInconclusive, check_vjp, fuzz_vjp

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
    fuzz_vjp(f, vjp, NORMAL, examples=150)


WRONG = [
    pytest.param(softmax, lambda dy, x: softmax(x) * dy, id="softmax-missing-term"),
    pytest.param(softmax, lambda dy, x: 1.0001 * softmax_vjp(dy, x), id="softmax-1e-4-scale"),
    pytest.param(relu, lambda dy, x: dy * (x >= -0.5), id="relu-wrong-threshold"),
    pytest.param(max_pool, lambda dy, x: np.repeat(dy, 2) / 2, id="max-pool-as-average"),
]


@pytest.mark.parametrize(("f", "vjp"), WRONG)
def test_wrong_vjps_are_caught(f, vjp):
    with pytest.raises(GradientMismatch):
        fuzz_vjp(f, vjp, NORMAL, examples=150)


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


# ---------------------------------------------------------------- issue 13: the measured cases


def test_relu_just_right_of_its_kink_passes():
    # was GradientMismatch, error/bound 4.44 (analytic 0.1257, Richardson 0.1013)
    result = check_vjp(relu, relu_vjp, np.array([1e-6]))
    assert result.passed and result.comparisons[0].total == 1


def test_fuzzing_relu_near_its_kink_redraws_and_counts():
    near_zero = st.floats(-1e-5, 1e-5, allow_subnormal=False).map(lambda v: np.array([v]))
    result = fuzz_vjp(relu, relu_vjp, near_zero, examples=60, seed=5)
    assert result.checked > 0
    assert set(result.redrawn) <= {"non-differentiable", "inconclusive: undecided",
                                   "inconclusive: unresolved"}


def test_fuzz_counts_each_redraw_reason():
    points = st.sampled_from([np.array([0.0]), np.array([1.5])])  # 0 sits on the kink
    result = fuzz_vjp(relu, relu_vjp, points, examples=20)
    assert result.checked >= 1 and result.redrawn.get("non-differentiable", 0) >= 1


def test_fuzz_that_checks_nothing_is_not_a_pass():
    with pytest.raises(VjpInconclusive, match="no point could be checked"):
        fuzz_vjp(relu, relu_vjp, st.just(np.zeros(2)), examples=5)


def log_vjp(dy, x):
    return dy / x


@pytest.mark.parametrize("context", [np.array([1e-6]), np.array([1e-6, 1.0, 3.0])],
                         ids=["alone", "among-unit-entries"])
def test_log_near_zero_is_compared_not_dropped(context):
    # the first step of the unit-scale context crosses 0 (NaN): it must shrink, not drop
    result = check_vjp(np.log, log_vjp, context)
    assert result.passed and result.comparisons[0].total == context.size
    for wrong in (lambda dy, x: 1000 * log_vjp(dy, x), lambda dy, x: 0 * dy):
        with pytest.raises(GradientMismatch):
            check_vjp(np.log, wrong, context)


def half_line(x):
    return np.where(x >= 0, x, np.nan)  # defined on x >= 0 only


def test_a_domain_boundary_at_the_point_is_inconclusive_for_a_wrong_vjp():
    x = np.array([0.0])
    assert check_vjp(half_line, lambda dy, x: dy, x).passed  # the right side confirms it
    with pytest.raises(VjpInconclusive, match="NaN/inf on the left side") as info:
        check_vjp(half_line, lambda dy, x: 2 * dy, x)  # only one side: cannot confirm
    assert info.value.reasons == {"non-finite": [(0, 0)]}


def test_f_undefined_at_the_point_is_inconclusive():
    with pytest.raises(VjpInconclusive, match="at the point itself"):
        check_vjp(lambda x: np.log(x - 2), lambda dy, x: dy / (x - 2), np.array([1.0]))


def test_empty_input_compares_nothing_and_does_not_pass():
    with pytest.raises(VjpInconclusive, match="nothing was compared"):
        check_vjp(relu, relu_vjp, np.zeros(0))


def sin_vjp(dy, x):
    return dy * np.cos(x)


@pytest.mark.parametrize("magnitude", [1e-8, 1e-3, 1.0, 1e4, 1e8])
def test_sin_at_every_scale_passes_and_catches_a_factor_two(magnitude):
    x = magnitude * np.array([1.234, -0.987])
    assert check_vjp(np.sin, sin_vjp, x).passed
    with pytest.raises(GradientMismatch):
        check_vjp(np.sin, lambda dy, x: 2 * sin_vjp(dy, x), x)


def test_sin_beyond_its_last_correct_digit_is_inconclusive():
    # u·|x| ≈ 1.1 at 1e16: rounding x alone moves sin by O(1); no difference quotient means
    # anything (the old check passed or flagged a mismatch by chance)
    for vjp in (sin_vjp, lambda dy, x: 2 * sin_vjp(dy, x)):
        with pytest.raises(VjpInconclusive):
            check_vjp(np.sin, vjp, np.array([1e16]))


@pytest.mark.parametrize(("x", "floor"), [(0.7, 1e-8), (1e-8, 1e-8), (1e8, 1e-3)])
def test_detection_floor_of_sin(x, floor):
    """A relative error of ``floor`` is caught: the bound is derived, not a loose tolerance.

    At 1e8 argument rounding (u·|x| ≈ 1e-8 in x) limits any difference quotient to ~1e-5.
    """
    with pytest.raises(GradientMismatch):
        check_vjp(np.sin, lambda dy, x: (1 + floor) * sin_vjp(dy, x), np.array([x]))


def test_softmax_of_large_logits_passes_despite_conditioning():
    # x − max(x) rounds by u·1e3: the conditioning term Σ|g|·|x| carries it
    x = 1000.0 + np.array([0.3, -1.2, 2.0, 0.0])
    assert check_vjp(softmax, softmax_vjp, x).passed
    with pytest.raises(GradientMismatch):
        check_vjp(softmax, lambda dy, x: softmax(x) * dy, x)


def test_products_across_scales():
    a, b = np.array([1e-8, 3.0, -2e8]), np.array([5e7, -1e-8, 0.25])
    assert check_vjp(lambda a, b: a * b, lambda dy, a, b: (dy * b, dy * a), (a, b)).passed
    with pytest.raises(GradientMismatch):  # the gradients swapped
        check_vjp(lambda a, b: a * b, lambda dy, a, b: (dy * a, dy * b), (a, b))


@pytest.mark.parametrize("method", ["central", "four-point", "complex-step"])
def test_other_first_witnesses_still_decide_through_the_ladder(method):
    x = np.array([0.3, 1e8, 1e-7])
    assert check_vjp(np.sin, sin_vjp, x, method=method).passed
    with pytest.raises(GradientMismatch):
        check_vjp(np.sin, lambda dy, x: -sin_vjp(dy, x), x, method=method)


def test_unknown_method_is_named():
    with pytest.raises(InvalidArgument, match="method='bogus'"):
        check_vjp(np.sin, sin_vjp, np.ones(2), method="bogus")
