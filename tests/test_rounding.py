"""Rounding models: the normwise bound holds for fast transforms, correct layers of every strategy
pass under the model they declare, an undeclared FFT layer is told so (never a mismatch), and
every wrong layer is still caught under the normwise model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from examples.correct import CORRECT, correct_layers
from examples.correct.fft import fft_numpy, fft_scipy_fft, fft_scipy_signal
from examples.correct.winograd import winograd_f2x2_3x3
from examples.mistakes import MISTAKES
from gradcheck import ConvSpec, GradientMismatch, check_layer, fuzz_layer
from gradcheck.errors import InvalidArgument, LayerError
from gradcheck.formulas.conv import conv_backward, conv_forward
from gradcheck.geometry.problem import ConvProblem
from gradcheck.geometry.supports import Supports
from gradcheck.harness.check import NORMWISE_REASON, UndeclaredRounding
from gradcheck.harness.layer import layer_from_functions
from gradcheck.judge.bounds import (
    Norms,
    analytic_bounds,
    forward_planes,
    input_planes,
    weight_planes,
    winograd_growth,
)
from gradcheck.judge.compare import compare_finite_differences, compare_forward
from gradcheck.strategies import conv_problems

ROOT = Path(__file__).resolve().parents[1]
FFT_LAYERS = {"scipy.signal": fft_scipy_signal, "scipy.fft": fft_scipy_fft, "numpy.fft": fft_numpy}


def _zero_corner_problem(dtype: str = "float64") -> ConvProblem:
    """Issue 13's false alarm: an input whose top-left 3×3 is 0, so y[0, 0, :2, :2] is exactly
    0, and the FFT returns ~1e-17 there: infinitely many times the entrywise bound."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 5, 5))
    x[..., :3, :3] = 0
    w = rng.standard_normal((1, 1, 2, 2))
    spec = ConvSpec(2, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    dy = rng.standard_normal((1, 1, 4, 4))
    return ConvProblem(x.astype(dtype), w.astype(dtype), None, dy.astype(dtype), spec)


# --------------------------------------------------------------------------- the bound itself


def test_the_entrywise_bound_fails_an_fft_layer_and_the_normwise_one_holds():
    p = _zero_corner_problem()
    y = fft_scipy_signal.forward(p.x, p.w, p.b, p.spec)
    entrywise = compare_forward(p, y)
    assert not entrywise.passed and entrywise.ratio == float("inf")
    normwise = compare_forward(p, y, "normwise")
    assert normwise.passed and normwise.ratio < 0.01


def test_winograd_growth_of_f2_3():
    assert winograd_growth() == (9.0, 8)  # ‖Aᵀ‖·‖G‖·‖Bᵀ‖ = 3·1.5·2, rows of 3 + 3 + 2 terms


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(FFT_LAYERS))
def test_fft_errors_are_within_the_plane_bounds(name, dtype):
    """The FFT plane bound (‖e‖₂ of every output plane) holds for y, dx and dw, against the
    exact values (the float64 reference on the same data: its own error is ~1e-16 relative,
    far below any float32 bound and about 1e-3 of the float64 plane bounds)."""
    layer = FFT_LAYERS[name]
    ratios = []

    @settings(max_examples=25, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(conv_problems(layer.supports, dtypes=(dtype,)))
    def run(p):
        x, w, dy = (a.astype(np.float64) for a in (p.x, p.w, p.dy))
        b = None if p.b is None else p.b.astype(np.float64)
        y_exact = conv_forward(x, w, b, p.spec)
        dx_exact, dw_exact, _ = conv_backward(dy, x, w, b, p.spec)
        y = layer.forward(p.x, p.w, p.b, p.spec)
        dx, dw, _ = layer.backward(p.dy, p.x, p.w, p.b, p.spec)
        bias_rounding = 0.0 if p.b is None else np.abs(p.b).max() * np.finfo(dtype).eps
        for error, planes, extra in (
            (y - y_exact, forward_planes(p, p.dtype), bias_rounding),
            (dx - dx_exact, input_planes(p, p.dtype), 0.0),
            (dw - dw_exact, weight_planes(p, p.dtype), 0.0),
        ):
            norm = Norms.of(error).two
            ratios.append(float(np.max(norm / (planes.fft + extra * np.sqrt(error[0, 0].size)))))

    run()
    assert max(ratios) <= 1
    assert max(ratios) > 1e-6  # the bound is not vacuous: errors are seen, within ~1e-3 of it


def test_normwise_bounds_contain_the_entrywise_ones():
    p = _zero_corner_problem()
    for wide, narrow in zip(analytic_bounds(p, rounding="normwise"), analytic_bounds(p)):
        if wide is not None:
            assert np.all(wide >= narrow)


# --------------------------------------------------------------------------- selection


def test_rounding_is_a_validated_supports_key():
    assert Supports().rounding == "entrywise"
    assert Supports.from_claim({"rounding": "normwise"}).rounding == "normwise"
    with pytest.raises(InvalidArgument, match="rounding='fft'"):
        Supports(rounding="fft")
    with pytest.raises(InvalidArgument, match="rounding"):
        check_layer(CORRECT["direct-loops"], _zero_corner_problem(), rounding="fast")


def test_the_complex_step_is_refused_under_normwise_rounding():
    p = _zero_corner_problem()
    with pytest.raises(InvalidArgument, match="complex step needs entrywise"):
        compare_finite_differences(p, method="complex-step", rounding="normwise")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(correct_layers()))
