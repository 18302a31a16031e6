"""Explanations of failures: every wrong example is diagnosed by name, witnesses are named,
what holds is said when no mistake is named, and the report a person reads fits on one screen.

The explanations are made on small fixed problems on which every mistake shows (no fuzzing:
seconds, not minutes); two CLI runs check the same through fuzzing end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from examples.mistakes import MISTAKES
from examples.naive_conv import NaiveConv
from gradcheck import GradientMismatch, check_layer
from gradcheck.explain.explanation import explain_failure, explain_search
from gradcheck.explain.facts import configuration_facts
from gradcheck.faces.cli import main
from gradcheck.formulas.conv import conv_backward
from gradcheck.geometry.problem import ConvProblem
from gradcheck.geometry.spec import ConvSpec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
INSTANCE = {layer.mistake: name for name, layer in
            __import__("examples.mistakes", fromlist=["x"]).__dict__.items()
            if getattr(layer, "mistake", None) and not isinstance(layer, type)}


def _problem(x_shape, w_shape, *, seed=0, bias=True, **geometry) -> ConvProblem:
    spec = ConvSpec.create(len(x_shape) - 2, **geometry)
    rng = np.random.default_rng(seed)
    out = spec.output_size(x_shape[2:], w_shape[2:])
    b = rng.standard_normal(w_shape[0]) if bias else None
    return ConvProblem(rng.standard_normal(x_shape), rng.standard_normal(w_shape), b,
                       rng.standard_normal((x_shape[0], w_shape[0], *out)), spec)


#: Every mistake of examples/mistakes.py shows here: 2-d square kernel, stride ≠ dilation,
#: asymmetric padding, an unreached tail, N > 1, 1 < G < F with C/G, F/G > 1, a bias.
PROBLEM = _problem((2, 4, 9, 8), (4, 2, 3, 3), stride=(2, 3), dilation=(2, 1),
                   padding=((2, 1), (1, 0)), groups=2)


def _failure(layer, problem: ConvProblem = PROBLEM) -> GradientMismatch:
    """The real harness's verdict (fast mode: directional derivatives), which must fail."""
    with pytest.raises(GradientMismatch) as caught:
        check_layer(layer, problem, mode="fast", explain=False)
    return caught.value


@pytest.fixture(scope="module")
def explanations():
    return {name: explain_failure(PROBLEM, _failure(layer).result)
            for name, layer in MISTAKES.items()}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_wrong_example_is_diagnosed_as_its_mistake(explanations, mistake):
    assert mistake in [d.name for d in explanations[mistake].diagnoses]


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_json_carries_the_diagnosis_by_name(explanations, mistake):
    data = json.loads(json.dumps(explanations[mistake].as_json()))
    assert mistake in [d["name"] for d in data["diagnosis"]]
    assert all(d["sentence"] and d["fix"] and d["family"] for d in data["diagnosis"])


def test_a_report_says_a_constant_factor_once(explanations):
    """One engine: the diagnosis says 'twice', and no localisation pattern says it again."""
    e = explanations["scaled-by-two"]
    assert [d.name for d in e.diagnoses] == ["scaled-by-two"]
    assert not any("factor" in p for loc in e.localisations for p in loc.patterns)


def test_witnesses_name_the_odd_one_out(explanations):
    assert explanations["sign-flipped"].witnesses == (
        "your forward matches the reference; finite differences and the Fourier identity "
        "agree with each other; your dL/dx disagrees with both")


def test_a_wrong_forward_is_named_first(explanations):
    explanation = explanations["forward-convolves"]
    assert explanation.diagnoses[0].name == "forward-convolves"
    assert explanation.witnesses.startswith("your forward disagrees with the reference")


# --------------------------------------------------------------------------- nothing matches


class FiltersShuffled(NaiveConv):
    """dw of filter f stored at row π(f), π a fixed shuffle: no classic mistake."""

    def grad_weight(self, dy, x, w, spec):
        order = np.random.default_rng(5).permutation(w.shape[0])
        return super().grad_weight(dy, x, w, spec)[order]


