"""README.md keeps its word: every snippet runs as written and every command does what it shows.

* ```python blocks run as written, against ``examples/cs231n_style.py:Cs231nConv`` as the
  README's ``MyConv``: a block that defines ``test_*`` functions runs under pytest (with the
  plugin, as a user's test file would), any other block is executed.
* ```console blocks: every ``$ command`` runs (``gradcheck`` as ``python -m gradcheck``);
  ``gradcheck jacobian``'s output must equal the README's exactly, and the other commands'
  stable lines — the verdict, the table rows, the diagnosis names, the reproduce line — must
  appear in what the command prints, digits aside (they depend on the drawn data).
* ```bash blocks hold the set-up and test commands, which CI runs itself (`.ci/run`); here we
  only check that they are the commands CI runs.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
BLOCKS = [(lang, body) for lang, body in BLOCK.findall(README)]

pytest_plugins = ["pytester"]

#: What the README's snippets take as given: the user's own layer class.
PREAMBLE = ("from examples.cs231n_style import Cs231nConv as MyConv\n"
            "from examples.family_layers import TapMaxPool as MyMaxPool\n\n")


def _blocks(lang: str) -> list[str]:
    return [body for kind, body in BLOCKS if kind == lang]


def test_the_readme_has_the_blocks_this_file_checks() -> None:
    assert len(_blocks("python")) >= 4
    assert len(_blocks("console")) >= 4
    assert all(kind in ("python", "console", "bash") for kind, _ in BLOCKS), (
        "a README code block of a kind this test does not run")


@pytest.mark.parametrize("snippet", [b for b in _blocks("python") if "def test_" not in b],
                         ids=lambda b: b.strip().splitlines()[-1][:40])
def test_python_snippets_run_as_written(snippet: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    exec(compile(PREAMBLE + snippet, "README.md", "exec"), {"__name__": "readme"})


@pytest.mark.parametrize("snippet", [b for b in _blocks("python") if "def test_" in b],
                         ids=lambda b: re.search(r"def (test_\w+)", b).group(1))  # type: ignore[union-attr]
def test_pytest_snippets_pass_as_written(snippet: str, pytester: pytest.Pytester) -> None:
    """A user's test file made of the snippet, run by pytest with the gradcheck plugin."""
    corpus = pytester.path / "tests" / "regressions"
    pytester.makepyfile(test_user=PREAMBLE + snippet)
    args = ["-p", "no:cacheprovider", "--gradcheck-examples", "10", "-W", "error",
            "--gradcheck-regressions", str(corpus)]
    result = pytester.runpytest_subprocess(*args, "--rootdir", str(pytester.path),
                                           "-o", f"pythonpath={REPO}")
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()
    if "gradcheck_regression" in snippet:  # no corpus yet: the replay test is skipped
        assert outcomes.get("skipped") == 1
    else:
        assert outcomes.get("passed", 0) >= 1


def _commands() -> list[tuple[str, list[str]]]:
    """(command, the output lines the README shows for it) of every console block."""
    found = []
    for body in _blocks("console"):
        command, shown = None, []
        for line in body.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    found.append((command, shown))
                command, shown = line[2:], []
            else:
                shown.append(line)
        if command is not None:
            found.append((command, shown))
    return found


#: Lines of an output that must not change: verdicts, rows, names, commands (digits aside).
STABLE = re.compile(r"^(MISMATCH|LAYER ERROR|PASSED|check |finite differences|Fourier|adjoint|"
                    r"kernel transfer|seed:|reproduce:|--- failure|  \[|witnesses:)")


def _masked(line: str) -> str:
    return re.sub(r"\d+(\.\d+)?(e[+-]\d+)?", "#", line.rstrip())


def _run(command: str) -> subprocess.CompletedProcess[str]:
    words = command.split()
    assert words[0] in ("gradcheck", "python"), f"README command of unknown kind: {command}"
    argv = [sys.executable, "-m", "gradcheck", *words[1:]] if words[0] == "gradcheck" else [
        sys.executable, *words[1:]]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.mark.parametrize(("command", "shown"), _commands(), ids=[c for c, _ in _commands()])
def test_console_commands_print_what_the_readme_shows(command: str, shown: list[str]) -> None:
    done = _run(command)
    assert done.returncode in (0, 1, 3), done.stderr  # 1 and 3: the tour's wrong layers
    printed = done.stdout.splitlines()
    if command.startswith("gradcheck jacobian"):
        assert [line.rstrip() for line in printed] == [line.rstrip() for line in shown]
        return
    masked = {_masked(line) for line in printed}
    for line in shown:
        if STABLE.match(line):
            assert _masked(line) in masked, f"README shows {line!r}; the command printed:\n" + (
                done.stdout)


def test_the_set_up_commands_are_the_ones_ci_runs() -> None:
    first = _blocks("bash")[0].splitlines()
    assert len(first) == 2 and "gradcheck verify" in first[0] and "pytest" in first[1]
    ci = (REPO / ".ci" / "run").read_text()
    test_command = first[1].split("&& ")[-1]
    assert test_command in ci, f"{test_command!r} is not what .ci/run runs"
    slow = _blocks("bash")[1].strip()
    assert slow in ci, f"{slow!r} is not what .ci/run runs"


def test_inline_commands_name_real_flags() -> None:
    """Every `gradcheck fuzz ... --flag` written inline in the text is a flag the CLI has."""
    from gradcheck.faces.cli import build_parser

    parser = build_parser()
    fuzz = next(a for a in parser._subparsers._actions  # type: ignore[union-attr]
                if a.dest == "command").choices["fuzz"]
    known = {s for action in fuzz._actions for s in action.option_strings}
    written = set(re.findall(r"`(--[a-z][a-z-]*)", README))
    others = {"--quick"}  # the benchmarks' smoke-run flag (tests/test_scripts.py runs it)
    unknown = {flag for flag in written if flag not in known | others and not flag.startswith(
        "--gradcheck")}
    assert not unknown, f"README names flags the CLI does not have: {sorted(unknown)}"


def test_the_readme_snippet_layer_is_restricted() -> None:
    """The README's MyConv stand-in is the restricted cs231n convention, not an everything layer
    (the snippets must pass with the claim doing its job)."""
    sys.path.insert(0, str(REPO))
    from examples.cs231n_style import Cs231nConv

    assert Cs231nConv.supports["dims"] == (2,)
    assert Cs231nConv.supports["groups"] is False
    assert textwrap.dedent(PREAMBLE).startswith("from examples")
    from examples.family_layers import TapMaxPool

    assert TapMaxPool.supports["family"] == "max_pool"
