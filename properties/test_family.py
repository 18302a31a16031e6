"""Mathematical facts about the convolution family's reference formulas and strategies.

Every tolerance below is a rounding bound derived from γ_n (``gradcheck.floating.gamma``): a
sum of n products computed in any order is within ``γ_n·Σ|aᵢ||bᵢ|`` of the exact one, and the
``Σ|aᵢ||bᵢ|`` of a linear map is the same map applied to absolute values.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from gradcheck.floating import gamma
from gradcheck.formulas.conv import conv_backward, conv_forward
from gradcheck.formulas.conv_transpose import (
    conv_transpose_backward,
    conv_transpose_forward,
    crop_or_extend,
)
from gradcheck.formulas.pool import (
    avg_pool_backward,
    avg_pool_forward,
    max_pool_backward,
    max_pool_forward,
    max_pool_margin,
)
from gradcheck.geometry.family_spec import PoolSpec, pool_window_starts
from gradcheck.geometry.spec import ConvSpec
from gradcheck.harness.family_strategies import (
    MAX_POOL_SPACING,
    conv_transpose_problems,
    pool_problems,
)
from gradcheck.witnesses.differences import numeric_gradient

TRANSPOSE_DTYPES = ("float64", "float32", "complex128")


def _taps(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape[2:]))


# --------------------------------------------------------------------------- transposed conv


@given(conv_transpose_problems(dtypes=TRANSPOSE_DTYPES))
def test_transpose_shapes_and_dtypes(problem):
    p = problem
    y = conv_transpose_forward(p.x, p.w, p.b, p.spec)
    assert y.shape == p.dy.shape and y.dtype == p.dtype
    dx, dw, db = conv_transpose_backward(p.dy, p.x, p.w, p.b, p.spec)
    assert (dx.shape, dw.shape) == (p.x.shape, p.w.shape)
    assert dx.dtype == dw.dtype == p.dtype
    assert (db is None) == (p.b is None)
    if db is not None:
        assert db.shape == p.b.shape and db.dtype == p.dtype


@given(conv_transpose_problems(dtypes=TRANSPOSE_DTYPES, bias=False))
def test_transpose_adjoint_identity_in_x_and_in_w(problem):
    """⟨u, T_w x⟩ = ⟨T_wᵀ u, x⟩ and ⟨u, T_x v⟩ = ⟨dw(u), v⟩, with u = dy and v a random kernel.

    Bound: the left side's y has per-entry error γ_k·T(|x|, |w|) (k = C_in/G·∏K terms) and the
    sum over its m entries adds γ_m·Σ|u||y|: together at most γ_{m+k}·A, with
    ``A = ⟨|u|, T(|x|, |w|)⟩``.  The right side is the same with dx (k' = C_out/G·∏K terms,
    x.size entries) — and ``⟨T*(|u|, |w|), |x|⟩ = A`` too.  In w: dw has N·∏S terms per entry.
    """
    p = problem
    u, dtype = p.dy, p.dtype
    v = np.random.default_rng(0).standard_normal(p.w.shape).astype(dtype)
    k_y = p.x.shape[1] // p.spec.groups * _taps(p.w.shape)
    k_x = p.w.shape[1] * _taps(p.w.shape)
    k_w = p.x.shape[0] * _taps(p.x.shape)
    for kernel, adjoint, k_right, size_right, right in (
        (p.w, 0, k_x, p.x.size, p.x),
        (v, 1, k_w, v.size, v),
    ):
        left = np.sum(u * conv_transpose_forward(p.x, kernel, None, p.spec))
        back = conv_transpose_backward(u, p.x, kernel, None, p.spec)[adjoint]
        right_value = np.sum(back * right)
        magnitude = np.sum(np.abs(u) * conv_transpose_forward(
            np.abs(p.x), np.abs(kernel), None, p.spec))
        bound = (gamma(u.size + k_y, dtype) + gamma(size_right + k_right, dtype)) * magnitude
        assert abs(left - right_value) <= bound, (left, right_value, bound)


@given(conv_transpose_problems(bias=False))
def test_transpose_forward_is_the_input_gradient_of_the_matching_convolution(problem):
    """y = T_w x equals conv_backward's dx for δ = x (zero-extended to the convolution's output
    size, which exceeds S by floor(a / s)), on an input of the size O.

    Bound, entrywise: each side is a sum of products of |x| and |w| — ours with C_in/G·∏K
    terms, conv_backward's with C_in/G·∏(r·(K − 1) + 1) (it correlates with the dilated kernel)
    — so they differ by at most (γ_k + γ_k')·T(|x|, |w|).
    """
    p = problem
    y = conv_transpose_forward(p.x, p.w, None, p.spec)
    conv = p.spec.conv_spec()
    outputs = conv.output_size(y.shape[2:], p.w.shape[2:])
    delta = crop_or_extend(p.x, (0,) * p.spec.dims, outputs)
    dx = conv_backward(delta, np.zeros(y.shape), p.w, None, conv)[0]
    c_g = p.x.shape[1] // p.spec.groups
    extent = np.prod([r * (k - 1) + 1 for r, k in zip(p.spec.dilation, p.w.shape[2:])])
    bound = (gamma(c_g * _taps(p.w.shape), y.dtype) + gamma(int(c_g * extent), y.dtype)) * (
        conv_transpose_forward(np.abs(p.x), np.abs(p.w), None, p.spec))
    assert np.all(np.abs(y - dx) <= bound)


# --------------------------------------------------------------------------------- pooling


@given(pool_problems(kind="max", dtypes=("float64", "float32")))
def test_max_pool_shapes_dtypes_and_exact_forward(problem):
    p = problem
    y = max_pool_forward(p.x, p.spec)
    assert y.shape == p.dy.shape and y.dtype == p.x.dtype
    assert np.isin(y, p.x).all()  # a maximum is an entry, never padding, never rounded
    dx = max_pool_backward(p.dy, p.x, p.spec)
    assert dx.shape == p.x.shape and dx.dtype == p.dtype
    # every δ lands somewhere once: Σ dx = Σ δ (float64 accumulation, then one rounding)
    assert np.isclose(dx.sum(dtype=np.float64), p.dy.sum(dtype=np.float64),
                      rtol=0, atol=gamma(p.dy.size, p.dtype) * np.abs(p.dy).sum() * 2)


@given(pool_problems(kind="max", max_batch=1, max_channels=2))
def test_max_pool_backward_equals_central_differences_on_tie_free_data(problem):
    """On tie-free data max pooling is linear near x; central differences are then exact up
    to rounding, whatever the step below half the margin.

    Bound: ``numeric_gradient``'s own round-off, from the evaluation bound
    ``γ_n·Σ|δ||y|`` (n = dy.size: y is exact, the sum ⟨δ, y⟩ rounds), plus the reference's
    scatter-add, at most ``γ_k·dx(|δ|)`` with k windows per position, ``k <= ∏⌈e/s⌉``.
    """
    p = problem
    assert max_pool_margin(p.x, p.spec) >= MAX_POOL_SPACING
    shape = p.x.shape

    def f(points: np.ndarray) -> np.ndarray:
        y = max_pool_forward(points.reshape(-1, *shape[1:]), p.spec)
        return np.sum((p.dy * y.reshape(len(points), *p.dy.shape)).reshape(len(points), -1), 1)

    def evaluation_error(points: np.ndarray) -> np.ndarray:
        y = max_pool_forward(points.reshape(-1, *shape[1:]), p.spec)
        products = np.abs(p.dy) * np.abs(y.reshape(len(points), *p.dy.shape))
        return gamma(p.dy.size, p.dtype) * products.reshape(len(points), -1).sum(axis=1)

    numeric = numeric_gradient(f, p.x, method="central", error_bound=evaluation_error)
    assert 2 * numeric.step.max() < max_pool_margin(p.x, p.spec)  # one linear piece
    dx = max_pool_backward(p.dy, p.x, p.spec)
    per_position = int(np.prod([-(-e // s) for e, s in zip(p.spec.extent, p.spec.stride)]))
    bound = numeric.error + gamma(per_position, p.dtype) * max_pool_backward(
        np.abs(p.dy), p.x, p.spec)
    assert np.all(np.abs(numeric.value - dx) <= bound)


@given(pool_problems(kind="avg", dtypes=("float64", "float32", "complex128")))
def test_avg_pool_is_a_depthwise_convolution_with_a_constant_kernel(problem):
    """Full windows (floor mode): with count_include_pad, y = conv(x, 1/∏K) depthwise; without,
    y = conv(x, 1) / conv(1_input, 1) — the divisor counts the input positions each window
    covers.  Bound, entrywise: both sides sum ∏K terms and divide (or multiply by a rounded
    1/∏K) once: at most 2·γ_{∏K+1}·avg(|x|) apart."""
    p = problem
    spec = replace(p.spec, ceil_mode=False)
    c, taps = p.x.shape[1], int(np.prod(spec.kernel_size))
    conv = ConvSpec(spec.dims, spec.stride, spec.padding, spec.dilation, c)
    ones = np.ones((c, 1, *spec.kernel_size))
    y = avg_pool_forward(p.x, spec)
    assert y.dtype == p.x.dtype and avg_pool_backward(p.dy, p.x, p.spec).dtype == p.dtype
    if spec.count_include_pad:
        expected = conv_forward(p.x, (ones / taps).astype(p.x.real.dtype), None, conv)
    else:
        counts = conv_forward(np.ones(p.x.shape), ones, None, conv)
        expected = conv_forward(p.x, ones.astype(p.x.real.dtype), None, conv) / counts
    bound = 2 * gamma(taps + 1, p.dtype) * avg_pool_forward(np.abs(p.x), spec)
    assert y.shape == expected.shape
    assert np.all(np.abs(y - expected) <= bound)


@given(pool_problems(kind="avg", dtypes=("float64", "complex128")))
def test_avg_pool_adjoint_identity(problem):
    """⟨δ, P x⟩ = ⟨Pᵀ δ, x⟩, ceil mode's partial windows included.  Bound: as for the
    transposed convolution, with ``A = ⟨|δ|, P|x|⟩``, ∏K + 1 operations per output entry and
    at most ``∏⌈e/s⌉ + 1`` per input entry (one division each)."""
    p = problem
    taps = int(np.prod(p.spec.kernel_size))
    per_position = int(np.prod([-(-e // s) for e, s in zip(p.spec.extent, p.spec.stride)]))
    left = np.sum(p.dy * avg_pool_forward(p.x, p.spec))
    right = np.sum(avg_pool_backward(p.dy, p.x, p.spec) * p.x)
    magnitude = np.sum(np.abs(p.dy) * avg_pool_forward(np.abs(p.x), p.spec))
    bound = (gamma(p.dy.size + taps + 1, p.dtype)
             + gamma(p.x.size + per_position + 1, p.dtype)) * magnitude
    assert abs(left - right) <= bound


def test_pooling_pinned_by_hand():
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    # K=3, s=2, padding 1, ceil: windows over [0, 1, 2, 3 | 4, 0, (beyond)]: the last window
    # covers x3 and the right padding, and reaches one position past the padded input
    include = PoolSpec(1, 3, 2, 1, ceil_mode=True, count_include_pad=True)
    exclude = replace(include, count_include_pad=False)
    assert avg_pool_forward(x, include).tolist() == [[[1.0, 3.0, 2.0]]]   # /3, /3, /2
    assert avg_pool_forward(x, exclude).tolist() == [[[1.5, 3.0, 4.0]]]   # /2, /3, /1
    dy = np.array([[[6.0, 6.0, 6.0]]])
    assert avg_pool_backward(dy, x, include).tolist() == [[[2.0, 4.0, 2.0, 5.0]]]
    assert avg_pool_backward(dy, x, exclude).tolist() == [[[3.0, 5.0, 2.0, 8.0]]]

    x = np.array([[[1.0, 3.0, 2.0, 3.0]]])
    spec = PoolSpec(1, 2, 1)
    assert max_pool_forward(x, spec).tolist() == [[[3.0, 3.0, 3.0]]]
    # windows overlap: position 1 is the maximum of two windows and accumulates both
    dx = max_pool_backward(np.array([[[1.0, 10.0, 100.0]]]), x, spec)
    assert dx.tolist() == [[[0.0, 11.0, 0.0, 100.0]]]
    tie = np.array([[[3.0, 3.0]]])
    assert max_pool_backward(np.ones((1, 1, 1)), tie, spec).tolist() == [[[1.0, 0.0]]]  # first
    assert max_pool_margin(tie, spec) == 0.0
    assert max_pool_margin(x, spec) == 1.0


# ------------------------------------------------------------------------------- strategies


@given(conv_transpose_problems(max_padding=2))
def test_transpose_strategy_draws_valid_geometry(problem):
    s = problem.spec
    assert all(0 <= a < max(st_, r) for a, st_, r in zip(s.output_padding, s.stride, s.dilation))
    assert all(0 <= lo <= 2 and 0 <= hi <= 2 for lo, hi in s.padding)
    assert problem.dy.shape[2:] == s.output_size(problem.x.shape[2:], problem.w.shape[2:])


@given(st.sampled_from(["max", "avg"]).flatmap(lambda kind: st.tuples(
    st.just(kind), pool_problems(kind=kind, dtypes=("float64", "float32")))))
def test_pool_strategy_draws_valid_geometry_and_tie_free_max_data(drawn):
    kind, problem = drawn
    s, x = problem.spec, problem.x
    sizes = x.shape[2:]
    assert all(max(pair) <= k // 2 for pair, k in zip(s.padding, s.kernel_size))
    for starts, size, (lo, _) in zip(pool_window_starts(sizes, s), sizes, s.padding):
        assert starts[-1] < size  # ceil mode's last window starts inside the input or left pad
        assert starts[0] == -lo
    if kind == "max":
        assert np.all(x * 8 == np.round(x * 8))  # multiples of 1/8, exactly
        padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), *[(lo, hi + k * r) for (
            lo, hi), k, r in zip(s.padding, s.kernel_size, s.dilation)]),
            constant_values=np.nan)
        view = np.lib.stride_tricks.sliding_window_view(padded, s.extent, axis=tuple(
            range(2, 2 + s.dims)))
        view = view[(..., *(slice(None, None, r) for r in s.dilation))]
        window = view.reshape(*view.shape[: 2 + s.dims], -1)
        gaps = np.diff(np.sort(window, axis=-1), axis=-1)  # NaN (padding) sorts last
        assert np.nanmin(gaps, initial=np.inf) >= MAX_POOL_SPACING


@settings(max_examples=1, suppress_health_check=list(HealthCheck), deadline=None)
@given(st.just(None))
def test_strategies_shrink_to_minimal_configurations(_):
    small = settings(database=None, max_examples=200)
    transpose = find(conv_transpose_problems(),
                     lambda p: p.spec.dims == 2 and p.spec.output_padding[0] > 0, settings=small)
    assert transpose.x.shape == (1, 1, 1, 1) and transpose.w.shape == (1, 1, 1, 1)
    assert transpose.spec.output_padding == (1, 0) and transpose.spec.padding == ((0, 0),) * 2
    pool = find(pool_problems(kind="avg"), lambda p: p.spec.dims == 2 and p.spec.ceil_mode,
                settings=small)
    assert pool.x.shape == (1, 1, 1, 1)
    assert pool.spec == PoolSpec(2, 1, 1, 0, 1, ceil_mode=True, count_include_pad=False)
