"""Explanations of failures: every wrong example is diagnosed by name, witnesses are named,
and the report a person reads fits on one screen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from examples.mistakes import MISTAKES
from gradcheck.explain.explanation import explain_failure
from gradcheck.faces.cli import main
from gradcheck.harness.fuzz import fuzz_layer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
INSTANCE = {layer.mistake: name for name, layer in
            __import__("examples.mistakes", fromlist=["x"]).__dict__.items()
            if getattr(layer, "mistake", None) and not isinstance(layer, type)}


@pytest.fixture(scope="module")
def failures():
    return {name: fuzz_layer(layer, examples=100) for name, layer in MISTAKES.items()}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_wrong_example_is_diagnosed_as_its_mistake(failures, mistake):
    result = failures[mistake]
    explanation = explain_failure(result.problem, result.error.result)
    assert mistake in [d.name for d in explanation.diagnoses]


def test_witnesses_name_the_odd_one_out(failures):
    explanation = explain_failure(failures["sign-flipped"].problem,
                                  failures["sign-flipped"].error.result)
    assert explanation.witnesses == (
        "your forward matches the reference; finite differences and the Fourier identity "
        "agree with each other; your dL/dx disagrees with both")


def test_a_wrong_forward_is_named_first(failures):
    explanation = explain_failure(failures["forward-convolves"].problem,
                                  failures["forward-convolves"].error.result)
    assert explanation.diagnoses[0].name == "forward-convolves"
    assert explanation.witnesses.startswith("your forward disagrees with the reference")


@pytest.mark.parametrize("mistake", ["kernel-not-flipped", "stride-ignored-dw", "groups-crossed",
                                     "forward-convolves", "precision-loss"])
def test_cli_report_leads_with_the_diagnosis_and_fits_on_a_screen(capsys, mistake):
    code = main(["fuzz", f"{EXAMPLES}/mistakes.py:{INSTANCE[mistake]}", "--quiet"])
    out = capsys.readouterr().out
    assert code == 1
    assert mistake in out.splitlines()[1] or mistake in out.splitlines()[0]
    assert len(out.splitlines()) <= 40, out


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_json_carries_the_diagnosis_by_name(capsys, mistake):
    main(["fuzz", f"{EXAMPLES}/mistakes.py:{INSTANCE[mistake]}", "--json"])
    failure = json.loads(capsys.readouterr().out)["failure"]
    names = [d["name"] for d in failure["diagnosis"]]
    assert mistake in names
    assert all(d["sentence"] for d in failure["diagnosis"])


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
