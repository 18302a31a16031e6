"""What a run found, and the one way it reads: text for a person, JSON for a program.

Every face prints through here — the CLI, ``str(FuzzResult)``, the ``GradientMismatch`` of
:func:`gradcheck.check_layer`, the pytest fixture's failure and regression replay — so a failure
reads the same whichever door it came in by: the verdict, the classic mistake matched and its
fix, the minimal configuration (once), which witness is the odd one out, where the error sits,
its map, and the command that reproduces it.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from typing import Any

from gradcheck.errors import LayerError
from gradcheck.explain.explanation import Explanation
from gradcheck.geometry.problem import ConvProblem
from gradcheck.harness.request import Request
from gradcheck.judge.result import CheckResult, Comparison, LayerReport

#: Statuses of a run, most fundamental first; the exit code of ``gradcheck fuzz`` follows it.
STATUSES = ("passed", "layer-error", "mismatch", "inconclusive")

#: The arrays a failure can name, most fundamental first (the forward before its gradients).
ARRAYS = ("y", "dx", "dw", "db")

_WIDTH = 100


@dataclass(frozen=True, eq=False)
class Failure:
    """One distinct failure of a run, shrunk to its minimal configuration.

    Attributes
    ----------
    status : {"mismatch", "layer-error"}
    problem : ConvProblem or None
        The minimal failing configuration (None when the layer failed before any was drawn).
    error : GradientMismatch or LayerError
    found_after : int
        Configurations drawn in the run up to and including the first one that failed this way
        (0: a single problem was checked, not fuzzed).
    explanation : Explanation or None
        For a mismatch: the odd witness out, the mistake matched, where the error sits.
    saved : str or None
        The regression case it was saved as.
    """

    status: str
    problem: ConvProblem | None
    error: Exception
    found_after: int
    explanation: Explanation | None = None
    saved: str | None = None

    @property
    def report(self) -> LayerReport | None:
        """The checks of the minimal configuration (mismatches only)."""
        report = getattr(self.error, "result", None)
        return report if isinstance(report, LayerReport) else None

    @property
    def reason(self) -> str | None:
        """A layer error's reason (``raised``, ``wrong-shape`` …)."""
        return self.error.reason if isinstance(self.error, LayerError) else None

    @property
    def wrong(self) -> tuple[str, ...]:
        """The wrong arrays, y, dx, dw, db in that order: against the reference formulas when
        the failure was explained, else the arrays whose checks failed."""
        if self.explanation is not None and self.explanation.wrong:
            names = set(self.explanation.wrong)
            return tuple(n for n in ARRAYS if n in names)
        return () if self.report is None else self.report.wrong()

    @property
    def note(self) -> str | None:
        """A remark the check attached to its verdict (e.g. a normwise bound too wide to judge)."""
        return getattr(self.error, "note", None)

    @property
    def ratio(self) -> float:
        """The minimal configuration's worst error / bound (0 for a layer error)."""
        return 0.0 if self.report is None else self.report.ratio

    def what(self) -> str:
        """``"LAYER ERROR (raised)"`` or ``"dx, dw wrong"``: the failure in a few words."""
        if self.status == "layer-error":
            return f"LAYER ERROR ({self.reason})"
        wrong = self.wrong
        return f"{', '.join(wrong)} wrong" if wrong else "forward and backward inconsistent"


