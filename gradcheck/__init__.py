"""gradcheck: check hand-derived gradients — convolution first — three independent ways.

The names users import are re-exported here; everything else is an implementation detail.
"""

from __future__ import annotations

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
from gradcheck.fuzz import FuzzResult, LayerReport, check_layer, fuzz_layer
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

__version__ = "0.1.0"

__all__ = [
    "CheckResult",
    "Comparison",
    "ConvProblem",
    "ConvSpec",
    "FuzzResult",
    "GradcheckError",
    "GradientMismatch",
    "InvalidArgument",
    "InvalidArgumentType",
    "Layer",
    "LayerError",
    "LayerReport",
    "Supports",
    "check_gradients",
    "check_layer",
    "compare_adjoint",
    "compare_finite_differences",
    "compare_fourier",
    "compare_transfer_function",
    "conv_backward",
    "conv_forward",
    "fuzz_layer",
    "layer_from_cs231n",
    "layer_from_functions",
    "layer_from_torch",
    "output_shape",
    "raise_on_failure",
]
