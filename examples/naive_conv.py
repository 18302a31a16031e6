"""A correct hand-written N-d convolution layer: shift-and-add over the kernel taps.

This is the layer a careful person writes from the formulas, without a framework and without
gradcheck's own reference: one small Python loop over the ∏K kernel taps, and for each tap a
strided slice of the (padded) input and one channel contraction (``np.einsum``) that handles the
groups.  No Python loop touches the batch, the channels or the positions.

Shapes (channels first, d = 1, 2 or 3 spatial dims, G groups)::

    x (N, C, S…)    w (F, C/G, K…)    b (F,) or None    y, δ = dL/dy (N, F, O…)

Forward, with ``x_pad`` the input zero-padded by (lo, hi) per spatial dim::

    y[n, f, o] = b[f] + Σ_{c ∈ group(f)} Σ_t w[f, c', t] · x_pad[n, c, s·o + r·t]

Backward, with ``δ↑s`` the upstream gradient with s − 1 zeros between samples::

    db[f]        = Σ_{n, o} δ[n, f, o]
    dw[f, c', t] = Σ_{n, i} δ↑s[n, f, i] · x_pad[n, c, i + r·t]     (x_pad ⋆ δ↑s at lags r·t)
    dx_pad       = δ↑s * w↑r                                      (full convolution)
    dx           = dx_pad[lo : lo + S]                            (unreached tail stays 0)

Outputs have the dtype numpy's promotion gives the inputs that enter each formula (float32 in,
float32 out); complex inputs follow the same formulas, without conjugation.

Use it as ``gradcheck fuzz examples/naive_conv.py:layer``.  The deliberately wrong layers in
``examples/mistakes.py`` subclass :class:`NaiveConv` and override one method each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    from gradcheck.geometry.spec import ConvSpec


def spatial(*slices: slice) -> tuple[slice, ...]:
    """Index that keeps the batch and channel axes whole and slices the spatial ones."""
    return (slice(None), slice(None), *slices)


def pad(a: np.ndarray, padding: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Zero-pad the spatial axes of ``a`` (N, C, L…) by (lo, hi) each."""
    return np.pad(a, ((0, 0), (0, 0), *padding))


