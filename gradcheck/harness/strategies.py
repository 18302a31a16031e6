"""Hypothesis strategies for valid convolution problems, valid by construction.

Geometry is drawn first (dims, groups, channels, kernel, dilation, stride, padding) and the
input size last, from the smallest size that keeps the output non-empty, so every draw is
valid and shrinking moves towards small, simple configurations.  Array values come from one
drawn seed through ``np.random.default_rng``: shrinking works on the geometry while the
values stay generic (no repeated values, no ties, no zeros).

The draws reach the places bugs live: a kernel larger than the input (made valid by padding),
output size 1, stride larger than the kernel (input positions no window reaches),
``(S + lo + hi − r·(K − 1) − 1) % s != 0``, asymmetric padding, non-square shapes, dilation
with stride, depthwise groups (groups = C), batch 1 and a single channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st

from gradcheck.errors import invalid, invalid_type
from gradcheck.geometry.problem import ConvProblem
from gradcheck.geometry.spec import ConvSpec
from gradcheck.geometry.supports import Supports

__all__ = ["conv_problems", "conv_specs"]

#: Extra input length drawn beyond the smallest valid one, per number of spatial dims, so
#: 3-d problems stay small enough for full-Jacobian checks.
_EXTRA_SIZE = {1: 7, 2: 5, 3: 3}


def _limit(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(name, value, f"expected an int >= {low}")
    if value < low:
        raise invalid(name, value, f"expected an int >= {low}")
    return value


def _claim(supports: Any, overrides: dict[str, Any]) -> Supports:
    """The claim to draw inside: a layer's ``supports``, a Supports, a dict, or everything."""
    if not isinstance(supports, (Supports, Mapping)) and supports is not None:
        if callable(getattr(supports, "forward", None)):  # a layer: its own claim
            supports = getattr(supports, "supports", None)
        else:
            raise invalid_type("supports", supports, "expected a layer (with forward and "
                               "backward), a gradcheck.Supports, a dict of its keys, or None")
    return Supports.from_claim(supports).restrict(**overrides)


@st.composite
def _per_dim(draw: st.DrawFn, values: st.SearchStrategy[int], dims: int, same: bool):
    if same:
        return (draw(values),) * dims
    return tuple(draw(values) for _ in range(dims))


@st.composite
def _geometry(draw: st.DrawFn, claim: Supports, sizes: dict[str, int]) -> dict[str, Any]:
    d = draw(st.sampled_from(claim.dims))
    uniform = claim.uniform
    groups = draw(st.integers(1, sizes["max_groups"])) if claim.groups else 1
    depthwise = claim.groups and draw(st.booleans())
    c_g = 1 if depthwise else draw(st.integers(1, sizes["max_channels"]))
    f_g = draw(st.integers(1, sizes["max_channels"]))
    n = draw(st.integers(1, sizes["max_batch"]))
    kernel = draw(_per_dim(st.integers(1, sizes["max_kernel"]), d, claim.square_kernel))
    dilation = (
        draw(_per_dim(st.integers(1, sizes["max_dilation"]), d, uniform))
        if claim.dilation else (1,) * d
    )
    stride = draw(_per_dim(st.integers(1, claim.max_stride), d, uniform))
    amount = st.integers(0, sizes["max_padding"])
    if claim.padding == "none":
        padding = ((0, 0),) * d
    elif claim.padding == "symmetric":
        padding = tuple((p, p) for p in draw(_per_dim(amount, d, uniform)))
    else:
        pair = st.tuples(amount, amount)
        padding = (draw(pair),) * d if uniform else tuple(draw(pair) for _ in range(d))
    return {"d": d, "groups": groups, "c_g": c_g, "f_g": f_g, "n": n, "kernel": kernel,
            "dilation": dilation, "stride": stride, "padding": padding}


def _smallest_input(k: int, r: int, s: int, lo: int, hi: int, exact: bool) -> int:
    """Smallest S >= 1 with a non-empty output (and exact tiling when asked)."""
    size = max(1, r * (k - 1) + 1 - lo - hi)
    if exact:
        size += (-(size + lo + hi - r * (k - 1) - 1)) % s
    return size


