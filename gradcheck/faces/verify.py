"""`gradcheck verify`: fuzz the built-in formulas against every witness and tabulate the result.

Each drawn problem goes through five checks — central differences, the complex step, the
Fourier identity, the adjoint identity and the kernel transfer function — and the table shows,
per check, how many configurations ran and the worst ``error / bound`` seen (<= 1 passes).
The family's built-in formulas (transposed convolution, max and average pooling) add their
rows (:mod:`gradcheck.faces.verify_family`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import given, target
from hypothesis import seed as hypothesis_seed

from gradcheck.errors import integer
from gradcheck.faces.verify_family import FAMILY_CHECKS, verify_families
from gradcheck.geometry.problem import ConvProblem
from gradcheck.harness.progress import Progress
from gradcheck.harness.search import search_settings
from gradcheck.harness.strategies import conv_problems
from gradcheck.judge.compare import (
    compare_adjoint,
    compare_finite_differences,
    compare_fourier,
    compare_transfer_function,
)
from gradcheck.judge.result import CheckResult

#: Configurations ``gradcheck verify`` draws unless told otherwise (about 5 s).
DEFAULT_EXAMPLES = 500

#: Each family (transposed convolution, max and average pooling) draws this share of the
#: examples (:mod:`gradcheck.faces.verify_family`).
FAMILY_SHARE = 0.2

CHECKS: dict[str, Callable[[ConvProblem], CheckResult]] = {
    "finite differences (central)": lambda p: compare_finite_differences(p, method="central"),
    "finite differences (complex step)": lambda p: compare_finite_differences(
        p, method="complex-step"),
    "Fourier identity": compare_fourier,
    "adjoint identity": compare_adjoint,
    "kernel transfer function": compare_transfer_function,
}


@dataclass
class VerifyReport:
    """Per check: configurations run, worst error/bound, first failure; and coverage counts."""

    runs: Counter = field(default_factory=Counter)
    worst: dict[str, float] = field(default_factory=dict)
    failures: dict[str, CheckResult] = field(default_factory=dict)
    coverage: Counter = field(default_factory=Counter)
    seed: int = 0
    examples: int = 500

    @property
    def passed(self) -> bool:
        return not self.failures

    def record(self, name: str, result: CheckResult) -> None:
        self.runs[name] += 1
        self.worst[name] = max(self.worst.get(name, 0.0), result.ratio)
        if not result.passed and name not in self.failures:
            self.failures[name] = result

    def count(self, problem: ConvProblem) -> None:
        s = problem.spec
        self.coverage[f"{s.dims}-d"] += 1
        self.coverage["stride > 1"] += max(s.stride) > 1
        self.coverage["asymmetric padding"] += any(lo != hi for lo, hi in s.padding)
        self.coverage["dilation > 1"] += max(s.dilation) > 1
        self.coverage["groups > 1"] += s.groups > 1
        self.coverage["float32"] += problem.dtype.name == "float32"
        self.coverage["bias"] += problem.b is not None

    def command(self) -> str:
        """The command that reruns this verification."""
        examples = "" if self.examples == DEFAULT_EXAMPLES else f" --examples {self.examples}"
        return f"gradcheck verify --seed {self.seed}{examples}"

    def table(self) -> str:
        rows = [*CHECKS, *FAMILY_CHECKS]
        width = max(len(name) for name in rows)
        lines = [
            f"{'check':<{width}}  {'configs':>7}  {'worst error/bound':>17}  status",
            f"{'-' * width}  {'-' * 7}  {'-' * 17}  ------",
        ]
        for name in rows:
            status = "FAIL" if name in self.failures else "pass"
            lines.append(
                f"{name:<{width}}  {self.runs[name]:>7}  "
                f"{self.worst.get(name, 0.0):>17.3g}  {status}"
            )
        keys = ["1-d", "2-d", "3-d", "stride > 1", "asymmetric padding", "dilation > 1",
                "groups > 1", "float32", "bias"]
        lines.append("coverage: " + ", ".join(f"{k} {self.coverage[k]}" for k in keys))
        lines.append(f"seed: {self.seed}  (rerun with: {self.command()})")
        for name, result in self.failures.items():
            lines += ["", f"first failure of {name}:", result.summary()]
        return "\n".join(lines)


def verify(examples: int = DEFAULT_EXAMPLES, seed: int = 0, *, show_progress: bool = True,
           dtypes: tuple[str, ...] = ("float64", "float32")) -> VerifyReport:
    """Fuzz the reference formulas with every check over ``examples`` random configurations.

    A failing check does not stop the run (every check still reports), so the table always
    shows the whole picture.
    """
    examples = integer("examples", examples, low=1)
    seed = integer("seed", seed)
    report = VerifyReport(seed=seed, examples=examples)
    progress = Progress(examples, "verify", enabled=show_progress)

    @hypothesis_seed(seed)
    @search_settings(examples)
    @given(conv_problems(dtypes=dtypes))
    def run(problem: ConvProblem) -> None:
        report.count(problem)
        worst = 0.0
        for name, check in CHECKS.items():
            result = check(problem)
            report.record(name, result)
            worst = max(worst, result.ratio)
        target(worst, label="worst error/bound")
        progress.step(f"{problem.spec.dims}-d x{problem.x.shape}")

    try:
        run()
        verify_families(report, max(1, round(FAMILY_SHARE * examples)), seed, dtypes)
    finally:
        progress.close()
    return report
