"""Mistake fingerprints: every wrong example layer is diagnosed by name; a right one never is."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from examples.mistakes import MISTAKES
from examples.naive_conv import layer as naive_layer
from gradcheck.explain import fingerprints
from gradcheck.explain.fingerprints import CATALOGUE, diagnose, match, mismatched, reference_bounds
from gradcheck.formulas.conv import conv_backward, conv_forward
from gradcheck.geometry.problem import ConvProblem
from gradcheck.geometry.spec import ConvSpec
from gradcheck.judge.bounds import analytic_bounds
from gradcheck.strategies import conv_problems

#: The gradients each named mistake shows in, from the catalogue itself.
SHOWN_IN = {name: {fp.gradient for fp in CATALOGUE if fp.name == name} for name in MISTAKES}


def _gradients(layer, problem: ConvProblem) -> dict[str, np.ndarray | None]:
    p = problem
    dx, dw, db = layer.backward(p.dy, p.x, p.w, p.b, p.spec)
    return {"y": layer.forward(p.x, p.w, p.b, p.spec), "dx": dx, "dw": dw, "db": db}


def _reference(problem: ConvProblem, wide: bool = False) -> dict[str, np.ndarray | None]:
    """The reference gradients in the problem's dtype (or in float64 / complex128)."""
    dtype = np.result_type(problem.dtype, np.float64) if wide else problem.dtype
    x, w, dy = (a.astype(dtype) for a in (problem.x, problem.w, problem.dy))
    b = None if problem.b is None else problem.b.astype(dtype)
    dx, dw, db = conv_backward(dy, x, w, b, problem.spec)
    return {"y": conv_forward(x, w, b, problem.spec), "dx": dx, "dw": dw, "db": db}


def _problem(x_shape, w_shape, *, bias=False, seed=0, dtype=np.float64, **geometry):
    spec = ConvSpec.create(len(x_shape) - 2, **geometry)
    rng = np.random.default_rng(seed)
    out = spec.output_size(x_shape[2:], w_shape[2:])
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    dy = rng.standard_normal((x_shape[0], w_shape[0], *out)).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    return ConvProblem(x.astype(dtype), w.astype(dtype), b, dy, spec)


# --------------------------------------------------------------------------- the catalogue


def test_every_example_mistake_has_a_catalogue_entry():
    assert set(MISTAKES) <= {fp.name for fp in CATALOGUE}


@pytest.mark.parametrize("fp", CATALOGUE, ids=lambda fp: f"{fp.name}-{fp.gradient}")
def test_catalogue_entries_are_well_formed(fp):
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", fp.name)
    assert fp.gradient in ("dx", "dw", "db", "y")
    assert fp.sentence and fp.fix
    assert (fp.compute is None) != (fp.fit is None)


# --------------------------------------------------------------------------- wrong examples


@pytest.mark.parametrize("name", sorted(MISTAKES))
@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_each_wrong_example_is_diagnosed_by_its_name(name, data):
    layer = MISTAKES[name]
    problem = data.draw(conv_problems(layer.supports), label="problem")
    gradients = _gradients(layer, problem)
    bounds = reference_bounds(problem)  # analytic_bounds for dx, dw, db; the forward's for y
    assume(SHOWN_IN[name] & set(mismatched(problem, gradients, bounds)))  # visible here
    found = diagnose(problem, gradients, bounds)
    assert name in {d.name for d in found}, [(d.name, d.gradient) for d in found]


# --------------------------------------------------------------------------- right gradients


@given(conv_problems(naive_layer.supports))
def test_a_correct_layer_and_the_reference_are_never_diagnosed(problem):
    bounds = reference_bounds(problem)
    assert diagnose(problem, _gradients(naive_layer, problem), bounds) == []
    assert diagnose(problem, _reference(problem), bounds) == []


@given(conv_problems(naive_layer.supports), st.integers(0, 2**32 - 1))
def test_a_gradient_within_its_bound_matches_no_fingerprint(problem, seed):
    """A right gradient pushed to the edge of its bound matches nothing, even without the
    'is it wrong?' gate: 'M differs from R by more than 2·B* + β_M somewhere' excludes it."""
    rng = np.random.default_rng(seed)
    bounds = reference_bounds(problem)
    edges = {}
    for name, right in _reference(problem, wide=True).items():
        if right is not None:
            edges[name] = right + 0.999 * bounds[name] * rng.choice([-1.0, 1.0], size=right.shape)
            assert match(problem, name, edges[name], bounds[name]) == []
    for ev in fingerprints._evidence(problem, edges, bounds):  # every gradient, gate skipped
        assert fingerprints._explain(ev) == []


