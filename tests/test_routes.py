"""The same report on every route: the CLI, ``str(FuzzResult)``, the JSON, ``check_layer``'s
``GradientMismatch``, regression replay and the pytest fixture (tests/test_plugin.py) all print
through one renderer; the text of one failure is pinned here as golden text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from examples.mistakes import stride_ignored_dx
from gradcheck import ConvProblem, ConvSpec, GradientMismatch, check_layer, fuzz_layer
from gradcheck.faces.cli import main
from gradcheck.harness.check import check_regression
from gradcheck.harness.corpus import save_regression
from gradcheck.harness.outcome import failure_lines
from gradcheck.harness.target import load_target

REPO = Path(__file__).resolve().parents[1]
TARGET = "examples/mistakes.py:stride_ignored_dx"

#: One failure, pinned: dx of a layer that ignores the stride, on a fixed stride-2 problem whose
#: numbers are small integers (so the text is the same on every machine).
GOLDEN = """\
MISMATCH  examples.mistakes:StrideIgnoredDx(): dx wrong
  [stride-ignored-dx] dL/dx matches δ used densely, not zero-inserted to δ↑s: the stride was ignored
  fix: dx = (δ↑s * w↑r)[lo : lo + S]: δ↑s padded by r·(K − 1), correlated with flip(w↑r); δ↑s[s·o] =
    δ[o], zeros in between
configuration: x(1, 1, 4) w(1, 1, 2) b=None -> y(1, 1, 2); stride=(2,) padding=((0, 0),) \
dilation=(1,) groups=1 dtype=float64
witnesses: your forward matches the reference; finite differences and the Fourier identity agree
  with each other; your dL/dx disagrees with both
dx: 3 of 4 entries wrong; worst dx[0, 0, 1]: yours 1, expected -1 (9.01e+15 x bound)
dx error map, |yours − expected| / bound per position:
  | @@@|
  legend: ' ' within bound, '.' … '@' log scale up to 9e+15 × bound; summed over batch/filters \
and channels"""


def golden_problem() -> ConvProblem:
    return ConvProblem(np.array([[[1.0, 2.0, 3.0, 4.0]]]), np.array([[[1.0, -1.0]]]), None,
                       np.array([[[1.0, 2.0]]]), ConvSpec.create(1, stride=2))


def test_check_layer_prints_the_golden_report() -> None:
    with pytest.raises(GradientMismatch) as caught:
        check_layer(stride_ignored_dx, golden_problem())
    assert str(caught.value) == GOLDEN


def test_regression_replay_prints_the_same_report_naming_the_case(tmp_path: Path) -> None:
    path = save_regression(golden_problem(), tmp_path, name="stride-case")
    with pytest.raises(GradientMismatch) as caught:
        check_regression(stride_ignored_dx, path)
    assert str(caught.value) == f"regression case stride-case ({path}): {GOLDEN}"


@pytest.fixture(scope="module")
def cli_run() -> tuple[str, dict]:
    """The CLI's text and JSON for one fuzz run (the module's tests share it)."""
    import contextlib
    import io
    import os

    here = os.getcwd()
    os.chdir(REPO)
    try:
        text, data = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(text):
            assert main(["fuzz", TARGET, "--quiet", "--examples", "30"]) == 1
        with contextlib.redirect_stdout(data):
            assert main(["fuzz", TARGET, "--json", "--examples", "30"]) == 1
    finally:
        os.chdir(here)
    return text.getvalue(), json.loads(data.getvalue())


def test_cli_text_is_the_result_as_python_prints_it(cli_run: tuple[str, dict]) -> None:
    text, _ = cli_run
    result = fuzz_layer(load_target(str(REPO / TARGET)), target=TARGET, examples=30)
    assert text.rstrip("\n") == str(result) == result.report()


def test_json_carries_each_failure_as_the_text_shows_it(cli_run: tuple[str, dict]) -> None:
    text, data = cli_run
    assert data["failure"] == data["failures"][0]
    for failure in data["failures"]:
        for line in failure["message"].splitlines()[1:]:
            assert line in text
        assert failure["reproduce"] == text.splitlines()[-1].removeprefix("reproduce: ")
    assert data["request"]["command"] == failure["reproduce"]


def test_json_worst_ratio_is_the_worst_of_the_run(cli_run: tuple[str, dict]) -> None:
    _, data = cli_run
    worst = max(f["error_over_bound"] for f in data["failures"] if "error_over_bound" in f)
    assert data["worst_error_over_bound"] == worst or data["worst_error_over_bound"] == "inf"
    assert worst == "inf" or worst > 1e6  # the failing ratio, not the passing ones' 0.7


def test_found_within_counts_drawn_configurations_not_shrinking_steps() -> None:
    from examples.mistakes import sign_flipped  # wrong on every configuration

    result = fuzz_layer(sign_flipped, examples=1)
    assert result.failures[0].found_after == 1
    assert result.shrink_steps > 0  # shrinking happened, and is not counted
    assert "(found within 1 configurations)" in str(result).splitlines()[0]
    assert result.examples <= 2  # the budget: 1, and at most half as much again


def test_check_layer_and_fuzzing_render_a_failure_alike() -> None:
    """The fuzz report's section of a failure is check_layer's message on its minimal problem,
    but for the label of the configuration (a fuzz run shrank it: "minimal failing")."""
    result = fuzz_layer(stride_ignored_dx, examples=30, explain=True)
    failure = result.failures[0]
    with pytest.raises(GradientMismatch) as caught:
        check_layer(stride_ignored_dx, failure.problem)
    message = str(caught.value).splitlines()
    section = [line.replace("minimal failing configuration", "configuration")
               for line in failure_lines(failure)]
    shared = {line for line in section if not line.startswith(("  [", "    ", "also"))}
    assert shared <= set(message)
