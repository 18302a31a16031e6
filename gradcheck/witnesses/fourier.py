"""The convolution gradients in the Fourier domain, and the transfer-function identity.

An independent witness for :mod:`gradcheck.formulas.conv` (nothing here imports it).  Every
signal is zero-padded to a fast length P per spatial dim (``scipy.fft.next_fast_len``,
5-smooth) so that circular equals linear convolution; all work is float64 whatever the input dtype::

    FFT(dx_pad)[n, c] = Σ_{f ∈ group(c)} FFT(δ↑s[n, f]) · FFT(w↑r[f, c'])   → crop → dx
    FFT(dW)[f, c']    = Σ_n FFT(x_pad[n, c]) · conj(FFT(δ↑s[n, f]))         dw[f, c', t] = dW[r·t]
    FFT(D_k y[k'])    = FFT(x_pad) · conj(FFT(k'↑r))                        (transfer function)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft

from gradcheck.errors import LayerError, call_user, invalid, invalid_type
from gradcheck.geometry.spec import ConvSpec, output_shape, spatial_index

Forward = Callable[[np.ndarray, np.ndarray, "np.ndarray | None", ConvSpec], np.ndarray]

U64 = 2.0**-53  # unit roundoff of float64, the working precision


def _gamma(k: int, u: float = U64) -> float:
    return k * u / (1 - k * u)


def _unit_roundoff(dtype: np.dtype) -> float:
    return float(np.finfo(dtype).eps) / 2 if np.issubdtype(dtype, np.inexact) else 0.0


THETA_DIV = math.sqrt(2) * _gamma(7)  # complex division (numpy: Smith's), normwise, generous


def _real64(name: str, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if np.iscomplexobj(a):
        raise invalid(f"{name}.dtype", str(a.dtype), "expected real values: the Fourier "
                      "witness checks real convolutions (use the adjoint check for complex)")
    if a.dtype.kind not in "biuf":
        raise invalid_type(f"{name}.dtype", str(a.dtype), "expected a real numeric dtype")
    return a.astype(np.float64)


def _conversion_error(a: np.ndarray) -> float:
    """Relative rounding of ``a.astype(float64)``: 0 for floats up to 64 bits, ints up to 32."""
    kind, size = np.asarray(a).dtype.kind, np.asarray(a).dtype.itemsize
    return 0.0 if kind == "b" or (kind == "f" and size <= 8) or size <= 4 else U64


def _pad(a: np.ndarray, padding: tuple[tuple[int, int], ...]) -> np.ndarray:
    return np.pad(a, ((0, 0), (0, 0), *padding))


def _upsample(a: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """``a↑s``: s − 1 zeros between neighbouring samples of each spatial axis."""
    lengths = tuple((n - 1) * s + 1 for n, s in zip(a.shape[2:], factors, strict=True))
    up = np.zeros(a.shape[:2] + lengths)
    every: tuple[Any, ...] = (Ellipsis, *(slice(None, None, s) for s in factors))
    up[every] = a
    return up


def _norms(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(‖·‖₁, ‖·‖₂) of every spatial signal of ``a`` (A, B, L…), each (A, B)."""
    flat = a.reshape(a.shape[0], a.shape[1], -1)
    return np.abs(flat).sum(-1), np.sqrt(np.square(flat).sum(-1))


def _fft_error(sizes: tuple[int, ...]) -> float:
    """ε with ``‖FFT_computed(a) − FFT(a)‖₂ <= ε‖FFT(a)‖₂`` for transform lengths ``sizes``."""
    stages = sum((p - 1).bit_length() for p in sizes)  # Σ ceil(log2 P) over the axes
    eta = U64 + _gamma(4) * (math.sqrt(2) + U64)
    return stages * eta / (1 - stages * eta)


def _checked(dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec):
    delta, x64, w64 = (_real64(name, a) for name, a in (("dy", dy), ("x", x), ("w", w)))
    y_shape = output_shape(x64.shape, w64.shape, spec)
    if delta.shape != y_shape:
        raise invalid("dy.shape", delta.shape, f"expected the output shape {y_shape}")
    return delta, x64, w64


