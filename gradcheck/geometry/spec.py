"""ConvSpec: the geometry of an N-d convolution, validated once, and its output shape.

Per spatial dimension: stride ``s >= 1``, dilation ``r >= 1``, padding ``(lo, hi) >= 0``;
``groups`` G divides both the input channels C and the filters F.  With the padded length
``S + lo + hi`` and the dilated kernel extent ``r·(K − 1) + 1``::

    O = floor((S + lo + hi − r·(K − 1) − 1) / s) + 1        (must be >= 1)
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gradcheck.errors import invalid, invalid_type

PADDING_NAMES = ("valid", "same", "full")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _per_dim(name: str, value: Any, dims: int, minimum: int) -> tuple[int, ...]:
    """Accept an int or a length-``dims`` sequence of ints, each ``>= minimum``."""
    values = (value,) * dims if _is_int(value) else value
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise invalid_type(name, value, f"expected an int or a sequence of {dims} ints")
    if len(values) != dims:
        raise invalid(name, value, f"expected one value per spatial dim ({dims})")
    for v in values:
        if not _is_int(v):
            raise invalid_type(name, value, "every entry must be an int")
    if any(v < minimum for v in values):
        raise invalid(name, value, f"every entry must be >= {minimum}")
    return tuple(int(v) for v in values)


def _padding_pairs(padding: Any, dims: int) -> tuple[tuple[int, int], ...]:
    """Accept an int, per-dim ints, or per-dim (lo, hi) pairs; every amount >= 0."""
    if _is_int(padding):
        padding = (padding,) * dims
    if not isinstance(padding, Sequence) or isinstance(padding, str):
        raise invalid_type(
            "padding", padding, "expected an int, per-dim ints, (lo, hi) pairs or a name"
        )
    if len(padding) != dims:
        raise invalid("padding", padding, f"expected one entry per spatial dim ({dims})")
    pairs = []
    for entry in padding:
        pair = (entry, entry) if _is_int(entry) else entry
        if (
            not isinstance(pair, Sequence)
            or len(pair) != 2
            or not all(_is_int(v) for v in pair)
        ):
            raise invalid_type(
                "padding", padding, "each entry must be an int or an (lo, hi) pair of ints"
            )
        if pair[0] < 0 or pair[1] < 0:
            raise invalid("padding", padding, "every padding amount must be >= 0")
        pairs.append((int(pair[0]), int(pair[1])))
    return tuple(pairs)


@dataclass(frozen=True)
class ConvSpec:
    """The geometry of a convolution, one entry per spatial dimension.

    Parameters
    ----------
    dims : int
        Number of spatial dimensions: 1, 2 or 3.
    stride : tuple of int, length dims
        Step ``s >= 1`` between output windows.
    padding : tuple of (int, int), length dims
        Zeros added before (lo) and after (hi) the input, each ``>= 0``.
    dilation : tuple of int, length dims
        Spacing ``r >= 1`` between kernel taps.
    groups : int
        Number of channel groups ``G >= 1``; filter f sees input channels of group ``f // (F/G)``.

    Use :meth:`create` to build one from ints, per-dim tuples or padding names.
    """

    dims: int
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    groups: int = 1

    def __post_init__(self) -> None:
        if not _is_int(self.dims):
            raise invalid_type("dims", self.dims, "expected an int: 1, 2 or 3")
        if self.dims not in (1, 2, 3):
            raise invalid("dims", self.dims, "expected 1, 2 or 3 spatial dims")
        object.__setattr__(self, "stride", _per_dim("stride", self.stride, self.dims, 1))
        object.__setattr__(self, "dilation", _per_dim("dilation", self.dilation, self.dims, 1))
        object.__setattr__(self, "padding", _padding_pairs(self.padding, self.dims))
        if not _is_int(self.groups):
            raise invalid_type("groups", self.groups, "expected an int >= 1")
        if self.groups < 1:
            raise invalid("groups", self.groups, "expected an int >= 1")
        object.__setattr__(self, "groups", int(self.groups))

    @classmethod
    def create(
        cls,
        dims: int,
        *,
        stride: int | Sequence[int] = 1,
        padding: Any = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        kernel_size: int | Sequence[int] | None = None,
    ) -> ConvSpec:
        """Build a spec from ints, per-dim tuples, (lo, hi) pairs or a padding name.

        The names need the kernel size: ``'valid'`` is no padding; ``'full'`` pads
        ``r·(K − 1)`` on both sides; ``'same'`` pads ``r·(K − 1)`` in total, the odd zero
        after (lo = total // 2), which keeps O = S only when the stride is 1.
        """
        if isinstance(padding, str):
            if padding not in PADDING_NAMES:
                raise invalid("padding", padding, f"expected one of {PADDING_NAMES}")
            if padding != "valid" and kernel_size is None:
                raise invalid(
                    "kernel_size", None, f"padding={padding!r} needs the kernel size"
                )
            if dims not in (1, 2, 3):
                raise invalid("dims", dims, "expected 1, 2 or 3")
            dil = _per_dim("dilation", dilation, dims, 1)
            ks = (
                (0,) * dims if kernel_size is None
                else _per_dim("kernel_size", kernel_size, dims, 1)
            )
            total = [r * (k - 1) for r, k in zip(dil, ks)] if padding != "valid" else [0] * dims
            if padding == "full":
                padding = tuple((t, t) for t in total)
            else:
                padding = tuple((t // 2, t - t // 2) for t in total)
        return cls(dims=dims, stride=stride, padding=padding, dilation=dilation,  # type: ignore[arg-type]
                   groups=groups)  # __post_init__ normalises ints and sequences to tuples

    def output_size(self, input_size: Sequence[int], kernel_size: Sequence[int]) -> tuple[int, ...]:
        """Spatial output size ``O = floor((S + lo + hi − r·(K − 1) − 1) / s) + 1`` per dim."""
        return tuple(
            (size + lo + hi - r * (k - 1) - 1) // s + 1
            for size, k, (lo, hi), r, s in zip(
                input_size, kernel_size, self.padding, self.dilation, self.stride
            )
        )


def _shape(name: str, shape: Any) -> tuple[int, ...]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise invalid_type(name, shape, "expected a shape: a sequence of ints") from None
    if not all(_is_int(v) for v in dims):
        raise invalid_type(name, shape, "every entry of a shape must be an int")
    return tuple(int(v) for v in dims)


def output_shape(
    input_shape: Sequence[int],
    kernel_shape: Sequence[int],
    spec: ConvSpec,
    bias_shape: Sequence[int] | None = None,
) -> tuple[int, ...]:
    """Shape ``(N, F, O1, …, Od)`` of the convolution output; validates every shape against spec.

    Parameters
    ----------
    input_shape : (N, C, S1, …, Sd)
    kernel_shape : (F, C/G, K1, …, Kd)
    spec : ConvSpec
    bias_shape : (F,) or None

    Raises
    ------
    InvalidArgument
        Naming the offending shape, its value and what was expected.
    """
    if not isinstance(spec, ConvSpec):
        raise invalid_type("spec", spec, "expected a gradcheck.ConvSpec")
    x_shape, w_shape = _shape("x.shape", input_shape), _shape("w.shape", kernel_shape)
    d, groups = spec.dims, spec.groups
    if len(x_shape) != d + 2:
        raise invalid("x.shape", x_shape, f"expected (N, C) + {d} spatial dims for spec.dims={d}")
    if len(w_shape) != d + 2:
        raise invalid("w.shape", w_shape, f"expected (F, C/G) + {d} spatial dims for spec.dims={d}")
    if min(x_shape) < 1:
        raise invalid("x.shape", x_shape, "every size must be >= 1")
    if min(w_shape) < 1:
        raise invalid("w.shape", w_shape, "every size must be >= 1")
    n, c = x_shape[:2]
    f, c_per_group = w_shape[:2]
    if c % groups:
        raise invalid("groups", groups, f"must divide the input channels C={c}")
    if f % groups:
        raise invalid("groups", groups, f"must divide the filters F={f}")
    if c_per_group * groups != c:
        raise invalid(
            "w.shape", w_shape,
            f"expected w.shape[1] = C/G = {c // groups} (C={c}, groups={groups})",
        )
    if bias_shape is not None and _shape("b.shape", bias_shape) != (f,):
        raise invalid("b.shape", tuple(bias_shape), f"expected (F,) = ({f},)")
    out = spec.output_size(x_shape[2:], w_shape[2:])
    if min(out) < 1:
        padded = tuple(s + lo + hi for s, (lo, hi) in zip(x_shape[2:], spec.padding))
        extent = tuple(r * (k - 1) + 1 for r, k in zip(spec.dilation, w_shape[2:]))
        raise invalid(
            "w.shape",
            w_shape,
            f"the dilated kernel extent {extent} exceeds the padded input {padded}: "
            "the output would be empty; add padding or use a smaller kernel/dilation",
        )
    return (n, f, *out)


def spatial_index(slices: Iterable[slice]) -> tuple[slice, ...]:
    """The index of an (N, C, S…) array that takes every sample and channel and ``slices`` of
    the spatial axes: ``a[spatial_index(s)]`` is ``a[:, :, s₁, …, s_d]``."""
    return (slice(None), slice(None), *slices)
