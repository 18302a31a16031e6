"""Explain a failed check so that the fix is obvious: who disagrees, where, and which mistake.

Four witnesses testify on a problem: the reference forward, finite differences of the layer's
own forward, the Fourier identity and the layer's analytic gradient.  :func:`explain_failure`
says which agree and which is the odd one out, localises the error of each wrong gradient
(:mod:`gradcheck.explain.localize`), draws it as a text heat map, and matches it against the
catalogue of classic mistakes (:mod:`gradcheck.explain.fingerprints`).  When no mistake is
named, it says which structural facts hold (:mod:`gradcheck.explain.facts`) rather than a name
that misleads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck.explain.facts import configuration_facts, gradient_facts
from gradcheck.explain.fingerprints import (
    Diagnosis,
    explain_gradient,
    reference_bounds,
    wrong_evidence,
)
from gradcheck.explain.heatmap import text_heatmap
from gradcheck.explain.localize import Localisation, localize
from gradcheck.explain.mistaken import right_answers
from gradcheck.geometry.problem import ConvProblem
from gradcheck.witnesses import fourier

NAMES = ("dx", "dw", "db", "y")
LABEL = {"dx": "dL/dx", "dw": "dL/dw", "db": "dL/db", "y": "the forward y"}


@dataclass(frozen=True, eq=False)
class Explanation:
    """What a person needs to fix a failure.

    Attributes
    ----------
    headline : str
        The one sentence to read first.
    witnesses : str
        Which witnesses agree and which is the odd one out.
    wrong : tuple of str
        The wrong arrays among dx, dw, db, y (against the reference).
    diagnoses : tuple of Diagnosis
        Catalogue mistakes matched to rounding (empty when none matches).
    localisations : tuple of Localisation
    heatmaps : tuple of (name, text)
    arrays : dict
        name -> (yours, expected, bound), for pictures.
    facts : tuple of str
        Structural facts that hold (to rounding) about the wrong arrays, and what the failing
        configurations have in common; said in the headline when no mistake is named.
    """

    headline: str
    witnesses: str
    wrong: tuple[str, ...]
    diagnoses: tuple[Diagnosis, ...]
    localisations: tuple[Localisation, ...]
    heatmaps: tuple[tuple[str, str], ...]
    arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    facts: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The ``failure.diagnosis`` / ``failure.localisation`` parts of the CLI's JSON."""
        return {
            "headline": self.headline,
            "witnesses": self.witnesses,
            "wrong": list(self.wrong),
            "diagnosis": [{"name": d.name, "gradient": d.gradient, "sentence": d.sentence,
                           "fix": d.fix, "detail": d.detail, "family": d.family}
                          for d in self.diagnoses],
            "facts": list(self.facts),
            "localisation": [
                {"name": loc.name, "worst_index": list(loc.worst_index),
                 "analytic": _plain(loc.analytic), "expected": _plain(loc.expected),
                 "error_over_bound": _plain(loc.ratio), "wrong": loc.wrong,
                 "total": loc.total, "patterns": list(loc.patterns)}
                for loc in self.localisations],
        }


def _plain(value: Any) -> Any:
    if isinstance(value, complex) or np.iscomplexobj(value):
        return {"real": float(np.real(value)), "imag": float(np.imag(value))}
    value = float(value)
    return value if np.isfinite(value) else None


def _reference(problem: ConvProblem) -> dict[str, np.ndarray | None]:
    """The reference dx, dw, db and y in float64 (complex128), remembered by content."""
    wide = np.result_type(problem.dtype, np.float64)
    p = problem
    return right_answers(ConvProblem(
        p.x.astype(wide), p.w.astype(wide), None if p.b is None else p.b.astype(wide),
        p.dy.astype(wide), p.spec))


def _fourier_agrees(problem: ConvProblem, reference: dict[str, Any],
                    bounds: dict[str, np.ndarray]) -> bool | None:
    """Does the convolution theorem give the reference gradients (None: complex data)?"""
    p = problem
    if p.dtype.kind == "c":
        return None
    f_dx, f_dw = fourier.fourier_backward(p.dy, p.x, p.w, p.spec)
    e_dx, e_dw = fourier.fourier_error_bound(p.dy, p.x, p.w, p.spec)
    return bool(np.all(np.abs(f_dx - reference["dx"]) <= bounds["dx"] + e_dx)
                and np.all(np.abs(f_dw - reference["dw"]) <= bounds["dw"] + e_dw))


