"""check_layer's modes: full Jacobian, fast (directional) and auto; batching; the size guard."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from examples.mistakes import MISTAKES
from examples.naive_conv import NaiveConv
from examples.naive_conv import layer as naive_layer
from gradcheck import ConvProblem, ConvSpec, InvalidArgument, LayerError, check_layer, fuzz_layer
from gradcheck.formulas.conv import conv_backward, conv_forward
from gradcheck.harness.check import AUTO_FULL_MAX, resolve_mode
from gradcheck.judge.bounds import FULL_JACOBIAN_MAX, perturbation_count
from gradcheck.judge.compare import compare_finite_differences
from gradcheck.judge.directional import compare_directional
from gradcheck.strategies import conv_problems


def make_problem(x_shape, w_shape, *, bias=True, dtype="float64", seed=0, **spec):
    rng = np.random.default_rng(seed)
    conv_spec = ConvSpec.create(len(x_shape) - 2, **spec)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    dy = rng.standard_normal(conv_forward(x, w, b, conv_spec).shape).astype(dtype)
    return ConvProblem(x, w, b, dy, conv_spec)


class Counting(NaiveConv):
    """The correct layer, counting its calls and the samples its forward saw."""

    def __init__(self):
        self.forwards = self.backwards = self.samples = 0

    def forward(self, x, w, b, spec):
        self.forwards += 1
        self.samples += x.shape[0]
        return super().forward(x, w, b, spec)

    def backward(self, dy, x, w, b, spec):
        self.backwards += 1
        return super().backward(dy, x, w, b, spec)


class MixesLargeBatches(NaiveConv):
    """Right for batches of up to 2 samples; in larger ones sample 0 leaks into the others."""

    def forward(self, x, w, b, spec):
        y = super().forward(x, w, b, spec)
        return y + 1e-3 * y[:1] if x.shape[0] > 2 else y


# --------------------------------------------------------------------------- fast mode


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_every_wrong_layer_is_caught_in_fast_mode(name):
    result = fuzz_layer(MISTAKES[name], mode="fast")
    assert result.status == "mismatch", f"{name} passed {result.examples} configurations"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_correct_layer_passes_fast_mode_with_no_false_alarm(dtype, budget):
    result = fuzz_layer(naive_layer, mode="fast", examples=budget(2), seed=2,
                        claim={"dtypes": (dtype,)})
    assert result.status == "passed", result.error
    assert result.examples >= budget(2)
    assert result.worst_ratio <= 1


#: A relative error in dx that fast mode must see: far below torch's rtol=1e-3 in float64,
#: and in float32 a hundred thousand times its unit roundoff.
SMALL_ERROR = {"float64": 1e-8, "complex128": 1e-8, "float32": 1e-2}


@settings(max_examples=60)
@given(conv_problems(dtypes=tuple(SMALL_ERROR)))
def test_fast_mode_holds_for_the_reference_and_sees_small_relative_errors(problem):
    assert compare_directional(problem).passed
    scale = SMALL_ERROR[problem.dtype.name]

    def off(dy, x, w, b, spec):
        dx, dw, db = conv_backward(dy, x, w, b, spec)
        return dx * (1 + scale), dw, db

    dx = conv_backward(problem.dy, problem.x, problem.w, problem.b, problem.spec)[0]
    relative = float(np.linalg.norm(dx)) / float(np.abs(problem.dy).sum())
    if relative > 1e-2:  # dx not (nearly) zero: the error is visible
        result = compare_directional(problem, off, directions=2)
        assert not result.passed
        assert [c.name for c in result.failures] == ["dx"]


def test_a_failing_w_and_b_comparison_names_the_wrong_one():
    problem = make_problem((2, 3, 6, 6), (4, 3, 3, 3), padding=1)
    with pytest.raises(AssertionError) as info:
        check_layer(MISTAKES["bias-not-summed-spatially"], problem, mode="fast")
    report = info.value.result
    directional = next(r for r in report.results if r.check == "directional")
    assert {c.name for c in directional.failures} == {"(dw, db)", "db"}


def test_fast_mode_takes_a_few_calls_whatever_the_size():
    calls = []
    for shape in ((1, 1, 8, 8), (4, 8, 32, 32)):
        layer = Counting()
        w_shape = (shape[1], shape[1], 3, 3)
        check_layer(layer, make_problem(shape, w_shape, padding=1), mode="fast")
        calls.append((layer.forwards, layer.backwards))
    assert calls[0] == calls[1]
    assert calls[0][0] <= 8 and calls[0][1] <= 3


# --------------------------------------------------------------------------- full mode


def test_full_mode_perturbs_entries_with_disjoint_outputs_together():
    problem = make_problem((2, 3, 16, 16), (4, 3, 3, 3), padding=1)
    layer = Counting()
    check_layer(layer, problem, mode="full")
    n = problem.x.shape[0]
    w_classes = 3 * 3 * 3  # (c', t): all 4 filters at once
    x_classes = 3 * 3 * 3  # (c, i mod 3): positions 3 apart reach disjoint outputs
    # y; one folded call for x; w; b; the adjoint's two
    assert layer.forwards == 1 + 1 + 2 * w_classes + 2 + 2
    assert layer.samples == n * (1 + 2 * x_classes + 2 * w_classes + 2 + 2)


@settings(max_examples=40)
@given(conv_problems(dtypes=("float64", "complex128")))
def test_compressed_differences_equal_one_entry_at_a_time(problem):
    from gradcheck.judge.compare import _numeric_one_by_one
    from gradcheck.witnesses.compressed import structured_gradients

    dtype = np.result_type(problem.dtype, np.float64)
    together = structured_gradients(problem, conv_forward, "central", dtype, None)
    alone = _numeric_one_by_one(problem, conv_forward, "central", dtype)
    assert together.keys() == alone.keys()
    for name, (value, error) in together.items():
        assert np.all(np.abs(value - alone[name][0]) <= error + alone[name][1]), name


def test_full_jacobian_is_refused_above_its_size_limit_with_a_hint():
    side = int(np.ceil(np.sqrt(FULL_JACOBIAN_MAX))) + 1
    problem = make_problem((1, 1, side, side), (1, 1, 1, 1), bias=False)
    assert perturbation_count(problem) > FULL_JACOBIAN_MAX
    with pytest.raises(InvalidArgument, match='mode="fast"'):
        check_layer(naive_layer, problem, mode="full")
    with pytest.raises(InvalidArgument, match="FULL_JACOBIAN_MAX"):
        compare_finite_differences(problem)
    assert check_layer(naive_layer, problem).mode == "fast"  # auto


def test_a_layer_that_mixes_samples_in_folded_batches_is_a_layer_error():
    problem = make_problem((2, 2, 5, 5), (2, 2, 3, 3))
    for mode in ("full", "fast"):
        with pytest.raises(LayerError) as info:
            check_layer(MixesLargeBatches(), problem, mode=mode)
        assert info.value.reason == "batch-dependent"
    # without the reference comparison nothing is folded: one call per perturbation
    check_layer(MixesLargeBatches(), problem, mode="full", reference_forward=False)


def test_folded_and_unfolded_finite_differences_give_the_same_verdicts():
    problem = make_problem((2, 2, 5, 4), (3, 2, 2, 3), padding=((1, 0), (0, 2)), stride=2)
    for layer, passes in ((naive_layer, True), (MISTAKES["kernel-not-flipped"], False)):
        for fold in (True, False):
            result = compare_finite_differences(problem, layer.backward, layer.forward,
                                                assume_conv=fold)
            assert result.passed is passes
            assert result.ratio < 0.5 if passes else result.ratio > 1e6


# --------------------------------------------------------------------------- auto, report


def test_auto_is_full_for_small_problems_and_fast_for_large_ones():
    small = make_problem((2, 3, 8, 8), (4, 3, 3, 3))
    large = make_problem((4, 8, 32, 32), (8, 8, 3, 3))
    assert perturbation_count(small) <= AUTO_FULL_MAX < perturbation_count(large)
    assert resolve_mode("auto", small) == "full"
    assert resolve_mode("auto", large) == "fast"
    assert resolve_mode("fast", small) == "fast"
    assert check_layer(naive_layer, large).mode == "fast"


@pytest.mark.parametrize("bad", ["slow", "", None, "FULL"])
def test_an_unknown_mode_names_the_argument(bad):
    problem = make_problem((1, 1, 4), (1, 1, 2))
    with pytest.raises(InvalidArgument, match="mode="):
        check_layer(naive_layer, problem, mode=bad)
    with pytest.raises(InvalidArgument, match="mode="):
        fuzz_layer(naive_layer, mode=bad)


def test_the_report_keeps_the_layers_outputs():
    problem = make_problem((2, 3, 6, 6), (4, 3, 3, 3), padding=1)
    report = check_layer(naive_layer, problem, mode="full")
    np.testing.assert_array_equal(report.y, naive_layer.forward(problem.x, problem.w,
                                                                problem.b, problem.spec))
    for got, expected in zip(report.gradients, naive_layer.backward(
            problem.dy, problem.x, problem.w, problem.b, problem.spec)):
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(AssertionError) as info:
        check_layer(MISTAKES["sign-flipped"], problem, mode="fast")
    assert info.value.result.mode == "fast"
    assert info.value.result.gradients[0] is not None
