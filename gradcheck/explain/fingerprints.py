"""Mistake fingerprints: which classic error of hand-derived conv backprop a wrong gradient shows.

The one place that decides "this array equals candidate M to rounding".  The candidates are the
entries of :data:`gradcheck.explain.catalogue.CATALOGUE` (each family's mistaken formulas on the
problem) and two fitted ones (a constant factor, a lower precision).  :func:`diagnose` reports
every entry each wrong gradient matches.

The rule, with R the right gradient (computed here in float64 or complex128), M the mistaken
one, U the user's and B the caller's bound on ``|U − R|`` for a correct U::

    B* = B + ρ_R                                          (ρ_R: our own rounding of R)
    U is wrong    ⇔  |U − R| > B*  somewhere
    U matches M   ⇔  |U − M| <= B* + β_M  everywhere  and  |M − R| > 2·B* + β_M  somewhere

``β_M = (γ_m(dtype) + γ_m(float64))·Σ|terms of M|`` is M's rounding, once in the user's dtype
and once in ours, and ``ρ_R = γ_m(float64)·Σ|terms of R|``, with ``m = n + 2``: a mistaken
formula sums at most the n products of the right one
(:func:`gradcheck.judge.bounds.analytic_bounds`), plus one scaling and one cast (for y, n
counts the bias once per tap and channel, the most a mistaken forward adds).  ``Σ|terms|`` is
the formula on |x|, |w|, |δ|, |b|; γ is :func:`gradcheck.floating.gamma` (complex rounding
included).  The last clause drops mistakes
invisible on this problem, and by the triangle inequality no U within B* of R meets both
clauses: a correct gradient is never diagnosed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from gradcheck.errors import invalid
from gradcheck.explain.catalogue import CATALOGUE, Fingerprint
from gradcheck.explain.localize import LABELS
from gradcheck.explain.mistaken import right_answer, right_answers
from gradcheck.floating import gamma, unit_roundoff
from gradcheck.geometry.problem import ConvProblem, term_counts
from gradcheck.judge.bounds import analytic_bounds

Prediction = tuple[np.ndarray, np.ndarray, str]  # (M, β_M, detail)


@dataclass(frozen=True)
class Evidence:
    """One gradient of a user: its value U, the bound B*, the right R and its Σ|terms| A.

    ``wide`` and ``absolute`` are the problem in float64 (complex128) and on |x|, |w|, |δ|, |b|;
    ``terms`` is ``m = n + 2``.
    """

    problem: ConvProblem
    wide: ConvProblem
    absolute: ConvProblem
    gradient: str
    user: np.ndarray
    bound: np.ndarray
    reference: np.ndarray
    magnitude: np.ndarray
    terms: int

    @property
    def wrong(self) -> np.ndarray:
        """Boolean mask: ``|U − R| > B*``."""
        return np.asarray(np.abs(self.user - self.reference) > self.bound)

    def rounding(self, magnitude: np.ndarray) -> np.ndarray:
        """``β = (γ_m(dtype) + γ_m(float64))·Σ|terms|``: the user's rounding and ours."""
        return (gamma(self.terms, self.problem.dtype) + gamma(self.terms, self.wide.dtype)) * (
            magnitude)

    def fits(self, value: np.ndarray, slack: np.ndarray | float,
             where: np.ndarray | None = None) -> bool:
        """``|U − M| <= B* + β_M`` everywhere (or everywhere in the mask ``where``)."""
        ok = np.abs(self.user - value) <= self.bound + slack
        return bool(np.all(ok if where is None else ok[where]))

    def visible(self, value: np.ndarray, slack: np.ndarray | float) -> bool:
        """``|M − R| > 2·B* + β_M`` somewhere: no correct gradient can match M."""
        return bool(np.any(np.abs(value - self.reference) > 2 * self.bound + slack))

    def matches(self, value: np.ndarray, slack: np.ndarray | float) -> bool:
        """U equals M to rounding, and M is told apart from R: the one rule."""
        return self.visible(value, slack) and self.fits(value, slack)


@dataclass(frozen=True)
class Diagnosis:
    """A catalogue entry a user's gradient matched; ``detail`` e.g. the constant factor."""

    name: str
    gradient: str
    sentence: str
    fix: str
    detail: str = ""
    family: str = ""


# --------------------------------------------------------------------------- factors


def _fraction_text(value: Fraction) -> str:
    sign, value = ("−" if value < 0 else ""), abs(value)
    return f"{sign}{value.numerator}" + (f"/{value.denominator}" if value.denominator > 1 else "")


