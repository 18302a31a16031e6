"""The benchmarks and docs/make_figures.py run as the README writes them, from any directory.

Each script runs in a subprocess with ``sys.executable``, from a temporary working directory,
with no PYTHONPATH: ``examples/`` is a folder of the checkout, not installed, so each script
must find it itself.  Benchmarks run with ``--quick``; the tests read the lines they promise
(the ratio columns, measured in the same run) and never a timing.  "Without torch" runs the
script with ``sys.modules["torch"] = None``, so ``import torch`` raises ImportError there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
#: Seconds a ``--quick`` run may take before the test fails (each takes a few on a loaded core).
TIMEOUT = 120
#: A ratio as the benchmarks print it: ``2.70x``, ``~95x``, ``0.00123x``.
RATIO = r"~?\d+(?:\.\d+)?(?:e[+-]?\d+)?x"
#: The first bytes of every PNG file.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_WITHOUT_TORCH = (
    "import runpy, sys\n"
    "sys.modules['torch'] = None  # import torch raises ImportError\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def run_script(script: Path, *args: str, cwd: Path, torch: bool = True) -> str:
    """Run ``script`` with ``args`` from ``cwd``; assert exit 0 and a silent stderr; stdout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [sys.executable, str(script), *args]
    if not torch:
        command = [sys.executable, "-c", _WITHOUT_TORCH, str(script), *args]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    assert done.returncode == 0, f"{script.name} exited {done.returncode}:\n{done.stderr}"
    assert done.stderr == "", f"{script.name} wrote to stderr:\n{done.stderr}"
    return done.stdout


def lines_matching(pattern: str, text: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(pattern, line)]


def test_run_script_reports_a_failing_script(tmp_path):
    failing = tmp_path / "fails.py"
    failing.write_text("import examples\n")  # what every script did from a fresh clone
    with pytest.raises(AssertionError, match="ModuleNotFoundError: No module named 'examples'"):
        run_script(failing, cwd=tmp_path)


# bench_conv ------------------------------------------------------------------------------------


def test_bench_conv_quick_prints_the_ratio_to_torch(tmp_path):
    pytest.importorskip("torch")
    out = run_script(BENCHMARKS / "bench_conv.py", "--quick", cwd=tmp_path)
    assert out.startswith("x (2,4,8,8), w (4,4,3,3), stride 1, padding 1, float64")
    assert len(lines_matching(r"^gradcheck reference\s+\d+\.\d+ ms$", out)) == 1
    assert len(lines_matching(r"^torch \S+\s+\d+\.\d+ ms", out)) == 1
    assert len(lines_matching(rf"^ratio gradcheck / torch: {RATIO}$", out)) == 1


def test_bench_conv_quick_without_torch_says_there_is_no_baseline(tmp_path):
    out = run_script(BENCHMARKS / "bench_conv.py", "--quick", cwd=tmp_path, torch=False)
    assert len(lines_matching(r"^gradcheck reference\s+\d+\.\d+ ms$", out)) == 1
    assert "torch not installed: no baseline" in out
    assert "ratio" not in out


# bench_fuzz ------------------------------------------------------------------------------------


def test_bench_fuzz_quick_prints_every_variant_with_its_ratio(tmp_path):
    out = run_script(BENCHMARKS / "bench_fuzz.py", "--quick", cwd=tmp_path)
    assert out.startswith("12 problems from conv_problems(dims=2), seed 0")
    assert "ratio: time per configuration / 'reference: finite differences', this run" in out
    assert lines_matching(r"^variant\s+configs/s\s+ms/config\s+ratio$", out)
    rows = lines_matching(rf"^\S.*\s\d+\.\d\s+\d+\.\d\d\s+{RATIO}", out)
    names = [re.split(r"\s{2,}", row)[0] for row in rows]
    assert names == ["reference: finite differences", "reference: + adjoint",
                     "reference: + adjoint + Fourier", "check_layer(naive), full",
                     "check_layer(naive), fast", "check_layer(naive), auto",
                     "fuzz_layer(naive), full", "fuzz_layer(naive), fast"]
    assert rows[0].endswith(" 1.00x")  # the baseline, against itself
    assert all(row.endswith("(hypothesis included; passed)") for row in rows[-2:])


# bench_vs_torch --------------------------------------------------------------------------------

