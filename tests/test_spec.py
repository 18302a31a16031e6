"""ConvSpec and output_shape: valid forms accepted, every invalid value named in the message."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import ConvProblem, ConvSpec, InvalidArgument, InvalidArgumentType, output_shape


def test_create_accepts_ints_tuples_pairs_and_names():
    assert ConvSpec.create(2, stride=2, padding=1) == ConvSpec(2, (2, 2), ((1, 1), (1, 1)), (1, 1))
    assert ConvSpec.create(1, padding=((1, 2),)).padding == ((1, 2),)
    assert ConvSpec.create(2, padding="full", kernel_size=(3, 2), dilation=2).padding == (
        (4, 4), (2, 2))
    assert ConvSpec.create(1, padding="same", kernel_size=4).padding == ((1, 2),)
    assert ConvSpec.create(3, padding="valid").padding == ((0, 0),) * 3


def test_output_shape_follows_the_formula():
    spec = ConvSpec(2, (2, 3), ((1, 0), (2, 2)), (2, 1), 2)
    # O = floor((S + lo + hi − r(K − 1) − 1) / s) + 1
    assert output_shape((3, 4, 9, 7), (6, 2, 3, 2), spec) == (3, 6, 3, 4)


BAD_SPECS = [
    ("stride-zero", dict(dims=2, stride=(0, 1), padding=0, dilation=1), InvalidArgument,
     "stride=(0, 1): every entry must be >= 1"),
    ("negative-padding", dict(dims=1, stride=1, padding=((-1, 0),), dilation=1), InvalidArgument,
     "padding"),
    ("dilation-zero", dict(dims=1, stride=1, padding=0, dilation=0), InvalidArgument, "dilation=0"),
    ("dims-4", dict(dims=4, stride=1, padding=0, dilation=1), InvalidArgument, "dims=4"),
    ("float-stride", dict(dims=1, stride=1.5, padding=0, dilation=1), InvalidArgumentType,
     "stride=1.5"),
    ("wrong-length", dict(dims=2, stride=(1, 1, 1), padding=0, dilation=1), InvalidArgument,
     "one value per spatial dim"),
    ("groups-zero", dict(dims=1, stride=1, padding=0, dilation=1, groups=0), InvalidArgument,
     "groups=0"),
    ("bool-groups", dict(dims=1, stride=1, padding=0, dilation=1, groups=True),
     InvalidArgumentType, "groups=True"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"),
                         [pytest.param(k, e, m, id=i) for i, k, e, m in BAD_SPECS])
def test_invalid_spec_values_are_named(kwargs, error, message):
    with pytest.raises(error, match=None) as info:
        ConvSpec(**kwargs)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError if error is InvalidArgument else TypeError)


BAD_SHAPES = [
    ("groups-not-dividing-C", (1, 3, 5), (2, 1, 2), ConvSpec(1, 1, 0, 1, 2),
     "must divide the input"),
    ("groups-not-dividing-F", (1, 4, 5), (3, 2, 2), ConvSpec(1, 1, 0, 1, 2),
     "must divide the filters"),
    ("kernel-channels", (1, 4, 5), (2, 4, 2), ConvSpec(1, 1, 0, 1, 2), "C/G = 2"),
    ("kernel-too-large", (1, 1, 3), (1, 1, 3), ConvSpec(1, 1, 0, 2, 1),
     "exceeds the padded input"),
    ("dims-mismatch", (1, 1, 5, 5), (1, 1, 3), ConvSpec(1, 1, 0, 1, 1), "x.shape=(1, 1, 5, 5)"),
    ("empty-batch", (0, 1, 5), (1, 1, 3), ConvSpec(1, 1, 0, 1, 1), "every size must be >= 1"),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "spec", "message"),
                         [pytest.param(*row[1:], id=row[0]) for row in BAD_SHAPES])
def test_invalid_shapes_are_named(x_shape, w_shape, spec, message):
    with pytest.raises(InvalidArgument) as info:
        output_shape(x_shape, w_shape, spec)
    assert message in str(info.value)


def test_kernel_larger_than_input_is_valid_with_padding():
    assert output_shape((1, 1, 2), (1, 1, 4), ConvSpec(1, 1, ((1, 1),), 1)) == (1, 1, 1)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        pytest.param("x", np.ones((1, 1, 4), dtype=int), "floating or complex", id="int-x"),
        pytest.param("w", np.array([[[np.nan]]]), "NaN/Inf", id="nan-w"),
        pytest.param("dy", np.ones((1, 1, 2)), "dy.shape=(1, 1, 2)", id="dy-shape"),
        pytest.param("x", [[[1.0, 2.0]]], "expected a numpy array", id="list-x"),
    ],
)
def test_problem_validates_its_arrays(field, value, message):
    arrays = {"x": np.ones((1, 1, 4)), "w": np.ones((1, 1, 2)), "b": None,
              "dy": np.ones((1, 1, 3))}
    arrays[field] = value
    with pytest.raises((InvalidArgument, InvalidArgumentType)) as info:
        ConvProblem(spec=ConvSpec(1, 1, 0, 1), **arrays)
    assert message in str(info.value)
