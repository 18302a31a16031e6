"""Bad input anywhere in the public API gives a documented error naming the argument.

A property test throws random invalid arguments at the public functions and asserts that
only InvalidArgument (a ValueError) or InvalidArgumentType (a TypeError) comes out, and
that every message starts with ``name=value``; tables pin the messages of the common cases.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck import (
    ConvProblem,
    ConvSpec,
    InvalidArgument,
    InvalidArgumentType,
    Supports,
    conv_backward,
    conv_forward,
    output_shape,
)
from gradcheck.harness.vjp import check_vjp
from gradcheck.strategies import conv_problems

DOCUMENTED = (InvalidArgument, InvalidArgumentType)
NAMED = re.compile(r"^[A-Za-z_][\w.\[\]]*=")

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(-2, 4), max_size=4).map(tuple),
    st.tuples(st.tuples(st.integers(-1, 3), st.integers(-1, 3))),
    st.sampled_from([
        np.ones((1, 1, 4), dtype=int), np.array([[[np.nan, 1.0]]]), np.ones((1, 1)),
        np.array([[["a"]]], dtype=object), np.ones((1, 1, 4, 4)), np.full((1, 1, 3), np.inf),
    ]),
)

GOOD = {
    "x": np.ones((1, 1, 4)), "w": np.ones((1, 1, 2)), "b": None, "dy": np.ones((1, 1, 3)),
    "spec": ConvSpec(1, 1, 0, 1),
}


def _call_with(fn, names, replace, junk):
    args = {name: GOOD[name] for name in names}
    args[replace] = junk
    return fn(*args.values())


CALLS = {
    "conv_forward": (conv_forward, ("x", "w", "b", "spec")),
    "conv_backward": (conv_backward, ("dy", "x", "w", "b", "spec")),
    "output_shape": (lambda x, w, spec: output_shape(x, w, spec), ("x", "w", "spec")),
    "ConvProblem": (lambda x, w, b, dy, spec: ConvProblem(x, w, b, dy, spec),
                    ("x", "w", "b", "dy", "spec")),
}


def _assert_documented(error: BaseException) -> None:
    assert isinstance(error, DOCUMENTED), f"undocumented {type(error).__name__}: {error}"
    assert NAMED.match(str(error)), f"message does not start with name=value: {error}"


@given(st.sampled_from(sorted(CALLS)), st.data(), JUNK)
def test_array_functions_raise_only_documented_errors(call, data, junk):
    fn, names = CALLS[call]
    replace = data.draw(st.sampled_from(names))
    if call == "output_shape" and replace in ("x", "w") and isinstance(junk, np.ndarray):
        junk = junk.shape
    try:
        _call_with(fn, names, replace, junk)
    except Exception as error:
        _assert_documented(error)


@given(st.fixed_dictionaries({}, optional={
    "dims": JUNK, "stride": JUNK, "padding": JUNK, "dilation": JUNK, "groups": JUNK}))
def test_convspec_raises_only_documented_errors(kwargs):
    args = {"dims": 1, "stride": 1, "padding": 0, "dilation": 1, "groups": 1} | kwargs
    try:
        ConvSpec(**args)
    except Exception as error:
        _assert_documented(error)


@given(st.fixed_dictionaries({}, optional={
    "dims": JUNK, "max_stride": JUNK, "dilation": JUNK, "groups": JUNK, "padding": JUNK,
    "bias": JUNK, "dtypes": JUNK, "uniform": JUNK, "family": JUNK}))
def test_supports_and_strategies_raise_only_documented_errors(kwargs):
    try:
        Supports(**kwargs)
    except Exception as error:
        _assert_documented(error)
    try:
        conv_problems(**kwargs)
    except Exception as error:
        _assert_documented(error)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"max_batch": 0}, "max_batch=0: expected an int >= 1", id="max-batch-0"),
        pytest.param({"max_padding": -1}, "max_padding=-1", id="max-padding-negative"),
        pytest.param({"dims": (4,)}, "dims=(4,)", id="dims-4"),
        pytest.param({"padding": "round"}, "padding='round'", id="padding-mode"),
        pytest.param({"dtypes": ("int32",)}, "dtypes=('int32',)", id="integer-dtype"),
        pytest.param({"colour": "red"}, "unknown keys ['colour']", id="unknown-key"),
    ],
)
def test_strategy_arguments_are_named(kwargs, message):
    with pytest.raises(DOCUMENTED) as info:
        conv_problems(**kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("replace", "value", "message"),
    [
        pytest.param("x", np.ones((1, 1, 4), dtype=np.int64), "x='array of dtype int64'",
                     id="integer-x"),
        pytest.param("w", np.array([[[np.nan, 1.0]]]), "w='an array with NaN/Inf'", id="nan-w"),
        pytest.param("x", [[[1.0, 2.0, 3.0]]], "x=[[[1.0, 2.0, 3.0]]]", id="list-x"),
        pytest.param("b", np.ones(2), "b.shape=(2,): expected (F,) = (1,)", id="bias-shape"),
        pytest.param("spec", {"stride": 1}, "spec={'stride': 1}", id="dict-spec"),
    ],
)
def test_conv_forward_messages(replace, value, message):
    args = dict(x=GOOD["x"], w=GOOD["w"], b=None, spec=GOOD["spec"])
    args[replace] = value
    with pytest.raises(DOCUMENTED) as info:
        conv_forward(**args)
    assert message in str(info.value)


def test_check_vjp_names_bad_inputs():
    with pytest.raises(InvalidArgumentType, match=r"^inputs\[1\]="):
        check_vjp(lambda a, b: a, lambda dy, a, b: (dy, dy), (np.ones(2), [1, 2]))
    with pytest.raises(InvalidArgument, match=r"^inputs\[0\]="):
        check_vjp(np.sin, np.cos, np.array([np.inf]))
