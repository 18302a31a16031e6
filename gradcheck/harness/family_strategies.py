"""Hypothesis strategies for transposed convolutions and poolings, valid by construction.

As for :func:`gradcheck.strategies.conv_problems`: geometry first, inside a support claim
(:class:`gradcheck.Supports`; keys that mean nothing to a family are ignored), the input size
last, from the smallest that makes the problem valid; array values from one drawn seed, so
shrinking moves the geometry towards the smallest configuration (1 d, batch 1, one channel,
kernel 1, stride 1, no padding, ceil_mode off) while the values stay generic.

* Transposed convolution: output_padding ``0 <= a < max(s, r)``; S the smallest with
  ``O = (S − 1)·s − lo − hi + r·(K − 1) + a + 1 >= 1``, plus a few samples.
* Pooling: padding at most ``K // 2`` — torch's rule, stricter than the half dilated window
  :class:`gradcheck.PoolSpec` accepts, so a torch-backed layer takes every draw; S at least the
  window's extent less the padding, and at least r when there is left padding, so every window
  (ceil mode's last included: it starts before S + lo) reads an input position.
* Max pooling data has no ties: in each (n, c) slice the entries are a random permutation of
  the grid ``(k − ⌊M/2⌋) / 8``, k = 0 … M − 1 (M = ∏S), exact in float32 and float64.  Any
  two entries of a window differ by at least :data:`MAX_POOL_SPACING` = 1/8, so every window's
  largest entry beats its runner-up by 1/8 or more, and moving each entry by less than 1/16
  stays on one linear piece of max pooling (:func:`gradcheck.formulas.pool.max_pool_margin`).
  Float64 central differences step by ``u^(1/3)·max(1, |x|)`` ≈ 4.8e-6·|x| <= 3e-7·M: below
  1/16 for any M < 2·10^5.  Float32's step (u^(1/3) ≈ 4e-3) reaches 1/16 once M > 32, so a
  float32 check of max pooling steps by less than half the margin instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from hypothesis import reject
from hypothesis import strategies as st

from gradcheck.errors import choice, invalid
from gradcheck.geometry.family_problem import ConvTransposeProblem, PoolProblem
from gradcheck.geometry.family_spec import ConvTransposeSpec, PoolSpec
from gradcheck.geometry.supports import Supports
from gradcheck.harness.strategies import _claim, _geometry, _limit, _per_dim

__all__ = ["MAX_POOL_SPACING", "conv_transpose_problems", "family_problems", "pool_problems"]

#: The smallest difference between two entries of one max-pooling window in drawn data.
MAX_POOL_SPACING = 0.125

#: Extra input length beyond the smallest valid one; the transposed convolution multiplies
#: lengths by the stride, so its extras are smaller than the convolution's.
_EXTRA_TRANSPOSE = {1: 5, 2: 3, 3: 2}
_EXTRA_POOL = {1: 7, 2: 5, 3: 3}


def _resolve(supports: Supports | Mapping[str, Any] | None, claim: dict[str, Any]) -> Supports:
    if "dims" in claim and isinstance(claim["dims"], int):
        claim["dims"] = (claim["dims"],)
    if "dtype" in claim:
        claim["dtypes"] = (claim.pop("dtype"),)
    return _claim(supports, claim)


def _normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    values = rng.standard_normal(shape)
    if dtype.kind == "c":
        values = values + 1j * rng.standard_normal(shape)
    return values.astype(dtype)


def conv_transpose_problems(
    supports: Supports | Mapping[str, Any] | None = None,
    *,
    max_batch: int = 2,
    max_channels: int = 3,
    max_groups: int = 3,
    max_kernel: int = 3,
    max_dilation: int = 3,
    max_padding: int = 2,
    **claim: Any,
) -> st.SearchStrategy[ConvTransposeProblem]:
    """Strategy for valid :class:`ConvTransposeProblem`s inside a support claim.

    Parameters
    ----------
    supports : Supports or dict, optional
        The layer's claim; further keyword arguments that are Supports keys override it
        (``dims=2``, ``max_stride=2``, ``dilation=False``, ``dtypes=("float32",)`` …).
        ``exact_tiling`` does not apply to a transposed convolution and is ignored.
    max_batch, max_channels, max_groups, max_kernel, max_dilation, max_padding : int
        Upper limits of the drawn sizes (channels are per group: C_in/G and C_out/G).  The input
        length adds up to 5 / 3 / 2 samples to the smallest valid one in 1 / 2 / 3 dims.

    Returns
    -------
    SearchStrategy[ConvTransposeProblem]
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
    return _transpose_problems(_resolve(supports, claim), sizes)


