"""What a person reads about a fuzzing run: a short text report, or one JSON object."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck.errors import LayerError
from gradcheck.geometry.problem import ConvProblem
from gradcheck.harness.check import LayerReport
from gradcheck.harness.fuzz import FuzzResult
from gradcheck.judge.result import CheckResult, Comparison


def _number(value: complex | float) -> Any:
    if isinstance(value, complex):
        return {"real": value.real, "imag": value.imag}
    return None if value is None or not np.isfinite(value) else float(value)


def _comparison_json(c: Comparison) -> dict[str, Any]:
    return {
        "name": c.name, "witness": c.witness, "passed": c.passed,
        "error_over_bound": _number(c.ratio), "max_error": _number(c.max_error),
        "worst_index": list(c.worst_index), "analytic": _number(c.analytic),
        "expected": _number(c.expected), "bound": _number(c.bound),
        "mismatched": c.mismatched, "total": c.total,
    }


def _check_json(r: CheckResult) -> dict[str, Any]:
    return {"check": r.check, "passed": r.passed, "tolerance": r.tolerance,
            "comparisons": [_comparison_json(c) for c in r.comparisons]}


def problem_json(problem: ConvProblem) -> dict[str, Any]:
    s = problem.spec
    return {
        "spec": {"dims": s.dims, "stride": list(s.stride),
                 "padding": [list(p) for p in s.padding], "dilation": list(s.dilation),
                 "groups": s.groups},
        "shapes": {"x": list(problem.x.shape), "w": list(problem.w.shape),
                   "b": None if problem.b is None else list(problem.b.shape),
                   "dy": list(problem.dy.shape)},
        "dtype": problem.dtype.name,
    }


def wrong_gradients(result: FuzzResult) -> list[str]:
    """Names of the arrays that failed (dx, dw, db, y), in the order checked."""
    report = getattr(result.error, "result", None)
    if not isinstance(report, LayerReport):
        return []
    names: list[str] = []
    for check in report.failures:
        for c in check.failures:
            if c.name in ("dx", "dw", "db", "y") and c.name not in names:
                names.append(c.name)
    return names


def reproduce_command(result: FuzzResult, target: str | None) -> str:
    where = target or "<file.py:layer>"
    examples = result.max_examples or result.examples
    return f"gradcheck fuzz {where} --seed {result.seed} --examples {examples}"


def fuzz_json(result: FuzzResult, target: str | None = None) -> dict[str, Any]:
    """The JSON object of ``gradcheck fuzz --json`` (schema in README.md)."""
    out: dict[str, Any] = {"status": result.status, "examples": result.examples,
                           "inconclusive": result.inconclusive,
                           "seed": result.seed, "target": target,
                           "worst_error_over_bound": result.worst_ratio,
                           "claim": {k: list(v) if isinstance(v, tuple) else v
                                     for k, v in result.claim.items()}}
    if result.problem is None and result.error is None:
        return out
    failure: dict[str, Any] = {"message": str(result.error),
                               "reproduce": reproduce_command(result, target)}
    if result.problem is not None:
        failure.update(problem_json(result.problem))
    if isinstance(result.error, LayerError):
        failure["reason"] = result.error.reason
    report = getattr(result.error, "result", None)
    if isinstance(report, LayerReport):
        failure["wrong"] = wrong_gradients(result)
        failure["checks"] = [_check_json(r) for r in report.results]
    explanation = getattr(result, "explanation", None)
    failure["diagnosis"] = []
    if explanation is not None:
        failure.update(explanation.as_json())
    out["failure"] = failure
    return out


def _worst_lines(report: LayerReport) -> list[str]:
    lines = []
    for check in report.failures:
        for c in sorted(check.failures, key=lambda c: -c.ratio):
            share = 100 * c.mismatched / max(c.total, 1)
            lines.append(
                f"  {c.name} vs {c.witness} ({check.check}): {c.mismatched} of {c.total} "
                f"entries wrong ({share:.0f}%)"
            )
            lines.append(
                f"    worst {c.name}{list(c.worst_index)}: yours {c.analytic:.10g}, "
                f"expected {c.expected:.10g}; |diff| {abs(c.analytic - c.expected):.3g} "
                f"= {c.ratio:.3g} x bound {c.bound:.3g}"
            )
    return lines


def fuzz_text(result: FuzzResult, target: str | None = None) -> str:
    """The human report of ``gradcheck fuzz``: verdict first, then where and how to reproduce."""
    name = target or "layer"
    skipped = (f"; {result.inconclusive} too long to judge in their dtype were redrawn"
               if result.inconclusive else "")
    if result.passed:
        return (f"PASSED  {name}: {result.examples} configurations, worst error/bound "
                f"{result.worst_ratio:.3g} (<= 1 passes), seed {result.seed}{skipped}")
    if result.status == "inconclusive":
        return (f"INCONCLUSIVE  {name}: every configuration drawn was too long a sum for its "
                "dtype's rounding bound to see a formula mistake; let the layer accept float64 "
                f"(supports dtypes) or restrict the sizes{skipped}")
    lines: list[str] = []
    if isinstance(result.error, LayerError):
        lines.append(f"LAYER ERROR ({result.error.reason})  {name}: the layer misbehaved, so "
                     "no gradient was checked")
        lines.append(str(result.error))
    else:
        wrong = ", ".join(wrong_gradients(result)) or "forward and backward inconsistent"
        lines.append(f"MISMATCH  {name}: {wrong} wrong (found within {result.examples} "
                     "configurations)")
    explanation = getattr(result, "explanation", None)
    if explanation is not None:
        named = explanation.diagnoses[0].name if explanation.diagnoses else "no classic mistake"
        lines += _wrapped(f"[{named}] {explanation.headline}", "  ")
        for d in explanation.diagnoses[:1]:
            lines += _wrapped(f"fix: {d.fix}", "  ")
    if result.problem is not None:
        lines.append(f"minimal failing configuration: {result.problem.describe()}")
    if explanation is not None:
        lines += _explanation_lines(explanation)
    else:
        report = getattr(result.error, "result", None)
        if isinstance(report, LayerReport):
            lines += _worst_lines(report)
    lines.append(f"reproduce: {reproduce_command(result, target)}")
    return "\n".join(lines)


def _wrapped(text: str, indent: str, width: int = 100) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent + "  ")


def _explanation_lines(explanation: Any) -> list[str]:
    """Witnesses, then per wrong array its count, worst entry and patterns; one heat map."""
    lines = _wrapped(f"witnesses: {explanation.witnesses}", "")
    for loc in explanation.localisations:
        lines.append(f"{loc.name}: {loc.wrong} of {loc.total} entries wrong; worst "
                     f"{loc.name}{list(loc.worst_index)}: yours {loc.analytic:.6g}, expected "
                     f"{loc.expected:.6g} ({loc.ratio:.3g} x bound)")
        for pattern in loc.patterns[:2]:
            lines += _wrapped(pattern, "  - ")
    for name, heatmap in explanation.heatmaps[:1]:
        lines.append(f"{name} error map, |yours − expected| / bound per position:")
        lines += ["  " + row for row in heatmap.splitlines()]
    others = [d.name for d in explanation.diagnoses[1:]]
    if others:
        lines.append(f"also matches: {', '.join(others)}")
    elif not explanation.diagnoses:
        lines.append("no classic mistake matches this error")
    return lines
