"""gradcheck: check hand-derived gradients — convolution first — three independent ways.

The names users import are re-exported here, lazily: importing ``gradcheck`` (as the pytest
plugin does in every test run of a project that has it installed) costs nothing until a name
is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "CheckResult": "gradcheck.judge.result",
    "Comparison": "gradcheck.judge.result",
    "ConvProblem": "gradcheck.geometry.problem",
    "ConvSpec": "gradcheck.geometry.spec",
    "ConvTransposeProblem": "gradcheck.geometry.family_problem",
    "ConvTransposeSpec": "gradcheck.geometry.family_spec",
    "PoolProblem": "gradcheck.geometry.family_problem",
    "PoolSpec": "gradcheck.geometry.family_spec",
    "avg_pool_backward": "gradcheck.formulas.pool",
    "avg_pool_forward": "gradcheck.formulas.pool",
    "conv_transpose_backward": "gradcheck.formulas.conv_transpose",
    "conv_transpose_forward": "gradcheck.formulas.conv_transpose",
    "conv_transpose_output_shape": "gradcheck.geometry.family_spec",
    "max_pool_backward": "gradcheck.formulas.pool",
    "max_pool_forward": "gradcheck.formulas.pool",
    "pool_output_shape": "gradcheck.geometry.family_spec",
    "FuzzResult": "gradcheck.harness.fuzz",
    "Inconclusive": "gradcheck.harness.check",
    "GradcheckError": "gradcheck.errors",
    "GradientMismatch": "gradcheck.errors",
    "InvalidArgument": "gradcheck.errors",
    "InvalidArgumentType": "gradcheck.errors",
    "Layer": "gradcheck.harness.layer",
    "LayerError": "gradcheck.errors",
    "LayerReport": "gradcheck.judge.result",
    "Supports": "gradcheck.geometry.supports",
    "check_gradients": "gradcheck.judge.compare",
    "check_layer": "gradcheck.harness.check",
    "compare_adjoint": "gradcheck.judge.compare",
    "compare_finite_differences": "gradcheck.judge.compare",
    "compare_fourier": "gradcheck.judge.compare",
    "compare_transfer_function": "gradcheck.judge.compare",
    "conv_backward": "gradcheck.formulas.conv",
    "conv_forward": "gradcheck.formulas.conv",
    "fuzz_layer": "gradcheck.harness.fuzz",
    "layer_from_cs231n": "gradcheck.harness.layer",
    "layer_from_cs231n_pool": "gradcheck.harness.layer",
    "layer_from_functions": "gradcheck.harness.layer",
    "layer_from_torch": "gradcheck.harness.layer",
    "output_shape": "gradcheck.geometry.spec",
    "raise_on_failure": "gradcheck.judge.compare",
    "check_vjp": "gradcheck.harness.vjp",
    "fuzz_vjp": "gradcheck.harness.vjp",
    "NonDifferentiable": "gradcheck.harness.vjp",
    "VjpInconclusive": "gradcheck.harness.vjp",
    "VjpFuzzResult": "gradcheck.harness.vjp",
    "Request": "gradcheck.harness.request",
    "CheckOptions": "gradcheck.harness.request",
    "Failure": "gradcheck.harness.outcome",
}

__all__ = [
    "CheckOptions",
    "CheckResult",
    "Comparison",
    "ConvProblem",
    "ConvSpec",
    "ConvTransposeProblem",
    "ConvTransposeSpec",
    "Failure",
    "FuzzResult",
    "GradcheckError",
    "GradientMismatch",
    "Inconclusive",
    "InvalidArgument",
    "InvalidArgumentType",
    "Layer",
    "LayerError",
    "LayerReport",
    "NonDifferentiable",
    "PoolProblem",
    "PoolSpec",
    "Request",
    "Supports",
    "VjpFuzzResult",
    "VjpInconclusive",
    "avg_pool_backward",
    "avg_pool_forward",
    "check_gradients",
    "check_layer",
    "check_vjp",
    "compare_adjoint",
    "compare_finite_differences",
    "compare_fourier",
    "compare_transfer_function",
    "conv_backward",
    "conv_forward",
    "conv_transpose_backward",
    "conv_transpose_forward",
    "conv_transpose_output_shape",
    "fuzz_layer",
    "fuzz_vjp",
    "layer_from_cs231n",
    "layer_from_cs231n_pool",
    "layer_from_functions",
    "layer_from_torch",
    "max_pool_backward",
    "max_pool_forward",
    "output_shape",
    "pool_output_shape",
    "raise_on_failure",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gradcheck' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from gradcheck.errors import (
        GradcheckError,
        GradientMismatch,
        InvalidArgument,
        InvalidArgumentType,
        LayerError,
    )
    from gradcheck.formulas.conv import conv_backward, conv_forward
    from gradcheck.formulas.conv_transpose import conv_transpose_backward, conv_transpose_forward
    from gradcheck.formulas.pool import (
        avg_pool_backward,
        avg_pool_forward,
        max_pool_backward,
        max_pool_forward,
    )
    from gradcheck.geometry.family_problem import ConvTransposeProblem, PoolProblem
    from gradcheck.geometry.family_spec import (
        ConvTransposeSpec,
        PoolSpec,
        conv_transpose_output_shape,
        pool_output_shape,
    )
    from gradcheck.geometry.problem import ConvProblem
    from gradcheck.geometry.spec import ConvSpec, output_shape
    from gradcheck.geometry.supports import Supports
    from gradcheck.harness.check import Inconclusive, check_layer
    from gradcheck.harness.fuzz import FuzzResult, fuzz_layer
    from gradcheck.harness.layer import (
        Layer,
        layer_from_cs231n,
        layer_from_cs231n_pool,
        layer_from_functions,
        layer_from_torch,
    )
    from gradcheck.harness.outcome import Failure
    from gradcheck.harness.request import CheckOptions, Request
    from gradcheck.harness.vjp import (
        NonDifferentiable,
        VjpFuzzResult,
        VjpInconclusive,
        check_vjp,
        fuzz_vjp,
    )
    from gradcheck.judge.compare import (
        check_gradients,
        compare_adjoint,
        compare_finite_differences,
        compare_fourier,
        compare_transfer_function,
        raise_on_failure,
    )
    from gradcheck.judge.result import CheckResult, Comparison, LayerReport
