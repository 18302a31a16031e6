"""Structural facts about a wrong gradient: what holds when no classic mistake is named.

A name that does not fit misleads; a fact that holds does not.  Each fact here is checked under
the one rounding rule of :mod:`gradcheck.explain.fingerprints` (the user's array U within the
bound B* of a correct computation of the compared quantity), so it is as trustworthy as a
diagnosis, only less specific:

* right up to a permutation of samples, channels or filters (each slice of U equals some other
  slice of the right gradient R, one to one);
* wrong only along one axis: summed over that axis U is right (values moved along it, none lost;
  the sum of entries within B* each is within the sum of the B*, by the triangle inequality);
* wrong only where windows overlap (dx): every input position a single window tap reaches is
  right;
* right up to a shift along the spatial axes, in the interior both cover;
* across configurations (:func:`configuration_facts`): what every failing configuration fuzzing
  met has in common (groups > 1, a stride > 1 …).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from gradcheck.explain.fingerprints import Evidence
from gradcheck.explain.localize import LABELS, shift
from gradcheck.geometry.problem import ConvProblem

_ROLES = {"dx": ("sample", "channel"), "dw": ("filter", "channel"), "db": ("filter",),
          "y": ("sample", "filter")}
_AXIS_WORDS = {"sample": "samples (axis 0)", "channel": "channels (axis 1)",
               "filter": "filters (axis 0)"}


def _axis_name(ev: Evidence, axis: int) -> str:
    roles = _ROLES[ev.gradient]
    if axis < len(roles):
        return _AXIS_WORDS[roles[axis]].replace("axis 1", f"axis {axis}")
    return f"spatial axis {axis - len(roles)} (array axis {axis})"


def _permutation(ev: Evidence) -> str | None:
    """Right up to a permutation of the slices along a sample, channel or filter axis."""
    found = []
    for axis, role in enumerate(_ROLES[ev.gradient]):
        n = ev.user.shape[axis]
        if n < 2 or n > 256:
            continue
        user = np.moveaxis(ev.user, axis, 0).reshape(n, -1)
        right = np.moveaxis(ev.reference, axis, 0).reshape(n, -1)
        bound = np.moveaxis(ev.bound, axis, 0).reshape(n, -1)
        # fits[i, j]: U's slice i equals R's slice j to rounding (B* of slice j)
        fits = np.all(np.abs(user[:, None, :] - right[None, :, :]) <= bound[None, :, :], axis=2)
        if np.all(np.diag(fits)):
            continue  # right along this axis as it is: no permutation needed
        partner = maximum_bipartite_matching(csr_matrix(fits), perm_type="column")
        if np.all(partner >= 0):
            shown = "" if n > 12 else f": slice i holds the right slice π(i), π = {list(partner)}"
            found.append(f"{LABELS[ev.gradient]} is right up to a permutation of its {role}s"
                         f"{shown}")
    return "; ".join(found) or None


def _axis_sums(ev: Evidence) -> str | None:
    """Summed over one axis, U is right: the error only moves values along that axis."""
    axes = [a for a in range(ev.user.ndim) if ev.user.shape[a] > 1]
    holds = [a for a in axes if np.all(
        np.abs(ev.user.sum(axis=a) - ev.reference.sum(axis=a)) <= ev.bound.sum(axis=a))]
    if not holds or len(holds) == len(axes) == 1:
        return None
    names = " and ".join(_axis_name(ev, a) for a in holds)
    return (f"{LABELS[ev.gradient]} is wrong only along {names}: summed over it, it is right "
            "(values moved along it, none lost)")


def _coverage(problem: ConvProblem) -> np.ndarray:
    """(S…): how many (output, tap) pairs read each input position, ``lo + i = s·o + r·t``."""
    s, counts = problem.spec, []
    for k, (size, (lo, hi), o, st, r, taps) in enumerate(zip(
            problem.x.shape[2:], s.padding, problem.dy.shape[2:], s.stride, s.dilation,
            problem.w.shape[2:])):
        hits = np.bincount((st * np.arange(o)[:, None] + r * np.arange(taps)).ravel(),
                           minlength=size + lo + hi)[lo : lo + size]
        counts.append(hits.reshape([size if i == k else 1 for i in range(s.dims)]))
    return np.prod(np.broadcast_arrays(*counts), axis=0)


def _overlap(ev: Evidence) -> str | None:
    """dx wrong only at positions more than one (window, tap) pair reaches."""
    if ev.gradient != "dx":
        return None
    cover = _coverage(ev.problem)
    wrong_at = ev.wrong.any(axis=(0, 1))
    once = cover == 1
    if not np.any(once) or not np.any(cover > 1) or np.any(wrong_at & (cover <= 1)):
        return None
    return (f"dL/dx is wrong only where windows overlap ({np.count_nonzero(wrong_at)} of "
            f"{np.count_nonzero(cover > 1)} positions reached more than once are wrong; all "
            f"{np.count_nonzero(once)} reached once are right): an overwrite (=) where an "
            "accumulation (+=) belongs, or a sum over the overlapping windows")


def _shifted(ev: Evidence) -> str | None:
    """Right up to a shift by up to 2 positions per spatial axis, in the interior both cover.

    The compared interior must keep at least half (and 2) of every shifted axis.
    """
    roles = len(_ROLES[ev.gradient])
    axes = tuple(range(roles, ev.user.ndim))
    sizes = [ev.user.shape[a] for a in axes]
    if not axes:
        return None
    offsets = sorted(itertools.product(range(-2, 3), repeat=len(axes)),
                     key=lambda v: (sum(map(abs, v)), v))[1:]
    for offset in offsets:
        if any(k and (2 * abs(k) > s or s - abs(k) < 2) for k, s in zip(offset, sizes)):
            continue
        inside = shift(np.ones(ev.user.shape, dtype=bool), offset, axes)
        moved = shift(ev.reference.copy(), offset, axes)
        slack = shift(ev.bound.copy(), offset, axes)
        if np.any(ev.wrong & inside) and ev.fits(moved, slack, where=inside):
            return (f"{LABELS[ev.gradient]} equals the right one shifted by {offset} along the "
                    "spatial axes (+: towards the end), where both are defined")
    return None


#: Every fact about one wrong gradient, in the order they are reported.
FACTS: list[Callable[[Evidence], str | None]] = [_permutation, _axis_sums, _overlap, _shifted]


def gradient_facts(ev: Evidence) -> list[str]:
    """The sentences of :data:`FACTS` that hold for the wrong gradient ``ev``."""
    return [text for fact in FACTS if (text := fact(ev))]


#: (what, does a configuration have it): the geometry a mistake may need to show.
CONDITIONS: tuple[tuple[str, Callable[[ConvProblem], bool]], ...] = (
    ("groups > 1", lambda p: p.spec.groups > 1),
    ("a stride > 1", lambda p: max(p.spec.stride) > 1),
    ("a dilation > 1", lambda p: max(p.spec.dilation) > 1),
    ("padding > 0", lambda p: any(lo or hi for lo, hi in p.spec.padding)),
    ("asymmetric padding (lo ≠ hi)", lambda p: any(lo != hi for lo, hi in p.spec.padding)),
    ("a batch N > 1", lambda p: p.x.shape[0] > 1),
    ("a bias", lambda p: p.b is not None),
    ("a kernel size > 1", lambda p: max(p.w.shape[2:]) > 1),
    ("2 or 3 spatial dims", lambda p: p.spec.dims > 1),
)


def configuration_facts(problems: Sequence[ConvProblem]) -> list[str]:
    """What every failing configuration has in common, from at least 2 of them.

    Observed, not proven: the sentence says how many configurations it rests on.
    """
    if len(problems) < 2:
        return []
    common = [what for what, has in CONDITIONS if all(has(p) for p in problems)]
    if not common:
        return []
    return [f"wrong only for {', '.join(common)}: every one of the {len(problems)} failing "
            "configurations met has it"]
