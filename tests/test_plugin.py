"""The pytest plugin, run the way users run it: through ``pytester``.

Without an installed distribution the ``pytest11`` entry point is inactive, so the plugin is
loaded with ``-p gradcheck.faces.plugin``; when gradcheck is installed (CI installs it) the entry
point loads it and ``-p`` would register it twice.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

import gradcheck.explain.explanation
import gradcheck.harness.fuzz  # noqa: F401
from gradcheck.geometry.problem import ConvProblem
from gradcheck.geometry.spec import ConvSpec
from gradcheck.harness.corpus import save_regression

pytest_plugins = ["pytester"]

# The two imports above load, once in this process, everything a failing check imports lazily
# (numpy.fft among it): pytester's in-process runs restore sys.modules afterwards, and numpy.fft's
# C module cannot be loaded a second time.

REPO = Path(__file__).resolve().parents[1]
PLUGIN_ARGS: tuple[str, ...] = (
    () if any(ep.value == "gradcheck.faces.plugin" for ep in entry_points(group="pytest11"))
    else ("-p", "gradcheck.faces.plugin")
)
SEED_HEADER = re.compile(r"^gradcheck: seed=(\d+)", re.MULTILINE)

USER_TESTS = """
    from examples.mistakes import MISTAKES
    from examples.naive_conv import layer

    def test_correct(gradcheck):
        result = gradcheck.fuzz(layer)
        assert result.passed and result.examples == gradcheck.examples

    def test_mistake(gradcheck):
        gradcheck.fuzz(MISTAKES["sign-flipped"])
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A temporary project that can import gradcheck and examples, in process or not."""
    pytester.syspathinsert(REPO)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
    for name in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT",
                 "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    return pytester


def small_problem(seed: int) -> ConvProblem:
    rng = np.random.default_rng(seed)
    spec = ConvSpec(2, stride=(2, 1), padding=((1, 0), (0, 1)), dilation=1, groups=1)
    x, w, dy = (rng.standard_normal(s) for s in ((2, 3, 5, 4), (2, 3, 2, 2), (2, 2, 3, 4)))
    return ConvProblem(x, w, rng.standard_normal(2), dy, spec)


def run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest(*PLUGIN_ARGS, *args)


def run_subprocess(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest_subprocess(*PLUGIN_ARGS, *args)


def header_seed(result: pytest.RunResult) -> int:
    match = SEED_HEADER.search(result.stdout.str())
    assert match, result.stdout.str()
    return int(match.group(1))


# --------------------------------------------------------------------------- options


def test_options_and_marker_are_documented(project: pytest.Pytester) -> None:
    result = run(project, "--help")
    result.stdout.fnmatch_lines([
        "gradcheck: gradient checks of hand-written layers:",
        "*--gradcheck-examples=N*",
        "*--gradcheck-seed=S*",
        "*--gradcheck-regressions=DIR*",
        "*--gradcheck-save-regressions=DIR*",
    ])
    result.stdout.fnmatch_lines(["*gradcheck_regressions*"])
    markers = run(project, "--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.gradcheck(examples=None, seed=None, **claim):*"])


@pytest.mark.parametrize(
    "args, message",
    [
        pytest.param(("--gradcheck-examples", "0"), "--gradcheck-examples=0: expected an "
                     "integer >= 1", id="examples-zero"),
        pytest.param(("--gradcheck-examples", "many"), "--gradcheck-examples='many': expected",
                     id="examples-word"),
        pytest.param(("--gradcheck-seed", "-1"), "--gradcheck-seed=-1: expected an integer "
                     ">= 0 or 'random'", id="seed-negative"),
        pytest.param(("--gradcheck-seed", "lucky"), "--gradcheck-seed='lucky': expected",
                     id="seed-word"),
    ],
)
def test_bad_option_is_a_usage_error(
    project: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    result = run(project, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


# --------------------------------------------------------------------------- the fixture


def test_fuzz_passes_a_correct_layer_and_fails_a_mistake(project: pytest.Pytester) -> None:
    project.makepyfile(test_user=USER_TESTS)
    result = run(project, "--gradcheck-examples", "5")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "gradcheck: seed=0, examples=5",
        "*_ test_mistake _*",
        "MISMATCH  examples.mistakes:SignFlipped(): dx wrong (found within * configurations)",
        "  [[]sign-flipped[]] dL/dx is the right * negated*",
        "  fix: *",
        "minimal failing configuration: x(1, 1, 1) w(1, 1, 1) b=None -> y(1, 1, 1); stride=(1,)*",
        "witnesses: *",
        "reproduce: pytest 'test_user.py::test_mistake' --gradcheck-seed 0 "
        "--gradcheck-examples 5",
    ])
    assert "Traceback" not in result.stdout.str()
    assert "def test_mistake" not in result.stdout.str()  # pytrace=False: the report only


def test_check_uses_the_run_seed(project: pytest.Pytester) -> None:
    project.makepyfile(test_user="""
        import numpy as np
        from examples.naive_conv import layer
        from gradcheck import ConvProblem, ConvSpec

        def test_check(gradcheck):
            assert gradcheck.seed == 3
            rng = np.random.default_rng(0)
            x, w, dy = (rng.standard_normal(s) for s in ((1, 2, 5), (3, 2, 2), (1, 3, 4)))
            report = gradcheck.check(layer, ConvProblem(x, w, None, dy, ConvSpec(1, 1, 0, 1)))
            assert report.passed
    """)
    run(project, "--gradcheck-seed", "3").assert_outcomes(passed=1)


def test_header_shows_the_seed(project: pytest.Pytester) -> None:
    project.makepyfile(test_user="def test_nothing(): pass")
    assert header_seed(run(project)) == 0
    assert header_seed(run(project, "--gradcheck-seed", "42")) == 42


def test_random_seed_is_shown_and_used(project: pytest.Pytester) -> None:
    project.makepyfile(test_user="""
        from pathlib import Path

        def test_seed(gradcheck):
            Path("seed.txt").write_text(str(gradcheck.seed))
    """)
    seeds = []
    for _ in range(2):
        result = run(project, "--gradcheck-seed", "random")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["gradcheck: seed=* (random), examples=*"])
        seeds.append(header_seed(result))
        assert int((project.path / "seed.txt").read_text()) == seeds[-1]
    assert seeds[0] != seeds[1]  # a 2**-32 chance of a false alarm


def test_marker_overrides_the_run(project: pytest.Pytester) -> None:
    project.makepyfile(test_user="""
        import pytest
        from examples.naive_conv import layer

        @pytest.mark.gradcheck(examples=3, seed=11, dims=(2,), max_stride=1)
        def test_marked(gradcheck):
            assert (gradcheck.examples, gradcheck.seed) == (3, 11)
            result = gradcheck.fuzz(layer)
            assert result.examples == 3 and result.seed == 11
            assert result.claim["dims"] == (2,) and result.claim["max_stride"] == 1

        def test_unmarked(gradcheck):
            assert (gradcheck.examples, gradcheck.seed) == (50, 0)

        @pytest.mark.gradcheck(examples=0)
        def test_bad_marker(gradcheck):
            pass
    """)
    result = run(project, "--gradcheck-examples", "50")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.gradcheck: examples=0: expected an integer "
                                 ">= 1 (or None)*"])


def test_default_examples_come_from_the_hypothesis_profile(project: pytest.Pytester) -> None:
    # a subprocess: loading a profile in process would change the settings of this run
    project.makeconftest("""
        from hypothesis import settings

        settings.register_profile("tiny", max_examples=7)
        settings.load_profile("tiny")
    """)
    project.makepyfile(test_user="""
        def test_examples(gradcheck):
            assert gradcheck.examples == 7
    """)
    result = run_subprocess(project)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["gradcheck: seed=0, examples=hypothesis profile"])


# --------------------------------------------------------------------------- regressions

REPLAY_TESTS = """
    from examples.mistakes import MISTAKES
    from examples.naive_conv import layer
    from gradcheck.geometry.problem import ConvProblem

    def test_right(gradcheck_regression):
        case = gradcheck_regression
        assert case.path.name == case.name + ".json"
        assert case.meta == {"note": case.name}
        assert isinstance(case.problem, ConvProblem)
        assert case.check(layer).passed

    def test_wrong(gradcheck_regression):
        gradcheck_regression.check(MISTAKES["sign-flipped"])
