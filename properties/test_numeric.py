"""The finite-difference engine at its stated accuracy, and exact (to its bound) on linear maps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gradcheck.floating import gamma
from gradcheck.witnesses.differences import directional_derivatives, numeric_gradient

#: Relative accuracy on a smooth function in float64 (gradcheck.witnesses.differences' docstring):
#: central and Richardson are round-off bound at h = u^(1/3) (Richardson's 3ε/h is the larger),
#: four-point at h = u^(1/5), the complex step has no cancellation at all.
ACCURACY = {"central": 1e-9, "four-point": 1e-11, "richardson": 1e-8, "complex-step": 1e-13}

points = arrays(np.float64, st.integers(1, 20), elements=st.floats(-3, 3))


def smooth(p: np.ndarray) -> np.ndarray:
    """f(x) = Σ sin(x)·exp(x/3), batched: (B, n) -> (B,); complex-safe."""
    return np.sum(np.sin(p) * np.exp(p / 3), axis=1)


def smooth_gradient(x: np.ndarray) -> np.ndarray:
    return np.exp(x / 3) * (np.cos(x) + np.sin(x) / 3)


@pytest.mark.parametrize("method", sorted(ACCURACY))
@given(x=points)
def test_each_method_reaches_its_stated_accuracy_on_a_smooth_function(method, x):
    exact = smooth_gradient(x)
    derivative = numeric_gradient(smooth, x, method=method)
    error = np.max(np.abs(derivative.value - exact)) / max(1.0, float(np.abs(exact).max()))
    assert error <= ACCURACY[method]


def linear_map(a: np.ndarray, c: float):
    """f(p) = ⟨a, p⟩ + c in p's dtype, and a bound on its rounding at a point."""
    n = a.size

    def f(p: np.ndarray) -> np.ndarray:
        return p.reshape(len(p), -1) @ a.astype(p.dtype) + p.dtype.type(c)

    def error_bound(p: np.ndarray) -> np.ndarray:  # evaluation, stencil, and point rounding
        magnitude = np.abs(p).reshape(len(p), -1).astype(np.float64) @ np.abs(a)
        return gamma(n + 6, p.dtype) * (magnitude + abs(c))

    return f, error_bound


@pytest.mark.parametrize("method", ["central", "four-point", "richardson"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300))
def test_linear_maps_are_differenced_exactly_up_to_the_reported_round_off(method, dtype, seed,
                                                                           n):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n).astype(dtype).astype(np.float64)
    x = rng.standard_normal(n).astype(dtype)
    c = float(rng.standard_normal())
    f, error_bound = linear_map(a, c)
    gradient = numeric_gradient(f, x, method=method, linear=True, error_bound=error_bound)
    assert np.all(np.abs(gradient.value - a) <= gradient.error)
    v = rng.standard_normal((3, n)).astype(dtype)
    along = directional_derivatives(f, x, v, method=method, linear=True,
                                    error_bound=error_bound)
    exact = v.astype(np.float64) @ a
    assert np.all(np.abs(along.value - exact) <= along.error + gamma(n, np.float64)
                  * (np.abs(v.astype(np.float64)) @ np.abs(a)))
