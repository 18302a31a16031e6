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
    "CheckResult": "gradcheck.result",
    "Comparison": "gradcheck.result",
    "ConvProblem": "gradcheck.problem",
    "ConvSpec": "gradcheck.spec",
    "FuzzResult": "gradcheck.fuzz",
    "Inconclusive": "gradcheck.fuzz",
    "GradcheckError": "gradcheck.errors",
    "GradientMismatch": "gradcheck.errors",
    "InvalidArgument": "gradcheck.errors",
    "InvalidArgumentType": "gradcheck.errors",
    "Layer": "gradcheck.layer",
    "LayerError": "gradcheck.errors",
    "LayerReport": "gradcheck.fuzz",
    "Supports": "gradcheck.supports",
    "check_gradients": "gradcheck.check",
    "check_layer": "gradcheck.fuzz",
    "compare_adjoint": "gradcheck.check",
    "compare_finite_differences": "gradcheck.check",
    "compare_fourier": "gradcheck.check",
    "compare_transfer_function": "gradcheck.check",
    "conv_backward": "gradcheck.conv",
    "conv_forward": "gradcheck.conv",
    "fuzz_layer": "gradcheck.fuzz",
    "layer_from_cs231n": "gradcheck.layer",
    "layer_from_functions": "gradcheck.layer",
    "layer_from_torch": "gradcheck.layer",
    "output_shape": "gradcheck.spec",
    "raise_on_failure": "gradcheck.check",
    "check_vjp": "gradcheck.vjp",
    "fuzz_vjp": "gradcheck.vjp",
    "NonDifferentiable": "gradcheck.vjp",
}

__all__ = [
    "CheckResult",
    "Comparison",
    "ConvProblem",
    "ConvSpec",
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
    "Supports",
    "check_gradients",
    "check_layer",
    "check_vjp",
    "compare_adjoint",
    "compare_finite_differences",
    "compare_fourier",
    "compare_transfer_function",
    "conv_backward",
    "conv_forward",
    "fuzz_layer",
    "fuzz_vjp",
    "layer_from_cs231n",
    "layer_from_functions",
    "layer_from_torch",
    "output_shape",
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
    from gradcheck.check import (
        check_gradients,
        compare_adjoint,
        compare_finite_differences,
        compare_fourier,
        compare_transfer_function,
        raise_on_failure,
    )
    from gradcheck.conv import conv_backward, conv_forward
    from gradcheck.errors import (
        GradcheckError,
        GradientMismatch,
        InvalidArgument,
        InvalidArgumentType,
        LayerError,
    )
    from gradcheck.fuzz import FuzzResult, Inconclusive, LayerReport, check_layer, fuzz_layer
    from gradcheck.layer import (
        Layer,
        layer_from_cs231n,
        layer_from_functions,
        layer_from_torch,
    )
    from gradcheck.problem import ConvProblem
    from gradcheck.result import CheckResult, Comparison
    from gradcheck.spec import ConvSpec, output_shape
    from gradcheck.supports import Supports
    from gradcheck.vjp import NonDifferentiable, check_vjp, fuzz_vjp
