"""Rounding bounds of a correct convolution, its backward and one evaluation of L — derived.

Two **rounding models** (a layer names its own with ``supports={"rounding": …}``,
:data:`gradcheck.geometry.supports.ROUNDING_MODELS`):

``"entrywise"`` — direct sums, in any order (loops, im2col + BLAS, pairwise or blocked
    reductions, float32 accumulation).  Every gradient entry is a dot product of n terms, so a
    correct backward is within ``γ_n·Σ|terms|`` of the exact value
    (:func:`gradcheck.floating.gamma`), and ``Σ|terms|`` is the backward applied to ``|δ|``,
    ``|x|``, ``|w|`` (:func:`absolute_gradients`).

``"normwise"`` — any of those, **or** a fast transform (FFT, Winograd), which is only normwise
    stable: an output whose exact value is 0 can come back as 1e-18.  The bound of every entry
    is the entrywise one plus the bound of its *plane* (one (n, f) output map, one (n, c) input
    gradient map, one (f, c') kernel gradient), :func:`plane_errors`:

    * **FFT** (Higham, *Accuracy and Stability*, §24.1, Thm 24.2).  A length-P Cooley–Tukey FFT
      in ``t`` radix-r stages with twiddles accurate to μ is ``ŷ = (A_t + ΔA_t)…(A_1 + ΔA_1)·a``
      with ``‖ΔA_k‖₂ <= η_r·‖A_k‖₂`` and ``∏‖A_k‖₂ = ‖F‖₂ = √P``, so
      ``‖ŷ − Fa‖₂ <= ε_F·√P·‖a‖₂`` with ``ε_F = (1 + η)^t − 1``.  Radix 2: ``η = μ + √2·γ_4``
      (Higham's constant).  A radix-r butterfly is an r-term complex dot product per output,
      ``|Δ| <= √2·γ_{r+2}·|A|``, and ``‖|A|‖₂ = √r·‖A‖₂``, so ``η_r = μ + √(2r)·γ_{r+2}``;
      per bit of P that is ``η_r / log₂ r <= 18·u`` for every radix r <= 11 (r = 11 is the
      worst; 2: 9u, 4: 9u, 5: 10u, 7: 12u), with μ = u.  We take
      ``ε_F = L·c_F·u / (1 − L·c_F·u)``, ``c_F = 18`` (:data:`FFT_STAGE_CONSTANT`),
      ``L = log₂ P + 2`` (two stages for a real transform's pre/post-processing), and bound the
      transform length by ``P_d <= 4·S_pad,d`` per dim (every linear convolution involved is
      shorter than ``2·S_pad``, and a "fast length" at most doubles it; ``P = ∏ P_d``, a
      d-dim FFT being d sets of 1-d ones).
      A linear convolution ``z = a * b`` as ``F⁻¹(Fa ⊙ Fb)/P`` then has, to first order
      (``‖e_a ⊙ Fb‖₂ <= ‖e_a‖₂·‖Fb‖_∞ <= ε_F·√P·‖a‖₂·‖b‖₁``, the same with a and b swapped,
      ``√2·γ_2`` per complex product, ``ε_F`` for the inverse, γ_2 for the 1/P scaling and the
      final addition, and ``‖F⁻¹v‖₂ = √P·‖v‖₂``)::

          ‖ẑ − z‖₂ <= ε_conv·(‖a‖₂·‖b‖₁ + ‖a‖₁·‖b‖₂),
          ε_conv = (1 + ε_F)³·(1 + √2·γ_{m+2})·(1 + γ_2) − 1

      where m is the number of planes summed into one output plane (channels, filters or the
      batch), whether the sum is taken before the inverse transform (entrywise on the spectra,
      ``√2·γ_{m+2}``) or after it (``γ_m``, smaller).  Summed over those m pairs (a triangle
      inequality, tighter than Cauchy–Schwarz on the whole channel stack), the error of a plane
      is ``ε_conv·Σ_c (‖a_c‖₂‖b_c‖₁ + ‖a_c‖₁‖b_c‖₂)`` in 2-norm, hence for every entry
      (``|e_i| <= ‖e‖₂``).  Stride (subsampling), cropping and reading a few lags only drop
      entries: the norm bound still holds.
    * **Winograd F(m, r)** (Lavin & Gray 2016; error analysis after Barabasz et al. 2020):
      a tile is ``Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`` summed over channels; each entry is within
      ``γ_T·(|Aᵀ|[(|G||g||G|ᵀ) ⊙ (|Bᵀ||d||B|)]|A|)`` of the exact value, with T the depth of the
      chain (q terms per row and pass of each transform, d passes each, one product, the m-term
      channel sum, one bias addition: ``T = d·(q_A + q_G + q_B) + m + 2``).  Bounding every
      absolute sum by the transforms' ∞-norms gives, for every entry of a plane,
      ``|e| <= γ_T·g^d·Σ_c ‖a_c‖_∞·‖b_c‖_∞`` with the growth ``g = ‖Aᵀ‖_∞·‖G‖_∞·‖Bᵀ‖_∞``
      (:func:`winograd_growth`; F(2, 3): 3·1.5·2 = 9, so 81 for F(2×2, 3×3)).

    The normwise bound of an entry is the entrywise one plus ``max(FFT, Winograd)`` of its plane:
    whichever of the three ways the layer computes, its error is within it.  Paired with a
    vector (L = ⟨δ, y⟩, a directional derivative ⟨g, v⟩), a plane's error contributes
    ``max(Σ ‖v_plane‖₂·E_FFT, Σ ‖v_plane‖₁·E_Winograd)`` (Cauchy–Schwarz, Hölder).

**Rounding of one evaluation of L.**  ``L = Σ_{n,f,o} δ·(b + Σ w·x)`` is one long sum of
``m = (C/G·∏K + 1) + 1 + N·F·∏O`` roundings deep, so (Higham §3.1)::

    |fl(L) − L| <= γ_m·(⟨|δ|, conv(|x|, |w|)⟩ + ⟨|δ|, |b|⟩)

and, conv being linear in each argument, ``⟨|δ|, conv(|x|, |w|)⟩ = ⟨A_x, |x|⟩ = ⟨A_w, |w|⟩``
with ``A = (A_x, A_w, A_b)`` the Σ|terms| of each gradient entry; under the normwise model
the pairing above is added at the evaluated point.  The witnesses take these bounds as
arguments: they belong to the judge, which alone brings the formulas
(:mod:`gradcheck.formulas`) and the witnesses together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradcheck.errors import choice, invalid
from gradcheck.floating import gamma, underflow, unit_roundoff
from gradcheck.formulas.conv import conv_backward
from gradcheck.geometry.problem import ConvProblem, remembered, term_counts
from gradcheck.geometry.supports import ROUNDING_MODELS
from gradcheck.witnesses.compressed import x_class_count
from gradcheck.witnesses.differences import BatchedFunction

Gradients = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]


def check_rounding(rounding: object) -> str:
    """``rounding`` if it is one of :data:`ROUNDING_MODELS`, else InvalidArgument."""
    return choice("rounding", rounding, ROUNDING_MODELS)


def refuse_complex_step(rounding: str, method: str) -> None:
    """The complex step cannot be bounded under the normwise model: a fast transform mixes the
    real and imaginary parts, so ``Im fl(f(x + i·h·v))`` carries errors of ``|f(x)|``'s order,
    not ``h``'s, and dividing by h = 2^-66 leaves no bound.  Refused, with the fix."""
    if rounding == "normwise" and method == "complex-step":
        raise invalid("method", method, "the complex step needs entrywise rounding: a fast "
                      "transform (FFT, Winograd) mixes real and imaginary parts; use "
                      "method='central' with rounding='normwise'")