def _finite_differences_agree(report: Any, name: str) -> bool | None:
    """Did the layer's gradient ``name`` pass the finite-difference comparison?"""
    for result in getattr(report, "results", ()):
        if result.check in ("finite-differences", "directional"):
            for c in result.comparisons:
                if c.name == name:
                    return c.passed
    return None


def _witness_sentence(problem: ConvProblem, report: Any, wrong: tuple[str, ...],
                      reference: dict[str, Any], bounds: dict[str, np.ndarray]) -> str:
    gradients = [n for n in wrong if n != "y"]
    parts = []
    if "y" in wrong:
        parts.append("your forward disagrees with the reference convolution, so finite "
                     "differences of it test a different function: fix the forward first")
    else:
        parts.append("your forward matches the reference")
    agrees = _fourier_agrees(problem, reference, bounds)
    if "y" not in wrong:
        parts.append("finite differences and the Fourier identity agree with each other"
                     if agrees is not False else "finite differences agree with the reference")
    if gradients:
        labels = " and ".join(LABEL[n] for n in gradients)
        fd = [_finite_differences_agree(report, n) for n in gradients]
        other = "both" if agrees is not None else "them"
        if "y" in wrong and all(f for f in fd if f is not None):
            parts.append(f"your {labels} is consistent with your forward but not with the "
                         "reference")
        else:
            parts.append(f"your {labels} {'disagrees' if len(gradients) == 1 else 'disagree'} "
                         f"with {other}")
    return "; ".join(parts)


#: Entries that say what an array is, or how it errs, but not which formula went wrong.
GENERIC = ("all-zero", "constant-scale", "precision-loss")


def _ordered(found: list[Diagnosis]) -> tuple[Diagnosis, ...]:
    """The forward's diagnoses first (a wrong forward explains the rest), then dx, dw, db; one
    per name; generic entries only where no specific mistake matched the same gradient."""
    rank = {n: i for i, n in enumerate(("y", "dx", "dw", "db"))}
    specific = {d.gradient for d in found if d.name not in GENERIC}
    seen, kept = set(), []
    for d in sorted(found, key=lambda d: rank.get(d.gradient, 9)):
        key = (d.gradient, d.name)
        if key in seen or (d.name in GENERIC and d.gradient in specific):
            continue
        seen.add(key)
        kept.append(d)
    return tuple(kept)


def _headline(diagnoses: tuple[Diagnosis, ...]) -> str:
    first = diagnoses[0]
    same = [d for d in diagnoses if d.gradient == first.gradient]
    if len(same) == 1:
        return first.sentence
    names = ", ".join(d.name for d in same)
    return (f"{LABEL[first.gradient]} matches {len(same)} classic mistakes that coincide on "
            f"this small configuration ({names}); the first: {first.sentence}")


def _user_arrays(report: Any) -> dict[str, np.ndarray]:
    gradients = getattr(report, "gradients", None) or (None, None, None)
    user = dict(zip(NAMES, (*gradients, getattr(report, "y", None))))
    return {k: np.asarray(v) for k, v in user.items() if v is not None}


def _unnamed_headline(name: str, where: Localisation, facts: tuple[str, ...]) -> str:
    """No mistake named: the count, then the facts that hold (or where the errors are)."""
    said = facts[:2] or where.patterns[:1]
    return (f"{LABEL[name]} is wrong in {where.wrong} of {where.total} entries; it matches none "
            "of the classic mistakes" + "".join(f"; {f}" for f in said))