@dataclass(frozen=True, eq=False)
class FuzzResult:
    """The outcome of fuzzing a layer: every distinct failure found, most fundamental first.

    Attributes
    ----------
    request : Request
        What was run; ``request.command()`` reproduces it.
    layer : str
        The user's object, as ``module:name``, or the request's target.
    status : {"passed", "layer-error", "mismatch", "inconclusive"}
        The first failure's status; ``"inconclusive"`` when every configuration drawn was too
        long a low-precision sum to judge.
    examples : int
        Configurations drawn and checked (shrinking steps not included).
    shrink_steps : int
        Configurations tried while shrinking failures to their minimal form.
    worst_ratio : float
        The worst error / bound of the run, failing configurations included.
    failures : tuple of Failure
    inconclusive : int
        Configurations redrawn because their dtype's bound was too wide to judge them.
    claim : dict
        The support claim fuzzed (the layer's, with the request's overrides).
    """

    request: Request
    layer: str
    status: str
    examples: int
    shrink_steps: int = 0
    worst_ratio: float = 0.0
    failures: tuple[Failure, ...] = ()
    inconclusive: int = 0
    claim: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def failure(self) -> Failure | None:
        """The first (most fundamental) failure."""
        return self.failures[0] if self.failures else None

    @property
    def problem(self) -> ConvProblem | None:
        """The first failure's minimal configuration."""
        return None if self.failure is None else self.failure.problem

    @property
    def error(self) -> Exception | None:
        """The first failure's error."""
        return None if self.failure is None else self.failure.error

    @property
    def explanation(self) -> Explanation | None:
        """The first failure's explanation."""
        return None if self.failure is None else self.failure.explanation

    @property
    def seed(self) -> int:
        return self.request.seed

    def report(self, reproduce: str | None = None) -> str:
        """The text report (the CLI's); ``reproduce`` replaces the ``reproduce:`` command."""
        return fuzz_text(self, reproduce)

    def __str__(self) -> str:
        return self.report()

    def as_json(self) -> dict[str, Any]:
        """The JSON object of ``gradcheck fuzz --json`` (schema in README.md)."""
        return fuzz_json(self)


# --------------------------------------------------------------------------- text


def _wrapped(text: str, indent: str = "") -> list[str]:
    """``text`` wrapped at the report's width; continuation lines indented past ``indent``."""
    follow = " " * len(indent) + "  "
    return textwrap.wrap(text, _WIDTH, initial_indent=indent, subsequent_indent=follow,
                         break_on_hyphens=False) or [indent]


def _number(value: complex | float, digits: int = 6) -> str:
    return f"{value:.{digits}g}"


def _comparison_lines(check: CheckResult, c: Comparison) -> list[str]:
    share = 100 * c.mismatched / max(c.total, 1)
    return [
        f"{c.name} vs {c.witness} ({check.check}): {c.mismatched} of {c.total} entries wrong "
        f"({share:.0f}%)",
        f"  worst {c.name}{list(c.worst_index)}: yours {_number(c.analytic, 10)}, expected "
        f"{_number(c.expected, 10)}; |diff| {abs(c.analytic - c.expected):.3g} = {c.ratio:.3g} "
        f"x bound {c.bound:.3g}",
    ]


def _explanation_lines(explanation: Explanation) -> list[str]:
    """Witnesses, then per wrong array its count, worst entry and patterns; one heat map."""
    lines = _wrapped(f"witnesses: {explanation.witnesses}")
    for loc in explanation.localisations:
        lines.append(f"{loc.name}: {loc.wrong} of {loc.total} entries wrong; worst "
                     f"{loc.name}{list(loc.worst_index)}: yours {_number(loc.analytic)}, "
                     f"expected {_number(loc.expected)} ({loc.ratio:.3g} x bound)")
        for pattern in loc.patterns[:2]:
            lines += _wrapped(pattern, "  - ")
    for name, heatmap in explanation.heatmaps[:1]:
        lines.append(f"{name} error map, |yours − expected| / bound per position:")
        lines += ["  " + row for row in heatmap.splitlines()]
    first = explanation.diagnoses[0].name if explanation.diagnoses else None
    others = list(dict.fromkeys(d.name for d in explanation.diagnoses[1:] if d.name != first))
    if others:
        lines.append(f"also matches: {', '.join(others)}")
    elif not explanation.diagnoses:
        lines.append("no classic mistake matches this error")
    return lines


