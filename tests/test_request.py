"""One request per run: the reproduce command round-trips through the CLI for every option, and
options are validated apart from the support claim."""

from __future__ import annotations

import shlex
from dataclasses import fields, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck import InvalidArgument, InvalidArgumentType, fuzz_layer
from gradcheck.faces.cli import parse_request
from gradcheck.harness.request import METHODS, MODES, CheckOptions, Request

#: One non-default value per field; every field of Request must be listed.
CHANGES = {
    "target": "examples/mistakes.py:sign_flipped",
    "claim": {"dims": (2,)},
    "examples": 7,
    "seed": 12,
    "mode": "fast",
    "method": "four-point",
    "reference_forward": False,
    "deadline": 2.5,
    "database": "/tmp/gradcheck-db",
    "plot": "maps dir",
    "save_regressions": "cases",
    "explain": False,
    "progress": True,
}

CLAIMS = {
    "dims": (1, 3), "max_stride": 2, "dilation": False, "groups": False, "padding": "symmetric",
    "uniform": True, "exact_tiling": True, "square_input": True, "square_kernel": True,
    "bias": False, "dtypes": ("float32", "float64"), "rounding": "normwise",
    "family": "max_pool",
}


def _roundtrip(request: Request) -> Request:
    return parse_request(shlex.split(request.command(everything=True)))


def test_every_field_has_a_case() -> None:
    from gradcheck import Supports

    assert set(CHANGES) == {f.name for f in fields(Request)}
    assert set(CLAIMS) == {f.name for f in fields(Supports)}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_each_option_round_trips(name: str) -> None:
    request = Request.create(**{"target": "layer.py:L", name: CHANGES[name]})
    assert _roundtrip(request) == request


@pytest.mark.parametrize("key", sorted(CLAIMS))
def test_each_claim_key_round_trips(key: str) -> None:
    request = Request(target="layer.py:L", claim={key: CLAIMS[key]})
    assert _roundtrip(request) == request


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("key", ["dilation", "groups", "bias"])
def test_boolean_claims_round_trip_both_ways(key: str, value: bool) -> None:
    request = Request(target="layer.py:L", claim={key: value})
    assert _roundtrip(request) == request


@given(
    examples=st.integers(1, 10_000), seed=st.integers(0, 2**32),
    mode=st.sampled_from(MODES), method=st.sampled_from(METHODS),
    reference_forward=st.booleans(),
    deadline=st.none() | st.floats(1e-3, 1e4, allow_nan=False),
    claim=st.dictionaries(st.sampled_from(sorted(CLAIMS)), st.just(None)).map(
        lambda keys: {k: CLAIMS[k] for k in keys}),
)
def test_any_request_round_trips(**values: object) -> None:
    request = Request(target="dir with space/layer.py:L", **values)  # type: ignore[arg-type]
    assert _roundtrip(request) == request


def test_the_reproduce_command_omits_where_results_go() -> None:
    request = Request(target="l.py:L", plot="maps", save_regressions="cases", progress=True)
    again = parse_request(shlex.split(request.command()))
    assert replace(again, plot="maps", save_regressions="cases", progress=True) == request


def test_a_misspelled_option_is_named_as_an_option() -> None:
    with pytest.raises(InvalidArgument, match=r"option metod='central': not an option of "
                       "fuzz_layer"):
        Request.create(metod="central")


def test_a_claim_key_passed_as_an_option_says_where_it_belongs() -> None:
    with pytest.raises(InvalidArgument, match=r"'dims' is a support-claim key: pass claim="):
        fuzz_layer(object(), dims=(2,))  # validated before the layer is looked at


def test_a_misspelled_claim_key_is_named_as_a_claim_key() -> None:
    with pytest.raises(InvalidArgument, match=r"claim\['dimz'\]=\(2,\): not a support-claim key"):
        Request(claim={"dimz": (2,)})


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"examples": 0}, InvalidArgument, r"examples=0: expected an integer >= 1"),
        ({"examples": "many"}, InvalidArgument, r"examples='many'"),
        ({"seed": -1}, InvalidArgument, r"seed=-1: expected an integer >= 0"),
        ({"seed": 1.5}, InvalidArgumentType, r"seed=1.5"),
        ({"mode": "quick"}, InvalidArgument, r"mode='quick': expected one of"),
        ({"method": "forward"}, InvalidArgument, r"method='forward': expected one of"),
        ({"deadline": 0}, InvalidArgument, r"deadline=0: expected seconds > 0"),
        ({"reference_forward": "yes"}, InvalidArgumentType, r"reference_forward='yes'"),
        ({"claim": {"max_stride": 0}}, InvalidArgument, r"max_stride=0"),
        ({"target": 3}, InvalidArgumentType, r"target=3"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_bad_values_name_the_option(options: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Request.create(**options)


def test_check_options_refuse_fuzz_options() -> None:
    with pytest.raises(InvalidArgument, match=r"option examples=3: not an option of check_layer"):
        CheckOptions.create(examples=3)