def explain_failure(problem: ConvProblem, report: Any) -> Explanation:
    """Explain a failed :class:`gradcheck.harness.check.LayerReport` (with its gradients and y)."""
    user = _user_arrays(report)
    bounds = reference_bounds(problem)
    evidence = list(wrong_evidence(problem, user, bounds))
    reference = {ev.gradient: ev.reference for ev in evidence}
    wrong = tuple(n for n in NAMES if n in {ev.gradient for ev in evidence})
    diagnoses = _ordered([d for ev in evidence for d in explain_gradient(ev)])
    named = {d.gradient for d in diagnoses if d.name not in GENERIC}
    facts = tuple(f for ev in evidence if ev.gradient not in named for f in gradient_facts(ev))
    localisations = tuple(localize(problem, n, user[n], reference[n], bounds[n]) for n in wrong)
    heatmaps = tuple((n, text_heatmap(np.abs(user[n] - reference[n]), bounds[n]))
                     for n in wrong if user[n].ndim >= 3)
    witnesses = _witness_sentence(problem, report, wrong, _reference(problem), bounds)
    if diagnoses:
        headline = _headline(diagnoses)
    elif wrong:
        headline = _unnamed_headline(wrong[0], localisations[0], facts)
    else:
        failed = {r.check for r in getattr(report, "results", ()) if not r.passed}
        if failed == {"adjoint"}:
            headline = ("your forward and backward are inconsistent with each other (the "
                        "adjoint identity fails) although each agrees with the reference here")
        else:
            headline = (f"your gradients agree with the reference formulas, but the "
                        f"{' and '.join(sorted(failed))} check failed against your own forward: "
                        "it does not behave like the convolution it computes here (batch "
                        "samples mixed, or values out of floating-point range)")
    arrays = {n: (user[n], reference[n], bounds[n]) for n in wrong}
    return Explanation(headline, witnesses, wrong, diagnoses, localisations, heatmaps, arrays,
                       facts)


def write_error_maps(explanation: Explanation, directory: str | Path, title: str) -> list[Path]:
    """One PNG per wrong array (needs the ``plot`` extra): yours, expected, |diff| / bound."""
    from gradcheck.explain.plot import error_maps

    return error_maps(directory, title, explanation.arrays)


def _diagnoses(problem: ConvProblem, report: Any) -> tuple[Diagnosis, ...]:
    """The diagnoses alone (no witnesses, maps or facts): cheap enough to run on many failures."""
    user = _user_arrays(report)
    return _ordered([d for ev in wrong_evidence(problem, user, reference_bounds(problem))
                     for d in explain_gradient(ev)])


def _specific(diagnoses: tuple[Diagnosis, ...], gradient: str) -> list[Diagnosis]:
    return [d for d in diagnoses if d.gradient == gradient and d.name not in GENERIC]


def explain_search(problem: ConvProblem, report: Any,
                   seen: list[tuple[ConvProblem, Exception]], tries: int = 30) -> Explanation:
    """Explain the minimal failure, helped by the other failures fuzzing met (smallest first).

    * Several mistakes coincide on the minimal configuration: the first other failure on
      which a single one of them matches names it.
    * Only a generic entry (all zero, a constant factor) or nothing matches the first wrong
      array: the first other failure on which a specific mistake matches it names it (a
      mistake can leave a minimal configuration all zero: the dilation ignored in dw, say).
    * Nothing is named: what every failing configuration has in common is a fact.
    """
    e = explain_failure(problem, report)
    others: list[tuple[ConvProblem, Any]] = [
        (p, result) for p, err in seen
        if p is not problem and hasattr(result := getattr(err, "result", None), "gradients")]
    facts = e.facts + tuple(configuration_facts(
        [problem, *(p for p, result in others if not result.passed)]))
    first = e.diagnoses[0].gradient if e.diagnoses else (e.wrong[0] if e.wrong else None)
    ambiguous = len(_specific(e.diagnoses, first or "")) > 1
    unnamed = first is not None and not _specific(e.diagnoses, first)
    headline, diagnoses = e.headline, e.diagnoses
    for other, result in others[:tries] if (ambiguous or unnamed) else ():
        found = _specific(_diagnoses(other, result), first or "")
        if ambiguous and len(found) == 1 and found[0].name in {d.name for d in e.diagnoses}:
            headline = (f"{found[0].sentence} (on the minimal configuration several classic "
                        f"mistakes coincide; on {other.describe()} only {found[0].name} "
                        "matches)")
            mine = next(d for d in e.diagnoses if d.name == found[0].name)
            diagnoses = (mine, *(d for d in e.diagnoses if d is not mine))
            break
        if unnamed and found:
            what = (f"it is {e.diagnoses[0].name}" if e.diagnoses else "no classic mistake "
                    "matches it")
            headline = (f"{found[0].sentence} (on {other.describe()}; on the minimal "
                        f"configuration {what})")
            diagnoses = (found[0], *e.diagnoses)
            break
    else:
        if not e.diagnoses and e.wrong:
            headline = _unnamed_headline(e.wrong[0], e.localisations[0], facts)
    return Explanation(headline, e.witnesses, e.wrong, diagnoses, e.localisations, e.heatmaps,
                       e.arrays, facts)
