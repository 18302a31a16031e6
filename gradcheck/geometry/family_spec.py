"""The geometry of the convolution's siblings, validated once: transposed convolution, pooling.

Transposed convolution (x (N, C_in, S…), w (C_in, C_out/G, K…), PyTorch's layout), per spatial
dimension stride ``s``, dilation ``r``, padding ``(lo, hi)`` cropped from the full result and
output padding ``a`` extra positions at its end::

    O = (S − 1)·s − lo − hi + r·(K − 1) + a + 1,        0 <= a < max(s, r),  O >= 1

Pooling (x (N, C, S…)), kernel ``K``, stride ``s`` (by default K), padding ``(lo, hi)`` with
``lo, hi <= (r·(K − 1) + 1) // 2`` (at most half the dilated kernel, as torch demands) and
dilation ``r``::

    floor mode:  O = floor((S + lo + hi − r·(K − 1) − 1) / s) + 1
    ceil mode:   O = ceil((S + lo + hi − r·(K − 1) − 1) / s) + 1, less one if the last window
                 would start at or beyond S + lo (past the input, in the right padding)

Every window must read at least one input position (a window of padding alone has no maximum
and no average); :func:`pool_output_shape` says so when it does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.errors import invalid, invalid_type
from gradcheck.geometry.spec import ConvSpec, _is_int, _padding_pairs, _per_dim, _shape

__all__ = [
    "ConvTransposeSpec",
    "PoolSpec",
    "conv_transpose_output_shape",
    "pool_output_shape",
    "pool_window_starts",
]


def _check_dims(dims: Any) -> int:
    if not _is_int(dims):
        raise invalid_type("dims", dims, "expected an int: 1, 2 or 3")
    if dims not in (1, 2, 3):
        raise invalid("dims", dims, "expected 1, 2 or 3 spatial dims")
    return int(dims)


@dataclass(frozen=True)
class ConvTransposeSpec:
    """The geometry of a transposed convolution, one entry per spatial dimension.

    Parameters
    ----------
    dims : int
        Number of spatial dimensions: 1, 2 or 3.
    stride : int or tuple of int, length dims
        ``s >= 1``: input sample i lands on output position ``s·i`` (before cropping).
    padding : int, tuple of int or tuple of (int, int), length dims
        ``(lo, hi) >= 0`` positions cropped from the start and the end of the full result;
        the padding of the convolution whose input gradient this map is.
    output_padding : int or tuple of int, length dims
        ``0 <= a < max(s, r)`` positions added at the end of the output (the sizes a strided
        convolution maps to the same S).
    dilation : int or tuple of int, length dims
        Spacing ``r >= 1`` between kernel taps.
    groups : int
        ``G >= 1``, dividing C_in and C_out; output channel ``g·C_out/G + j`` sees input
        channels ``g·C_in/G … (g + 1)·C_in/G − 1``.

    Notes
    -----
    ``O = (S − 1)·s − lo − hi + r·(K − 1) + a + 1`` (:meth:`output_size`).  Ints are accepted
    wherever a per-dim tuple is, and stored as tuples.
    """

    dims: int
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int

    def __init__(
        self,
        dims: int,
        stride: int | Sequence[int] = 1,
        padding: Any = 0,
        output_padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
    ) -> None:
        d = _check_dims(dims)
        set_ = object.__setattr__
        set_(self, "dims", d)
        set_(self, "stride", _per_dim("stride", stride, d, 1))
        set_(self, "padding", _padding_pairs(padding, d))
        set_(self, "dilation", _per_dim("dilation", dilation, d, 1))
        a = _per_dim("output_padding", output_padding, d, 0)
        if any(ai >= max(s, r) for ai, s, r in zip(a, self.stride, self.dilation)):
            limits = tuple(max(s, r) for s, r in zip(self.stride, self.dilation))
            raise invalid(
                "output_padding", output_padding,
                f"expected 0 <= output_padding < max(stride, dilation) = {limits} per dim",
            )
        set_(self, "output_padding", a)
        if not _is_int(groups):
            raise invalid_type("groups", groups, "expected an int >= 1")
        if groups < 1:
            raise invalid("groups", groups, "expected an int >= 1")
        set_(self, "groups", int(groups))

    def output_size(self, input_size: Sequence[int], kernel_size: Sequence[int]) -> tuple[int, ...]:
        """Spatial output size ``O = (S − 1)·s − lo − hi + r·(K − 1) + a + 1`` per dim."""
        return tuple(
            (size - 1) * s - lo - hi + r * (k - 1) + a + 1
            for size, k, s, (lo, hi), r, a in zip(
                input_size, kernel_size, self.stride, self.padding, self.dilation,
                self.output_padding,
            )
        )

    def conv_spec(self) -> ConvSpec:
        """The convolution this map is the input gradient of: same stride, padding, dilation,
        groups (its input has the size O, its output S — or more when ``a >= s``)."""
        return ConvSpec(self.dims, self.stride, self.padding, self.dilation, self.groups)


def conv_transpose_output_shape(
    input_shape: Sequence[int],
    kernel_shape: Sequence[int],
    spec: ConvTransposeSpec,
    bias_shape: Sequence[int] | None = None,
) -> tuple[int, ...]:
    """Shape ``(N, C_out, O1, …, Od)`` of a transposed convolution; validates every shape.

    Parameters
    ----------
    input_shape : (N, C_in, S1, …, Sd)
    kernel_shape : (C_in, C_out/G, K1, …, Kd)
    spec : ConvTransposeSpec
    bias_shape : (C_out,) or None

    Raises
    ------
    InvalidArgument
        Naming the offending shape, its value and what was expected.
    """
    if not isinstance(spec, ConvTransposeSpec):
        raise invalid_type("spec", spec, "expected a gradcheck.ConvTransposeSpec")
    x_shape, w_shape = _shape("x.shape", input_shape), _shape("w.shape", kernel_shape)
    d, groups = spec.dims, spec.groups
    if len(x_shape) != d + 2:
        raise invalid("x.shape", x_shape, f"expected (N, C_in) + {d} spatial dims for dims={d}")
    if len(w_shape) != d + 2:
        raise invalid(
            "w.shape", w_shape, f"expected (C_in, C_out/G) + {d} spatial dims for dims={d}"
        )
    if min(x_shape) < 1:
        raise invalid("x.shape", x_shape, "every size must be >= 1")
    if min(w_shape) < 1:
        raise invalid("w.shape", w_shape, "every size must be >= 1")
    n, c_in = x_shape[:2]
    if c_in % groups:
        raise invalid("groups", groups, f"must divide the input channels C_in={c_in}")
    if w_shape[0] != c_in:
        raise invalid("w.shape", w_shape, f"expected w.shape[0] = C_in = {c_in}")
    c_out = w_shape[1] * groups
    if bias_shape is not None and _shape("b.shape", bias_shape) != (c_out,):
        raise invalid("b.shape", tuple(bias_shape), f"expected (C_out,) = ({c_out},)")
    out = spec.output_size(x_shape[2:], w_shape[2:])
    if min(out) < 1:
        raise invalid(
            "padding", spec.padding,
            f"crops the whole result: output size {out}; expected lo + hi <= "
            "(S − 1)·s + r·(K − 1) + output_padding per dim",
        )
    return (n, c_out, *out)


@dataclass(frozen=True)
class PoolSpec:
    """The geometry of a max or average pooling, one entry per spatial dimension.

    Parameters
    ----------
    dims : int
        Number of spatial dimensions: 1, 2 or 3.
    kernel_size : int or tuple of int, length dims
        Window size ``K >= 1``.
    stride : int or tuple of int, length dims, or None
        Step ``s >= 1`` between windows; None (the default) means ``kernel_size``.
    padding : int, tuple of int or tuple of (int, int), length dims
        ``(lo, hi)``, each at most half the dilated window, ``(r·(K − 1) + 1) // 2``.  Padding
        is −∞ for max pooling and 0 for average pooling.  (torch demands ``K // 2`` whatever
        the dilation; the strategies draw within that.)
    dilation : int or tuple of int, length dims
        Spacing ``r >= 1`` between window taps.
    ceil_mode : bool
        Round the output size up (partial windows at the end), keeping only windows that start
        inside the input or its left padding.
    count_include_pad : bool
        Average pooling: the divisor counts the window's positions inside the padded input
        (True) or inside the input only (False).  Ignored by max pooling.
    """

    dims: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    ceil_mode: bool
    count_include_pad: bool

    def __init__(
        self,
        dims: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: Any = 0,
        dilation: int | Sequence[int] = 1,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        d = _check_dims(dims)
        set_ = object.__setattr__
        set_(self, "dims", d)
        k = _per_dim("kernel_size", kernel_size, d, 1)
        set_(self, "kernel_size", k)
        set_(self, "stride", k if stride is None else _per_dim("stride", stride, d, 1))
        r = _per_dim("dilation", dilation, d, 1)
        set_(self, "dilation", r)
        pairs = _padding_pairs(padding, d)
        half = tuple((ri * (ki - 1) + 1) // 2 for ki, ri in zip(k, r))
        if any(max(pair) > h for pair, h in zip(pairs, half)):
            raise invalid(
                "padding", padding,
                f"expected at most half the dilated window, (r·(K − 1) + 1) // 2 = {half}",
            )
        set_(self, "padding", pairs)
        for name, value in (("ceil_mode", ceil_mode), ("count_include_pad", count_include_pad)):
            if not isinstance(value, (bool, np.bool_)):
                raise invalid_type(name, value, "expected True or False")
            set_(self, name, bool(value))

    @property
    def extent(self) -> tuple[int, ...]:
        """The dilated window's extent ``r·(K − 1) + 1`` per dim."""
        return tuple(r * (k - 1) + 1 for k, r in zip(self.kernel_size, self.dilation))

    def output_size(self, input_size: Sequence[int]) -> tuple[int, ...]:
        """Spatial output size per dim, floor or ceil mode (see the module docstring)."""
        sizes = []
        for size, e, s, (lo, hi) in zip(input_size, self.extent, self.stride, self.padding):
            span = size + lo + hi - e
            out = (-(-span // s) if self.ceil_mode else span // s) + 1
            if self.ceil_mode and (out - 1) * s >= size + lo:
                out -= 1  # the last window would start in the right padding
            sizes.append(out)
        return tuple(sizes)


def pool_window_starts(input_size: Sequence[int], spec: PoolSpec) -> tuple[np.ndarray, ...]:
    """Per dim, the input index ``s·o − lo`` where window o starts (negative: in the padding)."""
    return tuple(
        np.arange(o) * s - lo
        for o, s, (lo, _) in zip(spec.output_size(input_size), spec.stride, spec.padding)
    )


def pool_output_shape(input_shape: Sequence[int], spec: PoolSpec) -> tuple[int, ...]:
    """Shape ``(N, C, O1, …, Od)`` of a pooling; validates the input shape against spec.

    Raises
    ------
    InvalidArgument
        ``x.shape`` when the window exceeds the padded input, or when a window reads padding
        only (possible with dilation: its taps straddle a short input).
    """
    if not isinstance(spec, PoolSpec):
        raise invalid_type("spec", spec, "expected a gradcheck.PoolSpec")
    x_shape = _shape("x.shape", input_shape)
    d = spec.dims
    if len(x_shape) != d + 2:
        raise invalid("x.shape", x_shape, f"expected (N, C) + {d} spatial dims for dims={d}")
    if min(x_shape) < 1:
        raise invalid("x.shape", x_shape, "every size must be >= 1")
    spatial = x_shape[2:]
    padded = tuple(size + lo + hi for size, (lo, hi) in zip(spatial, spec.padding))
    if any(p < e for p, e in zip(padded, spec.extent)):
        raise invalid(
            "x.shape", x_shape,
            f"the padded input {padded} is shorter than the dilated window {spec.extent}: "
            "the output would be empty",
        )
    for starts, size, k, r in zip(
        pool_window_starts(spatial, spec), spatial, spec.kernel_size, spec.dilation
    ):
        taps = starts[:, None] + r * np.arange(k)
        inside = ((taps >= 0) & (taps < size)).any(axis=1)
        if not inside.all():
            raise invalid(
                "x.shape", x_shape,
                f"window {int(np.argmin(inside))} of a dim of size {size} reads padding only "
                f"(taps {taps[np.argmin(inside)].tolist()}); use a larger input or less dilation",
            )
    return (*x_shape[:2], *spec.output_size(spatial))
