"""The one error/bound ratio: defined at 0, inf, NaN, overflow and subnormals, without warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gradcheck.floating import error_over_bound, gamma, unit_roundoff

TINY = np.finfo(np.float64).smallest_subnormal


@pytest.mark.parametrize(
    ("error", "bound", "expected"),
    [
        (0.0, 0.0, 0.0),            # a zero bound met exactly
        (0.0, 1.0, 0.0),
        (0.0, np.nan, 0.0),
        (1.0, 0.0, np.inf),         # any error over a zero bound
        (1e300, 1e-300, np.inf),    # overflow of the quotient
        (np.nan, 1.0, np.inf),      # NaN is never within bounds
        (np.nan, 0.0, np.inf),
        (np.inf, 1.0, np.inf),
        (1.0, np.inf, 0.0),         # no bound at all
        (1.0, np.nan, 0.0),         # NaN bound = inf·0: no bound
        (2.0, 4.0, 0.5),
        (TINY, TINY, 1.0),          # subnormals divide like any other number
        (3 * TINY, TINY, 3.0),
        (3 + 4j, 10.0, 0.5),        # complex errors by magnitude
    ],
    ids=lambda v: repr(v),
)
def test_ratio_table(error: complex, bound: float, expected: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = error_over_bound(np.array([error]), np.array([bound]))
    assert got.dtype == np.float64
    assert got[0] == expected


def test_ratio_broadcasts() -> None:
    ratio = error_over_bound(np.array([[1.0, 2.0], [0.0, 4.0]]), 2.0)
    np.testing.assert_array_equal(ratio, [[0.5, 1.0], [0.0, 2.0]])


def test_gamma_is_the_dot_product_bound() -> None:
    u = unit_roundoff(np.float64)
    assert u == 2.0**-53
    assert gamma(10, np.float64) == pytest.approx(10 * u / (1 - 10 * u), rel=1e-15)
    assert gamma(2**24, np.float32) == np.inf  # n·u >= 1: no relative bound exists
    # complex: √2·γ_{n+2} (Higham §3.6)
    assert gamma(4, np.complex128) == pytest.approx(np.sqrt(2) * 6 * u / (1 - 6 * u))