@st.composite
def _input_sizes(draw: st.DrawFn, geo: dict[str, Any], claim: Supports) -> tuple[int, ...]:
    d, exact = geo["d"], claim.exact_tiling
    lows = [
        _smallest_input(k, r, s, lo, hi, exact)
        for k, r, s, (lo, hi) in zip(geo["kernel"], geo["dilation"], geo["stride"], geo["padding"])
    ]
    step = [s if exact else 1 for s in geo["stride"]]
    extra = st.integers(0, _EXTRA_SIZE[d])
    if claim.square_input:
        # one size for every dim: the smallest that is valid in all of them (exact tiling
        # with different strides per dim then needs a common multiple; search a few).
        base = max(lows)
        candidates = [base + i for i in range(int(np.lcm.reduce(step)) * 2 + _EXTRA_SIZE[d])]
        valid = [
            size for size in candidates
            if all(size >= lo_ and (size - lo_) % st_ == 0 for lo_, st_ in zip(lows, step))
        ]
        return (draw(st.sampled_from(valid)),) * d
    return tuple(low + st_ * draw(extra) for low, st_ in zip(lows, step))


def conv_specs(
    supports: Any = None, **claim: Any
) -> st.SearchStrategy[ConvSpec]:
    """Strategy for ``ConvSpec``s inside a support claim (see :class:`gradcheck.Supports`).

    Keyword arguments are Supports keys (``dims=2``, ``max_stride=1``, ``padding="none"`` …).
    A spec alone carries no shapes; use :func:`conv_problems` for complete, valid problems.
    """
    return conv_problems(supports, **claim).map(lambda problem: problem.spec)


def conv_problems(
    supports: Any = None,
    *,
    max_batch: int = 2,
    max_channels: int = 3,
    max_groups: int = 3,
    max_kernel: int = 3,
    max_dilation: int = 3,
    max_padding: int = 2,
    **claim: Any,
) -> st.SearchStrategy[ConvProblem]:
    """Strategy for valid :class:`ConvProblem`s inside a support claim.

    Parameters
    ----------
    supports : layer, Supports or dict, optional
        The claim to draw inside: a layer (its ``supports`` attribute; everything when it has
        none), a :class:`Supports`, or a dict of its keys.  Further keyword arguments that
        are Supports keys override it (``dims=(2,)``, ``max_stride=2``, ``dilation=False``,
        ``bias=False``, ``dtypes=("float32",)`` …).
    max_batch, max_channels, max_groups, max_kernel, max_dilation, max_padding : int
        Upper limits of the drawn sizes (channels are per group).  Defaults keep a full
        Jacobian cheap; the input length adds up to 7 / 5 / 3 samples to the smallest valid
        one in 1 / 2 / 3 dims.

    Returns
    -------
    SearchStrategy[ConvProblem]
        Problems whose x, w, b, dy are standard-normal draws of the chosen dtype.
    """
    sizes = {
        "max_batch": _limit("max_batch", max_batch),
        "max_channels": _limit("max_channels", max_channels),
        "max_groups": _limit("max_groups", max_groups),
        "max_kernel": _limit("max_kernel", max_kernel),
        "max_dilation": _limit("max_dilation", max_dilation),
        "max_padding": _limit("max_padding", max_padding, low=0),
    }
    if "dims" in claim and isinstance(claim["dims"], int):
        claim["dims"] = (claim["dims"],)
    if "dtype" in claim:
        claim["dtypes"] = (claim.pop("dtype"),)
    resolved = _claim(supports, claim)
    return _problems(resolved, sizes)


@st.composite
def _problems(draw: st.DrawFn, claim: Supports, sizes: dict[str, int]) -> ConvProblem:
    geo = draw(_geometry(claim, sizes))
    input_size = draw(_input_sizes(geo, claim))
    dtype = np.dtype(draw(st.sampled_from(claim.dtypes)))
    with_bias = claim.bias and draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    spec = ConvSpec(geo["d"], geo["stride"], geo["padding"], geo["dilation"], geo["groups"])
    channels, filters = geo["groups"] * geo["c_g"], geo["groups"] * geo["f_g"]
    x_shape = (geo["n"], channels, *input_size)
    w_shape = (filters, geo["c_g"], *geo["kernel"])
    out = spec.output_size(input_size, geo["kernel"])
    rng = np.random.default_rng(seed)

    def normal(shape: tuple[int, ...]) -> np.ndarray:
        values = rng.standard_normal(shape)
        if dtype.kind == "c":
            values = values + 1j * rng.standard_normal(shape)
        return values.astype(dtype)

    x, w = normal(x_shape), normal(w_shape)
    b = normal((filters,)) if with_bias else None
    dy = normal((geo["n"], filters, *out))
    return ConvProblem(x=x, w=w, b=b, dy=dy, spec=spec)
