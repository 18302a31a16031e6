"""PNG error maps of a wrong gradient: analytic, expected and |difference| / bound side by side.

Part of the ``plot`` extra: matplotlib is imported inside the functions, never at import time,
and drawn through ``matplotlib.figure.Figure`` on an Agg canvas, so no global pyplot state or
interactive backend is touched.

A gradient of shape ``(N, C, S…)`` (dx) or ``(F, C/G, K…)`` (dw) is reduced over its two
leading axes: the analytic and expected panels show the *sum* over them (the same reduction on
both sides, so they stay comparable), the difference panel the *max* of
``|analytic − expected| / bound`` (an error in any one channel shows).  1-d gradients are drawn
as lines (the ratio on a log scale), 2-d as images with colourbars (the ratio as its
log10, centred on 0 = on the bound), 3-d as the 2-d slice holding the largest error.
Arrays of one or two axes (db of shape (F,)) are drawn as they are.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck.errors import invalid
from gradcheck.floating import error_over_bound

_INSTALL = "gradcheck's error maps need matplotlib: pip install 'gradcheck[plot]'"


def _agg() -> tuple[Any, Any]:
    """``(Figure, FigureCanvasAgg)``, or an ImportError that says what to install."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(_INSTALL) from error
    return Figure, FigureCanvasAgg


