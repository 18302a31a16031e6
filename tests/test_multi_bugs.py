"""One run finds every distinct bug, each shrunk on its own; a single bug is reported once."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from examples.mistakes import MISTAKES, NoFlip
from examples.multi_bugs import MULTI_BUGS
from examples.naive_conv import layer as naive_layer
from gradcheck import fuzz_layer
from gradcheck.harness.fuzz import EXTRA_SHARE


def _kinds(result) -> list[str]:
    """Each failure as its layer-error reason or the most fundamental array it is about."""
    return [f.reason if f.status == "layer-error" else f.wrong[0] for f in result.failures]


@pytest.mark.parametrize("name", sorted(MULTI_BUGS))
def test_a_default_run_finds_every_bug_of_a_multi_bug_layer(name: str) -> None:
    layer, expected = MULTI_BUGS[name]
    result = fuzz_layer(layer)
    assert _kinds(result) == list(expected), str(result)
    assert result.status == ("layer-error" if expected[0] not in ("y", "dx", "dw", "db")
                             else "mismatch")


def test_a_bias_bug_is_shrunk_with_its_bias() -> None:
    layer, _ = MULTI_BUGS["one-by-k-fast-path-and-mean-bias"]
    result = fuzz_layer(layer)
    db_failure = next(f for f in result.failures if f.wrong == ("db",))
    assert db_failure.problem is not None and db_failure.problem.b is not None


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_a_single_bug_is_reported_once(name: str) -> None:
    result = fuzz_layer(MISTAKES[name])
    assert len(result.failures) == 1, str(result)


def test_the_search_stays_within_its_budget() -> None:
    layer, _ = MULTI_BUGS["crash-stride-and-bias-per-tap"]
    result = fuzz_layer(layer, examples=40)
    assert result.examples <= 40 * (1 + EXTRA_SHARE)


def test_an_adjoint_failure_names_its_array() -> None:
    """A failure of the adjoint identity alone is about dx (or dw), not a new kind of bug."""
    from gradcheck.judge.result import CheckResult, LayerReport, compare_arrays

    bad = compare_arrays("⟨u, J_x v⟩", "⟨J_xᵀu, v⟩", np.array(1.0), np.array(2.0),
                         np.array(1e-9))
    report = LayerReport(None, (CheckResult("adjoint", (bad,), "", ""),))  # type: ignore[arg-type]
    assert report.wrong() == ("dx",)


def test_a_float16_mistake_is_never_called_fft_rounding() -> None:
    """Short float16 sums leave the normwise bound too wide to judge: an O(1) mistake keeps its
    entrywise verdict (with a note) instead of "looks like FFT/Winograd rounding"."""

    class HalfNoFlip(NoFlip):
        supports: ClassVar[dict[str, object]] = {"dtypes": ("float16",)}

    result = fuzz_layer(HalfNoFlip(), examples=60)
    assert result.status == "mismatch", str(result)
    assert all(f.reason != "normwise-rounding" for f in result.failures)


def test_the_complex_step_draws_only_real_problems() -> None:
    """The naive layer claims complex128 too; the complex step needs real data, so a fuzz run
    with it draws the real dtypes of the claim and passes."""
    result = fuzz_layer(naive_layer, examples=30, seed=6, method="complex-step")
    assert result.passed, str(result)