def test_correct_layers_pass_under_their_declared_model(name, dtype, budget):
    if name.startswith("torch"):
        torch = pytest.importorskip("torch")
        torch.set_num_threads(1)  # spinning intra-op threads: several times slower here
    layer = correct_layers()[name]
    result = fuzz_layer(layer, examples=budget(0.06), seed=11, explain=False,
                        claim={"dtypes": (dtype,)})
    assert result.status == "passed", result.error


def test_an_undeclared_fft_layer_is_told_it_looks_like_fft_rounding():
    undeclared = layer_from_functions(fft_scipy_signal.forward, fft_scipy_signal.backward)
    with pytest.raises(UndeclaredRounding) as caught:
        check_layer(undeclared, _zero_corner_problem())
    error = caught.value
    assert isinstance(error, LayerError) and not isinstance(error, GradientMismatch)
    assert error.reason == NORMWISE_REASON
    assert "looks like FFT/Winograd rounding" in str(error)
    assert "supports={'rounding': 'normwise'}" in str(error) and "--rounding normwise" in str(error)
    assert error.report.passed
    assert not isinstance(error.entrywise, LayerError) and not error.entrywise.passed
    check_layer(undeclared, _zero_corner_problem(), rounding="normwise")  # the fix works


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fuzzing_an_undeclared_fft_layer_never_reports_a_mismatch(dtype, budget):
    undeclared = layer_from_functions(fft_scipy_fft.forward, fft_scipy_fft.backward,
                                      {"dtypes": (dtype,)})
    result = fuzz_layer(undeclared, examples=budget(0.4), seed=0, explain=False,
                        claim={"dtypes": (dtype,)})
    assert result.status in ("passed", "layer-error")
    if result.status == "layer-error":
        assert getattr(result.error, "reason", None) == NORMWISE_REASON


def test_an_undeclared_winograd_layer_is_never_a_mismatch(budget):
    undeclared = layer_from_functions(winograd_f2x2_3x3.forward, winograd_f2x2_3x3.backward,
                                      dict(winograd_f2x2_3x3.supports, rounding="entrywise"))
    result = fuzz_layer(undeclared, examples=budget(0.27), seed=0, explain=False)
    assert result.status in ("passed", "layer-error"), result.error
    assert result.status == "passed" or getattr(result.error, "reason", None) == NORMWISE_REASON


def test_the_correct_examples_need_no_torch(monkeypatch):
    import importlib

    module = importlib.import_module("examples.correct.torch_layers")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    assert module.torch_layers() == {}
    assert set(correct_layers()) == set(CORRECT)


# --------------------------------------------------------------------------- still caught


#: A fast subset: one mistake in each gradient and the rounding-sized one.
FAST_MISTAKES = ("kernel-not-flipped", "stride-ignored-dw", "bias-not-summed-spatially",
                 "precision-loss", "forward-convolves")


def _mistake_params(names):
    return [pytest.param(n, d, marks=() if n in FAST_MISTAKES else pytest.mark.slow)
            for n in names for d in ("float64", "float32")]


@pytest.mark.parametrize(("name", "dtype"), _mistake_params(sorted(MISTAKES)))
def test_every_wrong_layer_is_caught_under_normwise_rounding(name, dtype):
    result = fuzz_layer(MISTAKES[name], explain=False,
                        claim={"dtypes": (dtype,), "rounding": "normwise"})
    assert result.status == "mismatch", f"{name} passed {result.examples} configurations"
    assert isinstance(result.error, GradientMismatch)


def test_precision_loss_is_a_mismatch_not_fft_rounding_under_the_default_model():
    result = fuzz_layer(MISTAKES["precision-loss"], explain=False)
    assert result.status == "mismatch"


# --------------------------------------------------------------------------- the benchmark


def test_the_false_alarm_benchmark_runs_quick_from_a_fresh_checkout():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "false_alarms.py"),
                           "--quick"], cwd=ROOT.parent, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 false alarms" in done.stdout
    assert "undeclared FFT layer: 0 mismatch verdicts" in done.stdout
    assert "float32  normwise" in done.stdout