def _reduce(analytic: Any, expected: Any,
            bound: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Validate; return ``(analytic_view, expected_view, ratio_view, note)`` over ≤ 2 axes."""
    a, e = np.asarray(analytic), np.asarray(expected)
    if a.shape != e.shape:
        raise invalid("expected.shape", e.shape, f"expected the shape of analytic, {a.shape}")
    try:
        b = np.broadcast_to(np.asarray(bound, dtype=np.float64), a.shape)
    except ValueError:
        raise invalid("bound", np.shape(bound), f"expected a number or {a.shape}") from None
    if not np.all(b > 0):
        raise invalid("bound", float(b.min()), "every bound must be > 0")
    ratio = error_over_bound(a - e, b)
    notes = ["real parts"] if np.iscomplexobj(a) or np.iscomplexobj(e) else []
    a, e = np.real(a), np.real(e)
    if a.ndim >= 3:
        lead = a.shape[:2]
        a, e, ratio = a.sum(axis=(0, 1)), e.sum(axis=(0, 1)), ratio.max(axis=(0, 1))
        notes.append(f"analytic and expected summed over the leading axes {lead} "
                     "(batch or filters, channels); |difference| / bound: max over them")
    else:
        a, e, ratio = np.atleast_1d(a), np.atleast_1d(e), np.atleast_1d(ratio)
        notes.append("every element")
    if a.ndim == 3:
        j, count = int(np.argmax(ratio.max(axis=(1, 2)))), a.shape[0]
        a, e, ratio = a[j], e[j], ratio[j]
        notes.append(f"3-d: slice {j} of {count} along the first spatial axis (largest error)")
    return a, e, ratio, "; ".join(notes)


_FLOOR = 1e-3  # ratios below this are drawn as this: the log scale needs a positive floor


def _worst(ratio: np.ndarray) -> str:
    index = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    over = int(np.count_nonzero(ratio > 1))
    where = ", ".join(map(str, index))
    return f"worst at ({where}): {ratio[index]:.3g} × bound; {over} of {ratio.size} over it"


def _draw_lines(axes: Any, a: np.ndarray, e: np.ndarray, ratio: np.ndarray) -> None:
    """1-d: analytic and expected as lines on one y-scale, the ratio as log-scale bars."""
    from matplotlib.ticker import MaxNLocator

    pos = np.arange(a.size)
    low, high = min(a.min(), e.min()), max(a.max(), e.max())
    margin = 0.05 * (high - low) or 1.0
    for ax, values, label, colour in ((axes[0], a, "analytic", "C0"),
                                      (axes[1], e, "expected (numeric)", "C1")):
        ax.plot(pos, values, marker="o", color=colour)
        ax.set_ylim(low - margin, high + margin)
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[2].bar(pos, np.maximum(ratio, _FLOOR), color=np.where(ratio > 1, "C3", "C0"))
    axes[2].axhline(1.0, color="k", linestyle="--", linewidth=1)
    axes[2].set_yscale("log")
    axes[2].set_ylabel("|difference| / bound (dashed: 1)")
    axes[2].set_title(f"|difference| / bound, red over it\n{_worst(ratio)}", fontsize=9)
    for ax in axes:
        ax.set_xlabel("position")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _draw_images(fig: Any, axes: Any, a: np.ndarray, e: np.ndarray, ratio: np.ndarray) -> None:
    """2-d: one diverging scale shared by analytic and expected; log10 of the ratio around 0."""
    from matplotlib.colors import TwoSlopeNorm

    vmax = float(max(np.abs(a).max(), np.abs(e).max())) or 1.0
    for ax, values, label in ((axes[0], a, "analytic"), (axes[1], e, "expected (numeric)")):
        image = ax.imshow(values, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        fig.colorbar(image, ax=ax, shrink=0.85)
        ax.set_title(label)
    exponent = np.log10(np.maximum(ratio, _FLOOR))
    norm = TwoSlopeNorm(vcenter=0.0, vmin=min(float(exponent.min()), -1.0),
                        vmax=max(float(exponent.max()), 1.0))
    image = axes[2].imshow(exponent, cmap="coolwarm", norm=norm)
    fig.colorbar(image, ax=axes[2], shrink=0.85,
                 label="log10(|difference| / bound): > 0 is over")
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    axes[2].scatter([worst[1]], [worst[0]], marker="o", s=160, facecolors="none",
                    edgecolors="k", linewidths=1.5)
    axes[2].set_title(f"|difference| / bound, worst circled\n{_worst(ratio)}", fontsize=9)
    for ax in axes:
        ax.set_xlabel("last axis")
        ax.set_ylabel("second-to-last axis")


def error_map_png(path: str | Path, name: str, analytic: Any, expected: Any, bound: Any,
                  title: str) -> Path:
    """Write one PNG: analytic, expected and |analytic − expected| / bound side by side.

    Parameters
    ----------
    path : str or Path
        The PNG to write; missing parent directories are created.
    name : str
        The gradient's name, e.g. ``"dx"``, shown first in the title.
    analytic, expected : array-like, the gradient's shape
        The gradient under test and the witness it is compared with (e.g. finite differences).
    bound : float or array broadcastable to the gradient's shape
        The allowed error per element, every entry > 0.
    title : str
        The configuration, e.g. ``ConvProblem.describe()``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ImportError
        Without matplotlib, saying ``pip install 'gradcheck[plot]'``.
    InvalidArgument
        For shapes that differ or a bound that is not > 0.
    """
    Figure, FigureCanvasAgg = _agg()
    a, e, ratio, note = _reduce(analytic, expected, bound)
    fig = Figure(figsize=(14, 4.6 if a.ndim == 2 else 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    if a.ndim == 1:
        _draw_lines(axes, a, e, ratio)
    else:
        _draw_images(fig, axes, a, e, ratio)
    heading = textwrap.wrap(f"{name}: {title}", 150) + textwrap.wrap(note, 150)
    fig.suptitle("\n".join(heading), fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100, bbox_inches="tight", pad_inches=0.15)
    return path


def error_maps(directory: str | Path, problem_description: str,
               arrays: Mapping[str, tuple[Any, Any, Any]], *,
               only_wrong: bool = True) -> list[Path]:
    """One PNG per wrong gradient, named after it (``dx.png``, ``dw.png``, …).

    Parameters
    ----------
    directory : str or Path
        Created if missing.
    problem_description : str
        The configuration, used as every figure's title.
    arrays : mapping of name to (analytic, expected, bound)
        As for :func:`error_map_png`.
    only_wrong : bool
        Skip gradients whose every element is within its bound (default True).

    Returns
    -------
    list of Path
        The PNGs written, in the order of ``arrays``.
    """
    written = []
    for name, (analytic, expected, bound) in arrays.items():
        _, _, ratio, _ = _reduce(analytic, expected, bound)
        if only_wrong and not np.any(ratio > 1):
            continue
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "gradient"
        written.append(error_map_png(Path(directory) / f"{stem}.png", name, analytic, expected,
                                     bound, problem_description))
    return written
