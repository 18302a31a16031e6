"""check_vjp at adversarial points: correct VJPs never mismatch, wrong VJPs never pass.

The points sit where finite differences are hardest: 1e-6 … 1e-12 from the kink of ReLU,
leaky ReLU and abs; near ties of a vector's max; |x| from 1e-8 to 1e8 for sin, tanh, log and
products x·y (where rounding of the argument dominates the rounding of the value); exp up to
|x| = 250; softmax of logits ~1e3.  For each point:

* the correct VJP gives a pass, ``NonDifferentiable`` or ``VjpInconclusive`` — never
  ``GradientMismatch`` (no false alarm);
* each wrong VJP of the bank (×2, sign flip, all zeros, ×1000, off by one index, a missing
  term) gives ``GradientMismatch`` or an inconclusive verdict — never a pass — whenever it is
  detectably wrong: a pass guarantees ``|g_j − ∂L/∂x_j| <= 2τ/(1 − τ)·max(‖g‖_∞, ‖∂L‖_∞)``
  per input (τ = ``RESOLUTION`` = 1/8, so 2/7 < 0.3), hence a wrong VJP farther than
  ``0.3·max(‖wrong‖_∞, ‖correct‖_∞)`` from the correct one in some input must not pass.
  (At points where the wrong VJP equals the correct one — ×2 of a zero gradient — a pass is
  right, and nothing is asserted.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck import GradientMismatch, LayerError
from gradcheck.harness.vjp import NonDifferentiable, VjpInconclusive, check_vjp

Points = Callable[[np.random.Generator], tuple[np.ndarray, ...]]


def _signed(rng: np.random.Generator, lo: float, hi: float, size: int) -> np.ndarray:
    """Magnitudes 10^U(lo, hi) with random signs."""
    return 10.0 ** rng.uniform(lo, hi, size) * rng.choice([-1.0, 1.0], size)


def near_kink(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    size = int(rng.choice([1, 4]))
    x = _signed(rng, -0.5, 0.5, size)
    x[rng.integers(size)] = _signed(rng, -12, -6, 1)[0]
    return (x,)


def near_ties(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return (rng.normal() + _signed(rng, -12, -6, 4),)


def scales(lo: float, hi: float, positive: bool = False) -> Points:
    def points(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        x = _signed(rng, lo, hi, int(rng.choice([1, 3])))
        return (np.abs(x) if positive else x,)

    return points


def large_logits(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    offset = _signed(rng, 2, 3, 1)[0]
    return (offset + rng.normal(size=4) * 10.0 ** rng.uniform(-1, 1),)


def product_points(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return _signed(rng, -8, 8, 3), _signed(rng, -8, 8, 3)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def leaky(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, 0.01 * x)


def vector_max(x: np.ndarray) -> np.ndarray:
    return np.array([x.max()])


def vector_max_vjp(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    g = np.zeros_like(x)
    g[np.argmax(x)] = dy[0]
    return g


@dataclass(frozen=True)
class Case:
    f: Callable[..., Any]
    vjp: Callable[..., Any]
    points: Points
    missing: Callable[..., Any] | None = None  # the VJP with one term left out


CASES = {
    "relu": Case(lambda x: np.maximum(x, 0), lambda dy, x: dy * (x > 0), near_kink),
    "leaky-relu": Case(leaky, lambda dy, x: dy * np.where(x > 0, 1.0, 0.01), near_kink,
                       missing=lambda dy, x: dy * (x > 0)),
    "abs": Case(np.abs, lambda dy, x: dy * np.sign(x), near_kink),
    "max-near-ties": Case(vector_max, vector_max_vjp, near_ties),
    "sin": Case(np.sin, lambda dy, x: dy * np.cos(x), scales(-8, 8)),
    "exp": Case(np.exp, lambda dy, x: dy * np.exp(x), scales(-8, np.log10(250))),
    "log": Case(np.log, lambda dy, x: dy / x, scales(-8, 8, positive=True)),
    "tanh": Case(np.tanh, lambda dy, x: dy * (1 - np.tanh(x) ** 2), scales(-8, 8),
                 missing=lambda dy, x: dy),
    "softmax-1e3": Case(softmax, lambda dy, x: softmax(x) * (dy - np.sum(dy * softmax(x))),
                        large_logits, missing=lambda dy, x: softmax(x) * dy),
    "product": Case(lambda x, y: x * y, lambda dy, x, y: (dy * y, dy * x), product_points,
                    missing=lambda dy, x, y: (dy * y, np.zeros_like(y))),
}


def _tuple(g: Any) -> tuple[np.ndarray, ...]:
    return (g,) if isinstance(g, np.ndarray) else tuple(g)


WRONGS: dict[str, Callable[[tuple[np.ndarray, ...]], tuple[np.ndarray, ...]]] = {
    "x2": lambda g: tuple(2 * a for a in g),
    "sign": lambda g: tuple(-a for a in g),
    "zeros": lambda g: tuple(np.zeros_like(a) for a in g),
    "x1000": lambda g: tuple(1000 * a for a in g),
    "off-by-one": lambda g: tuple(np.roll(a, 1) for a in g),
}


def wrong_vjp(case: Case, kind: str) -> Callable[..., Any]:
    if kind == "missing-term":
        assert case.missing is not None
        return case.missing
    return lambda dy, *xs: WRONGS[kind](_tuple(case.vjp(dy, *xs)))


def detectable(case: Case, wrong: Callable[..., Any], inputs: tuple[np.ndarray, ...],
               seed: int = 0) -> bool:
    """The wrong VJP is farther than 0.3·max(‖wrong‖, ‖correct‖) from the right one somewhere."""
    with np.errstate(all="ignore"):
        y = np.asarray(case.f(*inputs))
        dy = np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)
        pairs = zip(_tuple(wrong(dy, *inputs)), _tuple(case.vjp(dy, *inputs)))
        return any(np.abs(w - c).max() > 0.3 * max(np.abs(w).max(), np.abs(c).max())
                   for w, c in pairs)


def outcome(f: Callable[..., Any], vjp: Callable[..., Any],
            inputs: tuple[np.ndarray, ...]) -> str:
    try:
        check_vjp(f, vjp, inputs)
    except GradientMismatch:
        return "mismatch"
    except LayerError:  # the VJP itself overflowed (1/x at 1e-320, ×1000 near the top)
        return "layer-error"
    except NonDifferentiable:
        return "non-differentiable"
    except VjpInconclusive as error:
        return f"inconclusive ({error.reason})"
    return "pass"


def kinds(case: Case) -> list[str]:
    return [*WRONGS, *(["missing-term"] if case.missing else [])]


#: Beyond the issue's ranges, for the soak: kinks at 1e-16 … 1e-300 (below any step), sin and
#: tanh up to 1e300 (no correct digit once u·|x| exceeds the period), exp up to 700, log down
#: to 1e-300.
EXTREME = {
    "relu-extreme": Case(CASES["relu"].f, CASES["relu"].vjp,
                         lambda rng: (_signed(rng, -300, -16, 3),)),
    "abs-extreme": Case(np.abs, CASES["abs"].vjp, lambda rng: (_signed(rng, -300, 0, 3),)),
    "sin-extreme": Case(np.sin, CASES["sin"].vjp, scales(8, 300)),
    "tanh-extreme": Case(np.tanh, CASES["tanh"].vjp, scales(-300, 300)),
    "exp-extreme": Case(np.exp, CASES["exp"].vjp, scales(0, np.log10(700))),
    "log-extreme": Case(np.log, CASES["log"].vjp, scales(-300, 300, positive=True)),
}

SEEDS = st.integers(0, 2**32 - 1)


def check_correct(case: Case, seed: int) -> None:
    inputs = case.points(np.random.default_rng(seed))
    assert outcome(case.f, case.vjp, inputs) != "mismatch", inputs


def check_wrong(case: Case, seed: int, kind: str) -> None:
    inputs = case.points(np.random.default_rng(seed))
    wrong = wrong_vjp(case, kind)
    if detectable(case, wrong, inputs):
        assert outcome(case.f, wrong, inputs) != "pass", (kind, inputs)


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=80)
@given(seed=SEEDS)
def test_correct_vjps_never_mismatch(name: str, seed: int) -> None:
    check_correct(CASES[name], seed)


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=60)
@given(seed=SEEDS, data=st.data())
def test_wrong_vjps_never_pass(name: str, seed: int, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(kinds(CASES[name])), label="wrong")
    check_wrong(CASES[name], seed, kind)


def test_correct_vjps_mostly_pass() -> None:
    """The battery is not won by saying "inconclusive" everywhere: count the verdicts.

    Only tanh, whose gradient 1 − tanh² is exactly 0 in float64 for |x| > 19, may fall short:
    a zero gradient has no scale to resolve, so those points are inconclusive by design.
    """
    rng = np.random.default_rng(2026)
    for name, case in CASES.items():
        verdicts = Counter(outcome(case.f, case.vjp, case.points(rng)) for _ in range(30))
        floor = 15 if name == "tanh" else 28
        assert verdicts["pass"] >= floor, (name, verdicts)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES) + sorted(EXTREME))
@settings(max_examples=1500)
@given(seed=SEEDS, data=st.data())
def test_soak(name: str, seed: int, data: st.DataObject) -> None:
    case = {**CASES, **EXTREME}[name]
    check_correct(case, seed)
    check_wrong(case, seed, data.draw(st.sampled_from(kinds(case)), label="wrong"))


def tally(count: int, seed: int = 0, cases: dict[str, Case] = CASES,
          ) -> tuple[Counter[str], Counter[str]]:
    """Outcomes of the correct and the (detectably) wrong VJPs at ``count`` points per case."""
    rng = np.random.default_rng(seed)
    correct: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    for case in cases.values():
        for _ in range(count):
            inputs = case.points(rng)
            correct[outcome(case.f, case.vjp, inputs)] += 1
            for kind in kinds(case):
                bad = wrong_vjp(case, kind)
                if detectable(case, bad, inputs):
                    wrong[outcome(case.f, bad, inputs)] += 1
    return correct, wrong
