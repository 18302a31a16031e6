"""One immutable value that describes a check or fuzz run completely.

Every face builds a :class:`Request` — the CLI from its flags, ``fuzz_layer`` from its keywords,
the pytest plugin from its options and marker, corpus replay from a saved case — and every face
renders the same result from it.  The ``reproduce:`` command of a report is
:meth:`Request.command`, and parsing that command with the CLI gives the same request back
(``tests/test_request.py`` checks every option).

Two namespaces stay apart: **options** say how to run (examples, seed, mode, method, …) and the
**claim** narrows what the layer says it supports (``dims``, ``max_stride``, … — the keys of
:class:`gradcheck.Supports`).  A misspelled option is reported as an option, a misspelled claim
key as a claim key.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from gradcheck.errors import boolean, choice, integer, invalid, invalid_type, seconds_or_none
from gradcheck.geometry.supports import ROUNDING_MODELS, Supports

#: How finite differences are taken (:mod:`gradcheck.witnesses.differences`).
METHODS = ("central", "four-point", "richardson", "complex-step")

#: ``check_layer``'s modes: the full Jacobian, directional derivatives, or the first when the
#: problem is small and the second otherwise (:data:`gradcheck.harness.check.AUTO_FULL_MAX`).
MODES = ("auto", "full", "fast")

#: ``mode="auto"`` takes the full Jacobian up to this many perturbations (one per entry of the
#: arguments: x.size + w.size + b.size), directional derivatives above.  Full mode costs
#: ``2·(C/G·∏K + 1)`` forward calls for w and b and a folded call or two for x
#: (:mod:`gradcheck.witnesses.compressed`), each call growing with the problem; fast mode a fixed
#: 6 forward and 3 backward calls.  Measured on examples/naive_conv.py: full 12 ms at
#: x (2,3,16,16)/w (4,3,3,3) (1648 perturbations), 0.4 s at x (4,8,32,32)/w (8,8,3,3) (33352);
#: fast 2.6 ms and 16 ms.  The default fuzzing distributions stay entirely in full mode.
AUTO_FULL_MAX = 4096

#: Seconds allowed per call of the layer, unless the request says otherwise.
DEFAULT_DEADLINE = 10.0


def resolve_mode(mode: str, perturbations: int) -> str:
    """``"full"`` or ``"fast"``: what ``mode`` means for a problem of ``perturbations`` entries."""
    choice("mode", mode, MODES)
    if mode == "auto":
        return "full" if perturbations <= AUTO_FULL_MAX else "fast"
    return mode


@dataclass(frozen=True)
class CheckOptions:
    """How one problem is checked (:func:`gradcheck.check_layer`).

    Parameters
    ----------
    mode : {"auto", "full", "fast"}
        Full Jacobian, random directions, or full when small.
    method : {"central", "four-point", "richardson", "complex-step"}
        Finite-difference method.
    reference_forward : bool
        Compare the layer's forward with the reference convolution.
    deadline : float or None
        Seconds allowed per layer call (None: no limit).
    seed : int
        Seed of the adjoint identity's vectors and of fast mode's directions.
    explain : bool
        Explain a mismatch (the odd witness out, the mistake matched).
    rounding : {"entrywise", "normwise"} or None
        The rounding model every bound follows (:mod:`gradcheck.judge.bounds`); None: the
        layer's own claim (``supports["rounding"]``, default ``"entrywise"``).
    """

    mode: str = "auto"
    method: str = "central"
    reference_forward: bool = True
    deadline: float | None = DEFAULT_DEADLINE
    seed: int = 0
    explain: bool = True
    rounding: str | None = None

    def __post_init__(self) -> None:
        choice("mode", self.mode, MODES)
        choice("method", self.method, METHODS)
        boolean("reference_forward", self.reference_forward)
        object.__setattr__(self, "deadline", seconds_or_none("deadline", self.deadline))
        object.__setattr__(self, "seed", integer("seed", self.seed))
        boolean("explain", self.explain)
        if self.rounding is not None:
            choice("rounding", self.rounding, ROUNDING_MODELS)

    @classmethod
    def create(cls, options: CheckOptions | None = None, **changes: Any) -> CheckOptions:
        """``options`` (default: the defaults) with ``changes``; unknown names are refused."""
        base = cls() if options is None else options
        _refuse_unknown(changes, {f.name for f in fields(cls)}, "check_layer")
        return replace(base, **changes) if changes else base


@dataclass(frozen=True)
class Request:
    """A fuzz run, completely: what to fuzz, inside which claim, how, and where results go.

    Parameters
    ----------
    target : str or None
        How to find the layer: ``path/to/file.py:NAME`` or ``package.module:NAME``; None for a
        layer object handed over in Python (the report then names the object).
    claim : mapping or tuple of (key, value)
        Support-claim keys that override the layer's own ``supports`` (``{"dims": (2,)}``).
    examples : int
        Configurations to draw for the first failure; the search for further, distinct
        failures gets at most half as many again (:data:`gradcheck.harness.fuzz.EXTRA_SHARE`).
    seed : int
        Hypothesis seed: the same seed draws the same configurations.
    mode, method, reference_forward, deadline
        As :class:`CheckOptions`.
    database : str or None
        Directory of hypothesis's example database, which replays earlier failures first;
        None (default): none, the seed alone decides what is drawn.
    plot : str or None
        Directory for one PNG error map per wrong gradient (the ``plot`` extra).
    save_regressions : str or None
        Directory where each minimal failing case is saved as a regression case.
    explain : bool
        Explain each mismatch.
    progress : bool
        A progress line on stderr.
    """

    target: str | None = None
    claim: tuple[tuple[str, Any], ...] = ()
    examples: int = 100
    seed: int = 0
    mode: str = "auto"
    method: str = "central"
    reference_forward: bool = True
    deadline: float | None = DEFAULT_DEADLINE
    database: str | None = None
    plot: str | None = None
    save_regressions: str | None = None
    explain: bool = True
    progress: bool = False

    def __post_init__(self) -> None:
        if self.target is not None and (not isinstance(self.target, str) or not self.target):
            raise invalid_type("target", self.target, "expected 'file.py:NAME' or None")
        object.__setattr__(self, "claim", _claim_items(self.claim))
        object.__setattr__(self, "examples", integer("examples", self.examples, low=1))
        object.__setattr__(self, "seed", integer("seed", self.seed))
        CheckOptions(self.mode, self.method, self.reference_forward, self.deadline)
        object.__setattr__(self, "deadline", seconds_or_none("deadline", self.deadline))
        for name in ("database", "plot", "save_regressions"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _directory(name, value))
        if self.database is not None and self.database.lower() == "none":
            object.__setattr__(self, "database", None)
        boolean("explain", self.explain)
        boolean("progress", self.progress)

    @classmethod
    def create(cls, request: Request | None = None, **options: Any) -> Request:
        """``request`` (default: the defaults) with ``options`` replaced.

        Raises
        ------
        InvalidArgument
            An unknown option, named as an option (support-claim keys belong in ``claim=``).
        """
        base = cls() if request is None else request
        _refuse_unknown(options, {f.name for f in fields(cls)}, "fuzz_layer")
        return replace(base, **options) if options else base

    @property
    def claim_dict(self) -> dict[str, Any]:
        """The claim overrides as a dict."""
        return dict(self.claim)

    @property
    def check_options(self) -> CheckOptions:
        """How each drawn problem is checked."""
        return CheckOptions(mode=self.mode, method=self.method,
                            reference_forward=self.reference_forward, deadline=self.deadline,
                            explain=False)

    def command(self, *, everything: bool = False) -> str:
        """The ``gradcheck fuzz`` command that runs this request.

        By default only what decides the verdict (target, claim, examples, seed, how problems
        are checked, the database); with ``everything`` also where results go (``--plot``,
        ``--save-regressions``) and ``--quiet``.
        """
        words = ["gradcheck", "fuzz", self.target or "<file.py:layer>"]
        words += ["--examples", str(self.examples), "--seed", str(self.seed)]
        words += _claim_flags(self.claim_dict)
        default = Request()
        for name, flag in (("mode", "--mode"), ("method", "--method")):
            if getattr(self, name) != getattr(default, name):
                words += [flag, getattr(self, name)]
        if not self.reference_forward:
            words.append("--no-reference-forward")
        if self.deadline != default.deadline:
            words += ["--deadline", "none" if self.deadline is None else repr(self.deadline)]
        if self.database is not None:
            words += ["--database", self.database]
        if everything:
            for name in ("plot", "save_regressions"):
                if getattr(self, name) is not None:
                    words += ["--" + name.replace("_", "-"), getattr(self, name)]
            if not self.explain:
                words.append("--no-explain")
            if not self.progress:
                words.append("--quiet")
        return " ".join(shlex.quote(w) if w != "<file.py:layer>" else w for w in words)


#: Claim keys whose values are booleans: one flag pair each (``--dilation`` / ``--no-dilation``).
BOOLEAN_CLAIM_KEYS = ("dilation", "groups", "bias", "uniform", "exact_tiling", "square_input",
                      "square_kernel")


def _claim_flags(claim: dict[str, Any]) -> list[str]:
    """The CLI flags of claim overrides, in the order of :class:`Supports`' fields."""
    words: list[str] = []
    for f in fields(Supports):
        if f.name not in claim:
            continue
        value = claim[f.name]
        flag = "--" + f.name.replace("_", "-")
        if f.name == "dims":
            words += [flag, ",".join(map(str, value))]
        elif f.name == "dtypes":
            for name in value:
                words += ["--dtype", name]
        elif f.name in BOOLEAN_CLAIM_KEYS:
            words.append(flag if value else "--no-" + flag[2:])
        else:
            words += [flag, str(value)]
    return words