def failure_lines(failure: Failure) -> list[str]:
    """The body of one failure: diagnosis and fix, configuration, witnesses, where, map."""
    lines: list[str] = []
    explanation = failure.explanation
    if failure.status == "layer-error":
        lines += [f"  {line}" for line in str(failure.error).splitlines()]
    elif explanation is not None:
        named = explanation.diagnoses[0].name if explanation.diagnoses else "no classic mistake"
        lines += _wrapped(f"[{named}] {explanation.headline}", "  ")
        for d in explanation.diagnoses[:1]:
            lines += _wrapped(f"fix: {d.fix}", "  ")
    if failure.problem is not None:
        label = "minimal failing configuration" if failure.found_after else "configuration"
        lines.append(f"{label}: {failure.problem.describe()}")
    if explanation is not None:
        lines += _explanation_lines(explanation)
    elif failure.report is not None:
        for check in failure.report.failures:
            for c in sorted(check.failures, key=lambda c: -c.ratio):
                lines += _comparison_lines(check, c)
    if failure.note:
        lines += _wrapped(failure.note)
    if failure.saved is not None:
        lines.append(f"saved regression case: {failure.saved}")
    return lines


def _verdict(result: FuzzResult) -> str:
    """The first line: the status, the layer, and what went wrong."""
    name = result.request.target or result.layer
    first = result.failures[0]
    head = f"LAYER ERROR ({first.reason})" if first.status == "layer-error" else "MISMATCH"
    if len(result.failures) > 1:
        kinds = "; ".join(f.what().replace("LAYER ERROR", "layer error")
                          for f in result.failures)
        return (f"{head}  {name}: {len(result.failures)} distinct failures in "
                f"{result.examples} configurations ({kinds})")
    if first.reason == "normwise-rounding":
        what = ("its errors look like FFT/Winograd rounding, not a mistake: rerun with "
                "--rounding normwise")
    elif first.status == "layer-error":
        what = "the layer misbehaved, so no gradient was checked"
    else:
        what = first.what()
    return f"{head}  {name}: {what} (found within {first.found_after} configurations)"


def fuzz_text(result: FuzzResult, reproduce: str | None = None) -> str:
    """The human report of a fuzz run: verdict first, then each failure, then how to reproduce."""
    name = result.request.target or result.layer
    skipped = (f"; {result.inconclusive} too long to judge in their dtype were redrawn"
               if result.inconclusive else "")
    if result.passed:
        return (f"PASSED  {name}: {result.examples} configurations, worst error/bound "
                f"{result.worst_ratio:.3g} (<= 1 passes), seed {result.seed}{skipped}")
    if result.status == "inconclusive":
        return (f"INCONCLUSIVE  {name}: every configuration drawn was too long a sum for its "
                "dtype's rounding bound to see a formula mistake; let the layer accept float64 "
                f"(supports dtypes) or restrict the sizes{skipped}")
    lines = [_verdict(result)]
    several = len(result.failures) > 1
    for number, failure in enumerate(result.failures, 1):
        if several:
            named = failure.explanation.diagnoses if failure.explanation is not None else ()
            name = f" [{named[0].name}]" if named else ""
            lines.append(f"--- failure {number} of {len(result.failures)}: {failure.what()}"
                         f"{name} (found within {failure.found_after} configurations)")
        lines += failure_lines(failure)
    lines.append(f"reproduce: {reproduce or result.request.command()}")
    return "\n".join(lines)


def problem_text(layer: str, report: LayerReport, explanation: Explanation | None,
                 note: str | None = None, header: str | None = None) -> str:
    """The report of one failed problem (``check_layer``, regression replay): the same body."""
    carrier = _Carrier(report)
    carrier.note = note
    failure = Failure("mismatch", report.problem, carrier, 0, explanation)
    first = header or f"MISMATCH  {layer}: {failure.what()}"
    return "\n".join([first, *failure_lines(failure)])


class _Carrier(Exception):
    """Carries a LayerReport where a Failure expects its error's ``result``."""

    def __init__(self, report: LayerReport) -> None:
        super().__init__("")
        self.result = report
        self.note: str | None = None


# --------------------------------------------------------------------------- JSON