def named_factors(problem: ConvProblem) -> tuple[tuple[float, str], ...]:
    """Constant factors a mistake plausibly introduces, each with its name.

    ``−1``, ``2``, ``1/2``, ``−2``, ``−1/2``, then ``1/m`` and ``m`` for each size m > 1 of the
    problem: the batch N, the output positions ∏O, N·∏O, the taps ∏K, F, C and G.  Equal values
    share one entry: ``"1/2 = 1/N"``.
    """
    n, c, f = *problem.x.shape[:2], problem.w.shape[0]
    outputs, taps = math.prod(problem.dy.shape[2:]), math.prod(problem.w.shape[2:])
    names: dict[Fraction, list[str]] = {Fraction(v, d): [] for v, d in
                                        ((-1, 1), (2, 1), (1, 2), (-2, 1), (-1, 2))}
    for symbol, size in (("N", n), ("∏O", outputs), ("N·∏O", n * outputs), ("∏K", taps),
                         ("F", f), ("C", c), ("G", problem.spec.groups)):
        if size > 1:
            names.setdefault(Fraction(1, size), []).append(f"1/{symbol}")
            names.setdefault(Fraction(size), []).append(symbol)
    return tuple((float(v), " = ".join([_fraction_text(v), *dict.fromkeys(s)]))
                 for v, s in names.items())


def number_text(value: complex) -> str:
    """A factor as a person writes it: ``−1``, ``1/3``, ``≈ 0.7381``, ``≈ (0.5+0.2j)``."""
    if abs(value.imag) > 1e-12 * abs(value):
        return f"≈ {value:.4g}"
    fraction = Fraction(value.real).limit_denominator(64)
    if abs(float(fraction) - value.real) <= 1e-12 * abs(value.real):
        return _fraction_text(fraction)
    return f"≈ {value.real:.4g}".replace("-", "−")


# --------------------------------------------------------------------------- fitted entries


def _fit_scale(ev: Evidence) -> Prediction | None:
    """``U = c·R``, β = |c|·β_R: the named factors (−1, 2, 1/N, 1/∏O …) first, then the fit.

    The least-squares ``c = ⟨R, U⟩ / ⟨R, R⟩`` is tried only with >= 2 nonzero entries (a single
    entry is a multiple of anything).
    """
    energy = np.vdot(ev.reference, ev.reference).real
    if energy == 0:
        return None
    fitted = complex(np.vdot(ev.reference, ev.user) / energy)
    candidates: list[tuple[complex, str]] = [(c, t) for c, t in named_factors(ev.problem)]
    if np.count_nonzero(ev.reference) > 1:
        candidates.append((fitted, number_text(fitted)))
    for c, text in candidates:
        value, slack = c * ev.reference, abs(c) * ev.rounding(ev.magnitude)
        if c not in (0, 1) and ev.matches(value, slack):
            return value, slack, text
    return None


#: (name, unit roundoff u, underflow η = half the smallest subnormal), most precise first.
LOWER_PRECISIONS = (("float32", 2.0**-24, 2.0**-150), ("float16", 2.0**-11, 2.0**-25),
                    ("bfloat16", 2.0**-8, 2.0**-134))


def _fit_precision(ev: Evidence) -> Prediction | None:
    """Errors like the rounding noise of the most precise lower format p that explains them.

    U is wrong, and with ``e = |U − R|``, ``A = Σ|terms|``, ``m = n + 2`` (inputs rounded to p,
    an n-term sum in p, an exact cast back)::

        e <= B* + γ_m(u_p)·A + m·η_p          everywhere (Higham's bound, with underflow)
        ‖e‖₂ <= 3·√m·u_p·‖A‖₂ + ‖B* + m·η_p‖₂  (rounding noise grows like √m·u, not m·u)

    The second is statistical: independent roundings of at most u each, on partial sums of at
    most A, give ``E e_i² <= m·u²·A_i²``.  It keeps an O(1) structural error from passing as
    noise when ``m·u_p`` is large.  A coarser format passes wherever a finer one does, so only
    errors beyond the finer one's bounds name the coarser one.
    """
    error = np.abs(ev.user - ev.reference)
    if not np.any(error > ev.bound):
        return None
    m = ev.terms
    for name, u, eta in LOWER_PRECISIONS:
        if u <= unit_roundoff(ev.problem.dtype) or m * u >= 1:
            continue
        slack = m * u / (1 - m * u) * ev.magnitude + m * eta  # γ_m(u_p)·A + m·η_p
        noise = 3 * math.sqrt(m) * u * np.linalg.norm(ev.magnitude)
        if np.all(error <= ev.bound + slack) and (
                np.linalg.norm(error) <= noise + np.linalg.norm(ev.bound + m * eta)):
            return ev.reference, slack, f"{name} (u = {u:.2g}), not {ev.problem.dtype}"
    return None


# --------------------------------------------------------------------------- matching

#: The fitted entries, by family name.
FITS: dict[str, Callable[[Evidence], Prediction | None]] = {
    "constant-scale": _fit_scale, "precision-loss": _fit_precision}


def reference_bounds(problem: ConvProblem) -> dict[str, np.ndarray]:
    """Default bounds B: :func:`analytic_bounds` for dx, dw, db; y's as the forward check's.

    ``B_y = (γ_n(dtype) + γ_n(float64))·(conv(|x|, |w|) + |b|)``, ``n = C/G·∏K + 1``.
    """
    bounds = dict(zip(("dx", "dw", "db"), analytic_bounds(problem)))
    n = term_counts(problem)["y"]
    magnitude = right_answer(_cast(problem, np.dtype(np.float64), np.abs), "y")
    assert magnitude is not None
    bounds["y"] = (gamma(n, problem.dtype) + gamma(n, np.float64)) * magnitude
    return {k: v for k, v in bounds.items() if v is not None}


