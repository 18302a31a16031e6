"""ConvTransposeSpec, PoolSpec and their problems: output sizes pinned, bad values named."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import (
    ConvTransposeProblem,
    ConvTransposeSpec,
    InvalidArgument,
    InvalidArgumentType,
    PoolProblem,
    PoolSpec,
    conv_transpose_output_shape,
    pool_output_shape,
)


def test_transpose_spec_accepts_ints_tuples_and_pairs():
    spec = ConvTransposeSpec(2, stride=2, padding=((1, 0), 2), output_padding=1, dilation=(1, 3))
    assert spec == ConvTransposeSpec(2, (2, 2), ((1, 0), (2, 2)), (1, 1), (1, 3), 1)
    assert spec.conv_spec().padding == ((1, 0), (2, 2))


def test_transpose_output_shape_follows_the_formula():
    # O = (S − 1)·s − lo − hi + r·(K − 1) + a + 1 per dim, C_out = G·w.shape[1]
    spec = ConvTransposeSpec(2, (2, 3), ((1, 0), (2, 2)), (1, 0), (2, 1), 2)
    o1 = (4 - 1) * 2 - 1 - 0 + 2 * (3 - 1) + 1 + 1
    o2 = (5 - 1) * 3 - 2 - 2 + 1 * (2 - 1) + 0 + 1
    assert conv_transpose_output_shape((3, 4, 4, 5), (4, 3, 3, 2), spec) == (3, 6, o1, o2)
    assert (o1, o2) == (11, 10)


def test_output_padding_may_reach_the_dilation_when_it_exceeds_the_stride():
    # 0 <= a < max(s, r): with s = 1, r = 3 an output padding of 2 is valid (torch agrees)
    assert ConvTransposeSpec(1, 1, 0, 2, 3).output_size((3,), (3,)) == (11,)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "ceil", "expected"),
    [
        pytest.param(5, 3, 3, 1, False, 2, id="floor"),
        # ceil((5 + 2 − 3) / 3) + 1 = 3, but window 2 would start at 6 >= S + lo = 6: drop it
        pytest.param(5, 3, 3, 1, True, 2, id="ceil-last-window-in-right-padding"),
        pytest.param(6, 3, 3, 1, True, 3, id="ceil-partial-window-kept"),
        pytest.param(6, 2, 2, 0, True, 3, id="ceil-exact-tiling"),
        pytest.param(7, 2, 2, 0, True, 4, id="ceil-partial-last"),
        pytest.param(7, 2, 2, 0, False, 3, id="floor-drops-partial"),
    ],
)
def test_pool_output_size_floor_and_ceil(size, kernel, stride, padding, ceil, expected):
    spec = PoolSpec(1, kernel, stride, padding, 1, ceil)
    assert spec.output_size((size,)) == (expected,)
    assert pool_output_shape((2, 3, size), spec) == (2, 3, expected)


def test_pool_stride_defaults_to_the_kernel():
    assert PoolSpec(2, (2, 3)).stride == (2, 3)
    assert PoolSpec(2, (2, 3), stride=1).stride == (1, 1)


BAD_SPECS = [
    ("transpose-output-padding", ConvTransposeSpec, dict(dims=1, stride=2, output_padding=2),
     InvalidArgument, "output_padding=2: expected 0 <= output_padding < max(stride, dilation)"),
    ("transpose-negative-output-padding", ConvTransposeSpec,
     dict(dims=1, output_padding=-1), InvalidArgument, "output_padding=-1"),
    ("transpose-stride-zero", ConvTransposeSpec, dict(dims=2, stride=(0, 1)), InvalidArgument,
     "stride=(0, 1)"),
    ("transpose-groups-zero", ConvTransposeSpec, dict(dims=1, groups=0), InvalidArgument,
     "groups=0"),
    ("transpose-float-dilation", ConvTransposeSpec, dict(dims=1, dilation=1.5),
     InvalidArgumentType, "dilation=1.5"),
    ("transpose-dims-4", ConvTransposeSpec, dict(dims=4), InvalidArgument, "dims=4"),
    ("pool-kernel-zero", PoolSpec, dict(dims=1, kernel_size=0), InvalidArgument,
     "kernel_size=0"),
    ("pool-padding-over-half", PoolSpec, dict(dims=1, kernel_size=3, padding=2),
     InvalidArgument, "padding=2: expected at most half the dilated window"),
    ("pool-asymmetric-over-half", PoolSpec, dict(dims=1, kernel_size=2, padding=((0, 2),)),
     InvalidArgument, "padding=((0, 2),)"),
    ("pool-stride-zero", PoolSpec, dict(dims=1, kernel_size=2, stride=0), InvalidArgument,
     "stride=0"),
    ("pool-ceil-not-bool", PoolSpec, dict(dims=1, kernel_size=2, ceil_mode=1),
     InvalidArgumentType, "ceil_mode=1"),
    ("pool-count-not-bool", PoolSpec, dict(dims=1, kernel_size=2, count_include_pad="yes"),
     InvalidArgumentType, "count_include_pad='yes'"),
    ("pool-wrong-length", PoolSpec, dict(dims=2, kernel_size=(2, 2, 2)), InvalidArgument,
     "kernel_size=(2, 2, 2): expected one value per spatial dim"),
]


@pytest.mark.parametrize(("cls", "kwargs", "error", "message"),
                         [pytest.param(c, k, e, m, id=i) for i, c, k, e, m in BAD_SPECS])
def test_invalid_spec_values_are_named(cls, kwargs, error, message):
    with pytest.raises(error) as info:
        cls(**kwargs)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError if error is InvalidArgument else TypeError)


BAD_SHAPES = [
    ("transpose-kernel-rows", conv_transpose_output_shape,
     ((1, 4, 5), (2, 1, 2), ConvTransposeSpec(1)), "expected w.shape[0] = C_in = 4"),
    ("transpose-groups", conv_transpose_output_shape,
     ((1, 3, 5), (3, 1, 2), ConvTransposeSpec(1, groups=2)), "groups=2: must divide"),
    ("transpose-cropped-away", conv_transpose_output_shape,
     ((1, 1, 1), (1, 1, 1), ConvTransposeSpec(1, padding=1)), "crops the whole result"),
    ("transpose-bias", conv_transpose_output_shape,
     ((1, 2, 5), (2, 3, 2), ConvTransposeSpec(1), (2,)), "expected (C_out,) = (3,)"),
    ("pool-rank", pool_output_shape, ((1, 2, 5), PoolSpec(2, 2)), "x.shape=(1, 2, 5)"),
    ("pool-too-short", pool_output_shape, ((1, 1, 2), PoolSpec(1, 3, padding=0)),
     "shorter than the dilated window"),
    # taps at −1 and 1 of an input of length 1: the window holds padding only
    ("pool-window-of-padding", pool_output_shape,
     ((1, 1, 1), PoolSpec(1, 2, 1, 1, dilation=2)), "reads padding only"),
]


@pytest.mark.parametrize(("function", "args", "message"),
                         [pytest.param(f, a, m, id=i) for i, f, a, m in BAD_SHAPES])
def test_invalid_shapes_are_named(function, args, message):
    with pytest.raises(InvalidArgument) as info:
        function(*args)
    assert message in str(info.value)


def test_problems_validate_and_describe_themselves():
    x, w = np.ones((1, 2, 3)), np.ones((2, 1, 2))
    spec = ConvTransposeSpec(1, stride=2)
    problem = ConvTransposeProblem(x, w, None, np.ones((1, 1, 6)), spec)
    assert "output_padding=(0,)" in problem.describe() and problem.dtype == np.float64
    assert problem.key == ConvTransposeProblem(x.astype(np.float32), w, None,
                                               np.ones((1, 1, 6)), spec).key
    with pytest.raises(InvalidArgument, match=r"dy.shape=\(1, 1, 5\): expected"):
        ConvTransposeProblem(x, w, None, np.ones((1, 1, 5)), spec)
    pool = PoolProblem(np.ones((1, 1, 4)), np.ones((1, 1, 2)), PoolSpec(1, 2))
    assert "ceil_mode=False" in pool.describe() and pool.key != problem.key
    with pytest.raises(InvalidArgument, match="every value must be finite"):
        PoolProblem(np.full((1, 1, 4), np.nan), np.ones((1, 1, 2)), PoolSpec(1, 2))
    with pytest.raises(InvalidArgumentType, match="spec="):
        PoolProblem(np.ones((1, 1, 4)), np.ones((1, 1, 2)), spec)  # type: ignore[arg-type]


def test_strategy_arguments_are_validated():
    from gradcheck.harness.family_strategies import conv_transpose_problems, pool_problems

    with pytest.raises(InvalidArgument, match="kind='min': expected one of 'max', 'avg'"):
        pool_problems(kind="min")
    with pytest.raises(InvalidArgument, match=r"dtypes=.*max pooling needs real dtypes"):
        pool_problems(kind="max", dtypes=("complex128",))
    with pytest.raises(InvalidArgument, match="max_kernel=0"):
        pool_problems(max_kernel=0)
    with pytest.raises(InvalidArgument, match="max_padding=-1"):
        conv_transpose_problems(max_padding=-1)


def test_formulas_reject_what_they_cannot_compute():
    from gradcheck import max_pool_backward, max_pool_forward

    spec = PoolSpec(1, 2)
    with pytest.raises(InvalidArgumentType, match=r"x=.*complex128.*a maximum needs an order"):
        max_pool_forward(np.ones((1, 1, 4), dtype=complex), spec)
    with pytest.raises(InvalidArgument, match=r"dy.shape=\(1, 1, 3\): expected the output shape"):
        max_pool_backward(np.ones((1, 1, 3)), np.ones((1, 1, 4)), spec)
