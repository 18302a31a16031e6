"""The example layers: every deliberately wrong one is caught; the correct one never is."""

from __future__ import annotations

import pytest

from examples.catalogue import CATALOGUE_LAYERS
from examples.misbehaving import MISBEHAVING
from examples.mistakes import MISTAKES
from examples.naive_conv import layer as naive_layer
from gradcheck import GradientMismatch, LayerError, check_layer, fuzz_layer
from gradcheck.harness.layer import layer_from_cs231n
from gradcheck.strategies import conv_problems

#: A soak's share of the profile: 2,000 configurations per dtype under the ci profile.
SOAK = 40 / 3


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_every_wrong_layer_is_caught_by_default_fuzzing(name):
    result = fuzz_layer(MISTAKES[name])
    assert result.status == "mismatch", f"{name} passed {result.examples} configurations"
    assert isinstance(result.error, GradientMismatch)


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_every_wrong_layer_is_caught_in_float32(name):
    result = fuzz_layer(MISTAKES[name], claim={'dtypes': ("float32",)})
    assert result.status == "mismatch"


@pytest.mark.parametrize("name", sorted(MISBEHAVING))
def test_misbehaving_layers_are_layer_errors_with_their_reason(name, budget):
    result = fuzz_layer(MISBEHAVING[name], examples=budget(0.07), deadline=1.0)
    assert result.status == "layer-error"
    assert isinstance(result.error, LayerError)
    assert result.error.reason == MISBEHAVING[name].problem


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_correct_layer_passes_thousands_of_configurations(dtype, budget):
    result = fuzz_layer(naive_layer, examples=budget(SOAK), seed=1, claim={"dtypes": (dtype,)})
    assert result.status == "passed", result.error
    assert result.examples >= budget(SOAK)
    assert result.worst_ratio <= 1


def test_the_minimal_configuration_is_minimal_for_a_stride_bug():
    result = fuzz_layer(MISTAKES["stride-ignored-dx"])
    p = result.problem
    assert max(p.spec.stride) == 2  # the smallest stride that shows it
    assert p.x.shape[:2] == (1, 1) and p.spec.dims == 1


def test_cs231n_adapter_passes_and_catches_its_wrong_backward(budget):
    from examples import cs231n_style as cs

    good = layer_from_cs231n(cs.conv_forward_naive, cs.conv_backward_naive)
    assert fuzz_layer(good, examples=budget(0.4)).status == "passed"
    bad = layer_from_cs231n(cs.conv_forward_naive, cs.conv_backward_wrong)
    assert fuzz_layer(bad, examples=budget(0.4)).status == "mismatch"


def test_check_layer_raises_an_assertion_error_subclass():
    from hypothesis import find

    problem = find(conv_problems(dims=1, max_stride=1), lambda p: p.w.shape[2] > 1)
    check_layer(naive_layer, problem)
    with pytest.raises(AssertionError):
        check_layer(MISTAKES["kernel-not-flipped"], problem)


@pytest.mark.slow
def test_torch_conv_modules_pass_thousands_of_configurations(budget):
    torch = pytest.importorskip("torch")
    from gradcheck.harness.layer import layer_from_torch

    for module, dims in ((torch.nn.Conv1d, 1), (torch.nn.Conv2d, 2), (torch.nn.Conv3d, 3)):
        result = fuzz_layer(layer_from_torch(module), examples=budget(SOAK / 3), seed=dims)
        assert result.status == "passed", result.error


def _numpy_layer_as_torch_function(layer):
    """A torch.autograd.Function whose forward and backward are the numpy layer's."""
    torch = pytest.importorskip("torch")

    class NumpyConv(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, b, spec):
            ctx.save_for_backward(x, w, *(() if b is None else (b,)))
            ctx.spec, ctx.has_bias = spec, b is not None
            bias = None if b is None else b.detach().numpy()
            return torch.from_numpy(layer.forward(x.detach().numpy(), w.detach().numpy(), bias,
                                                  spec))

        @staticmethod
        def backward(ctx, dy):
            x, w, *b = ctx.saved_tensors
            bias = b[0].numpy() if ctx.has_bias else None
            dx, dw, db = layer.backward(dy.numpy(), x.numpy(), w.numpy(), bias, ctx.spec)
            return (torch.from_numpy(dx), torch.from_numpy(dw),
                    None if db is None else torch.from_numpy(db), None)

    return NumpyConv


def test_torch_autograd_function_adapter(budget):
    from gradcheck.harness.layer import layer_from_torch

    good = layer_from_torch(_numpy_layer_as_torch_function(naive_layer))
    assert fuzz_layer(good, examples=budget(0.4)).status == "passed"
    bad = layer_from_torch(_numpy_layer_as_torch_function(MISTAKES["kernel-not-flipped"]))
    result = fuzz_layer(bad, examples=budget(0.4))
    assert result.status == "mismatch"
    assert "kernel-not-flipped" in [d.name for d in result.explanation.diagnoses]


def _catalogue_problem():
    """2-d, every catalogue mistake visible: stride ≠ dilation, overlaps, an unreached tail,
    asymmetric padding, N > 1, 1 < G < F with C/G, F/G > 1, a bias, a square kernel."""
    import numpy as np

    from gradcheck import ConvSpec
    from gradcheck.geometry.problem import ConvProblem

    spec = ConvSpec.create(2, stride=(2, 3), dilation=(2, 1), padding=((2, 1), (1, 0)), groups=2)
    rng = np.random.default_rng(0)
    out = spec.output_size((9, 8), (3, 3))
    return ConvProblem(rng.standard_normal((3, 4, 9, 8)), rng.standard_normal((4, 2, 3, 3)),
                       rng.standard_normal(4), rng.standard_normal((3, 4, *out)), spec)


CATALOGUE_PROBLEM = _catalogue_problem()


@pytest.mark.parametrize("key", sorted(CATALOGUE_LAYERS), ids="-".join)
def test_every_generated_catalogue_layer_is_caught_and_named(key):
    from gradcheck.explain.explanation import explain_failure

    with pytest.raises(GradientMismatch) as caught:
        check_layer(CATALOGUE_LAYERS[key], CATALOGUE_PROBLEM, mode="fast", explain=False)
    explanation = explain_failure(CATALOGUE_PROBLEM, caught.value.result)
    assert key in [(d.name, d.gradient) for d in explanation.diagnoses]
