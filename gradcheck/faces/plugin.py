"""The pytest plugin: the ``gradcheck`` fixtures, ``--gradcheck-*`` options and marker.

It loads in every pytest run of every project where gradcheck is installed (entry point
``pytest11``), so it stays polite: numpy, hypothesis and the rest of gradcheck are imported
only inside the fixtures and hooks that need them; no autouse fixtures; nothing is seeded
globally; every option starts with ``--gradcheck-``.

Options (group "gradcheck")::

    --gradcheck-examples N         configurations per gradcheck.fuzz() (default: the active
                                   hypothesis profile's max_examples)
    --gradcheck-seed S|random      seed of every fuzz run (default 0); ``random`` picks one per
                                   run, shown in the header; pytest-xdist workers get the
                                   controller's seed
    --gradcheck-regressions DIR    corpus replayed by tests using ``gradcheck_regression``
                                   (also the ini option ``gradcheck_regressions``)
    --gradcheck-save-regressions DIR
                                   where gradcheck.fuzz() saves the minimal failing problems

Relative directories are resolved against pytest's rootdir.  The marker
``@pytest.mark.gradcheck(examples=None, seed=None, **claim)`` overrides the run's settings for
one test; its other keywords go to ``fuzz_layer`` (support keys such as ``dims=(2,)``, or
``method=``, ``deadline=`` …).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from gradcheck.geometry.problem import ConvProblem
    from gradcheck.harness.check import LayerReport
    from gradcheck.harness.fuzz import FuzzResult

_SEED = pytest.StashKey[int]()
_WORKER_SEED = "gradcheck_seed"  # key in xdist's workerinput
_MARKER = (
    "gradcheck(examples=None, seed=None, **claim): override --gradcheck-examples and "
    "--gradcheck-seed for this test; other keywords narrow the fuzzed support claim "
    "(dims=(2,), max_stride=1 ...) or go to fuzz_layer (method=, deadline= ...)"
)


# --------------------------------------------------------------------------- options


def _examples_option(text: str) -> int:
    """``--gradcheck-examples``: the shared rule (an integer >= 1), named by the flag."""
    from gradcheck.errors import InvalidArgument, InvalidArgumentType, integer

    try:
        return integer("--gradcheck-examples", text, low=1)
    except (InvalidArgument, InvalidArgumentType) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _seed_option(text: str) -> int | str:
    """``--gradcheck-seed``: an integer >= 0, or ``random`` (one seed per run)."""
    from gradcheck.errors import InvalidArgument, InvalidArgumentType, integer

    if text == "random":
        return text
    try:
        return integer("--gradcheck-seed", text)
    except (InvalidArgument, InvalidArgumentType) as error:
        raise argparse.ArgumentTypeError(f"{error} or 'random'") from None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradcheck", "gradcheck: gradient checks of hand-written layers")
    group.addoption(
        "--gradcheck-examples", dest="gradcheck_examples", type=_examples_option, default=None,
        metavar="N", help="configurations each gradcheck.fuzz() draws (integer >= 1; default: "
        "the active hypothesis profile's max_examples)",
    )
    group.addoption(
        "--gradcheck-seed", dest="gradcheck_seed", type=_seed_option, default=0, metavar="S",
        help="seed of every gradcheck fuzz run (integer >= 0, default 0), or 'random' for one "
        "per run, shown in the report header",
    )
    group.addoption(
        "--gradcheck-regressions", dest="gradcheck_regressions", default=None, metavar="DIR",
        help="regression corpus replayed by tests that use the gradcheck_regression fixture, "
        "one test per case (overrides the ini option gradcheck_regressions)",
    )
    group.addoption(
        "--gradcheck-save-regressions", dest="gradcheck_save_regressions", default=None,
        metavar="DIR", help="save the minimal failing problem of every failed gradcheck.fuzz() "
        "in DIR (a regression corpus)",
    )
    parser.addini(
        "gradcheck_regressions", type="string", default="",
        help="gradcheck: regression corpus directory (relative to the rootdir)",
    )


class _XdistHooks:
    """pytest-xdist hooks, registered only when xdist is present (they are unknown otherwise)."""

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[_WORKER_SEED] = node.config.stash[_SEED]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and _WORKER_SEED in workerinput:
        seed = int(workerinput[_WORKER_SEED])  # an xdist worker: the controller's seed
    else:
        chosen = config.getoption("gradcheck_seed")
        seed = int.from_bytes(os.urandom(4), "big") if chosen == "random" else int(chosen)
    config.stash[_SEED] = seed
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "gradcheck-xdist")


def pytest_report_header(config: pytest.Config) -> str:
    random = config.getoption("gradcheck_seed") == "random"
    examples = config.getoption("gradcheck_examples")
    return (
        f"gradcheck: seed={config.stash[_SEED]}{' (random)' if random else ''}, "
        f"examples={'hypothesis profile' if examples is None else examples}"
    )


def _resolve(config: pytest.Config, directory: str | None) -> Path | None:
    if not directory:
        return None
    path = Path(directory).expanduser()
    return path if path.is_absolute() else config.rootpath / path


def _regression_dir(config: pytest.Config) -> Path | None:
    option = config.getoption("gradcheck_regressions")
    return _resolve(config, option if option else config.getini("gradcheck_regressions"))


# --------------------------------------------------------------------------- the gradcheck fixture


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A marker's or a call's keywords: (request options, support-claim keys)."""
    from gradcheck.geometry.supports import Supports

    claim_keys = set(Supports.__dataclass_fields__)
    claim = {k: v for k, v in options.items() if k in claim_keys}
    rest = {k: v for k, v in options.items() if k not in claim_keys}
    if "claim" in rest:
        claim = {**claim, **dict(rest.pop("claim"))}
    return rest, claim


