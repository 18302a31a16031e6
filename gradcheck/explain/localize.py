"""Where a wrong gradient is wrong, in words: the worst entry, the count, and where the errors are.

An entry is *wrong* when ``|analytic − expected| > bound``.  Each detector in :data:`DETECTORS`
is a small function ``(_Errors) -> str | None`` that returns a sentence when the wrong entries
are confined somewhere: to one sample, group, filter or channel, to the positions no window
reaches, to a border band, to every s-th position, or to entries left at 0.  *What* the wrong
gradient equals (a multiple, a flip, a shift of the right one …) is not decided here but by the
one rule of :mod:`gradcheck.explain.fingerprints`.

Axes follow the gradient's name: ``dx`` (N, C, S…), ``dw`` (F, C/G, K…), ``db`` (F,),
``y`` (N, F, O…).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradcheck.errors import invalid
from gradcheck.floating import error_over_bound
from gradcheck.geometry.problem import ConvProblem

LABELS = {"dx": "dL/dx", "dw": "dL/dw", "db": "dL/db", "y": "y"}
_ROLES = {"dx": ("sample", "channel"), "dw": ("filter", "channel"), "db": ("filter",),
          "y": ("sample", "filter")}
_NOUNS = {1: ("position",), 2: ("row", "column"), 3: ("depth slice", "row", "column")}


@dataclass(frozen=True)
class Localisation:
    """Where one gradient is wrong.

    Attributes
    ----------
    name : str
        ``"dx"``, ``"dw"``, ``"db"`` or ``"y"``.
    worst_index : tuple of int
        Where ``|analytic − expected| / bound`` is largest; ``analytic``, ``expected``,
        ``error = |analytic − expected|``, ``bound`` and ``ratio = error / bound`` are there.
    wrong, total : int
        Entries beyond their bound, out of how many.
    patterns : tuple of str
        The error's structure, one sentence per recognised pattern (empty: none found).
    """

    name: str
    worst_index: tuple[int, ...]
    analytic: complex | float
    expected: complex | float
    error: float
    bound: float
    ratio: float
    wrong: int
    total: int
    patterns: tuple[str, ...]

    def summary(self) -> str:
        """The count, the worst entry, then one line per pattern."""
        return "\n".join([
            f"{LABELS.get(self.name, self.name)}: {self.wrong} / {self.total} entries wrong "
            f"({100 * self.wrong / max(self.total, 1):.1f}%)",
            f"  worst at {self.name}{list(self.worst_index)}: analytic {self.analytic:.6g}, "
            f"expected {self.expected:.6g}, error {self.error:.3g} = {self.ratio:.3g} × bound",
            *(f"  - {p}" for p in self.patterns),
        ])


@dataclass(frozen=True)
class _Errors:
    """What every detector reads: the gradient, its expected value, bound and wrong mask."""

    problem: ConvProblem
    name: str
    user: np.ndarray
    expected: np.ndarray
    bound: np.ndarray
    wrong: np.ndarray

    @property
    def label(self) -> str:
        return LABELS.get(self.name, self.name)

    @property
    def roles(self) -> tuple[str, ...]:
        return _ROLES.get(self.name, ("sample", "channel"))[: self.user.ndim]

    @property
    def spatial(self) -> tuple[int, ...]:
        return tuple(range(len(self.roles), self.user.ndim))

    def noun(self, axis: int, count: int = 1) -> str:
        word = _NOUNS.get(len(self.spatial), ("position",) * 3)[axis - len(self.roles)]
        word = ("kernel " if self.name == "dw" else "") + word
        return word if count == 1 else f"{word}s"


# --------------------------------------------------------------------------- helpers


def shift(a: np.ndarray, offsets: tuple[int, ...], axes: tuple[int, ...]) -> np.ndarray:
    """``out[i] = a[i − offset]`` along each of ``axes``, zeros shifted in; same shape."""
    for axis, k in zip(axes, offsets):
        a = np.roll(a, k, axis=axis)
        index = [slice(None)] * a.ndim
        index[axis] = slice(0, k) if k > 0 else slice(a.shape[axis] + k, None)
        a[tuple(index)] = 0
    return a


# --------------------------------------------------------------------------- confinement


def _positions(mask: np.ndarray, axis: int) -> np.ndarray:
    """Indices along ``axis`` of the slabs holding at least one True."""
    return np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))


def _zero_where_wrong(e: _Errors) -> str | None:
    """Zero (to the bound) at every wrong entry, nonzero elsewhere: those were never written."""
    if np.any(e.user) and np.all(np.abs(e.user[e.wrong]) <= e.bound[e.wrong]):
        return (f"{e.label} is 0 at all {np.count_nonzero(e.wrong)} wrong entries, where the "
                "right gradient is not: they were never written")
    return None


def _one_index(e: _Errors) -> str | None:
    """All wrong entries in one batch sample, one filter or one channel."""
    found = []
    for axis, role in enumerate(e.roles):
        hit, size = _positions(e.wrong, axis), e.user.shape[axis]
        if size > 1 and len(hit) == 1:
            symbol = {"sample": "n", "filter": "f"}.get(role, "c'" if e.name == "dw" else "c")
            found.append(f"all wrong entries are in {role} {symbol} = {hit[0]} (of {size})")
    return "; ".join(found) or None


def _one_group(e: _Errors) -> str | None:
    """All wrong entries in one of the G groups (of channels for dx, of filters otherwise)."""
    groups, role = e.problem.spec.groups, "channel" if e.name == "dx" else "filter"
    if groups == 1 or role not in e.roles:
        return None
    axis = e.roles.index(role)
    per_group, hit = e.user.shape[axis] // groups, _positions(e.wrong, axis)
    if len(hit) > 1 and len(set(hit // per_group)) == 1:
        g = hit[0] // per_group
        return (f"all wrong entries are in group {g} of {groups} "
                f"({role}s {g * per_group}–{(g + 1) * per_group - 1})")
    return None


def _border_band(e: _Errors) -> str | None:
    """Wrong entries confined to the first p and/or the last q positions of a spatial axis.

    The band is what lies outside the longest clean run; it is reported when it covers at most
    half the axis, or when its width is the padding (lo, hi) or the unreached tail (dx).
    """
    found = []
    for axis in e.spatial:
        size, hit = e.user.shape[axis], _positions(e.wrong, axis)
        edges = np.concatenate([[-1], hit, [size]])
        j = int(np.argmax(np.diff(edges)))
        lead, trail = int(edges[j]) + 1, size - int(edges[j + 1])
        if not 0 < lead + trail < size:
            continue
        k = axis - len(e.roles)
        lo, hi = e.problem.spec.padding[k] if e.name == "dx" else (-1, -1)
        tail = unreached_tail(e.problem)[k] if e.name == "dx" else -1
        notes = [text for width, value, text in (
            (lead, lo, f"the padding lo = {lo}"), (trail, hi, f"the padding hi = {hi}"),
            (trail, tail, "the positions past the last window")) if width and width == value]
        if notes or lead + trail <= size // 2:
            parts = [f"the {end} {n} {e.noun(axis, n)}".replace(" 1 ", " ")
                     for end, n in (("first", lead), ("last", trail)) if n]
            found.append(f"the wrong entries are confined to {' and '.join(parts)} (spatial "
                         f"axis {k})" + (f": width = {', '.join(notes)}" if notes else ""))
    return "; ".join(found) or None


def _progression(indices: np.ndarray) -> tuple[int, int] | None:
    """(step g >= 2, residue) when the indices are every g-th position from first to last."""
    step = int(np.gcd.reduce(np.diff(indices))) if len(indices) > 1 else 0
    if step >= 2 and len(indices) == (indices[-1] - indices[0]) // step + 1:
        return step, int(indices[0] % step)
    return None


def _stride_pattern(e: _Errors) -> str | None:
    """Wrong (or right) only at every g-th position along a spatial axis."""
    found = []
    for axis in e.spatial:
        k, spec = axis - len(e.roles), e.problem.spec
        wrong_at = _positions(e.wrong, axis)
        right_at = np.setdiff1d(np.arange(e.user.shape[axis]), wrong_at)
        for where, indices in (("wrong only", wrong_at), ("right only", right_at)):
            if len(wrong_at) > 1 and (pattern := _progression(indices)):
                g, r = pattern
                why = {spec.dilation[k]: f": the dilation r = {g}"}
                if e.name in ("dx", "y"):
                    why[spec.stride[k]] = f": the stride s = {g}"
                suffix = {2: "nd", 3: "rd"}.get(g, "th")
                found.append(f"{e.label} is {where} at every {g}{suffix} {e.noun(axis)} "
                             f"(≡ {r} mod {g}){why.get(g, '')}")
                break
    return "; ".join(found) or None


def unreached_tail(problem: ConvProblem) -> tuple[int, ...]:
    """``τ = S + lo + hi − len(δ↑s * w↑r)`` per dim, ``len = (O − 1)·s + r·(K − 1) + 1``."""
    s = problem.spec
    return tuple(size + lo + hi - ((o - 1) * st + r * (k - 1) + 1)
                 for size, (lo, hi), o, st, r, k in zip(problem.x.shape[2:], s.padding,
                                                        problem.dy.shape[2:], s.stride,
                                                        s.dilation, problem.w.shape[2:]))


def reached(problem: ConvProblem) -> np.ndarray:
    """Boolean (S…): the input positions some window reads, ``lo + i = s·o + r·t``."""
    s, masks = problem.spec, []
    for k, (size, (lo, hi), o, st, r, taps) in enumerate(zip(
            problem.x.shape[2:], s.padding, problem.dy.shape[2:], s.stride, s.dilation,
            problem.w.shape[2:])):
        hit = np.zeros(size + lo + hi, dtype=bool)
        hit[(st * np.arange(o)[:, None] + r * np.arange(taps)).ravel()] = True
        masks.append(hit[lo : lo + size].reshape([size if i == k else 1 for i in range(s.dims)]))
    return np.logical_and.reduce(np.broadcast_arrays(*masks))


def _unreached(e: _Errors) -> str | None:
    """dx wrong exactly (or only) at the input positions no window reaches."""
    if e.name != "dx" or e.user.shape != e.problem.x.shape:
        return None
    unreached, wrong_at = ~reached(e.problem), e.wrong.any(axis=(0, 1))
    if not unreached.any() or np.any(wrong_at & ~unreached):
        return None
    how = "exactly" if np.array_equal(wrong_at, unreached) else "only"
    return (f"{e.label} is wrong {how} at input positions no window reaches "
            f"({np.count_nonzero(wrong_at)} of {np.count_nonzero(unreached)} unreached): "
            "their gradient must be 0")


#: Every detector, in the order its sentences are reported.
DETECTORS: list[Callable[[_Errors], str | None]] = [
    _zero_where_wrong, _one_index, _one_group, _unreached, _border_band, _stride_pattern,
]


def localize(
    problem: ConvProblem, name: str, user: np.ndarray, expected: np.ndarray, bound: np.ndarray
) -> Localisation:
    """Where ``user`` differs from ``expected`` beyond ``bound``, and the error's structure.

    Parameters
    ----------
    problem : ConvProblem
    name : {"dx", "dw", "db", "y"}
    user, expected : arrays of the gradient's shape
    bound : array broadcastable to it
        An entry is wrong when ``|user − expected| > bound``.

    Returns
    -------
    Localisation
        The worst entry, the count, and a sentence per pattern of :data:`DETECTORS` that holds.
    """
    user, expected = np.asarray(user), np.asarray(expected)
    if user.shape != expected.shape or not user.size:
        raise invalid(f"{name}.shape", user.shape, f"expected the shape {expected.shape} (> 0)")
    bound = np.array(np.broadcast_to(np.asarray(bound, dtype=np.float64), expected.shape))
    error = np.abs(user.astype(np.complex128) - expected)
    ratio = error_over_bound(error, bound)
    wrong = ratio > 1
    e = _Errors(problem, name, user, expected, bound, wrong)
    found = [p for d in DETECTORS if wrong.any() and (p := d(e))]
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)

    def at_worst(a: np.ndarray) -> complex | float:
        return complex(a[worst]) if np.iscomplexobj(a) else float(a[worst])

    return Localisation(
        name, tuple(int(i) for i in worst), at_worst(user), at_worst(expected),
        float(error[worst]), float(bound[worst]), float(ratio[worst]),
        int(np.count_nonzero(wrong)), int(error.size),
        tuple(found),
    )