# --------------------------------------------------------------------------- generic entries


SCALES = [
    pytest.param(-1.0, "sign-flipped", "", id="-1-is-sign-flipped"),
    pytest.param(2.0, "scaled-by-two", "", id="2-is-scaled-by-two"),
    pytest.param(1 / 3, "constant-scale", "1/3 = 1/N", id="1/3-is-1/N"),
    pytest.param(1 / 6, "constant-scale", "1/6 = 1/∏O", id="1/6-is-1/prodO"),
    pytest.param(0.7381, "constant-scale", "≈ 0.7381", id="unnamed-factor"),
]


@pytest.mark.parametrize(("factor", "name", "detail"), SCALES)
def test_a_constant_factor_is_named(factor, name, detail):
    problem = _problem((3, 2, 7), (2, 2, 2))  # N = 3, ∏O = 6
    right = conv_backward(problem.dy, problem.x, problem.w, None, problem.spec)[0]
    bound = analytic_bounds(problem)[0]
    assert [(d.name, d.detail) for d in match(problem, "dx", factor * right, bound)] == [
        (name, detail)
    ]


def test_batch_averaged_dw_is_its_own_entry_not_a_generic_factor():
    problem = _problem((2, 2, 7), (3, 2, 3))
    right = conv_backward(problem.dy, problem.x, problem.w, None, problem.spec)[1]
    found = match(problem, "dw", right / 2, analytic_bounds(problem)[1])
    assert [d.name for d in found] == ["batch-averaged"]


def test_an_all_zero_gradient_is_said_to_be_zero():
    problem = _problem((1, 2, 6), (2, 2, 3))
    found = match(problem, "dw", np.zeros(problem.w.shape), analytic_bounds(problem)[1])
    assert [d.name for d in found] == ["all-zero"]


def test_an_unrecognised_error_matches_nothing():
    problem = _problem((2, 2, 6, 5), (3, 2, 2, 2), padding=1)
    right = conv_backward(problem.dy, problem.x, problem.w, None, problem.spec)[0]
    noise = np.random.default_rng(1).standard_normal(right.shape)
    assert match(problem, "dx", right + noise, analytic_bounds(problem)[0]) == []


# --------------------------------------------------------------------------- precision


def _bfloat16(a: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest bfloat16 (8 significant bits), ties to even."""
    bits = a.astype(np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32).astype(np.float64)


def test_a_float64_problem_computed_in_float32_shows_float32_noise():
    problem = _problem((2, 3, 9, 8), (4, 3, 3, 3), padding=1)
    low = [a.astype(np.float32) for a in (problem.dy, problem.x, problem.w)]
    dx = conv_backward(*low, None, problem.spec)[0].astype(np.float64)
    found = match(problem, "dx", dx, analytic_bounds(problem)[0])
    assert [d.name for d in found] == ["precision-loss"]
    assert found[0].detail.startswith("float32")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_half_precision_example_shows_float16_noise(dtype):
    problem = _problem((2, 3, 9), (4, 3, 3), dtype=dtype, bias=True)
    gradients = _gradients(MISTAKES["precision-loss"], problem)
    found = diagnose(problem, gradients, reference_bounds(problem))
    assert {d.gradient for d in found} == {"dx", "dw", "db"}
    assert {(d.name, d.detail.split()[0]) for d in found} == {("precision-loss", "float16")}


def test_bfloat16_rounding_is_told_apart_from_float16():
    # db[f] = δ[0, f, 0]: one term per entry, m = 3.  δ = ±(1 + {3 or 5}·2⁻⁹)·2^k rounds to
    # bfloat16 (8 significant bits) to ±(1 + 2⁻⁷)·2^k, a relative error of about ∓2⁻⁹: beyond
    # float16's bound γ_3(2⁻¹¹) ≈ 1.5e-3, within bfloat16's γ_3(2⁻⁸) ≈ 1.2e-2.
    base = _problem((1, 1, 3), (6, 1, 3), bias=True)
    signs = np.random.default_rng(2).choice([-1.0, 1.0], size=6)
    offsets = np.array([3, 5, 3, 5, 3, 5]) * 2.0**-9
    dy = (signs * (1 + offsets) * 2.0 ** np.arange(-2, 4)).reshape(base.dy.shape)
    problem = ConvProblem(base.x, base.w, base.b, dy, base.spec)
    db = _bfloat16(dy.sum(axis=(0, 2)))
    found = match(problem, "db", db, analytic_bounds(problem)[2])
    assert [(d.name, d.detail.split()[0]) for d in found] == [("precision-loss", "bfloat16")]