"""


def make_corpus(directory: Path) -> None:
    for seed, name in enumerate(("alpha", "beta")):
        save_regression(small_problem(seed), directory, name=name, meta={"note": name})


def test_corpus_is_replayed_one_item_per_case(project: pytest.Pytester) -> None:
    make_corpus(project.path / "corpus")
    project.makepyfile(test_replay=REPLAY_TESTS)
    result = run(project, "-v", "--gradcheck-regressions", "corpus")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random([
        "test_replay.py::test_right[[]alpha[]] PASSED*",
        "test_replay.py::test_right[[]beta[]] PASSED*",
        "test_replay.py::test_wrong[[]alpha[]] FAILED*",
        "test_replay.py::test_wrong[[]beta[]] FAILED*",
    ])
    result.stdout.fnmatch_lines([f"E*GradientMismatch: regression case alpha "
                                 f"({project.path / 'corpus' / 'alpha.json'}): MISMATCH *"])


def test_ini_corpus_is_relative_to_the_rootdir(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_corpus(project.path / "corpus")
    project.makeini("[pytest]\ngradcheck_regressions = corpus\n")
    project.makepyfile(test_replay=REPLAY_TESTS)
    (project.path / "elsewhere").mkdir()
    monkeypatch.chdir(project.path / "elsewhere")
    result = run(project, str(project.path / "test_replay.py"), "-k", "right", "--co", "-q")
    result.stdout.fnmatch_lines(["test_replay.py::test_right[[]alpha[]]",
                                 "test_replay.py::test_right[[]beta[]]"])


@pytest.mark.parametrize(
    "args, reason",
    [
        pytest.param((), "no regression corpus: set --gradcheck-regressions DIR*", id="unset"),
        pytest.param(("--gradcheck-regressions", "empty"), "regression corpus */empty holds "
                     "no cases", id="empty"),
        pytest.param(("--gradcheck-regressions", "absent"), "regression corpus */absent does "
                     "not exist*", id="absent"),
    ],
)
def test_no_corpus_skips_with_a_reason(
    project: pytest.Pytester, args: tuple[str, ...], reason: str
) -> None:
    (project.path / "empty").mkdir()
    project.makepyfile(test_replay=REPLAY_TESTS)
    result = run(project, "-v", "-rs", "-k", "right", *args)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*test_right[[]no-regressions[]]*", f"SKIPPED *{reason}"])


def test_fuzz_failure_is_saved_and_replayed(project: pytest.Pytester) -> None:
    project.makepyfile(test_user=USER_TESTS)
    result = run(project, "--gradcheck-examples", "5", "--gradcheck-save-regressions", "saved",
                 "-k", "mistake")
    result.assert_outcomes(failed=1)
    (saved,) = sorted((project.path / "saved").glob("*.json"))
    result.stdout.fnmatch_lines([f"saved regression case: {saved}"])
    meta = json.loads(saved.read_text())["meta"]
    assert meta["target"] == "examples.mistakes:SignFlipped()"
    assert (meta["status"], meta["seed"]) == ("mismatch", 0)
    project.makepyfile(test_replay=REPLAY_TESTS)
    replay = run(project, "test_replay.py", "-k", "wrong", "--gradcheck-regressions", "saved")
    replay.assert_outcomes(failed=1)
    replay.stdout.fnmatch_lines([f"*regression case {saved.stem} ({saved}): MISMATCH *"])


def test_corrupt_case_errors_only_its_own_item(project: pytest.Pytester) -> None:
    make_corpus(project.path / "corpus")
    (project.path / "corpus" / "beta.npz").write_bytes(b"not an archive")
    project.makepyfile(test_replay=REPLAY_TESTS)
    result = run(project, "-k", "right", "--gradcheck-regressions", "corpus")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*InvalidArgument: regression file "
                                 f"{project.path / 'corpus' / 'beta.npz'}: unreadable npz*"])


# --------------------------------------------------------------------------- xdist


def test_xdist_workers_use_the_controller_seed(project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    seeds = project.path / "seeds"
    seeds.mkdir()
    project.makepyfile(test_user=f"""
        import os
        from pathlib import Path

        import pytest
        from examples.naive_conv import layer

        @pytest.mark.parametrize("i", range(6))
        def test_seed(gradcheck, i):
            worker = os.environ.get("PYTEST_XDIST_WORKER", "controller")
            Path({str(seeds)!r}, f"{{i}}-{{worker}}").write_text(str(gradcheck.seed))

        def test_fuzz(gradcheck):
            assert gradcheck.fuzz(layer).passed
    """)
    result = run_subprocess(project, "-n", "2", "--gradcheck-seed", "random",
                            "--gradcheck-examples", "3")
    result.assert_outcomes(passed=7)
    seed = header_seed(result)
    written = {path.name: int(path.read_text()) for path in seeds.iterdir()}
    assert len(written) == 6
    assert {name.split("-")[1] for name in written} <= {"gw0", "gw1"}
    assert set(written.values()) == {seed}


# --------------------------------------------------------------------------- politeness


def test_plugin_module_imports_nothing_heavy() -> None:
    """Top-level imports are the standard library and pytest; the rest is lazy."""
    tree = ast.parse((REPO / "gradcheck" / "faces" / "plugin.py").read_text())
    imported = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in tree.body
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "argparse", "os", "dataclasses", "pathlib", "typing",
                        "pytest"}
    source = (REPO / "gradcheck" / "faces" / "plugin.py").read_text()
    assert not re.search(r"autouse\s*=\s*True", source)
    assert not re.search(r"random\.seed\(|set_random_seed", source)


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    code = textwrap.dedent("""
        import json, sys
        import gradcheck
        package = set(sys.modules)
        import gradcheck.faces.plugin
        print(json.dumps({"package": sorted(package),
                          "plugin": sorted(set(sys.modules) - package)}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    modules = json.loads(out.stdout)
    heavy = {"numpy", "hypothesis", "scipy"}
    added = {name.split(".")[0] for name in modules["plugin"]}
    assert not added & heavy
    ours = {m for m in modules["plugin"] if m.startswith("gradcheck.")}
    assert not ours - {"gradcheck.faces", "gradcheck.faces.plugin"}  # faces/__init__ is empty
    eager = sorted(heavy & {name.split(".")[0] for name in modules["package"]})
    assert not eager, f"importing gradcheck loads {eager}: every project's pytest would pay"
