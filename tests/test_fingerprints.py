"""Mistake fingerprints: every wrong example layer is diagnosed by name; a right one never is;
the catalogue's every entry names its own generated layer; facts are said when nothing matches."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from examples.catalogue import CATALOGUE_LAYERS
from examples.mistakes import MISTAKES
from examples.naive_conv import layer as naive_layer
from gradcheck.explain import fingerprints
from gradcheck.explain.catalogue import CATALOGUE, FAMILIES
from gradcheck.explain.fingerprints import FITS, diagnose, match, mismatched, reference_bounds
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
    assert not [s for s in ("{d}", "{what}", "{why}") if s in fp.sentence + fp.fix]
    assert (fp.variants is None) == (fp.family in FITS)


def test_names_are_unique_per_gradient_and_the_catalogue_is_families_times_gradients():
    keys = [(fp.name, fp.gradient) for fp in CATALOGUE]
    assert len(keys) == len(set(keys)) == sum(len(f.gradients) for f in FAMILIES)
    assert len(FAMILIES) >= 25 and len(CATALOGUE) >= 60


# --------------------------------------------------------------------------- wrong examples


@pytest.mark.parametrize("name", sorted(MISTAKES))
@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_each_wrong_example_is_diagnosed_by_its_name(name, data):
    layer = MISTAKES[name]
    problem = data.draw(conv_problems(layer.supports), label="problem")
    gradients = _gradients(layer, problem)
    bounds = reference_bounds(problem)  # analytic_bounds for dx, dw, db; the forward's for y
    wrong = list(fingerprints.wrong_evidence(problem, gradients, bounds))
    assume(SHOWN_IN[name] & {ev.gradient for ev in wrong})  # visible here
    found = {ev.gradient: fingerprints.explain_gradient(ev) for ev in wrong}
    names = {d.name for ds in found.values() for d in ds}
    assert name in names, [(d.name, d.gradient) for ds in found.values() for d in ds]
    for ev in wrong:  # all zero is claimed only for a gradient that is zero to rounding
        if "all-zero" in [d.name for d in found[ev.gradient]]:
            assert np.all(np.abs(ev.user) <= ev.bound)


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
    for ev in fingerprints.evidence(problem, edges, bounds):  # every gradient, gate skipped
        assert fingerprints.explain_gradient(ev) == []


# --------------------------------------------------------------------------- generic entries


SCALES = [
    pytest.param(-1.0, "sign-flipped", "", id="-1-is-sign-flipped"),
    pytest.param(2.0, "scaled-by-two", "", id="2-is-scaled-by-two"),
    pytest.param(1 / 3, "batch-averaged", "", id="1/3-is-1/N"),
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


# --------------------------------------------------------------------------- the generated layers


def _rich(x_shape, w_shape, *, dtype=np.float64, **geometry) -> ConvProblem:
    return _problem(x_shape, w_shape, bias=True, dtype=dtype, **geometry)


#: Small fixed problems on which the catalogue's mistakes show: every family is visible on at
#: least one (kernel > 1, stride ≠ dilation, overlapping windows, an unreached tail, asymmetric
#: padding, N > 1, 1 < G < F with C/G, F/G > 1, a bias, square kernels in 2-d and 3-d).
RICH = {
    "2d": _rich((3, 4, 9, 8), (4, 2, 3, 3), stride=(2, 3), dilation=(2, 1),
                padding=((2, 1), (1, 0)), groups=2),
    "1d-float32": _rich((3, 4, 11), (6, 2, 3), dtype=np.float32, stride=2, dilation=3,
                        padding=((3, 1),), groups=2),
    "3d": _rich((2, 2, 6, 5, 5), (2, 2, 2, 2, 2), stride=(2, 1, 1), dilation=(1, 2, 1),
                padding=((1, 0), (0, 1), (1, 1))),
}


def _named(layer, problem: ConvProblem) -> tuple[bool, list[str]]:
    """(is the layer's gradient wrong here, the names diagnosed for that gradient)."""
    gradients = _gradients(layer, problem)
    found = diagnose(problem, gradients, reference_bounds(problem))
    wrong = layer.gradient in mismatched(problem, gradients, reference_bounds(problem))
    return wrong, [d.name for d in found if d.gradient == layer.gradient]


@pytest.mark.parametrize("key", sorted(CATALOGUE_LAYERS), ids="-".join)
def test_each_generated_layer_is_caught_and_named_where_its_mistake_shows(key):
    layer, shown = CATALOGUE_LAYERS[key], 0
    for problem in RICH.values():
        wrong, names = _named(layer, problem)
        shown += wrong
        if wrong:
            assert key[0] in names, (problem, names)
    assert shown >= 1, "the mistake shows on none of the fixed problems"


# --------------------------------------------------------------------------- all zero, honestly


def test_all_zero_is_claimed_exactly_when_the_gradient_is_zero_to_rounding():
    problem = _problem((2, 2, 7), (3, 2, 3))
    right = conv_backward(problem.dy, problem.x, problem.w, None, problem.spec)[0]
    bound = analytic_bounds(problem)[0]
    star = next(fingerprints.evidence(problem, {"dx": right}, {"dx": bound})).bound  # B*
    tiny = 0.5 * star * np.random.default_rng(0).choice([-1.0, 1.0], size=right.shape)
    assert [d.name for d in match(problem, "dx", tiny, bound)] == ["all-zero"]
    beyond = tiny.copy()
    beyond[0, 0, 3] = 3 * star[0, 0, 3]  # one entry beyond rounding of 0
    assert "all-zero" not in [d.name for d in match(problem, "dx", beyond, bound)]


def test_dilation_ignored_in_dw_is_named_even_where_it_leaves_dw_zero():
    # x = [0, 0, 1], w of 2 taps, r = 2: the right dw = [δ·x0, δ·x2] = [0, 1]; with the
    # dilation ignored, [δ·x0, δ·x1] = [0, 0]: all zero *and* dilation-ignored-dw.
    spec = ConvSpec.create(1, dilation=2)
    problem = ConvProblem(np.array([[[0.0, 0.0, 1.0]]]), np.ones((1, 1, 2)), None,
                          np.ones((1, 1, 1)), spec)
    layer = CATALOGUE_LAYERS[("dilation-ignored-dw", "dw")]
    from gradcheck.explain.explanation import explain_failure

    dx, dw, db = layer.backward(problem.dy, problem.x, problem.w, None, spec)
    report = type("Report", (), {"gradients": (dx, dw, db), "y": None, "results": ()})()
    explanation = explain_failure(problem, report)
    assert not np.any(dw)
    assert explanation.diagnoses[0].name == "dilation-ignored-dw"
    assert "all-zero" not in [d.name for d in explanation.diagnoses]
