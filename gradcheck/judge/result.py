"""Frozen results of a comparison: what was compared, how far apart, against which bound."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcheck.floating import error_over_bound
from gradcheck.geometry.problem import ConvProblem


@dataclass(frozen=True)
class Comparison:
    """One array of analytic values compared entrywise with a witness.

    Attributes
    ----------
    name : str
        What is compared: ``"dx"``, ``"dw"``, ``"db"``, ``"y"`` or an identity's name.
    witness : str
        Who testifies: ``"central differences"``, ``"Fourier"``, ``"adjoint identity"`` …
    ratio : float
        ``max |analytic − witness| / bound``: the check passes when it is <= 1.
    max_error : float
        ``max |analytic − witness|``.
    worst_index : tuple of int
        Where ``|analytic − witness| / bound`` is largest.
    analytic, expected, bound : float
        The two values and the bound at the worst index.
    mismatched, total : int
        How many entries exceed their bound, out of how many.
    """

    name: str
    witness: str
    ratio: float
    max_error: float
    worst_index: tuple[int, ...]
    analytic: complex
    expected: complex
    bound: float
    mismatched: int
    total: int

    @property
    def passed(self) -> bool:
        return self.mismatched == 0


def compare_arrays(
    name: str, witness: str, analytic: np.ndarray, expected: np.ndarray, bound: np.ndarray
) -> Comparison:
    """Compare ``|analytic − expected| <= bound`` entrywise and summarise the worst entry."""
    analytic, expected = np.asarray(analytic), np.asarray(expected)
    error = np.abs(analytic.astype(np.complex128) - expected.astype(np.complex128))
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), error.shape)
    # a NaN bound can only come from inf·0 (a sum too long for its dtype, times zero terms):
    # read it as no bound at all, never as a failure
    bound = np.where(np.isnan(bound), np.inf, bound)
    ratio = error_over_bound(error, bound)
    flat = int(np.argmax(ratio)) if ratio.size else 0
    index = tuple(int(i) for i in np.unravel_index(flat, error.shape)) if error.size else ()

    def scalar(a: np.ndarray) -> complex:
        value = a[index] if a.size else 0.0
        return complex(value) if np.iscomplexobj(a) else float(value)

    return Comparison(
        name=name,
        witness=witness,
        ratio=float(ratio.max(initial=0.0)),
        max_error=float(error.max(initial=0.0)),
        worst_index=index,
        analytic=scalar(analytic),
        expected=scalar(expected),
        bound=float(bound[index]) if error.size else 0.0,
        mismatched=int(np.count_nonzero(ratio > 1)),
        total=int(error.size),
    )


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check of one problem.

    Attributes
    ----------
    check : str
        ``"finite-differences"``, ``"fourier"``, ``"adjoint"`` or ``"transfer-function"``.
    comparisons : tuple of Comparison
    tolerance : str
        How the bounds were derived, in a sentence.
    problem : str
        The problem's one-line description.
    """

    check: str
    comparisons: tuple[Comparison, ...]
    tolerance: str
    problem: str

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    @property
    def ratio(self) -> float:
        """The largest error / bound over every comparison (<= 1 passes)."""
        return max((c.ratio for c in self.comparisons), default=0.0)

    @property
    def failures(self) -> tuple[Comparison, ...]:
        return tuple(c for c in self.comparisons if not c.passed)

    def summary(self) -> str:
        """A readable multi-line account, failures first, in numpy.testing's spirit."""
        state = "passed" if self.passed else "FAILED"
        lines = [f"{self.check} check {state}: {self.problem}", f"tolerance: {self.tolerance}"]
        for c in sorted(self.comparisons, key=lambda c: -c.ratio):
            mark = "ok " if c.passed else "BAD"
            lines.append(
                f"  {mark} {c.name} vs {c.witness}: max error/bound = {c.ratio:.3g}; "
                f"mismatched {c.mismatched} / {c.total} "
                f"({100 * c.mismatched / max(c.total, 1):.1f}%)"
            )
            if not c.passed:
                lines.append(
                    f"      worst at {c.name}{list(c.worst_index)}: analytic {c.analytic:.10g}, "
                    f"{c.witness} {c.expected:.10g}, |diff| {abs(c.analytic - c.expected):.3g} "
                    f"> bound {c.bound:.3g}"
                )
        return "\n".join(lines)


Gradients = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]


@dataclass(frozen=True, eq=False)
class LayerReport:
    """Every check run on one problem; ``passed`` when all of them passed.

    Attributes
    ----------
    problem : ConvProblem
    results : tuple of CheckResult
    gradients : (dx, dw, db) or None
        What the layer's backward returned, for diagnosis.
    y : ndarray or None
        What the layer's forward returned.
    mode : {"full", "fast"} or None
        How the backward was checked against finite differences.
    """

    problem: ConvProblem
    results: tuple[CheckResult, ...]
    gradients: Gradients | None = None
    y: np.ndarray | None = None
    mode: str | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def ratio(self) -> float:
        return max((r.ratio for r in self.results), default=0.0)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def summary(self) -> str:
        """Every failed check (every check when none failed), numbers first."""
        return "\n".join(r.summary() for r in self.failures or self.results)

    def wrong(self) -> tuple[str, ...]:
        """The arrays a failed comparison names, in the order y, dx, dw, db.

        The adjoint identity's comparisons ``⟨u, J_x v⟩`` name the gradient of their argument
        (dx for x): a failure of that identity alone is a wrong dx, not a new kind of failure.
        """
        found: set[str] = set()
        for check in self.failures:
            for c in check.failures:
                name = c.name
                if name.startswith("⟨u, J_"):
                    name = "d" + name[len("⟨u, J_"):].split(" ", 1)[0]
                found.add(name)
        return tuple(n for n in ("y", "dx", "dw", "db") if n in found)