def zero_insert(a: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """``a↑s``: s − 1 zeros between neighbouring samples of each spatial axis.

    ``up[..., s·i] = a[..., i]``; a length L becomes ``(L − 1)·s + 1``.
    """
    sizes = tuple((length - 1) * s + 1 for length, s in zip(a.shape[2:], factors, strict=True))
    up = np.zeros(a.shape[:2] + sizes, dtype=a.dtype)
    up[spatial(*(slice(None, None, s) for s in factors))] = a
    return up


def flip(a: np.ndarray) -> np.ndarray:
    """Reverse every spatial axis: ``flip(k)[t] = k[K − 1 − t]``."""
    return a[spatial(*(slice(None, None, -1),) * (a.ndim - 2))]


def by_input_channel(w: np.ndarray, groups: int) -> np.ndarray:
    """The kernel seen from the input side: (F, C/G, K…) → (C, F/G, K…), group by group.

    ``out[g·(C/G) + c', j] = w[g·(F/G) + j, c']``: the transpose of each group's block.
    """
    f, c_g = w.shape[:2]
    taps = w.shape[2:]
    w_g = w.reshape(groups, f // groups, c_g, *taps)
    return w_g.swapaxes(1, 2).reshape(groups * c_g, f // groups, *taps)


def correlate(
    a: np.ndarray,
    kernel: np.ndarray,
    groups: int,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> np.ndarray:
    """Grouped, strided, dilated cross-correlation, one kernel tap at a time.

    Parameters
    ----------
    a : (N, C, L…)
        Already padded.
    kernel : (F, C/G, K…)

    Returns
    -------
    (N, F, O…) with ``O = floor((L − r·(K − 1) − 1) / s) + 1``, in the promoted dtype.

    Notes
    -----
    ``out[n, f, o] = Σ_{c ∈ group(f)} Σ_t kernel[f, c', t] · a[n, c, s·o + r·t]``; filter f
    belongs to group ``f // (F/G)`` and sees the input channels ``g·(C/G) + c'``.
    """
    n = a.shape[0]
    f, c_g = kernel.shape[:2]
    taps = kernel.shape[2:]
    out_sizes = tuple(
        (length - r * (k - 1) - 1) // s + 1
        for length, k, r, s in zip(a.shape[2:], taps, dilation, stride, strict=True)
    )
    kernel_g = kernel.reshape(groups, f // groups, c_g, *taps)
    out = np.zeros(
        (n, groups, f // groups, int(np.prod(out_sizes))), dtype=np.result_type(a, kernel)
    )
    for t in np.ndindex(*taps):
        # a[n, c, s·o + r·t] for every output position o at once
        window = a[
            spatial(
                *(slice(r * i, r * i + s * (o - 1) + 1, s)
                  for i, r, s, o in zip(t, dilation, stride, out_sizes, strict=True))
            )
        ]
        window_g = window.reshape(n, groups, c_g, -1)
        out += np.einsum("ngcp,gfc->ngfp", window_g, kernel_g[(..., *t)])
    return out.reshape(n, f, *out_sizes)


class NaiveConv:
    """Convolution layer (deep-learning convention) with hand-derived gradients.

    Supports 1-3 spatial dims, any stride, asymmetric padding, dilation, groups, optional bias,
    and float32, float64 and complex128 inputs.  :meth:`backward` delegates to
    :meth:`grad_input`, :meth:`grad_weight` and :meth:`grad_bias`, which subclasses override.
    """

    # Omitted keys mean "everything"; the dtypes are spelt out because they are a claim.
    supports: ClassVar[dict[str, object]] = {"dtypes": ("float32", "float64", "complex128")}

    def forward(
        self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec
    ) -> np.ndarray:
        """``y[n, f, o] = b[f] + Σ_{c ∈ group(f)} Σ_t w[f, c', t] · x_pad[n, c, s·o + r·t]``.

        Parameters
        ----------
        x : (N, C, S…)
        w : (F, C/G, K…)
        b : (F,) or None
        spec : ConvSpec

        Returns
        -------
        y : (N, F, O…)
        """
        y = correlate(pad(x, spec.padding), w, spec.groups, spec.stride, spec.dilation)
        if b is not None:
            y = y + b.reshape((1, -1) + (1,) * spec.dims)
        return y

    def backward(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Gradients ``(dx, dw, db)`` given ``dy = δ = dL/dy``; ``db`` is None without a bias."""
        dx = self.grad_input(dy, x, w, spec)
        dw = self.grad_weight(dy, x, w, spec)
        db = None if b is None else self.grad_bias(dy, b)
        return dx, dw, db

    def grad_input(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        """``dx = (δ↑s * w↑r)[lo : lo + S]``: full convolution of δ↑s with the dilated kernel.

        The full convolution is a correlation of δ↑s, padded by the dilated kernel extent
        ``E − 1 = r·(K − 1)`` on both sides, with the *flipped* kernel (channels swapped, group
        by group).  It covers ``x_pad`` from its start; positions after it (the tail that no
        window reaches when the stride does not tile the input exactly) get 0.  Then the padding
        is cropped off: ``dx = dx_pad[lo : lo + S]``.

        Returns
        -------
        dx : (N, C, S…)
        """
        ones = (1,) * spec.dims
        extent = tuple(r * (k - 1) + 1 for r, k in zip(spec.dilation, w.shape[2:], strict=True))
        delta_up = zero_insert(dy, spec.stride)  # δ↑s
        delta_full = pad(delta_up, tuple((e - 1, e - 1) for e in extent))
        w_flipped = flip(by_input_channel(w, spec.groups))  # (C, F/G, K…)
        dx_reached = correlate(delta_full, w_flipped, spec.groups, ones, spec.dilation)
        padded = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], spec.padding, strict=True))
        dx_pad = np.zeros(x.shape[:2] + padded, dtype=dx_reached.dtype)
        dx_pad[spatial(*(slice(0, m) for m in dx_reached.shape[2:]))] = dx_reached
        crop = tuple(
            slice(lo, lo + s) for (lo, _), s in zip(spec.padding, x.shape[2:], strict=True)
        )
        return np.ascontiguousarray(dx_pad[spatial(*crop)])

    def grad_weight(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        """``dw[f, c', t] = Σ_{n, i} δ↑s[n, f, i] · x_pad[n, c, i + r·t]``: x_pad ⋆ δ↑s at lags r·t.

        For each tap t, the window of ``x_pad`` starting at the lag ``r·t`` and as long as δ↑s
        is contracted with δ↑s over batch and positions, within each group (c ∈ group(f)).

        Returns
        -------
        dw : (F, C/G, K…)
        """
        n, groups = x.shape[0], spec.groups
        f, c_g = w.shape[:2]
        delta_up = zero_insert(dy, spec.stride)  # δ↑s, (N, F, L…)
        length = delta_up.shape[2:]
        delta_g = delta_up.reshape(n, groups, f // groups, -1)  # filter f = g·(F/G) + j
        x_pad = pad(x, spec.padding)
        dw = np.zeros(w.shape, dtype=np.result_type(dy, x))
        for t in np.ndindex(*w.shape[2:]):
            lag = tuple(r * i for r, i in zip(spec.dilation, t, strict=True))
            x_lag = x_pad[spatial(*(slice(a, a + m) for a, m in zip(lag, length, strict=True)))]
            x_g = x_lag.reshape(n, groups, c_g, -1)
            dw[(..., *t)] = np.einsum("ngcp,ngfp->gfc", x_g, delta_g).reshape(f, c_g)
        return dw

    def grad_bias(self, dy: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``db[f] = Σ_{n, o} δ[n, f, o]``: the bias is added at every position of every sample.

        Returns
        -------
        db : (F,)
        """
        return dy.sum(axis=(0, *range(2, dy.ndim)))


layer = NaiveConv()