def _smallest_transpose_input(k: int, r: int, s: int, lo: int, hi: int, a: int) -> int:
    """Smallest S >= 1 with ``(S − 1)·s − lo − hi + r·(K − 1) + a + 1 >= 1``."""
    deficit = lo + hi - r * (k - 1) - a
    return 1 + max(0, -(-deficit // s))


@st.composite
def _transpose_problems(
    draw: st.DrawFn, claim: Supports, sizes: dict[str, int]
) -> ConvTransposeProblem:
    geo = draw(_geometry(claim, sizes))
    d = geo["d"]
    limits = [max(s, r) - 1 for s, r in zip(geo["stride"], geo["dilation"])]
    if claim.uniform:  # stride and dilation are shared by every dim, so is the limit
        a = (draw(st.integers(0, limits[0])),) * d
    else:
        a = tuple(draw(st.integers(0, m)) for m in limits)
    lows = [
        _smallest_transpose_input(k, r, s, lo, hi, ai)
        for k, r, s, (lo, hi), ai in zip(
            geo["kernel"], geo["dilation"], geo["stride"], geo["padding"], a
        )
    ]
    extra = st.integers(0, _EXTRA_TRANSPOSE[d])
    if claim.square_input:
        input_size = (max(lows) + draw(extra),) * d
    else:
        input_size = tuple(low + draw(extra) for low in lows)
    dtype = np.dtype(draw(st.sampled_from(claim.dtypes)))
    with_bias = claim.bias and draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))

    spec = ConvTransposeSpec(d, geo["stride"], geo["padding"], a, geo["dilation"], geo["groups"])
    c_in, c_out = geo["groups"] * geo["c_g"], geo["groups"] * geo["f_g"]
    rng = np.random.default_rng(seed)
    x = _normal(rng, (geo["n"], c_in, *input_size), dtype)
    w = _normal(rng, (c_in, geo["f_g"], *geo["kernel"]), dtype)
    b = _normal(rng, (c_out,), dtype) if with_bias else None
    dy = _normal(rng, (geo["n"], c_out, *spec.output_size(input_size, geo["kernel"])), dtype)
    return ConvTransposeProblem(x=x, w=w, b=b, dy=dy, spec=spec)


def pool_problems(
    supports: Supports | Mapping[str, Any] | None = None,
    *,
    kind: str = "max",
    max_batch: int = 2,
    max_channels: int = 3,
    max_kernel: int = 3,
    max_dilation: int = 2,
    max_padding: int = 1,
    **claim: Any,
) -> st.SearchStrategy[PoolProblem]:
    """Strategy for valid :class:`PoolProblem`s inside a support claim.

    Parameters
    ----------
    supports : Supports or dict, optional
        The layer's claim; further keyword arguments that are Supports keys override it
        (``dims``, ``max_stride``, ``dilation``, ``padding``, ``uniform``, ``exact_tiling``,
        ``square_input``, ``square_kernel``, ``dtypes``); ``groups`` and ``bias`` do not apply.
    kind : {"max", "avg"}
        Max pooling draws tie-free data (see the module docstring) and real dtypes only;
        average pooling draws standard-normal data and also ``count_include_pad``.
    max_batch, max_channels, max_kernel, max_dilation, max_padding : int
        Upper limits of the drawn sizes; padding is also at most ``K // 2``.  The input length
        adds up to 7 / 5 / 3 samples to the smallest valid one in 1 / 2 / 3 dims.

    Returns
    -------
    SearchStrategy[PoolProblem]
    """
    kind = choice("kind", kind, ("max", "avg"))
    sizes = {
        "max_batch": _limit("max_batch", max_batch),
        "max_channels": _limit("max_channels", max_channels),
        "max_kernel": _limit("max_kernel", max_kernel),
        "max_dilation": _limit("max_dilation", max_dilation),
        "max_padding": _limit("max_padding", max_padding, low=0),
    }
    resolved = _resolve(supports, claim)
    if kind == "max" and any(np.dtype(t).kind == "c" for t in resolved.dtypes):
        raise invalid("dtypes", resolved.dtypes, "max pooling needs real dtypes: an order")
    return _pool_problems(resolved, sizes, kind)


def _smallest_pool_input(e: int, r: int, s: int, lo: int, hi: int, exact: bool) -> int:
    """Smallest S with a non-empty output whose windows all read the input (and that tiles the
    padded input exactly when asked): ``S + lo + hi >= e`` and ``S >= r`` when lo > 0."""
    size = max(1, e - lo - hi, r if lo else 1)
    if exact:
        size += (-(size + lo + hi - e)) % s
    return size