def json_number(value: complex | float | None) -> Any:
    """A number as JSON has it: complex as {real, imag}; ±inf as the strings "inf"/"-inf"."""
    if value is None:
        return None
    if isinstance(value, complex):
        return {"real": json_number(value.real), "imag": json_number(value.imag)}
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _comparison_json(c: Comparison) -> dict[str, Any]:
    return {
        "name": c.name, "witness": c.witness, "passed": c.passed,
        "error_over_bound": json_number(c.ratio), "max_error": json_number(c.max_error),
        "worst_index": list(c.worst_index), "analytic": json_number(c.analytic),
        "expected": json_number(c.expected), "bound": json_number(c.bound),
        "mismatched": c.mismatched, "total": c.total,
    }


def problem_json(problem: ConvProblem) -> dict[str, Any]:
    """The configuration: spec, shapes and dtype (any family: the spec's own fields)."""
    s = problem.spec
    spec = {name: _plain(getattr(s, name)) for name in s.__dataclass_fields__}
    spec["padding"] = [list(p) for p in s.padding]
    shapes: dict[str, Any] = {"x": list(problem.x.shape)}
    if hasattr(problem, "w"):
        shapes["w"] = list(problem.w.shape)
        shapes["b"] = None if problem.b is None else list(problem.b.shape)
    shapes["dy"] = list(problem.dy.shape)
    return {"spec": spec, "shapes": shapes, "dtype": problem.dtype.name}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


def failure_json(failure: Failure, reproduce: str) -> dict[str, Any]:
    """One failure: configuration, wrong arrays, checks, diagnosis, localisation."""
    out: dict[str, Any] = {"status": failure.status, "found_after": failure.found_after,
                           "message": "\n".join([failure.what(), *failure_lines(failure)]),
                           "reproduce": reproduce}
    if failure.problem is not None:
        out.update(problem_json(failure.problem))
    if failure.reason is not None:
        out["reason"] = failure.reason
    if failure.report is not None:
        out["checks"] = [{"check": r.check, "passed": r.passed, "tolerance": r.tolerance,
                          "comparisons": [_comparison_json(c) for c in r.comparisons]}
                         for r in failure.report.results]
        out["error_over_bound"] = json_number(failure.ratio)
    out["wrong"] = list(failure.wrong)
    out["diagnosis"] = []
    if failure.explanation is not None:
        explained = failure.explanation.as_json()
        explained["wrong"] = list(failure.wrong)
        for key, value in explained.items():
            if key == "localisation":
                for loc in value:
                    for k in ("analytic", "expected", "error_over_bound"):
                        loc[k] = json_number(loc[k]) if not isinstance(loc[k], dict) else loc[k]
            out[key] = value
    if failure.saved is not None:
        out["saved"] = failure.saved
    return out


def request_json(request: Request) -> dict[str, Any]:
    """Every field of the request, JSON-ready."""
    out = {name: _plain(getattr(request, name)) for name in request.__dataclass_fields__}
    out["claim"] = {k: _plain(v) for k, v in request.claim}
    out["command"] = request.command()
    return out


def fuzz_json(result: FuzzResult, reproduce: str | None = None) -> dict[str, Any]:
    """The JSON object of ``gradcheck fuzz --json`` (schema in README.md)."""
    command = reproduce or result.request.command()
    out: dict[str, Any] = {
        "status": result.status, "examples": result.examples,
        "shrink_steps": result.shrink_steps, "inconclusive": result.inconclusive,
        "seed": result.seed, "target": result.request.target, "layer": result.layer,
        "worst_error_over_bound": json_number(result.worst_ratio),
        "claim": {k: _plain(v) for k, v in result.claim.items()},
        "request": request_json(result.request),
    }
    failures = [failure_json(f, command) for f in result.failures]
    if failures:
        out["failure"] = failures[0]
        out["failures"] = failures
    return out


def usage_error_json(message: str, option: str | None = None) -> dict[str, Any]:
    """A usage error as the same JSON object every other outcome is (``status: usage-error``)."""
    return {"status": "usage-error", "message": message, "option": option}