# --------------------------------------------------------------------------- normwise model

#: ``c_F``: an FFT's relative normwise error per bit of its length, in units of u (module
#: notes: ``max_r (u + √(2r)·γ_{r+2}) / log₂ r`` over radices r <= 11, reached at r = 11).
FFT_STAGE_CONSTANT = 18.0

#: Winograd's F(2, 3) (Lavin & Gray 2016): ``y = Aᵀ[(G g) ⊙ (Bᵀ d)]`` for 2 outputs of a
#: 3-tap filter from 4 inputs; the 2-d F(2×2, 3×3) applies each on both sides.
WINOGRAD_F23 = {
    "AT": np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]]),
    "G": np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]]),
    "BT": np.array([[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0],
                    [0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]]),
}


def winograd_growth(transforms: dict[str, np.ndarray] | None = None) -> tuple[float, int]:
    """``(g, q)`` of a 1-d Winograd F(m, r): growth ``g = ‖Aᵀ‖_∞·‖G‖_∞·‖Bᵀ‖_∞`` and
    ``q = q_A + q_G + q_B``, the most nonzeros in a row of each (the terms of one pass).

    F(2, 3): ``g = 3·1.5·2 = 9``, ``q = 3 + 3 + 2 = 8``.
    """
    mats = WINOGRAD_F23 if transforms is None else transforms
    growth = float(np.prod([np.abs(m).sum(axis=1).max() for m in mats.values()]))
    depth = int(sum(np.count_nonzero(m, axis=1).max() for m in mats.values()))
    return growth, depth


