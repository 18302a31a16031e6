"""Hypothesis strategies for valid convolution problems — the public path users import.

``from gradcheck.strategies import conv_problems``: the strategies themselves live in the
harness (:mod:`gradcheck.harness.strategies`); this module is part of the package's public
face, like ``gradcheck/__init__.py``.
"""

from __future__ import annotations

from gradcheck.harness.family_strategies import conv_transpose_problems, pool_problems
from gradcheck.harness.strategies import conv_problems, conv_specs

__all__ = ["conv_problems", "conv_specs", "conv_transpose_problems", "pool_problems"]
