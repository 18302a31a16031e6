"""Low precision: formulas are judged in float64 where the layer accepts it, a check that
cannot resolve a mistake says so instead of passing, and underflow is no false alarm."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from examples.naive_conv import NaiveConv
from gradcheck import (
    ConvProblem,
    ConvSpec,
    GradientMismatch,
    Inconclusive,
    InvalidArgument,
    check_layer,
    fuzz_layer,
)


class DwDoubled(NaiveConv):
    """dw twice the right value: O(1) wrong, but long float32 sums have wide bounds."""

    def grad_weight(self, dy, x, w, spec):
        return 2 * super().grad_weight(dy, x, w, spec)


class Float16Only(NaiveConv):
    supports: ClassVar[dict] = {"dtypes": ("float16",)}


def _problem(shape_x, shape_w, dtype, seed=0, padding=1):
    rng = np.random.default_rng(seed)
    spec = ConvSpec.create(len(shape_x) - 2, padding=padding)
    x = rng.standard_normal(shape_x).astype(dtype)
    w = rng.standard_normal(shape_w).astype(dtype)
    out = spec.output_size(shape_x[2:], shape_w[2:])
    dy = rng.standard_normal((shape_x[0], shape_w[0], *out)).astype(dtype)
    return ConvProblem(x, w, None, dy, spec)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_a_long_float32_sum_still_catches_a_doubled_dw(mode):
    # dw sums ∏O = 256·256 products: the float32 bound γ_n·Σ|terms| is wider than |dw| itself,
    # so the formula is checked on the same data cast to float64.
    problem = _problem((1, 1, 256, 256), (1, 1, 3, 3), np.float32)
    check_layer(NaiveConv(), problem, mode=mode)
    with pytest.raises(GradientMismatch):
        check_layer(DwDoubled(), problem, mode=mode)


class DwDoubledFloat32Only(DwDoubled):
    supports: ClassVar[dict] = {"dtypes": ("float32",)}


def test_without_float64_a_long_float32_sum_is_inconclusive_not_passed():
    problem = _problem((1, 1, 256, 256), (1, 1, 3, 3), np.float32)
    with pytest.raises(Inconclusive, match="dw: in float32 the rounding bound"):
        check_layer(DwDoubledFloat32Only(), problem)


def test_a_float16_only_layer_on_a_long_sum_is_inconclusive_not_passed():
    problem = _problem((2, 1, 40, 40), (1, 1, 3, 3), np.float16)
    with pytest.raises(Inconclusive) as info:
        check_layer(Float16Only(), problem)
    assert info.value.gradient == "dw" and info.value.resolution >= 0.25


def test_float16_fuzzing_of_a_float16_only_layer_never_false_alarms(budget):
    result = fuzz_layer(Float16Only(), examples=budget(1), claim={"dtypes": ("float16",)})
    assert result.status in ("passed", "inconclusive"), result.error


def test_float16_subnormal_gradients_are_not_false_alarms():
    f16 = np.float16
    problem = ConvProblem(np.array([[[0.5, 0.7, 0.3]]], f16), np.array([[[0.0011, 0.0013]]], f16),
                          None, np.array([[[0.0101, 0.0203]]], f16), ConvSpec.create(1))
    check_layer(Float16Only(), problem, mode="full")  # dx ~ 1e-5: float16 subnormals


@pytest.mark.parametrize(
    ("layer", "dtype", "message"),
    [
        pytest.param(NaiveConv(), np.complex128, "needs a real problem", id="complex-problem"),
        pytest.param(Float16Only(), np.float16, "does not claim complex128", id="real-only-layer"),
    ],
)
def test_complex_step_is_refused_where_it_cannot_work(layer, dtype, message):
    problem = _problem((1, 1, 5), (1, 1, 2), dtype)
    with pytest.raises(InvalidArgument, match=message):
        check_layer(layer, problem, method="complex-step")
