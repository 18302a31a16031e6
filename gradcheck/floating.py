"""Error bounds for the sums a convolution and its gradients compute — derived, not tuned.

A dot product of n terms computed in floating point, in any order (recursive, pairwise,
blocked BLAS), satisfies (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1)::

    |fl(Σ aᵢbᵢ) − Σ aᵢbᵢ| <= γ_n · Σ |aᵢ||bᵢ|,        γ_n = n·u / (1 − n·u)

with u the unit roundoff of the dtype.  For a convolution every output and every gradient
entry is such a sum, and ``Σ|aᵢ||bᵢ|`` is the same formula applied to absolute values — so the
reference backward evaluated on ``|δ|``, ``|x|``, ``|w|`` gives the bound entry by entry, at
the cost of one more backward pass.  This is an upper bound (errors usually grow like √n·u):
a correct layer never exceeds it, while the classic mistakes are O(1) wrong and exceed it by
many orders of magnitude.
"""

from __future__ import annotations

import numpy as np


def unit_roundoff(dtype: np.dtype | type) -> float:
    """u = eps / 2 of the real part of ``dtype`` (2^-53 for float64, 2^-24 for float32)."""
    return float(np.finfo(np.dtype(dtype)).eps) / 2


def gamma(n: int, dtype: np.dtype | type) -> float:
    """γ_n = n·u / (1 − n·u), the relative error bound of an n-term dot product.

    For a complex dtype a product ``(a + ib)(c + id)`` rounds by up to √2·γ_2 (Higham §3.6),
    so an n-term complex dot product is within ``√2·γ_{n+2}·Σ|aᵢ||bᵢ|``: that is returned.

    When n·u >= 1 the sum is too long for the precision and no relative bound exists: inf is
    returned, and a check whose bound is inf cannot fail — :func:`resolution` is what says
    such a check is inconclusive.
    """
    is_complex = np.dtype(dtype).kind == "c"
    terms = n + 2 if is_complex else n
    nu = terms * unit_roundoff(dtype)
    if nu >= 1:
        return float("inf")
    return (np.sqrt(2.0) if is_complex else 1.0) * nu / (1 - nu)


def underflow(n: int, dtype: np.dtype | type) -> float:
    """``n·η``: the absolute error n operations can add through gradual underflow.

    With subnormals, ``fl(a ∘ b) = (a ∘ b)(1 + δ) + ε`` with ``|ε| <= η/2`` (η the smallest
    positive subnormal, Higham §2.1); summed over the n products and n additions of a dot
    product that is at most ``n·η``.  Negligible unless results are near the underflow
    threshold (float16 gradients of 1e-5, say).
    """
    info = np.finfo(np.dtype(dtype))
    return float(n * info.smallest_subnormal)


def error_over_bound(error: np.ndarray, bound: np.ndarray | float) -> np.ndarray:
    """``|error| / bound`` entrywise, the one ratio every verdict and picture is read from.

    Defined everywhere, silently (no floating-point warnings):

    * ``0`` where the error is 0, whatever the bound (0/0 included: a zero bound is met exactly);
    * ``inf`` where a nonzero error meets a zero bound, where the quotient overflows (an error of
      1e300 over a bound of 1e-300), and where the error is NaN (a NaN can never be within
      bounds);
    * a NaN bound reads as no bound at all — it can only come from ``inf·0`` (a sum too long for
      its dtype times terms that are all zero) — so the ratio is 0 there;
    * subnormal bounds divide like any other positive number.

    Parameters
    ----------
    error : array_like, real or complex
        Errors; only their magnitude counts.
    bound : array_like
        Non-negative bounds, broadcast against ``error``.

    Returns
    -------
    ndarray of float64, the shape of ``error`` broadcast with ``bound``
    """
    magnitude = np.abs(np.asarray(error)).astype(np.float64, copy=False)
    limit = np.asarray(bound, dtype=np.float64)
    magnitude, limit = np.broadcast_arrays(magnitude, limit)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = magnitude / limit
    ratio = np.where(magnitude == 0, 0.0, ratio)
    ratio = np.where(np.isnan(magnitude), np.inf, ratio)
    ratio = np.where(np.isnan(limit) & ~np.isnan(magnitude), 0.0, ratio)
    return np.asarray(ratio, dtype=np.float64)
