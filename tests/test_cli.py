"""The command line: exit codes, human and JSON output, usage errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import gradcheck
from gradcheck.faces.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_verify_prints_the_table_and_passes(capsys):
    code, out, _ = run(capsys, "verify", "--examples", 20, "--quiet")
    assert code == 0
    for check in ("finite differences (central)", "Fourier identity", "adjoint identity",
                  "kernel transfer function"):
        assert check in out
    assert "coverage: 1-d" in out and "seed: 0" in out


def test_fuzz_correct_layer_exits_0(capsys):
    code, out, _ = run(capsys, "fuzz", f"{EXAMPLES}/naive_conv.py:layer", "--examples", 30,
                       "--quiet")
    assert code == 0 and out.startswith("PASSED")


def test_fuzz_wrong_layer_exits_1_with_minimal_configuration(capsys):
    code, out, _ = run(capsys, "fuzz", f"{EXAMPLES}/mistakes.py:no_flip", "--quiet")
    assert code == 1
    assert out.startswith("MISMATCH") and "dx" in out.splitlines()[0]
    assert "minimal failing configuration: x(1, 1, " in out and "w(1, 1, 2)" in out
    assert "reproduce: gradcheck fuzz" in out and "--seed 0" in out


def test_fuzz_json_schema(capsys):
    code, out, _ = run(capsys, "fuzz", f"{EXAMPLES}/mistakes.py:stride_ignored_dx", "--json")
    data = json.loads(out)
    assert code == 1 and data["status"] == "mismatch"
    failure = data["failure"]
    assert failure["wrong"] == ["dx"]
    assert failure["spec"]["stride"] == [2]
    assert set(failure["shapes"]) == {"x", "w", "b", "dy"}
    assert any(not c["passed"] for c in failure["checks"])


@pytest.mark.parametrize(
    ("target", "message"),
    [
        pytest.param("examples/nothere.py:layer", "no such file", id="missing-file"),
        pytest.param(f"{EXAMPLES}/naive_conv.py:nothere", "has no attribute", id="missing-name"),
        pytest.param("no_colon", "expected path/to/file.py:NAME", id="no-colon"),
        pytest.param("not_a_module_xyz:layer", "cannot import module", id="missing-module"),
        pytest.param(f"{EXAMPLES}/naive_conv.py:pad", "needs arguments", id="not-a-layer"),
    ],
)
def test_bad_targets_exit_2_with_a_clear_message(capsys, target, message):
    code, _, err = run(capsys, "fuzz", target)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_bad_target_in_json_mode_is_a_usage_error_object(capsys):
    code, out, _ = run(capsys, "fuzz", "examples/nothere.py:layer", "--json")
    assert code == 2 and json.loads(out)["status"] == "usage-error"


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["fuzz", "x.py:l", "--examples", "0"], id="examples-zero"),
        pytest.param(["fuzz", "x.py:l", "--dims", "4"], id="dims-4"),
        pytest.param(["verify", "--seed", "-1"], id="negative-seed"),
        pytest.param(["frobnicate"], id="unknown-command"),
    ],
)
def test_bad_options_exit_2_naming_the_flag(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.strip()


def test_layer_that_raises_exits_3_with_its_own_traceback_only(capsys):
    code, out, _ = run(capsys, "fuzz", f"{EXAMPLES}/misbehaving.py:raises", "--quiet")
    assert code == 3 and out.startswith("LAYER ERROR (raised)")
    assert "misbehaving.py" in out and "gradcheck/guard.py" not in out


def test_layer_error_json_has_reason(capsys):
    code, out, _ = run(capsys, "fuzz", f"{EXAMPLES}/misbehaving.py:mutates_input", "--json")
    data = json.loads(out)
    assert code == 3 and data["status"] == "layer-error"
    assert data["failure"]["reason"] == "mutated-input"


def test_support_flags_narrow_the_claim(capsys):
    # the stride bug is invisible without strides: restricted, the layer passes
    code, out, _ = run(capsys, "fuzz", f"{EXAMPLES}/mistakes.py:stride_ignored_dx",
                       "--max-stride", 1, "--examples", 30, "--json")
    data = json.loads(out)
    assert code == 0 and data["claim"]["max_stride"] == 1


def test_python_dash_m_works():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "gradcheck", "--help"], capture_output=True,
                          text=True, cwd=ROOT, check=False)
    assert done.returncode == 0 and "verify" in done.stdout and "fuzz" in done.stdout


MISBEHAVING = ["raises", "returns_none", "wrong_count", "wrong_shape", "wrong_dtype",
               "returns_nan", "mutates_input", "nondeterministic", "slow"]


@pytest.mark.parametrize("name", MISBEHAVING)
def test_each_misbehaving_layer_exits_3_with_its_reason(capsys, name):
    import examples.misbehaving as module

    code, out, err = run(capsys, "fuzz", f"{EXAMPLES}/misbehaving.py:{name}", "--json",
                         "--examples", 10, "--deadline", 1)
    data = json.loads(out)
    assert code == 3 and data["status"] == "layer-error"
    assert data["failure"]["reason"] == getattr(module, name).problem
    # no frames of our own: the package's files, not any path that merely contains "gradcheck"
    # (a clone is often a directory named gradcheck, holding the user's examples/)
    package = str(Path(gradcheck.__file__).resolve().parent) + os.sep
    assert package not in data["failure"]["message"]
    assert "Traceback" not in err