def _cast(p: ConvProblem, dtype: np.dtype,
          apply: Callable[[np.ndarray], np.ndarray] = np.asarray) -> ConvProblem:
    def f(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else apply(a).astype(dtype)

    x, w, dy = (apply(a).astype(dtype) for a in (p.x, p.w, p.dy))
    return ConvProblem(x, w, f(p.b), dy, p.spec)


def _terms(p: ConvProblem, gradient: str) -> int:
    """n: the products summed into one entry (y: with the bias once per tap and channel)."""
    counts = term_counts(p)
    return 2 * counts["y"] if gradient == "y" else counts[gradient]


def evidence(problem: ConvProblem, user_gradients: Mapping[str, np.ndarray | None],
             bounds: Mapping[str, np.ndarray] | None = None) -> Iterator[Evidence]:
    """The :class:`Evidence` of each gradient given (None entries and misfit shapes skipped)."""
    wide = _cast(problem, np.result_type(problem.dtype, np.float64))
    absolute = _cast(problem, np.dtype(np.float64), np.abs)
    defaults = {} if set(user_gradients) <= set(bounds or {}) else reference_bounds(problem)
    for name, user in user_gradients.items():
        if name not in LABELS:
            raise invalid("user_gradients", name, "expected the names dx, dw, db and y")
        bound, right = (bounds or {}).get(name, defaults.get(name)), right_answer(wide, name)
        if user is None or bound is None or right is None or np.shape(user) != right.shape:
            continue
        terms = right_answers(absolute)[name]
        assert terms is not None  # as right is not
        magnitude = np.abs(terms)
        m = _terms(problem, name) + 2
        bound = np.asarray(bound, dtype=np.float64) + gamma(m, wide.dtype) * magnitude  # B*
        user = np.asarray(user).astype(right.dtype)
        yield Evidence(problem, wide, absolute, name, user, bound, right, magnitude, m)


def wrong_evidence(problem: ConvProblem, user_gradients: Mapping[str, np.ndarray | None],
                   bounds: Mapping[str, np.ndarray] | None = None) -> Iterator[Evidence]:
    """The evidence of each gradient beyond B* of the reference somewhere."""
    for ev in evidence(problem, user_gradients, bounds):
        if np.any(ev.wrong):
            yield ev


def _predictions(fp: Fingerprint, ev: Evidence) -> Iterator[Prediction]:
    """Each variant of ``fp`` on the problem, with its rounding β, where it is visible."""
    if fp.variants is None:
        fitted = FITS[fp.family](ev)
        if fitted is not None:
            yield fitted
        return
    for detail, compute in fp.variants(ev.wide):
        value = compute(ev.wide)
        if value is None or value.shape != ev.reference.shape:
            continue
        terms = compute(ev.absolute)
        slack = ev.rounding(np.abs(terms)) if terms is not None else 0.0
        if ev.visible(value, slack):
            yield value, np.asarray(slack), detail


def explain_gradient(ev: Evidence) -> list[Diagnosis]:
    """Every entry for ``ev.gradient`` that U matches; fallbacks only when nothing else does."""
    found: list[Diagnosis] = []
    fallback: list[Diagnosis] = []
    for fp in (fp for fp in CATALOGUE if fp.gradient == ev.gradient):
        for value, slack, detail in _predictions(fp, ev):
            if ev.fits(value, slack):
                (fallback if fp.fallback else found).append(Diagnosis(
                    fp.name, fp.gradient, fp.sentence.replace("{detail}", detail), fp.fix,
                    detail, fp.family))
                break
    return found or fallback


def mismatched(problem: ConvProblem, user_gradients: Mapping[str, np.ndarray | None],
               bounds: Mapping[str, np.ndarray] | None = None) -> tuple[str, ...]:
    """Names of the gradients that are wrong (beyond B* of the reference): those diagnosed."""
    return tuple(ev.gradient for ev in wrong_evidence(problem, user_gradients, bounds))


def diagnose(problem: ConvProblem, user_gradients: Mapping[str, np.ndarray | None],
             bounds: Mapping[str, np.ndarray] | None = None) -> list[Diagnosis]:
    """Every catalogue entry matched by every wrong gradient, in catalogue order per gradient.

    Parameters
    ----------
    problem : ConvProblem
    user_gradients : dict
        ``"dx"``, ``"dw"``, ``"db"``, ``"y"`` to the user's arrays; None entries are skipped.
    bounds : dict, optional
        The same names to the bounds B that judged them (default, and for missing names:
        :func:`reference_bounds`).

    Returns
    -------
    list of Diagnosis
        Empty when no gradient is wrong or nothing matches (the rule: module docstring).
    """
    return [d for ev in wrong_evidence(problem, user_gradients, bounds)
            for d in explain_gradient(ev)]


def match(problem: ConvProblem, name: str, user: np.ndarray, bound: np.ndarray) -> list[Diagnosis]:
    """The catalogue entries the user's gradient ``name`` (dx, dw, db or y) matches, under B."""
    return diagnose(problem, {name: user}, {name: bound})
