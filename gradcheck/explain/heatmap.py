"""A compact text heat map of an error array, for the terminal report."""

from __future__ import annotations

import math

import numpy as np

from gradcheck.floating import error_over_bound

_RAMP = " .:-=+*#%@"


def text_heatmap(error: np.ndarray, bound: np.ndarray, *, max_width: int = 60) -> str:
    """A text heat map of ``|error| / bound`` over the spatial positions, at most 12 rows.

    Arrays (A, B, S…) are summed over the first two axes (batch/filters and channels), as
    ``Σ|error| / Σbound`` per position; 3-d positions are max-projected over depth (the first
    spatial axis); 1-d positions, and 1-d arrays like db, are one row.  Blocks of cells are
    merged by their maximum to fit.  Ramp ``" .:-=+*#%@"``: a space is within the bound, then
    nine steps on a log scale from the bound to the largest ratio.
    """
    err = np.abs(np.asarray(error)).astype(np.float64)
    bnd = np.broadcast_to(np.asarray(bound, dtype=np.float64), err.shape)
    how = []
    if err.ndim >= 3:
        err, bnd = err.sum(axis=(0, 1)), bnd.sum(axis=(0, 1))
        how.append("summed over batch/filters and channels")
    grid = error_over_bound(err, bnd)  # error over a zero bound: inf
    if grid.ndim == 3:
        grid = grid.max(axis=0)
        how.append("max over depth")
    grid = grid.reshape(1, -1) if grid.ndim < 2 else grid
    rows, cols = math.ceil(grid.shape[0] / 12), math.ceil(grid.shape[1] / max_width)
    if rows > 1 or cols > 1:
        merged = np.zeros((math.ceil(grid.shape[0] / rows) * rows,
                           math.ceil(grid.shape[1] / cols) * cols))
        merged[: grid.shape[0], : grid.shape[1]] = grid
        grid = merged.reshape(merged.shape[0] // rows, rows, -1, cols).max(axis=(1, 3))
        how.append(f"each cell the max of {rows}×{cols}")
    top = max(float(grid[np.isfinite(grid)].max(initial=0.0)), 1.0)
    span = math.log(top) if top > 1 else 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        level = 1 + np.floor(8.999 * np.log(np.minimum(grid, top)) / span)
    level = np.where(grid <= 1, 0, np.where(np.isinf(grid), 9, np.clip(level, 1, 9)))
    lines = ["|" + "".join(_RAMP[v] for v in row) + "|" for row in level.astype(int)]
    scale = f"'.' … '@' log scale up to {top:.2g} × bound" if top > 1 else "'@' beyond it"
    if np.isinf(grid).any():
        how.insert(0, "'@' also where the bound is 0")
    return "\n".join([*lines, f"legend: ' ' within bound, {scale}" + "".join(
        f"; {h}" for h in how)])