@dataclass(frozen=True)
class Norms:
    """‖·‖₁, ‖·‖₂ and ‖·‖_∞ of every plane of a stack, float64, shaped like its leading axes."""

    one: np.ndarray
    two: np.ndarray
    inf: np.ndarray

    @classmethod
    def of(cls, a: np.ndarray, lead: int = 2) -> Norms:
        """The norms over all axes of ``a`` after the first ``lead``."""
        m = np.abs(a).reshape(*a.shape[:lead], -1).astype(np.float64)
        return cls(m.sum(axis=-1), np.sqrt(np.einsum("...i,...i->...", m, m)),
                   m.max(axis=-1, initial=0.0))

    @classmethod
    def uniform(cls, size: float, count: int, shape: tuple[int, ...]) -> Norms:
        """Planes of ``count`` entries of magnitude at most ``size`` (a perturbation's norms)."""
        full = np.full(shape, float(size))
        return cls(full * count, full * np.sqrt(count), full)

    def plus(self, other: Norms) -> Norms:
        """Norms of a sum of planes, by the triangle inequality."""
        return Norms(self.one + other.one, self.two + other.two, self.inf + other.inf)

    def scaled(self, factor: np.ndarray | float) -> Norms:
        """Norms of the planes times a non-negative ``factor`` (broadcast)."""
        return Norms(self.one * factor, self.two * factor, self.inf * factor)


@dataclass(frozen=True)
class PlaneErrors:
    """Bounds on the rounding error of each plane of a fast-transform result.

    Attributes
    ----------
    fft : ndarray
        ``‖e_plane‖₂`` for an FFT computation.
    winograd : ndarray
        ``‖e_plane‖_∞`` for a Winograd computation.
    """

    fft: np.ndarray
    winograd: np.ndarray

    def entry(self) -> np.ndarray:
        """A bound on every entry of each plane, whichever transform was used."""
        return np.maximum(self.fft, self.winograd)

    def paired(self, v: Norms) -> np.ndarray:
        """``|⟨e, v⟩|`` over the last two (plane-stack) axes: ``max(Σ‖v‖₂·fft, Σ‖v‖₁·wino)``."""
        return np.maximum(np.einsum("...ij,...ij->...", self.fft, v.two),
                          np.einsum("...ij,...ij->...", self.winograd, v.one))


def _log2_length(problem: ConvProblem) -> float:
    """``L = log₂ ∏ P_d + 2`` with ``P_d = 4·S_pad,d`` (module notes)."""
    p = problem
    padded = [s + lo + hi for s, (lo, hi) in zip(p.x.shape[2:], p.spec.padding)]
    return float(sum(np.log2(4.0 * n) for n in padded)) + 2.0


def fft_error(log2_length: float, dtype: np.dtype | type) -> float:
    """``ε_F = L·c_F·u / (1 − L·c_F·u)``: an FFT's relative 2-norm error (module notes)."""
    lcu = log2_length * FFT_STAGE_CONSTANT * unit_roundoff(dtype)
    return float("inf") if lcu >= 1 else lcu / (1 - lcu)


def _combine(a: Norms, b: Norms, subscripts: str, m: int, problem: ConvProblem,
             dtype: np.dtype | type) -> PlaneErrors:
    """FFT and Winograd bounds of planes that sum m convolutions of an a-plane with a b-plane."""
    eps_f = fft_error(_log2_length(problem), dtype)
    eps_conv = ((1 + eps_f) ** 3 * (1 + np.sqrt(2) * gamma(m + 2, dtype))
                * (1 + gamma(2, dtype)) - 1)
    fft = eps_conv * (np.einsum(subscripts, a.two, b.one) + np.einsum(subscripts, a.one, b.two))
    growth, depth = winograd_growth()
    d = problem.spec.dims
    winograd = gamma(d * depth + m + 2, dtype) * growth**d * np.einsum(subscripts, a.inf, b.inf)
    return PlaneErrors(fft, winograd)


