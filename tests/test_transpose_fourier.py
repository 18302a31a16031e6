"""The transposed convolution's Fourier identity: the reference formulas pass it on every valid
geometry, and every named mistake of the family fails it somewhere."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from examples.family_mistakes import FAMILY_MISTAKES
from gradcheck import ConvTransposeProblem, ConvTransposeSpec, InvalidArgument
from gradcheck.harness.family_strategies import conv_transpose_problems
from gradcheck.judge.transpose_fourier import compare_transpose_fourier, transpose_fourier

TRANSPOSE_MISTAKES = sorted(n for n in FAMILY_MISTAKES if n.startswith("transpose-"))


@given(conv_transpose_problems(dtypes=("float64", "float32")))
def test_the_reference_formulas_satisfy_the_convolution_theorem(problem) -> None:
    result = compare_transpose_fourier(problem)
    assert result.passed, result.summary()


def _problems() -> list[ConvTransposeProblem]:
    """Geometries on which each family mistake shows: stride and dilation apart, output
    padding, asymmetric padding, groups, a non-square kernel, a bias."""
    rng = np.random.default_rng(7)
    cases = [
        ((2, 4, 3, 4), (4, 1, 2, 3), ConvTransposeSpec(2, stride=(2, 3), padding=((1, 0), (0, 1)),
                                                      output_padding=(1, 0), dilation=(1, 2),
                                                      groups=2)),
        ((1, 2, 5), (2, 3, 3), ConvTransposeSpec(1, stride=3, padding=((0, 2),),
                                                 output_padding=2, dilation=2)),
    ]
    problems = []
    for x_shape, w_shape, spec in cases:
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        b = rng.standard_normal(w_shape[1] * spec.groups)
        from gradcheck.geometry.family_spec import conv_transpose_output_shape

        y_shape = conv_transpose_output_shape(x.shape, w.shape, spec, b.shape)
        problems.append(ConvTransposeProblem(x, w, b, rng.standard_normal(y_shape), spec))
    return problems


@pytest.mark.parametrize("name", TRANSPOSE_MISTAKES)
def test_every_transposed_mistake_fails_the_identity(name: str) -> None:
    layer = FAMILY_MISTAKES[name]
    failed = []
    for p in _problems():
        dx, dw, _ = layer.backward(p.dy, p.x, p.w, p.b, p.spec)
        y = layer.forward(p.x, p.w, p.b, p.spec)
        failed.append(not compare_transpose_fourier(p, {"dx": dx, "dw": dw}, y).passed)
    assert any(failed), f"{name} satisfies the Fourier identity on every problem"


def test_the_bounds_are_tight_enough_to_see_a_relative_error_of_1e_9() -> None:
    """The FFT bound is far below any formula mistake: a 1e-9 relative error in one dx entry
    of a float64 problem is caught."""
    p = _problems()[0]
    right = compare_transpose_fourier(p)
    assert right.passed
    values = transpose_fourier(p)
    dx = values["dx"][0].copy()
    dx.flat[3] *= 1 + 1e-9
    dw = values["dw"][0]
    assert not compare_transpose_fourier(p, {"dx": dx, "dw": dw}).passed


def test_complex_problems_are_refused_by_name() -> None:
    p = _problems()[1]
    complex_problem = ConvTransposeProblem(p.x.astype(complex), p.w, p.b, p.dy, p.spec)
    with pytest.raises(InvalidArgument, match=r"problem=.*the Fourier identity needs real"):
        transpose_fourier(complex_problem)
