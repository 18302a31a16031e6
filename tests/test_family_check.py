"""Transposed convolution and pooling through every face: check_layer, fuzz_layer, the CLI,
JSON, verify, the adapters — correct layers pass, every named mistake is caught and named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from examples.cs231n_pool import layer as cs231n_pool
from examples.cs231n_pool import wrong_layer as cs231n_wrong
from examples.family_layers import avg_pool, conv_transpose, max_pool
from examples.family_mistakes import FAMILY_MISTAKES
from gradcheck import (
    ConvTransposeProblem,
    ConvTransposeSpec,
    GradientMismatch,
    InvalidArgument,
    PoolProblem,
    PoolSpec,
    Supports,
    check_layer,
    fuzz_layer,
)
from gradcheck.explain.family_mistakes import MISTAKES
from gradcheck.faces.cli import main
from gradcheck.harness.family_check import check_family_layer
from gradcheck.harness.request import CheckOptions

CORRECT = {"conv_transpose": conv_transpose, "max_pool": max_pool, "avg_pool": avg_pool}


def _ct_problem(dtype: str = "float64", seed: int = 0) -> ConvTransposeProblem:
    rng = np.random.default_rng(seed)
    spec = ConvTransposeSpec(2, stride=(2, 3), padding=((1, 0), (0, 2)), output_padding=(1, 0),
                             dilation=(1, 2), groups=2)
    x = rng.standard_normal((2, 4, 3, 4)).astype(dtype)
    w = rng.standard_normal((4, 3, 2, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    dy = rng.standard_normal(spec_shape := (2, 6, *spec.output_size((3, 4), (2, 3))))
    assert spec_shape[2:] == (6, 12)  # (S−1)·s − lo − hi + r·(K−1) + a + 1
    return ConvTransposeProblem(x, w, b, dy.astype(dtype), spec)


def _pool_problem(dtype: str = "float64", **geometry) -> PoolProblem:
    rng = np.random.default_rng(1)
    spec = PoolSpec(2, **{"kernel_size": 3, "stride": 2, "padding": 1, **geometry})
    size = 36
    x = (rng.permutation(2 * size) - size).reshape(1, 2, 6, 6) / 8  # tie-free, spacing 1/8
    dy = rng.standard_normal((1, 2, *spec.output_size((6, 6))))
    return PoolProblem(x.astype(dtype), dy.astype(dtype), spec)


# --------------------------------------------------------------------------- correct layers


@pytest.mark.parametrize("family", sorted(CORRECT))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_correct_layers_pass_fuzzing(family, dtype, budget):
    result = fuzz_layer(CORRECT[family], examples=budget(0.3), claim={"dtypes": (dtype,)})
    assert result.passed, str(result)
    assert result.worst_ratio <= 1


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_check_layer_on_a_transposed_problem_in_each_mode(mode):
    report = check_layer(conv_transpose, _ct_problem(), mode=mode)
    checks = [r.check for r in report.results]
    assert checks == ["forward", "finite-differences" if mode == "full" else "directional",
                      "adjoint"]
    assert report.mode == mode and report.passed


def test_float32_problem_is_also_checked_in_float64():
    report = check_layer(conv_transpose, _ct_problem("float32"))
    assert report.passed and report.problem.dtype == np.float32


# --------------------------------------------------------------------------- tolerances bite


class _Scaled:
    """The correct layer with one gradient scaled by 1 + eps: rounding-sized, still wrong."""

    def __init__(self, inner, eps):
        self.inner, self.eps, self.supports = inner, eps, inner.supports

    def forward(self, *args):
        return self.inner.forward(*args)

    def backward(self, *args):
        out = self.inner.backward(*args)
        if isinstance(out, tuple):
            return (out[0] * (1 + self.eps), *out[1:])
        return out * (1 + self.eps)


@pytest.mark.parametrize("family, problem", [
    ("conv_transpose", _ct_problem()), ("max_pool", _pool_problem()),
    ("avg_pool", _pool_problem())])
def test_a_relative_error_of_1e_9_is_seen_in_float64(family, problem):
    """Bounds are γ_n·Σ|terms| with n <= 24 here, about 3e-15 relative: 1e-9 is far beyond."""
    with pytest.raises(GradientMismatch):
        check_family_layer(_Scaled(CORRECT[family], 1e-9), problem, CheckOptions())
    check_family_layer(_Scaled(CORRECT[family], 1e-15), problem, CheckOptions())


def test_max_pool_on_a_tie_is_refused_naming_the_problem():
    p = _pool_problem()
    x = p.x.copy()
    x[0, 0, 0, 0] = x[0, 0, 0, 1]
    with pytest.raises(InvalidArgument, match="tie"):
        check_layer(max_pool, PoolProblem(x, p.dy, p.spec))


def test_max_pool_complex_step_is_refused():
    with pytest.raises(InvalidArgument, match="method"):
        check_family_layer(max_pool, _pool_problem(), CheckOptions(method="complex-step"),
                           "max_pool")


def test_pool_problem_needs_the_family():
    class Bare:
        def forward(self, x, spec):
            return max_pool.forward(x, spec)

        def backward(self, dy, x, spec):
            return max_pool.backward(dy, x, spec)

    with pytest.raises(InvalidArgument, match="family"):
        check_layer(Bare(), _pool_problem())
    report = check_family_layer(Bare(), _pool_problem(), CheckOptions(), "max_pool")
    assert report.passed


def test_family_claim_is_validated():
    with pytest.raises(InvalidArgument, match="family"):
        Supports(family="pool")


# --------------------------------------------------------------------------- the mistakes


def test_every_named_mistake_has_a_wrong_layer():
    names = {m.name for mistakes in MISTAKES.values() for m in mistakes}
    assert names == set(FAMILY_MISTAKES)


@pytest.mark.parametrize("name", sorted(FAMILY_MISTAKES))
def test_every_family_mistake_is_caught_and_named_by_default_fuzzing(name):
    result = fuzz_layer(FAMILY_MISTAKES[name])
    assert result.status == "mismatch", f"{name} passed {result.examples} configurations"
    assert result.explanation is not None
    named = [d.name for d in result.explanation.diagnoses]
    assert named[0] == name, str(result)
    assert f"[{name}]" in str(result)


@pytest.mark.parametrize("name, problem", [
    ("max-pool-overwrite-instead-of-accumulate", _pool_problem()),
    ("max-pool-padding-offset-in-the-routing", _pool_problem()),
    ("transpose-stride-ignored", _ct_problem()),
    ("transpose-crop-on-the-wrong-side", _ct_problem()),
    ("avg-pool-padding-never-counted-in-the-divisor", _pool_problem()),
])
def test_check_layer_names_the_mistake_on_one_problem(name, problem):
    with pytest.raises(GradientMismatch) as caught:
        check_layer(FAMILY_MISTAKES[name], problem)
    assert f"[{name}]" in str(caught.value)


@pytest.mark.parametrize("name", ["transpose-kernel-not-flipped",
                                  "max-pool-gradient-to-every-window-entry"])
def test_fast_mode_catches_mistakes(name):
    assert fuzz_layer(FAMILY_MISTAKES[name], mode="fast").status == "mismatch"


# --------------------------------------------------------------------------- faces


def test_cli_fuzz_names_the_mistake_and_prints_the_family_spec(capsys):
    code = main(["fuzz", "examples/family_mistakes.py:overwrite", "--quiet", "--json",
                 "--examples", "30"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["status"] == "mismatch"
    failure = out["failure"]
    assert set(failure["spec"]) == {"dims", "kernel_size", "stride", "padding", "dilation",
                                    "ceil_mode", "count_include_pad"}
    assert "w" not in failure["shapes"]
    assert failure["diagnosis"][0]["name"] == "max-pool-overwrite-instead-of-accumulate"


def test_cli_family_flag_selects_the_protocol(tmp_path, capsys):
    module = tmp_path / "plain.py"
    module.write_text(
        "from gradcheck import max_pool_forward, max_pool_backward\n"
        "class Plain:\n"
        "    def forward(self, x, spec): return max_pool_forward(x, spec)\n"
        "    def backward(self, dy, x, spec): return max_pool_backward(dy, x, spec)\n"
        "layer = Plain()\n")
    code = main(["fuzz", f"{module}:layer", "--family", "max_pool", "--examples", "20",
                 "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("PASSED")


def test_layer_own_family_wins_over_the_flag(capsys):
    code = main(["fuzz", "examples/family_layers.py:avg_pool", "--family", "conv_transpose",
                 "--examples", "10", "--quiet", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["claim"]["family"] == "avg_pool"


def test_cs231n_pool_adapter():
    assert fuzz_layer(cs231n_pool, examples=30).passed
    wrong = fuzz_layer(cs231n_wrong, examples=30)
    assert wrong.explanation is not None
    assert wrong.explanation.diagnoses[0].name == "max-pool-gradient-to-every-window-entry"


def test_verify_has_a_row_per_family_check():
    from gradcheck.faces.verify import verify
    from gradcheck.faces.verify_family import FAMILY_CHECKS

    report = verify(examples=10, show_progress=False)
    assert report.passed
    assert all(report.runs[name] >= 1 for name in FAMILY_CHECKS)
    assert "max_pool: central differences (step < margin/2)" in report.table()


@pytest.mark.parametrize("module", ["ConvTranspose1d", "ConvTranspose2d", "MaxPool2d",
                                    "AvgPool1d", "AvgPool3d"])
def test_torch_family_modules(module, budget):
    torch = pytest.importorskip("torch")
    from gradcheck import layer_from_torch

    layer = layer_from_torch(getattr(torch.nn, module))
    assert layer.supports.family in ("conv_transpose", "max_pool", "avg_pool")
    result = fuzz_layer(layer, examples=budget(0.1))
    assert result.passed, str(result)


# --------------------------------------------------------------------------- soak


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(CORRECT))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_no_false_alarm_in_2000_configurations(family, dtype):
    result = fuzz_layer(CORRECT[family], examples=2000, claim={"dtypes": (dtype,)})
    assert result.passed, str(result)
    assert result.examples >= 2000 - result.inconclusive


@pytest.mark.parametrize("problem", [_ct_problem("float32"), _pool_problem()],
                         ids=["conv_transpose", "pool"])
def test_family_regression_cases_round_trip(problem, tmp_path):
    from gradcheck.harness.corpus import load_regression, save_regression

    path = save_regression(problem, tmp_path, meta={"family": "any"})
    _, loaded, meta = load_regression(path)
    assert type(loaded) is type(problem) and loaded.spec == problem.spec
    assert loaded.key == problem.key and loaded.dtype == problem.dtype
    assert meta == {"family": "any"}


def test_fuzz_saves_family_failures_that_replay(tmp_path):
    from gradcheck.harness.check import check_regressions

    result = fuzz_layer(FAMILY_MISTAKES["max-pool-overwrite-instead-of-accumulate"], examples=20,
                        save_regressions=str(tmp_path))
    assert result.failure is not None and result.failure.saved is not None
    assert len(check_regressions(max_pool, tmp_path)) == 1
    with pytest.raises(GradientMismatch, match="max-pool-overwrite-instead-of-accumulate"):
        check_regressions(FAMILY_MISTAKES["max-pool-overwrite-instead-of-accumulate"], tmp_path)


def test_the_pytest_fixture_fuzzes_and_checks_family_layers(gradcheck):
    result = gradcheck.fuzz(avg_pool, examples=20, dims=(2,))
    assert result.passed and result.claim["family"] == "avg_pool"
    assert gradcheck.check(conv_transpose, _ct_problem()).passed
    with pytest.raises(pytest.fail.Exception, match=r"\[transpose-groups-mixed\]"):
        gradcheck.fuzz(FAMILY_MISTAKES["transpose-groups-mixed"], examples=30)