def _claim_items(claim: Any) -> tuple[tuple[str, Any], ...]:
    """Validated, normalised claim overrides as sorted (key, value) pairs."""
    if isinstance(claim, Supports):
        raise invalid_type("claim", claim, "expected a dict of the keys to override, e.g. "
                           "{'dims': (2,)} (a whole Supports belongs on the layer)")
    if isinstance(claim, tuple) and all(isinstance(i, tuple) and len(i) == 2 for i in claim):
        claim = dict(claim)
    if not isinstance(claim, Mapping):
        raise invalid_type("claim", claim, "expected a dict of support-claim keys")
    known = {f.name for f in fields(Supports)}
    for key in claim:
        if key not in known:
            raise invalid(f"claim[{key!r}]", claim[key],
                          f"not a support-claim key; known keys: {', '.join(sorted(known))}")
    given = {k: v for k, v in claim.items() if v is not None}
    normal = Supports().restrict(**given)  # validates every value, normalises tuples
    return tuple(sorted((k, getattr(normal, k)) for k in given))


def _refuse_unknown(options: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(options) - known)
    if not unknown:
        return
    claim_keys = {f.name for f in fields(Supports)}
    name = unknown[0]
    hint = (f"; {name!r} is a support-claim key: pass claim={{{name!r}: ...}}"
            if name in claim_keys else "")
    raise invalid(f"option {name}", options[name],
                  f"not an option of {where}; options: {', '.join(sorted(known))}{hint}")


def _directory(name: str, value: Any) -> str:
    import os

    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise invalid_type(name, value, "expected a directory path")
    return str(value)