@st.composite
def _pool_geometry(draw: st.DrawFn, claim: Supports, sizes: dict[str, int]) -> dict[str, Any]:
    d = draw(st.sampled_from(claim.dims))
    kernel = draw(_per_dim(st.integers(1, sizes["max_kernel"]), d, claim.square_kernel))
    dilation = (
        draw(_per_dim(st.integers(1, sizes["max_dilation"]), d, claim.uniform))
        if claim.dilation else (1,) * d
    )
    stride = draw(_per_dim(st.integers(1, claim.max_stride), d, claim.uniform))
    # at most K // 2 (torch's rule) in every dim; with uniform padding, the smallest kernel's
    limits = [min(sizes["max_padding"], k // 2) for k in kernel]
    if claim.padding == "none":
        padding = ((0, 0),) * d
    elif claim.uniform:
        lo = draw(st.integers(0, min(limits)))
        hi = lo if claim.padding == "symmetric" else draw(st.integers(0, min(limits)))
        padding = ((lo, hi),) * d
    elif claim.padding == "symmetric":
        padding = tuple((p, p) for p in (draw(st.integers(0, m)) for m in limits))
    else:
        padding = tuple((draw(st.integers(0, m)), draw(st.integers(0, m))) for m in limits)
    return {"d": d, "kernel": kernel, "dilation": dilation, "stride": stride, "padding": padding,
            "n": draw(st.integers(1, sizes["max_batch"])),
            "c": draw(st.integers(1, sizes["max_channels"]))}


def _tie_free(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Per (n, c) slice, a random permutation of ``(k − ⌊M/2⌋)/8``, k < M = ∏ spatial sizes."""
    n, c, spatial = shape[0], shape[1], shape[2:]
    m = int(np.prod(spatial))
    grid = np.broadcast_to(np.arange(m) - m // 2, (n * c, m))
    levels = rng.permuted(grid, axis=1) * MAX_POOL_SPACING  # exact: |k|/8 < 2^24 / 8
    return levels.reshape(shape).astype(dtype)


@st.composite
def _pool_problems(
    draw: st.DrawFn, claim: Supports, sizes: dict[str, int], kind: str
) -> PoolProblem:
    geo = draw(_pool_geometry(claim, sizes))
    d = geo["d"]
    lows = []
    for k, r, s, (lo, hi) in zip(geo["kernel"], geo["dilation"], geo["stride"], geo["padding"]):
        low = _smallest_pool_input(r * (k - 1) + 1, r, s, lo, hi, claim.exact_tiling)
        if kind == "avg" and d == 3 and low < k:
            # torch's avg_pool3d refuses an input shorter than the kernel, padding or not
            low += -(-(k - low) // s) * s if claim.exact_tiling else k - low
        lows.append(low)
    steps = [s if claim.exact_tiling else 1 for s in geo["stride"]]
    extra = st.integers(0, _EXTRA_POOL[d])
    if claim.square_input:
        period = int(np.lcm.reduce(steps))
        base = max(lows)
        candidates = [base + i for i in range(period * 2 + _EXTRA_POOL[d])]
        valid = [size for size in candidates
                 if all(size >= low and (size - low) % step == 0 for low, step in zip(lows, steps))]
        # different exact-tiling strides per dim may admit no common size among the candidates
        # (their residues conflict): the one draw that is filtered rather than constructed
        if not valid:
            reject()
        input_size = (draw(st.sampled_from(valid)),) * d
    else:
        input_size = tuple(low + step * draw(extra) for low, step in zip(lows, steps))
    ceil_mode = draw(st.booleans())
    count_include_pad = draw(st.booleans()) if kind == "avg" else True
    dtype = np.dtype(draw(st.sampled_from(claim.dtypes)))
    seed = draw(st.integers(0, 2**32 - 1))

    spec = PoolSpec(d, geo["kernel"], geo["stride"], geo["padding"], geo["dilation"],
                    ceil_mode, count_include_pad)
    rng = np.random.default_rng(seed)
    x_shape = (geo["n"], geo["c"], *input_size)
    x = _tie_free(rng, x_shape, dtype) if kind == "max" else _normal(rng, x_shape, dtype)
    dy = _normal(rng, (geo["n"], geo["c"], *spec.output_size(input_size)), dtype)
    return PoolProblem(x=x, dy=dy, spec=spec)


def family_problems(supports: Supports) -> st.SearchStrategy[Any]:
    """The strategy of ``supports.family`` inside the claim (``fuzz_layer``'s draws).

    Raises
    ------
    InvalidArgument
        ``family="conv"``: that is :func:`gradcheck.strategies.conv_problems`.
    """
    if supports.family == "conv_transpose":
        return conv_transpose_problems(supports)
    if supports.family in ("max_pool", "avg_pool"):
        return pool_problems(supports, kind=supports.family[:3])
    raise invalid("family", supports.family, "expected conv_transpose, max_pool or avg_pool "
                  "(convolutions: gradcheck.strategies.conv_problems)")
