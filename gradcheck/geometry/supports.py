"""Supports: what a layer claims to handle; fuzzing generates only configurations inside it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from gradcheck.errors import boolean, choice, integer, invalid, invalid_type

PADDING_MODES = ("asymmetric", "symmetric", "none")

#: How a layer's arithmetic rounds (:mod:`gradcheck.judge.bounds`): ``"entrywise"`` — direct
#: sums in any order, every entry within ``γ_n·Σ|terms|``; ``"normwise"`` — fast transforms
#: (FFT, Winograd), only the norm of each output plane's error is bounded.
ROUNDING_MODELS = ("entrywise", "normwise")
#: What a layer computes: a convolution, or one of its siblings (issue 12).
FAMILIES = ("conv", "conv_transpose", "max_pool", "avg_pool")


@dataclass(frozen=True)
class Supports:
    """A layer's claim about the configurations it handles.

    Parameters
    ----------
    dims : tuple of int
        Spatial dims handled, a subset of (1, 2, 3).
    max_stride : int
        Largest stride; 1 means no stride support.
    dilation : bool
        False: dilation is always 1.
    groups : bool
        False: groups is always 1.
    padding : {"asymmetric", "symmetric", "none"}
        Any (lo, hi); lo == hi only; no padding.
    uniform : bool
        True: stride, padding and dilation are one value shared by every spatial dim.
    exact_tiling : bool
        True: only ``(S + lo + hi − r·(K − 1) − 1) % s == 0`` (the windows tile the input).
    square_input, square_kernel : bool
        True: equal spatial sizes of the input / of the kernel.
    bias : bool
        False: b is always None.
    dtypes : tuple of str
        Floating dtypes the layer accepts, e.g. ("float64", "float32").
    rounding : {"entrywise", "normwise"}
        How its arithmetic rounds: direct sums in any order (every entry within
        ``γ_n·Σ|terms|``), or a fast transform — FFT, Winograd — whose errors are bounded
        only per output plane, in norm (:mod:`gradcheck.judge.bounds`).
    family : {"conv", "conv_transpose", "max_pool", "avg_pool"}
        What the layer computes, and so its protocol: ``forward(x, w, b, spec)`` for the
        convolutions (spec a ConvSpec or ConvTransposeSpec), ``forward(x, spec)`` for the
        poolings (spec a PoolSpec).  Keys that mean nothing to a family (groups, bias for a
        pooling) are ignored by its strategies.
    """

    dims: tuple[int, ...] = (1, 2, 3)
    max_stride: int = 3
    dilation: bool = True
    groups: bool = True
    padding: str = "asymmetric"
    uniform: bool = False
    exact_tiling: bool = False
    square_input: bool = False
    square_kernel: bool = False
    bias: bool = True
    dtypes: tuple[str, ...] = ("float64",)
    rounding: str = "entrywise"
    family: str = "conv"

    def __post_init__(self) -> None:
        dims = (self.dims,) if isinstance(self.dims, int) else self.dims
        if not isinstance(dims, (tuple, list)) or isinstance(dims, bool):
            raise invalid_type("dims", self.dims, "expected an int or a tuple of ints in (1, 2, 3)")
        if not dims or any(isinstance(d, bool) or d not in (1, 2, 3) for d in dims):
            raise invalid("dims", self.dims, "expected a non-empty subset of (1, 2, 3)")
        object.__setattr__(self, "dims", tuple(sorted(set(dims))))
        object.__setattr__(self, "max_stride",
                           integer("max_stride", self.max_stride, low=1, text=False))
        choice("padding", self.padding, PADDING_MODES)
        choice("family", self.family, FAMILIES)
        choice("rounding", self.rounding, ROUNDING_MODELS)
        for name in ("dilation", "groups", "uniform", "exact_tiling", "square_input",
                     "square_kernel", "bias"):
            boolean(name, getattr(self, name))
        dtypes = (self.dtypes,) if isinstance(self.dtypes, str) else self.dtypes
        if not isinstance(dtypes, (tuple, list)):
            raise invalid_type("dtypes", self.dtypes, "expected dtype names, e.g. ('float64',)")
        for name in dtypes:
            if not isinstance(name, str):
                raise invalid_type("dtypes", self.dtypes, "expected dtype names (strings)")
            try:
                kind = np.dtype(name).kind
            except TypeError:
                raise invalid("dtypes", self.dtypes, "expected numpy dtype names") from None
            if kind not in "fc":
                raise invalid("dtypes", self.dtypes, "expected floating or complex dtypes")
        if not dtypes:
            raise invalid("dtypes", self.dtypes, "expected at least one dtype")
        object.__setattr__(self, "dtypes", tuple(np.dtype(n).name for n in dtypes))

    @classmethod
    def from_claim(cls, claim: Supports | Mapping[str, Any] | None) -> Supports:
        """Accept a Supports, a dict with the same keys, or None (everything)."""
        if claim is None:
            return cls()
        if isinstance(claim, Supports):
            return claim
        if not isinstance(claim, Mapping):
            raise invalid_type("supports", claim, "expected a gradcheck.Supports or a dict")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(claim) - known)
        if unknown:
            raise invalid(
                "supports", dict(claim), f"unknown keys {unknown}; known: {sorted(known)}"
            )
        return cls(**claim)

    def restrict(self, **overrides: Any) -> Supports:
        """A copy with some keys replaced (None values are ignored)."""
        values = asdict(self)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return Supports.from_claim(values)