_SIZE_ROW = r"^\(1,1,8,8\)/\(1,1,3,3\)\s|^\(2,3,16,16\)/\(4,3,3,3\)\s"
_HEADER = (r"^x / w\s+torch slow\s+torch fast\s+gc full\s+gc fast\s+slow/full\s+fast/fast"
           r"\s+full/fast$")


def _mistake_rows(out: str) -> dict[str, list[str]]:
    table = out.split("gc fuzz: first failure (budget)", 1)[1].split("\ncaught: ", 1)[0]
    return {cells[0]: cells[1:] for cells in (line.split() for line in table.strip().splitlines())}


def test_bench_vs_torch_quick_prints_both_tables_with_ratios(tmp_path):
    pytest.importorskip("torch")
    out = run_script(BENCHMARKS / "bench_vs_torch.py", "--quick", cwd=tmp_path)
    assert re.search(r"^numpy \S+, torch \S+ \(\d+ threads\)", out)
    assert len(lines_matching(_HEADER, out)) == 1
    # torch slow is timed, or estimated ("~2s*") when over --slow-cap
    rows = lines_matching(rf"({_SIZE_ROW})\s+(\d+\.\dms|~\d+s\*)\s+\d+\.\d\dms\s+\d+\.\d\dms"
                          rf"\s+\d+\.\d\dms\s+{RATIO}\s+{RATIO}\s+{RATIO}$", out)
    assert len(rows) == 2, out
    assert "skipped" not in out
    mistakes = _mistake_rows(out)
    assert len(mistakes) == 17
    # deterministic verdicts on the fixed configuration: a sign flip is caught by all three,
    # a stride mistake at stride 1 by none
    assert mistakes["sign-flipped"][:3] == ["CAUGHT", "CAUGHT", "CAUGHT"]
    assert mistakes["stride-ignored-dx"][:3] == ["missed", "missed", "missed"]
    assert re.search(r"^caught: torch slow \d+/17, torch fast \d+/17, gc check \d+/17, "
                     r"gc fuzz \d+/17$", out, re.MULTILINE)


def test_bench_vs_torch_quick_without_torch_skips_the_torch_columns(tmp_path):
    out = run_script(BENCHMARKS / "bench_vs_torch.py", "--quick", "--fuzz-budget", "0.5",
                     cwd=tmp_path, torch=False)
    assert "torch not installed: the torch columns are skipped" in out
    assert len(lines_matching(_HEADER, out)) == 1
    rows = lines_matching(rf"({_SIZE_ROW})\s+skipped\s+skipped\s.*ms.*ms\s+skipped\s+skipped"
                          rf"\s+{RATIO}$", out)
    assert len(rows) == 2, out
    mistakes = _mistake_rows(out)
    assert len(mistakes) == 17
    assert mistakes["sign-flipped"][:3] == ["skipped", "skipped", "CAUGHT"]
    assert re.search(r"^caught: gc check \d+/17, gc fuzz \d+/17$", out, re.MULTILINE)


# make_figures ----------------------------------------------------------------------------------


def test_make_figures_writes_the_error_map_into_output(tmp_path):
    pytest.importorskip("matplotlib")
    output = tmp_path / "figures"  # does not exist yet: the script creates it
    committed = ROOT / "docs" / "error-map-dx.png"
    before = committed.stat().st_mtime_ns if committed.exists() else None
    out = run_script(ROOT / "docs" / "make_figures.py", "--output", str(output), cwd=tmp_path)
    png = output / "error-map-dx.png"
    assert f"wrote {png}" in out.splitlines()
    assert out.splitlines()[-1].startswith("MISMATCH") and "dx wrong" in out
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000  # a drawn map, not an empty canvas
    assert sorted(p.name for p in output.iterdir()) == ["error-map-dx.png"]
    if before is not None:
        assert committed.stat().st_mtime_ns == before  # docs/ left alone


def test_bench_family_vs_torch_quick_prints_a_row_per_family_with_ratios(tmp_path):
    pytest.importorskip("torch")
    out = run_script(BENCHMARKS / "bench_family_vs_torch.py", "--quick", cwd=tmp_path)
    assert re.search(r"^family\s+size\s+torch slow\s+torch fast\s+gc full\s+gc fast\s+"
                     r"slow/full\s+fast/fast$", out, re.MULTILINE), out
    for family in ("conv_transpose", "max_pool", "avg_pool"):
        assert re.search(rf"^{family}\s+x\(.*\d+\.\d+x\s+\d+\.\d+x$", out, re.MULTILINE), out