@dataclass(frozen=True)
class Gradcheck:
    """What the ``gradcheck`` fixture gives a test: this run's settings and two checks.

    Attributes
    ----------
    examples : int
        Configurations per :meth:`fuzz`: the marker's, else ``--gradcheck-examples``, else the
        active hypothesis profile's ``max_examples``.
    seed : int
        The marker's, else ``--gradcheck-seed`` (the same in every xdist worker).
    options : dict
        The marker's other keywords.
    save_regressions : Path or None
        Where failing problems are saved (``--gradcheck-save-regressions``).
    """

    examples: int
    seed: int
    options: dict[str, Any]
    save_regressions: Path | None
    nodeid: str

    def check(self, layer: Any, problem: ConvProblem, **kw: Any) -> LayerReport:
        """:func:`gradcheck.check_layer` with this run's seed (for the adjoint's vectors)."""
        __tracebackhide__ = True
        from gradcheck.harness.check import check_layer
        from gradcheck.harness.request import CheckOptions

        options, _ = _split(self.options)
        known = set(CheckOptions.__dataclass_fields__)
        options = {k: v for k, v in options.items() if k in known}
        return check_layer(layer, problem, **{"seed": self.seed, **options, **kw})

    def fuzz(self, layer: Any, **kw: Any) -> FuzzResult:
        """:func:`gradcheck.fuzz_layer` with this run's settings; fail the test on a failure.

        Keywords override the marker, which overrides the command line; support-claim keys
        (``dims=(2,)``) narrow the layer's claim.  On a failure each minimal problem is saved
        (with ``--gradcheck-save-regressions``) and the test fails with the same report as the
        CLI's, whose ``reproduce:`` line is this test's pytest command.
        """
        __tracebackhide__ = True
        from gradcheck.harness.fuzz import fuzz_layer

        options, claim = _split({**self.options, **kw})
        save = None if self.save_regressions is None else str(self.save_regressions)
        options = {"examples": self.examples, "seed": self.seed, "save_regressions": save,
                   **options}
        result = fuzz_layer(layer, claim=claim, **options)
        if result.passed:
            return result
        reproduce = (f"pytest '{self.nodeid}' --gradcheck-seed {result.request.seed} "
                     f"--gradcheck-examples {result.request.examples}")
        pytest.fail(result.report(reproduce=reproduce), pytrace=False)


def _marker_settings(node: pytest.Item) -> dict[str, Any]:
    marker = node.get_closest_marker("gradcheck")
    if marker is None:
        return {}
    from gradcheck.errors import InvalidArgument, InvalidArgumentType, integer

    if marker.args:
        raise InvalidArgument(
            f"@pytest.mark.gradcheck{marker.args!r}: expected keyword arguments only")
    settings = dict(marker.kwargs)
    for key, low in (("examples", 1), ("seed", 0)):
        if settings.get(key) is not None:
            try:
                settings[key] = integer(key, settings[key], low=low)
            except (InvalidArgument, InvalidArgumentType) as error:
                raise InvalidArgument(f"@pytest.mark.gradcheck: {error} (or None)") from None
    return settings


@pytest.fixture
def gradcheck(request: pytest.FixtureRequest) -> Gradcheck:
    """Check or fuzz a layer with this run's ``--gradcheck-*`` settings and the test's marker."""
    config = request.config
    settings = _marker_settings(request.node)
    examples = settings.pop("examples", None) or config.getoption("gradcheck_examples")
    if examples is None:
        from hypothesis import settings as hypothesis_settings

        examples = hypothesis_settings().max_examples
    seed = settings.pop("seed", None)
    return Gradcheck(
        examples=examples,
        seed=config.stash[_SEED] if seed is None else seed,
        options=settings,
        save_regressions=_resolve(config, config.getoption("gradcheck_save_regressions")),
        nodeid=request.node.nodeid,
    )


# --------------------------------------------------------------------------- regression replay


@dataclass(frozen=True)
class RegressionCase:
    """One saved case, as the ``gradcheck_regression`` fixture gives it to a test."""

    name: str
    problem: ConvProblem
    meta: dict[str, Any]
    path: Path

    def check(self, layer: Any, **kw: Any) -> LayerReport:
        """:func:`gradcheck.check_layer` on this case; a failure names the case and its file."""
        __tracebackhide__ = True
        from gradcheck.harness.check import check_regression

        return check_regression(layer, self.path, **kw)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "gradcheck_regression" not in metafunc.fixturenames:
        return
    directory = _regression_dir(metafunc.config)
    if directory is None:
        reason = ("no regression corpus: set --gradcheck-regressions DIR or the ini option "
                  "gradcheck_regressions")
    elif not directory.exists():
        reason = f"regression corpus {directory} does not exist (no failures saved yet?)"
    else:
        from gradcheck.harness.corpus import list_regressions

        paths = list_regressions(directory)
        if paths:
            ids = [path.name[: -len(".json")] for path in paths]
            metafunc.parametrize("gradcheck_regression", paths, ids=ids, indirect=True)
            return
        reason = f"regression corpus {directory} holds no cases"
    skipped = pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-regressions")
    metafunc.parametrize("gradcheck_regression", [skipped], indirect=True)


@pytest.fixture
def gradcheck_regression(request: pytest.FixtureRequest) -> RegressionCase:
    """One saved regression case (tests using it run once per case of the corpus)."""
    path = getattr(request, "param", None)
    if path is None:
        pytest.skip("no regression case")
    from gradcheck.harness.corpus import load_regression

    name, problem, meta = load_regression(path)
    return RegressionCase(name=name, problem=problem, meta=meta, path=path)
