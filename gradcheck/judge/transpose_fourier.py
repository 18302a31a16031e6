"""The Fourier identity for the transposed convolution, composed from the convolution's.

A transposed convolution T (stride s, padding (lo, hi), output_padding a, dilation r, groups G;
x (N, C_in, S…), w (C_in, C_out/G, K…)) is the input gradient of the convolution C with the
same stride, padding, dilation and groups, whose weight is w read as (F = C_in, C_out/G, K…):

    y_T = C.dx(δ_C = x, w) + b                  (T's forward)
    dw_T = C.dw(δ_C = x, x_C = δ_T)              (⟨δ_T, C.dx(x, w)⟩ = ⟨C(δ_T, w), x⟩)
    dx_T = C(δ_T, w)                             (T's input gradient: C's forward)

so :func:`gradcheck.witnesses.fourier.fourier_backward` of C gives y_T and dw_T by the
convolution theorem.  C's forward is a correlation that the same routine computes as a kernel
gradient, with the roles of the axes exchanged: for each group g,

    dx_T[n, c, i] = Σ_{f ∈ g, t} w[c, f, t] · δ_T,pad[n, f, s·i + r·t]
                  = dW'[c, n, i]   of a convolution C' with batch f ∈ g, channels n,
                    upstream gradient w[c, f, t] at positions t, stride r, dilation s,

i.e. ``dW'[c, n, i] = Σ_f Σ_t δ'[f, c, t]·x'_pad[f, n, r·t + s·i]`` — C's forward read as a
correlation of δ_T,pad with w↑r.  Output lengths: C maps O to ``S + ⌊a/s⌋`` positions and C'
has ``K + ⌊a/r⌋`` (a < max(s, r) makes one of them exact); the extra positions carry zeros
(x and w are zero-padded there), which add nothing to any sum.

Every Fourier value comes with :func:`gradcheck.witnesses.fourier.fourier_error_bound`'s
derived bound for the convolution it was computed as (Higham Thm 24.2 per transform, the
complex dot product over pairs), mapped back onto T's axes.  Nothing here imports a transposed
convolution formula: the identity is computed from the data and the convolution theorem only.
"""

from __future__ import annotations

import numpy as np

from gradcheck.errors import invalid
from gradcheck.geometry.family_problem import ConvTransposeProblem
from gradcheck.geometry.spec import ConvSpec
from gradcheck.judge.family_bounds import (
    analytic_bounds,
    forward_bound,
    reference_backward,
    reference_forward,
)
from gradcheck.judge.result import CheckResult, compare_arrays
from gradcheck.witnesses.fourier import fourier_backward, fourier_error_bound

__all__ = ["compare_transpose_fourier", "transpose_fourier"]

FourierValues = dict[str, tuple[np.ndarray, np.ndarray]]


def _extend(a: np.ndarray, extra: tuple[int, ...]) -> np.ndarray:
    """``a`` with ``extra`` zeros appended along each spatial axis."""
    return np.pad(a, ((0, 0), (0, 0), *((0, e) for e in extra)))


def transpose_fourier(problem: ConvTransposeProblem) -> FourierValues:
    """``{name: (value, bound)}`` for y (without bias), dx and dw of a transposed convolution.

    Each value is the convolution theorem's, in float64; each bound is broadcastable to it.

    Raises
    ------
    InvalidArgument
        Complex arrays (the Fourier witness works on real data).
    """
    p = problem
    if p.dtype.kind == "c":
        raise invalid("problem", p.describe(), "the Fourier identity needs real arrays")
    s, r, groups = p.spec.stride, p.spec.dilation, p.spec.groups
    a = p.spec.output_padding
    x, w, delta = (v.astype(np.float64) for v in (p.x, p.w, p.dy))
    conv = ConvSpec(p.spec.dims, s, p.spec.padding, r, groups)
    x_ext = _extend(x, tuple(ai // si for ai, si in zip(a, s)))
    y, dw = fourier_backward(x_ext, delta, w, conv)
    bound_y, bound_dw = fourier_error_bound(x_ext, delta, w, conv)

    n, c_in = x.shape[:2]
    c_g, f_g = c_in // groups, w.shape[1]
    dx = np.empty(x.shape)
    bound_dx = np.empty((n, c_in) + (1,) * p.spec.dims)
    swapped = ConvSpec(p.spec.dims, r, p.spec.padding, s, 1)
    for g in range(groups):
        channels, filters = slice(g * c_g, (g + 1) * c_g), slice(g * f_g, (g + 1) * f_g)
        x_prime = delta[:, filters].swapaxes(0, 1)  # batch f ∈ g, channels n
        dy_prime = _extend(w[channels].swapaxes(0, 1), tuple(ai // ri for ai, ri in zip(a, r)))
        w_prime = np.zeros((c_g, n, *x.shape[2:]))  # shapes only: dW' has w''s shape
        _, dw_prime = fourier_backward(dy_prime, x_prime, w_prime, swapped)
        _, bound_prime = fourier_error_bound(dy_prime, x_prime, w_prime, swapped)
        dx[:, channels] = dw_prime.swapaxes(0, 1)
        bound_dx[:, channels] = bound_prime.swapaxes(0, 1)
    return {"y": (y, bound_y), "dx": (dx, bound_dx), "dw": (dw, bound_dw)}


def compare_transpose_fourier(
    problem: ConvTransposeProblem,
    gradients: dict[str, np.ndarray] | None = None,
    y: np.ndarray | None = None,
) -> CheckResult:
    """The transposed convolution's forward, dx and dw against the convolution theorem.

    ``gradients`` (dx, dw) and ``y`` default to the reference formulas'
    (:mod:`gradcheck.formulas.conv_transpose`).  Each entry may differ from the Fourier value
    by the analytic side's rounding (``γ_n·Σ|terms|``, :func:`analytic_bounds` and
    :func:`forward_bound`) plus the Fourier bound; the bias is added to the Fourier forward
    as the forward adds it (its rounding is inside the forward's bound).
    """
    p = problem
    family = "conv_transpose"
    if gradients is None:
        dx, dw, _ = reference_backward(p, family)
        assert dx is not None and dw is not None  # a transposed convolution has both
        gradients = {"dx": dx, "dw": dw}
    if y is None:
        y = reference_forward(p, family)
    fourier = transpose_fourier(p)
    analytic = analytic_bounds(p, family)
    y_fourier, y_bound = fourier["y"]
    if p.b is not None:
        y_fourier = y_fourier + p.b.astype(np.float64).reshape((1, -1) + (1,) * p.spec.dims)
    comparisons = [compare_arrays("y", "Fourier identity", y, y_fourier,
                                  forward_bound(p, family) + y_bound)]
    for name in ("dx", "dw"):
        value, bound = fourier[name]
        comparisons.append(compare_arrays(name, "Fourier identity", gradients[name], value,
                                          analytic[name] + bound))
    return CheckResult(
        "fourier", tuple(comparisons),
        "analytic side γ_n·Σ|terms| + FFT error bound of the convolution each value is "
        "computed as (Higham Thm 24.2, float64)", p.describe())