def _backward_sizes(x_shape, w_shape, dy_shape, spec: ConvSpec) -> tuple[int, ...]:
    """P >= len(x_pad) per dim, rounded up to a fast length — enough for both identities.

    dx_pad = δ↑s * w↑r has length (O − 1)·s + 1 + r·(K − 1) <= len(x_pad), so its circular
    convolution does not wrap; the dw lags read, r·t <= len(x_pad) − len(δ↑s), keep every
    index i + r·t < len(x_pad) <= P, so the correlation does not wrap either.
    """
    return tuple(scipy.fft.next_fast_len(s + lo + hi, real=True)
                 for s, (lo, hi) in zip(x_shape[2:], spec.padding, strict=True))


def fourier_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients ``(dx, dw)`` of ``L = ⟨δ, y⟩`` by the convolution theorem, in float64.

    Parameters
    ----------
    dy : (N, F, O…) real
        Upstream gradient δ.
    x : (N, C, S…) real
    w : (F, C/G, K…) real
    spec : ConvSpec

    Returns
    -------
    dx : (N, C, S…) float64
    dw : (F, C/G, K…) float64

    Raises
    ------
    InvalidArgument
        Complex arrays (naming the argument), or shapes that do not fit ``spec``.

    Notes
    -----
    With spectra of length P >= len(x_pad) + max(len(w↑r), len(δ↑s)) − 1 per dim::

        FFT(dx_pad)[n, c] = Σ_{f ∈ group(c)} FFT(δ↑s[n, f]) · FFT(w↑r[f, c'])
        FFT(dW)[f, c']    = Σ_n FFT(x_pad[n, c]) · conj(FFT(δ↑s[n, f]))

    ``dx`` is ``dx_pad`` with the padding cropped off; ``dw[f, c', t] = dW[f, c', r·t]``, the
    non-negative lags of the circular cross-correlation.  Channel and batch sums are taken on
    the spectra, with one inverse FFT per output array.
    """
    delta, x64, w64 = _checked(dy, x, w, spec)
    groups, axes = spec.groups, tuple(range(2, 2 + spec.dims))
    n, c_g, f_g = x64.shape[0], w64.shape[1], w64.shape[0] // groups
    sizes = _backward_sizes(x64.shape, w64.shape, delta.shape, spec)
    x_hat = scipy.fft.rfftn(_pad(x64, spec.padding), sizes, axes=axes)
    delta_hat = scipy.fft.rfftn(_upsample(delta, spec.stride), sizes, axes=axes)
    w_hat = scipy.fft.rfftn(_upsample(w64, spec.dilation), sizes, axes=axes)
    half = x_hat.shape[2:]
    delta_hat = delta_hat.reshape(n, groups, f_g, *half)

    dx_hat = np.einsum("ngf...,gfc...->ngc...", delta_hat,
                       w_hat.reshape(groups, f_g, c_g, *half), optimize=True)
    dx_pad = scipy.fft.irfftn(dx_hat.reshape(x_hat.shape), sizes, axes=axes)
    crop = tuple(slice(lo, lo + s) for (lo, _), s in zip(spec.padding, x64.shape[2:], strict=True))

    dw_hat = np.einsum("ngc...,ngf...->gfc...", x_hat.reshape(n, groups, c_g, *half),
                       delta_hat.conj(), optimize=True)
    dw_all = scipy.fft.irfftn(dw_hat.reshape(w64.shape[:2] + half), sizes, axes=axes)
    lags = tuple(slice(0, r * (k - 1) + 1, r)
                 for r, k in zip(spec.dilation, w64.shape[2:], strict=True))
    return (np.ascontiguousarray(dx_pad[spatial_index(crop)]),
            np.ascontiguousarray(dw_all[spatial_index(lags)]))


def _pair_terms(a_norms, b_norms, eps: float, beta: float) -> np.ndarray:
    """√2·ε·(‖a‖₂‖b‖₁ + ‖a‖₁‖b‖₂) + β·min(‖a‖₁‖b‖₂, ‖a‖₂‖b‖₁), broadcast over pairs."""
    (a1, a2), (b1, b2) = a_norms, b_norms
    return math.sqrt(2) * eps * (a2 * b1 + a1 * b2) + beta * np.minimum(a1 * b2, a2 * b1)


def fourier_error_bound(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise upper bounds on ``|fourier_backward − exact|`` for dx and dw.

    Parameters
    ----------
    dy, x, w, spec
        As for :func:`fourier_backward`.

    Returns
    -------
    bound_dx : (N, C, 1…) float64, broadcastable to dx
    bound_dw : (F, C/G, 1…) float64, broadcastable to dw

    Notes
    -----
    *FFT.* Higham (*Accuracy and Stability*, Thm 24.2): a radix-2 FFT of length 2^k with
    twiddles accurate to μ = u has ``‖ŷ − y‖₂ <= ε‖y‖₂``, ``ε = kη/(1 − kη)``,
    ``η = μ + γ₄(√2 + μ)``.  Axes compose (``∏ 1/(1 − k_iη) <= 1/(1 − Σ k_iη)``), so
    ``k = Σ_axes ceil(log2 P_i)``.  pocketfft runs 5-smooth lengths in passes of radix 4, 2, 3,
    5: ceil(log2 P) grants a radix-p pass log2(p)·η (2η for radix 4, two fused radix-2 levels;
    ≈ 10u for radix 3 and ≈ 15u for radix 5, whose butterflies round one twiddle product and
    2–3 additions per output).  For radices 3 and 5 this is a stage-count proxy, not a proof;
    the worst measured error stays far below the bound.  rfftn/irfftn are assumed to obey
    the same bound as the complex transform of the same lengths.

    *Convolution.* For z = Σ_j a_j ⊛ b_j (m pairs) by rfftn → product sum → irfftn, to first
    order: an input error gives ``‖ΔA·B‖₂ <= ‖ΔA‖₂‖B‖_∞ <= ε√P‖a‖₂‖b‖₁`` (Parseval
    ``‖A‖₂ = √P‖a‖₂``, and ``‖B‖_∞ <= ‖b‖₁``); the complex dot product over j adds
    ``<= √2γ_{m+2}Σ_j|A_j||B_j|`` per bin (Higham §3.6), of 2-norm ``<= √2γ_{m+2}√P
    Σ_j min(‖a‖₁‖b‖₂, ‖a‖₂‖b‖₁)``; irfftn maps a half-spectrum error E to a signal of
    2-norm ``<= √(2/P)‖E‖₂`` (a stored bin also stands for its mirror); the inverse FFT adds
    ``(ε + u)‖z‖₂`` (u for the 1/P scaling) with ``‖z‖₂ <= Σ_j min(…)`` (Young); converting to
    float64 adds (ρ_a + ρ_b)·min(…).  Each entry is within the 2-norm of the error::

        Σ_j √2ε(‖a_j‖₂‖b_j‖₁ + ‖a_j‖₁‖b_j‖₂) + (2γ_{m+2} + ε + u + ρ_a + ρ_b)·min(…)

    with pairs (δ[n, f], w[f, c']), m = F/G, for dx[n, c] (cropping drops entries) and
    (x[n, c], δ[n, f]), m = N, for dw[f, c'] (conj is exact; zero insertion and padding keep
    the norms).  Computed norms may be low by γ_{L+2}: the bound is divided by 1 − γ_{L+2}.
    """
    delta, x64, w64 = _checked(dy, x, w, spec)
    (n, c), (f, c_g), groups = x64.shape[:2], w64.shape[:2], spec.groups
    f_g = f // groups
    eps = _fft_error(_backward_sizes(x64.shape, w64.shape, delta.shape, spec))
    rho_x, rho_w, rho_d = (_conversion_error(a) for a in (x, w, dy))
    longest = max(math.prod(a.shape[2:]) for a in (delta, x64, w64))
    inflate = 1 / (1 - _gamma(longest + 2))
    delta_g = [m.reshape(n, groups, f_g, 1) for m in _norms(delta)]
    w_g = [m.reshape(1, groups, f_g, c_g) for m in _norms(w64)]
    x_g = [m.reshape(n, groups, 1, c_g) for m in _norms(x64)]
    beta_dx = 2 * _gamma(f_g + 2) + eps + U64 + rho_d + rho_w
    beta_dw = 2 * _gamma(n + 2) + eps + U64 + rho_x + rho_d
    bound_dx = _pair_terms(delta_g, w_g, eps, beta_dx).sum(axis=2)
    bound_dw = _pair_terms(x_g, delta_g, eps, beta_dw).sum(axis=0)
    ones = (1,) * spec.dims
    return inflate * bound_dx.reshape(n, c, *ones), inflate * bound_dw.reshape(f, c_g, *ones)


def full_spec(spec: ConvSpec, kernel_shape: tuple[int, ...]) -> ConvSpec:
    """The "full", stride-1 version of ``spec`` for a kernel of shape (F, C/G, K…).

    Same dilation and groups, padding ``(lo + r(K − 1), hi + r(K − 1))``, stride 1: output j
    is lag ``j − r(K − 1)`` of ``x_pad ⋆ k↑r``, so every lag at which the two overlap.
    """
    taps = tuple(kernel_shape)[2:]
    if len(taps) != spec.dims:
        raise invalid("kernel_shape", tuple(kernel_shape),
                      f"expected (F, C/G) + {spec.dims} kernel sizes for spec.dims={spec.dims}")
    padding = tuple((lo + r * (k - 1), hi + r * (k - 1))
                    for (lo, hi), r, k in zip(spec.padding, spec.dilation, taps, strict=True))
    return ConvSpec(spec.dims, (1,) * spec.dims, padding, spec.dilation, spec.groups)


@dataclass(frozen=True)
class TransferCheck:
    """Outcome of :func:`transfer_function_check`; each ratio is max(error / derived bound).

    Frequencies are counted per (channel c0, filter f, half-spectrum bin).
    """

    passed: bool
    worst_ratio: float
    independence_ratio: float
    spectrum_ratio: float
    frequencies_used: int
    frequencies_total: int
    detail: str


def _evaluate(forward: Forward, args: tuple, shape: tuple[int, ...], what: str) -> np.ndarray:
    out = np.asarray(call_user(f"the forward ({what})", forward, *args))
    if out.shape != shape or out.dtype.kind not in "biuf":
        raise LayerError(f"forward returned a {out.dtype} array of shape {out.shape} for {what};"
                         f" expected real values of shape {shape}", "wrong-shape")
    return out


def _ratio(error: np.ndarray, bound: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.asarray(np.divide(error, bound), dtype=np.float64)
    ratio[error == 0] = 0.0
    ratio[np.isnan(ratio)] = np.inf  # a NaN anywhere fails
    return float(ratio.max(initial=0.0))


def _independence(forward: Forward, x, w, direction, spec: ConvSpec, terms: int) -> float:
    """max |(y(w + h·k') − y(w − h·k'))/2h − y(k')| / bound over the output."""
    scale = float(np.max(np.abs(w), initial=0.0))
    h = 2.0 ** round(math.log2(scale)) if scale > 0 else 1.0
    w_plus, w_minus = w + h * direction, w - h * direction
    shape = output_shape(x.shape, w.shape, spec)
    y_plus, y_minus, y_dir = (_evaluate(forward, (x, k, None, spec), shape, "y")
                              for k in (w_plus, w_minus, direction))
    x_abs, w_abs = np.abs(x.astype(np.float64)), np.abs(w_plus) + np.abs(w_minus)
    mag_pm = _evaluate(forward, (x_abs, w_abs.astype(np.float64), None, spec), shape, "|y|")
    mag_dir = _evaluate(forward, (x_abs, np.abs(direction.astype(np.float64)), None, spec),
                        shape, "|y|")
    u = max(_unit_roundoff(a.dtype) for a in (x, w_plus, y_plus, y_minus, y_dir))
    u_w = _unit_roundoff(w_plus.dtype)
    low = 1 - _gamma(terms, max(U64, _unit_roundoff(mag_pm.dtype), _unit_roundoff(mag_dir.dtype)))
    fd = (y_plus.astype(np.float64) - y_minus.astype(np.float64)) / (2 * h)
    bound = ((_gamma(terms, u) + u_w / (1 - u_w)) * mag_pm / (2 * h)
             + _gamma(terms, u) * mag_dir) / low + U64 * np.abs(fd)
    return _ratio(np.abs(fd - y_dir.astype(np.float64)), bound)


def _spectrum(forward: Forward, x, directions, spec: ConvSpec, terms: int):
    """Worst |Ẑ/conj(K̂) − X̂| / tolerance on well-conditioned bins; bins used; bins total."""
    d, axes, (f, c_g) = spec.dims, tuple(range(2, 2 + spec.dims)), directions.shape[1:3]
    fspec = full_spec(spec, directions.shape[1:])
    shape = output_shape(x.shape, directions.shape[1:], fspec)  # len(x_pad) + r(K − 1)
    lags = [-r * (k - 1) for r, k in zip(spec.dilation, directions.shape[3:], strict=True)]
    sizes = tuple(scipy.fft.next_fast_len(n, real=True) for n in shape[2:])
    eps_root_p = _fft_error(sizes) * math.sqrt(math.prod(sizes))
    x64 = x.astype(np.float64)
    x_pad = _pad(x64, spec.padding)
    x_hat = scipy.fft.rfftn(x_pad, sizes, axes=axes)
    e_x = eps_root_p * _norms(x_pad)[1]
    spread = (slice(None), slice(None), *(None,) * d)  # (A, B) -> (A, B, 1…)
    worst, used, total = 0.0, 0, 0
    for c0, k in enumerate(directions):
        z = _evaluate(forward, (x, k, None, fspec), shape, f"D_k y[k'], channel {c0}")
        z_abs = _evaluate(forward, (np.abs(x64), np.abs(k.astype(np.float64)), None, fspec),
                          shape, f"|D_k y[k']|, channel {c0}")
        u = max(_unit_roundoff(a.dtype) for a in (x, k, z))
        low = 1 - _gamma(terms + math.prod(shape[2:]), max(U64, _unit_roundoff(z_abs.dtype)))
        z64 = z.astype(np.float64)
        tail = tuple((0, p - n) for p, n in zip(sizes, shape[2:], strict=True))
        wrapped = np.roll(_pad(z64, tail), lags, axis=axes)  # negative lags wrap to the end
        z_hat = scipy.fft.rfftn(wrapped, sizes, axes=axes)
        k_c0 = k[:, c0:c0 + 1].astype(np.float64)
        k_hat = scipy.fft.rfftn(_upsample(k_c0, spec.dilation), sizes, axes=axes).swapaxes(0, 1)
        k_norm1, k_norm2 = (m.T[spread] for m in _norms(k_c0))
        well = np.broadcast_to(np.abs(k_hat) >= math.sqrt(u) * k_norm1, z_hat.shape)
        channels = (np.arange(f) // (f // spec.groups)) * c_g + c0
        x_c, e_xc = x_hat[:, channels], e_x[:, channels][spread]
        e_z = (eps_root_p * _norms(z64)[1] + _gamma(terms, u) * _norms(z_abs)[0] / low)[spread]
        with np.errstate(divide="ignore", invalid="ignore"):
            x_rec = z_hat / np.conj(k_hat)
            tol = ((e_z + (np.abs(x_c) + e_xc) * eps_root_p * k_norm2) / np.abs(k_hat)
                   + THETA_DIV * np.abs(x_rec) + e_xc)
        worst = max(worst, _ratio(np.abs(x_rec - x_c)[well], tol[well]))
        used, total = used + int(well[0].sum()), total + well[0].size
    return worst, used, total


def transfer_function_check(
    forward: Forward, x: np.ndarray, w: np.ndarray, spec: ConvSpec, *, seed: int = 0
) -> TransferCheck:
    """Check a forward against the transfer-function identity of its kernel derivative.

    Parameters
    ----------
    forward : callable ``(x, w, b, spec) -> y``
        Any convolution forward (the reference or a user's), assumed to sum directly.
    x : (N, C, S…) real
    w : (F, C/G, K…) real
    spec : ConvSpec
    seed : int
        Seed of the random directions k'.

    Returns
    -------
    TransferCheck
        ``passed`` when every error is within its bound and some bin was usable.

    Raises
    ------
    InvalidArgument
        Complex arrays, or shapes that do not fit ``spec``.
    LayerError
        The forward raised (reason ``"raised"``) or returned a wrong shape (``"wrong-shape"``).

    Notes
    -----
    y is linear in the kernel: ``D_k y[k'] = forward(x, k')`` whatever k.  *Independence:*
    for h a power of two near max|w|, ``(y(w + hk') − y(w − hk'))/2h = y(k')`` with no
    truncation error; with ``A = forward(|x|, |w₊| + |w₋|)``, ``B = forward(|x|, |k'|)`` and
    γ = γ_n, n = C/G·∏K + 1, the computed difference is at most
    ``(γ + u_w)·A/2h + γ·B + u·|fd|`` (forward roundings, rounded w ± hk', subtraction).

    *Spectrum:* for each local channel c0, k' is random on channel c0 and zero elsewhere, so
    z = forward(x, k', full_spec) is ``x_pad ⋆ k'↑r`` at lags −r(K − 1) … len(x_pad) − 1;
    wrapped into P >= len(x_pad) + r(K − 1), ``Z = X·conj(K)`` with X the spectrum of input
    channel g(f)·C/G + c0.  Exactly ``Ẑ/conj(K̂) − X = (Ẑ − Z + X·conj(K − K̂))/conj(K̂)``; with
    the bounds ``e_X = ε√P‖x_pad‖₂``, ``e_K = ε√P‖k'‖₂`` (see :func:`fourier_error_bound`) and
    ``e_Z = ε√P‖ẑ‖₂ + γ_n‖|x_pad| ⋆ |k'|‖₁`` (the forward's rounding reaches a bin through
    its 1-norm), per bin::

        |Ẑ/conj(K̂) − X̂| <= (e_Z + (|X̂| + e_X)·e_K)/|K̂| + θ·|Ẑ/conj(K̂)| + e_X

    θ = √2γ₇ covers the complex division.  Only bins with ``|K̂| >= √u·‖k'‖₁`` are used (u of
    the forward's dtype; always ``|K| <= ‖k'‖₁``): there the forward's relative rounding is
    amplified at most 1/√u-fold, keeping half the digits — far below the O(1) discrepancy of
    a wrong forward — and a random k' has almost no bins below it.
    """
    x, w = np.asarray(x), np.asarray(w)
    for name, a in (("x", x), ("w", w)):
        _real64(name, a)
    output_shape(x.shape, w.shape, spec)
    rng = np.random.default_rng(seed)
    dtype = w.dtype if w.dtype.kind == "f" else np.dtype(np.float64)
    c_g = w.shape[1]
    terms = c_g * math.prod(w.shape[2:]) + 1
    direction = rng.standard_normal(w.shape).astype(dtype)
    independence = _independence(forward, x, w, direction, spec, terms)
    directions = rng.standard_normal((c_g, *w.shape)).astype(dtype)
    directions *= np.eye(c_g).reshape(c_g, 1, c_g, *(1,) * spec.dims)  # k'[c0]: channel c0 only
    spectrum, used, total = _spectrum(forward, x, directions, spec, terms)
    worst = max(independence, spectrum)
    detail = (f"transfer function: spectrum error {spectrum:.3g} of its bound on {used}/{total}"
              f" well-conditioned bins; kernel independence {independence:.3g} of its bound")
    passed = bool(worst <= 1 and used > 0)
    return TransferCheck(passed, worst, independence, spectrum, used, total, detail)