class NextGroupsChannels(NaiveConv):
    """dw pairs each filter with the channels of the *next* group: right only when G = 1."""

    def grad_weight(self, dy, x, w, spec):
        return super().grad_weight(dy, np.roll(x, x.shape[1] // spec.groups, axis=1), w, spec)


class OverlapsHalved(NaiveConv):
    """dx halved where two or more windows overlap: right where a single tap reaches."""

    def grad_input(self, dy, x, w, spec):
        right = super().grad_input(dy, x, w, spec)
        from gradcheck.explain.facts import _coverage

        cover = _coverage(ConvProblem(x, w, None, dy, spec))
        return np.where(cover > 1, right / 2, right)


def test_a_permutation_of_filters_is_said_not_named():
    e = explain_failure(PROBLEM, _failure(FiltersShuffled()).result)
    assert e.diagnoses == ()
    assert "right up to a permutation of its filters" in e.headline
    assert "matches none of the classic mistakes" in e.headline


def test_wrong_only_where_windows_overlap_is_said():
    problem = _problem((1, 2, 9), (2, 2, 3), stride=2)  # windows 0-2, 2-4, 4-6, 6-8
    e = explain_failure(problem, _failure(OverlapsHalved(), problem).result)
    assert e.diagnoses == ()
    assert any("wrong only where windows overlap" in f for f in e.facts), e.facts


def test_wrong_only_along_one_axis_is_said():
    problem = _problem((1, 1, 6, 5), (1, 1, 2, 2), bias=False)
    dx, dw, _ = conv_backward(problem.dy, problem.x, problem.w, None, problem.spec)
    moved = dx[..., np.random.default_rng(0).permutation(5)]  # columns shuffled within rows
    report = type("Report", (), {"gradients": (moved, dw, None), "y": None, "results": ()})()
    e = explain_failure(problem, report)
    assert any("wrong only along spatial axis 1" in f for f in e.facts), e.facts


def test_a_groups_mix_up_says_wrong_only_for_groups_above_one():
    layer = NextGroupsChannels()
    check_layer(layer, _problem((2, 4, 7), (4, 4, 3)), mode="fast")  # G = 1: right
    problems = [_problem((2, 4, 7), (4, 2, 3), groups=2, seed=s) for s in range(3)]
    problems.append(_problem((1, 6, 5, 5), (3, 2, 2, 2), groups=3, padding=1))
    seen = [(p, _failure(layer, p)) for p in problems]
    e = explain_search(problems[0], seen[0][1].result, seen)
    assert not [d for d in e.diagnoses if d.name not in ("all-zero", "constant-scale")]
    assert any("groups > 1" in f and "4 failing configurations" in f for f in e.facts), e.facts
    assert "groups > 1" in e.headline


def test_configuration_facts_need_two_configurations_and_a_common_trait():
    one, two = _problem((1, 2, 5), (2, 2, 2)), _problem((2, 2, 5), (2, 1, 2), groups=2)
    assert configuration_facts([one]) == []
    assert configuration_facts([one, two]) == [
        "wrong only for a bias, a kernel size > 1: every one of the 2 failing configurations "
        "met has it"]


# --------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("mistake", ["kernel-not-flipped", "forward-convolves"])
def test_cli_report_leads_with_the_diagnosis_and_fits_on_a_screen(capsys, mistake):
    code = main(["fuzz", f"{EXAMPLES}/mistakes.py:{INSTANCE[mistake]}", "--quiet"])
    out = capsys.readouterr().out
    assert code == 1
    assert mistake in out.splitlines()[1] or mistake in out.splitlines()[0]
    assert len(out.splitlines()) <= 40, out


def test_cli_json_carries_the_diagnosis_by_name(capsys):
    main(["fuzz", f"{EXAMPLES}/mistakes.py:stride_ignored_dw", "--json"])
    failure = json.loads(capsys.readouterr().out)["failure"]
    assert "stride-ignored-dw" in [d["name"] for d in failure["diagnosis"]]


def test_a_correct_layer_gets_no_diagnosis(capsys):
    main(["fuzz", f"{EXAMPLES}/naive_conv.py:layer", "--json", "--examples", "30"])
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "passed" and "failure" not in data


def test_plot_writes_a_png_per_wrong_gradient(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code = main(["fuzz", f"{EXAMPLES}/mistakes.py:no_flip", "--quiet", "--plot", str(tmp_path)])
    assert code == 1
    pngs = sorted(tmp_path.glob("*.png"))
    assert [p.name for p in pngs] == ["dx.png"]
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pngs[0].stat().st_size > 5000