def _grouped(n: Norms, groups: int, axis_len: int) -> Norms:
    """Split the last axis (channels or filters) into (groups, per group)."""
    def split(a: np.ndarray) -> np.ndarray:
        return a.reshape(*a.shape[:-1], groups, axis_len // groups)
    return Norms(split(n.one), split(n.two), split(n.inf))


def _kernel(n: Norms, groups: int) -> Norms:
    """Kernel norms (…, F, C/G) as (…, G, F/G, C/G)."""
    def split(a: np.ndarray) -> np.ndarray:
        return a.reshape(*a.shape[:-2], groups, a.shape[-2] // groups, a.shape[-1])
    return Norms(split(n.one), split(n.two), split(n.inf))


def _flat(errors: PlaneErrors, shape: tuple[int, ...]) -> PlaneErrors:
    return PlaneErrors(errors.fft.reshape(shape), errors.winograd.reshape(shape))


def forward_planes(problem: ConvProblem, dtype: np.dtype | type, x: Norms | None = None,
                   w: Norms | None = None) -> PlaneErrors:
    """Plane bounds of y (…, N, F) at inputs with norms x (…, N, C) and w (…, F, C/G)."""
    p = problem
    x = Norms.of(p.x) if x is None else x
    w = Norms.of(p.w) if w is None else w
    groups, c = p.spec.groups, p.x.shape[1]
    e = _combine(_grouped(x, groups, c), _kernel(w, groups), "...ngc,...gjc->...ngj",
                 p.w.shape[1], p, dtype)
    return _flat(e, (*e.fft.shape[:-2], p.w.shape[0]))


def input_planes(problem: ConvProblem, dtype: np.dtype | type, dy: Norms | None = None,
                 w: Norms | None = None) -> PlaneErrors:
    """Plane bounds of dx (…, N, C) from δ's norms (…, N, F) and w's (…, F, C/G)."""
    p = problem
    dy = Norms.of(p.dy) if dy is None else dy
    w = Norms.of(p.w) if w is None else w
    groups, f = p.spec.groups, p.w.shape[0]
    e = _combine(_grouped(dy, groups, f), _kernel(w, groups), "...ngj,...gjc->...ngc",
                 f // groups, p, dtype)
    return _flat(e, (*e.fft.shape[:-2], p.x.shape[1]))


def weight_planes(problem: ConvProblem, dtype: np.dtype | type, x: Norms | None = None,
                  dy: Norms | None = None) -> PlaneErrors:
    """Plane bounds of dw (…, F, C/G) from x's norms (…, N, C) and δ's (…, N, F)."""
    p = problem
    x = Norms.of(p.x) if x is None else x
    dy = Norms.of(p.dy) if dy is None else dy
    groups = p.spec.groups
    e = _combine(_grouped(x, groups, p.x.shape[1]), _grouped(dy, groups, p.w.shape[0]),
                 "...ngc,...ngj->...gjc", p.x.shape[0], p, dtype)
    return _flat(e, (*e.fft.shape[:-3], p.w.shape[0], p.w.shape[1]))


def loss_error(problem: ConvProblem, dtype: np.dtype | type, x: Norms | None = None,
               w: Norms | None = None) -> np.ndarray:
    """Normwise part of the rounding of ``L = ⟨δ, y⟩`` at inputs with norms x and w (…,)."""
    return forward_planes(problem, dtype, x, w).paired(Norms.of(problem.dy))


def difference_planes(problem: ConvProblem, dtype: np.dtype | type
                      ) -> Callable[[str, float], np.ndarray]:
    """The normwise bound on y's entries (N, F) when x, w or b is perturbed by up to ``step``.

    Compressed differences move at most :func:`x_class_count` entries of a plane of x (one entry
    of each kernel plane for w) by ``step`` each; by the triangle inequality the norms of the
    perturbed planes are at most the unperturbed ones plus those of the perturbation.  b does
    not enter a transform.
    """
    p = problem
    count = x_class_count(p)

    def planes(which: str, step: float) -> np.ndarray:
        if which == "x":
            moved = Norms.of(p.x).plus(Norms.uniform(step, count, p.x.shape[:2]))
            return forward_planes(p, dtype, x=moved).entry()
        if which == "w":
            moved = Norms.of(p.w).plus(Norms.uniform(step, 1, p.w.shape[:2]))
            return forward_planes(p, dtype, w=moved).entry()
        return forward_planes(p, dtype).entry()

    return planes


def batch_planes(problem: ConvProblem) -> Callable[[np.ndarray, np.dtype], np.ndarray]:
    """The normwise bound for the folded-batch check (``evaluations.BatchBound``): the worst
    plane bound over the points, in their dtype, plus the bound at x in the problem's dtype."""
    p = problem
    base = forward_planes(p, p.dtype).entry()

    def bound(points: np.ndarray, dtype: np.dtype) -> np.ndarray:
        moved = forward_planes(p, dtype, x=Norms.of(points, lead=3)).entry()
        return moved.max(axis=0) + base

    return bound


def plane_entries(errors: PlaneErrors, ndim: int) -> np.ndarray:
    """Every entry's bound, broadcastable against the planes' array (``ndim`` axes)."""
    e = errors.entry()
    return e.reshape(e.shape + (1,) * (ndim - e.ndim))

def absolute_gradients(problem: ConvProblem) -> Gradients:
    """``Σ|terms|`` of each gradient entry: the backward applied to |δ|, |x|, |w| (float64).

    Remembered by the problem's content (:attr:`ConvProblem.key`), so a problem rebuilt from
    the same arrays — a cast, a corpus replay — is not recomputed.
    """
    return remembered(problem, "absolute gradients", lambda: _absolute_gradients(problem))


def _absolute_gradients(p: ConvProblem) -> Gradients:
    abs_dy = np.abs(p.dy).astype(np.float64)
    dx, dw, _ = conv_backward(
        abs_dy, np.abs(p.x).astype(np.float64), np.abs(p.w).astype(np.float64), None, p.spec
    )
    db = None if p.b is None else abs_dy.sum(axis=(0, *range(2, p.dy.ndim)))
    return dx, dw, db



def _depth(problem: ConvProblem) -> int:
    """m: roundings in the deepest chain of one evaluation of L."""
    return term_counts(problem)["y"] + 1 + problem.dy.size



def _linear_bound(weights: np.ndarray, constant: float, m: int, dtype: np.dtype, *,
                  imaginary: bool) -> BatchedFunction:
    """``p ↦ γ_m·(⟨weights, |p|⟩ + constant)`` (imaginary parts only, no constant, if asked)."""
    g = gamma(m, dtype)
    flat_weights = weights.reshape(-1)

    def evaluation_error(points: np.ndarray) -> np.ndarray:
        magnitude = np.abs(points.imag) if imaginary else np.abs(points)
        weighted = np.einsum("bj,j->b", magnitude.reshape(len(points), -1), flat_weights)
        return g * (weighted + (0.0 if imaginary else constant))

    return evaluation_error


def evaluation_bound(problem: ConvProblem, which: str, dtype: np.dtype, *, imaginary: bool,
                     point_rounding: bool = False,
                     rounding: str = "entrywise") -> BatchedFunction:
    """Bound on the rounding of one evaluation of L at a point of x, w, b or ``concat(w, b)``.

    ``γ_{m+4}·(⟨A_arg, |p|⟩ + ⟨|δ|, the fixed arguments' part⟩)`` (module notes); the 4
    extra roundings cover combining a stencil's (at most 4) values with its rounded
    coefficients, whose error is at most ``γ_4·Σ|c_k||L_k|``.  With ``point_rounding`` it also
    covers the rounding of forming the point itself (every entry of a direction is rounded:
    ``|p̂ − p| <= γ_1·|p̂|`` moves L by ``γ_1·⟨A_arg, |p̂|⟩``): ``γ_{m+5} >= γ_{m+4} + γ_1``.
    For the complex step only imaginary parts count.  Under ``rounding="normwise"`` the
    pairing of δ with y's plane bounds at the point, :func:`loss_error`, is added.
    """
    p = problem
    m = _depth(p) + 4 + (1 if point_rounding else 0)
    abs_dx, abs_dw, abs_db = absolute_gradients(p)
    bias_part = 0.0 if p.b is None else float(np.sum(np.abs(p.b) * abs_db))
    if which == "x":
        entrywise = _linear_bound(abs_dx, bias_part, m, dtype, imaginary=imaginary)
    elif which == "w":
        entrywise = _linear_bound(abs_dw, bias_part, m, dtype, imaginary=imaginary)
    elif which == "b" and abs_db is not None:
        conv_part = float(np.sum(np.abs(p.x) * abs_dx))
        entrywise = _linear_bound(abs_db, conv_part, m, dtype, imaginary=imaginary)
    else:
        weights = abs_dw if abs_db is None else np.concatenate([abs_dw.reshape(-1), abs_db])
        entrywise = _linear_bound(weights, 0.0, m, dtype, imaginary=imaginary)
    if check_rounding(rounding) == "entrywise":
        return entrywise
    refuse_complex_step(rounding, "complex-step" if imaginary else "central")

    def normwise(points: np.ndarray) -> np.ndarray:
        if which == "x":
            return loss_error(p, dtype, x=Norms.of(points, lead=3))
        if which == "b":
            return np.full(len(points), float(loss_error(p, dtype)))
        kernels = points.reshape(len(points), -1)[:, : p.w.size].reshape(-1, *p.w.shape)
        return loss_error(p, dtype, w=Norms.of(kernels, lead=3))

    return lambda points: entrywise(points) + normwise(points)


#: Largest number of perturbations (x.size + w.size + b.size) a full Jacobian is computed for.
#: Entry by entry (``assume_conv=False``) that is one forward call per perturbation, quadratic
#: in the problem's size; with the convolution's structure, ``2·C/G·(∏min(E + s − 1, S) + ∏K)``
#: points of growing size.  Above it, use directional derivatives (``check_layer(mode="fast")``,
#: :func:`gradcheck.judge.directional.compare_directional`): a handful of calls at any size.
FULL_JACOBIAN_MAX = 200_000


def perturbation_count(problem: ConvProblem) -> int:
    """Entries a full Jacobian perturbs one by one: ``x.size + w.size (+ b.size)``."""
    p = problem
    return p.x.size + p.w.size + (0 if p.b is None else p.b.size)


def refuse_full_jacobian(problem: ConvProblem) -> None:
    """Raise InvalidArgument if ``problem`` has more than FULL_JACOBIAN_MAX perturbations."""
    count = perturbation_count(problem)
    if count > FULL_JACOBIAN_MAX:
        raise invalid(
            "problem", problem.describe(),
            f"a full Jacobian needs {count} perturbations, more than FULL_JACOBIAN_MAX = "
            f"{FULL_JACOBIAN_MAX}: use mode=\"fast\" (directional derivatives along random "
            "directions: a handful of forward calls at any size)",
        )


def analytic_bounds(problem: ConvProblem, dtype: np.dtype | None = None,
                    rounding: str = "entrywise") -> Gradients:
    """Rounding bounds of a correct backward computed in ``dtype``, under a rounding model.

    ``γ_n·Σ|terms| + n·η`` per entry: the dot-product bound (:func:`gradcheck.floating.gamma`)
    and gradual underflow (:func:`gradcheck.floating.underflow`), n the number of terms.
    ``rounding="normwise"`` adds the bound of each entry's plane (module notes): dx's (n, c)
    planes are sums over filters of ``δ↑s * w↑r``, dw's (f, c') planes sums over the batch of
    ``x_pad ⋆ δ↑s``; db, a plain sum, keeps its entrywise bound.
    """
    dtype = problem.dtype if dtype is None else dtype
    terms = term_counts(problem)
    abs_dx, abs_dw, abs_db = absolute_gradients(problem)

    def bound(name: str, magnitude: np.ndarray) -> np.ndarray:
        return gamma(terms[name], dtype) * magnitude + underflow(terms[name], dtype)

    bound_dx, bound_dw = bound("dx", abs_dx), bound("dw", abs_dw)
    if check_rounding(rounding) == "normwise":
        bound_dx = bound_dx + plane_entries(input_planes(problem, dtype), bound_dx.ndim)
        bound_dw = bound_dw + plane_entries(weight_planes(problem, dtype), bound_dw.ndim)
    return bound_dx, bound_dw, None if abs_db is None else bound("db", abs_db)


def resolution(bound: np.ndarray, reference: np.ndarray) -> float:
    """How large a relative error a check can still see: median of ``bound / |reference|``.

    A formula mistake changes a gradient by O(|g|); when the rounding bound is already a sizable
    fraction of |g| (long float32 or float16 sums: the worst-case γ_n·Σ|terms| grows like n·u
    while |g| grows like √n), a pass means little.
    """
    magnitude = np.abs(np.asarray(reference, dtype=np.complex128))
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), magnitude.shape)
    seen = magnitude > 0
    if not np.any(seen):
        return 0.0
    return float(np.median(bound[seen] / magnitude[seen]))
