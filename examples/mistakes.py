"""Classic mistakes in hand-derived convolution backprop, one deliberately wrong layer each.

Every layer subclasses :class:`~examples.naive_conv.NaiveConv` and overrides one method with one
plausible wrong line, marked ``# MISTAKE``; the rest of the method is the correct code, so the
difference reads as a diff.  (``forward-convolves`` is the exception: a wrong *forward* needs a
backward to match it, so it overrides both.)  Each class carries ``mistake``, a stable name, and
its docstring says what the mistake is, what the right formula is and which configurations make
it visible.  ``MISTAKES`` maps every name to its layer::

    gradcheck fuzz examples/mistakes.py:no_flip

Notation as in ``examples/naive_conv.py``: ``δ↑s`` is δ with s − 1 zeros between samples,
``w↑r`` the dilated kernel, ``E = r·(K − 1) + 1`` its extent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from examples.naive_conv import (
    NaiveConv,
    by_input_channel,
    correlate,
    flip,
    pad,
    spatial,
    zero_insert,
)

if TYPE_CHECKING:
    from gradcheck.geometry.spec import ConvSpec

Grads = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]


def _paste_and_crop(dx_reached: np.ndarray, x: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The correct end of ``grad_input``: ``dx_pad[:len] = dx_reached``, then ``[lo : lo + S]``."""
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], spec.padding, strict=True))
    dx_pad = np.zeros(x.shape[:2] + padded, dtype=dx_reached.dtype)
    dx_pad[spatial(*(slice(0, m) for m in dx_reached.shape[2:]))] = dx_reached
    crop = tuple(slice(lo, lo + s) for (lo, _), s in zip(spec.padding, x.shape[2:], strict=True))
    return np.ascontiguousarray(dx_pad[spatial(*crop)])


def _extent(w: np.ndarray, spec: ConvSpec) -> tuple[int, ...]:
    """Dilated kernel extent ``E = r·(K − 1) + 1`` per spatial dim."""
    return tuple(r * (k - 1) + 1 for r, k in zip(spec.dilation, w.shape[2:], strict=True))


# --------------------------------------------------------------------------- dx: δ↑s * w↑r


class NoFlip(NaiveConv):
    """The kernel is not flipped: dx is δ↑s *correlated* with w↑r instead of convolved.

    Right: ``dx_pad = δ↑s * w↑r``, a full convolution, i.e. a correlation with ``flip(w↑r)``.
    Visible whenever some kernel size K > 1 (a 1-tap kernel is its own flip).
    """

    mistake = "kernel-not-flipped"

    def grad_input(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        extent = _extent(w, spec)
        delta_up = zero_insert(dy, spec.stride)
        delta_full = pad(delta_up, tuple((e - 1, e - 1) for e in extent))
        w_swapped = by_input_channel(w, spec.groups)  # MISTAKE: flip(...) forgotten
        dx_reached = correlate(delta_full, w_swapped, spec.groups, (1,) * spec.dims, spec.dilation)
        return _paste_and_crop(dx_reached, x, spec)


class StrideIgnoredDx(NaiveConv):
    """dx as if the stride were 1: δ is used densely, without the zeros of δ↑s.

    Right: ``dx_pad = δ↑s * w↑r`` with ``δ↑s[s·o] = δ[o]`` and zeros in between.
    Visible when some stride s > 1 in a dimension with more than one output position.
    """

    mistake = "stride-ignored-dx"

    def grad_input(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        extent = _extent(w, spec)
        delta_up = dy  # MISTAKE: zero_insert(dy, spec.stride) skipped
        delta_full = pad(delta_up, tuple((e - 1, e - 1) for e in extent))
        w_flipped = flip(by_input_channel(w, spec.groups))
        dx_reached = correlate(delta_full, w_flipped, spec.groups, (1,) * spec.dims, spec.dilation)
        return _paste_and_crop(dx_reached, x, spec)


class DilationIgnored(NaiveConv):
    """dx uses the undilated kernel: w instead of w↑r (and the 'full' padding K − 1, not E − 1).

    Right: ``dx_pad = δ↑s * w↑r``, taps ``r`` apart.
    Visible when some dilation r > 1 in a dimension with K > 1.
    """

    mistake = "dilation-ignored"

    def grad_input(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        ones = (1,) * spec.dims
        extent = w.shape[2:]  # MISTAKE: the kernel size K, not the dilated extent r·(K − 1) + 1
        delta_up = zero_insert(dy, spec.stride)
        delta_full = pad(delta_up, tuple((e - 1, e - 1) for e in extent))
        w_flipped = flip(by_input_channel(w, spec.groups))
        dx_reached = correlate(delta_full, w_flipped, spec.groups, ones, ones)  # MISTAKE: gap 1
        return _paste_and_crop(dx_reached, x, spec)


class PaddingCropSwapped(NaiveConv):
    """The padding is cropped off with lo and hi swapped: ``dx_pad[hi : hi + S]``.

    Right: ``dx = dx_pad[lo : lo + S]``: the input starts after the ``lo`` leading zeros.
    Visible when the padding is asymmetric (lo ≠ hi) in some dimension.
    """

    mistake = "padding-crop-swapped"

    def grad_input(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        extent = _extent(w, spec)
        delta_up = zero_insert(dy, spec.stride)
        delta_full = pad(delta_up, tuple((e - 1, e - 1) for e in extent))
        w_flipped = flip(by_input_channel(w, spec.groups))
        dx_reached = correlate(delta_full, w_flipped, spec.groups, (1,) * spec.dims, spec.dilation)
        padded = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], spec.padding, strict=True))
        dx_pad = np.zeros(x.shape[:2] + padded, dtype=dx_reached.dtype)
        dx_pad[spatial(*(slice(0, m) for m in dx_reached.shape[2:]))] = dx_reached
        crop = tuple(
            slice(hi, hi + s)  # MISTAKE: hi where lo belongs
            for (lo, hi), s in zip(spec.padding, x.shape[2:], strict=True)
        )
        return np.ascontiguousarray(dx_pad[spatial(*crop)])


class CropOffByOne(NaiveConv):
    """dx_pad is cropped one position early: every dx[i] holds dx_pad[lo − 1 + i].

    It comes from the classic off-by-one of the 'full' convolution: δ↑s padded by the kernel
    extent E on both sides instead of E − 1, which shifts the result by one; the person then
    trims the (now too long) result to x_pad's size so that the shapes fit.
    Right: pad by ``E − 1 = r·(K − 1)``, then ``dx = dx_pad[lo : lo + S]``.
    Visible whenever dx is not all zero (some window reads x): dx[0] gets 0 or a padding value.
    """

    mistake = "padding-not-cropped-offset"

    def grad_input(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        extent = _extent(w, spec)
        delta_up = zero_insert(dy, spec.stride)
        delta_full = pad(delta_up, tuple((e, e) for e in extent))  # MISTAKE: E, not E − 1
        w_flipped = flip(by_input_channel(w, spec.groups))
        dx_reached = correlate(delta_full, w_flipped, spec.groups, (1,) * spec.dims, spec.dilation)
        padded = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], spec.padding, strict=True))
        dx_reached = dx_reached[spatial(*(slice(0, p) for p in padded))]  # trimmed "to fit"
        return _paste_and_crop(dx_reached, x, spec)


class TailNotZeroed(NaiveConv):
    """The full convolution is right-aligned in dx_pad instead of left-aligned.

    When the stride does not tile the padded input exactly, ``(S + lo + hi − E) mod s ≠ 0``
    trailing positions are reached by no window and their gradient is 0; right-aligning shifts
    every gradient towards the end by that amount, giving the tail nonzero values.
    Right: ``dx_pad[:len(δ↑s * w↑r)] = δ↑s * w↑r``; the tail stays 0.
    Visible when ``(S + lo + hi − r·(K − 1) − 1) mod s ≠ 0`` in some dimension.
    """

    mistake = "tail-not-zeroed"

    def grad_input(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        extent = _extent(w, spec)
        delta_up = zero_insert(dy, spec.stride)
        delta_full = pad(delta_up, tuple((e - 1, e - 1) for e in extent))
        w_flipped = flip(by_input_channel(w, spec.groups))
        dx_reached = correlate(delta_full, w_flipped, spec.groups, (1,) * spec.dims, spec.dilation)
        padded = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], spec.padding, strict=True))
        dx_pad = np.zeros(x.shape[:2] + padded, dtype=dx_reached.dtype)
        end = tuple(
            slice(p - m, p)  # MISTAKE: aligned with the end of x_pad, not its start
            for p, m in zip(padded, dx_reached.shape[2:], strict=True)
        )
        dx_pad[spatial(*end)] = dx_reached
        crop = tuple(
            slice(lo, lo + s) for (lo, _), s in zip(spec.padding, x.shape[2:], strict=True)
        )
        return np.ascontiguousarray(dx_pad[spatial(*crop)])


class KernelTransposed(NaiveConv):
    """dx uses the flipped kernel with its spatial axes also transposed (rot180 mixed up with ᵀ).

    Right: ``flip(w)`` reverses every spatial axis and keeps their order.  In 1-d transposing is
    a no-op, and it needs a square (cubic) kernel for the shapes to fit, so this layer claims
    only 2-d and 3-d with square kernels.  Visible when K > 1 (the flipped kernel is almost never
    symmetric).
    """

    mistake = "kernel-transposed"
    supports: ClassVar[dict[str, object]] = {
        **NaiveConv.supports,
        "dims": (2, 3),
        "square_kernel": True,
    }

    def grad_input(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        extent = _extent(w, spec)
        delta_up = zero_insert(dy, spec.stride)
        delta_full = pad(delta_up, tuple((e - 1, e - 1) for e in extent))
        w_flipped = flip(by_input_channel(w, spec.groups))
        w_flipped = w_flipped.transpose(0, 1, *reversed(range(2, w.ndim)))  # MISTAKE
        dx_reached = correlate(delta_full, w_flipped, spec.groups, (1,) * spec.dims, spec.dilation)
        return _paste_and_crop(dx_reached, x, spec)


class SignFlipped(NaiveConv):
    """dx negated: the descent step's minus sign folded into the gradient.

    Right: ``dx = +(δ↑s * w↑r)[lo : lo + S]``; the optimiser subtracts, not the layer.
    Visible on every configuration.
    """

    mistake = "sign-flipped"

    def grad_input(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        return -super().grad_input(dy, x, w, spec)  # MISTAKE: "we go downhill"


# --------------------------------------------------------------------------- dw: x_pad ⋆ δ↑s


class DwConvolution(NaiveConv):
    """dw computed as a convolution: the lags are flipped, ``dw[t]`` holds the value of ``K−1−t``.

    Right: ``dw[f, c', t] = Σ δ↑s[n, f, i] · x_pad[n, c, i + r·t]``, a *correlation* read at
    the lags ``r·t`` (no flip: the flip belongs to dx only).
    Visible whenever some kernel size K > 1.
    """

    mistake = "dw-convolution"

    def grad_weight(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        n, groups = x.shape[0], spec.groups
        f, c_g = w.shape[:2]
        taps = w.shape[2:]
        delta_up = zero_insert(dy, spec.stride)
        length = delta_up.shape[2:]
        delta_g = delta_up.reshape(n, groups, f // groups, -1)
        x_pad = pad(x, spec.padding)
        dw = np.zeros(w.shape, dtype=np.result_type(dy, x))
        for t in np.ndindex(*taps):
            # MISTAKE: the convolution's lag r·(K − 1 − t) instead of the correlation's r·t
            lag = tuple(r * (k - 1 - i) for r, k, i in zip(spec.dilation, taps, t, strict=True))
            x_lag = x_pad[spatial(*(slice(a, a + m) for a, m in zip(lag, length, strict=True)))]
            x_g = x_lag.reshape(n, groups, c_g, -1)
            dw[(..., *t)] = np.einsum("ngcp,ngfp->gfc", x_g, delta_g).reshape(f, c_g)
        return dw


class StrideIgnoredDw(NaiveConv):
    """dw as if the stride were 1: δ correlated densely with x_pad, without the zeros of δ↑s.

    Right: ``dw[t] = Σ_o δ[o] · x_pad[s·o + r·t]``, i.e. correlate with δ↑s.
    Visible when some stride s > 1 in a dimension with more than one output position.
    """

    mistake = "stride-ignored-dw"

    def grad_weight(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        n, groups = x.shape[0], spec.groups
        f, c_g = w.shape[:2]
        delta_up = dy  # MISTAKE: zero_insert(dy, spec.stride) skipped
        length = delta_up.shape[2:]
        delta_g = delta_up.reshape(n, groups, f // groups, -1)
        x_pad = pad(x, spec.padding)
        dw = np.zeros(w.shape, dtype=np.result_type(dy, x))
        for t in np.ndindex(*w.shape[2:]):
            lag = tuple(r * i for r, i in zip(spec.dilation, t, strict=True))
            x_lag = x_pad[spatial(*(slice(a, a + m) for a, m in zip(lag, length, strict=True)))]
            x_g = x_lag.reshape(n, groups, c_g, -1)
            dw[(..., *t)] = np.einsum("ngcp,ngfp->gfc", x_g, delta_g).reshape(f, c_g)
        return dw


class GroupsCrossed(NaiveConv):
    """Filters assigned to groups round-robin (group ``f mod G``) in dw, not in blocks.

    Right: filter f belongs to group ``f // (F/G)`` (filters ``g·F/G … (g+1)·F/G − 1``), which is
    how the forward pass splits them; the wrong reshape puts filter ``j·G + g`` in group g.
    Visible when 1 < G < F (with G = 1 or G = F both rules agree).
    """

    mistake = "groups-crossed"

    def grad_weight(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        n, groups = x.shape[0], spec.groups
        f, c_g = w.shape[:2]
        delta_up = zero_insert(dy, spec.stride)
        length = delta_up.shape[2:]
        delta_g = delta_up.reshape(n, f // groups, groups, -1).swapaxes(1, 2)  # MISTAKE
        x_pad = pad(x, spec.padding)
        dw = np.zeros(w.shape, dtype=np.result_type(dy, x))
        for t in np.ndindex(*w.shape[2:]):
            lag = tuple(r * i for r, i in zip(spec.dilation, t, strict=True))
            x_lag = x_pad[spatial(*(slice(a, a + m) for a, m in zip(lag, length, strict=True)))]
            x_g = x_lag.reshape(n, groups, c_g, -1)
            dw[(..., *t)] = np.einsum("ngcp,ngfp->gfc", x_g, delta_g).reshape(f, c_g)
        return dw


class ChannelsSwapped(NaiveConv):
    """dw accumulated as (C/G, F) per tap and *reshaped*, not transposed, to (F, C/G).

    Right: ``dw[f, c', t]``, filter first; a reshape keeps the memory order, so the entries
    land on the wrong (filter, channel) pairs.
    Visible when both C/G > 1 and F/G > 1.
    """

    mistake = "channels-swapped"

    def grad_weight(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        n, groups = x.shape[0], spec.groups
        f, c_g = w.shape[:2]
        delta_up = zero_insert(dy, spec.stride)
        length = delta_up.shape[2:]
        delta_g = delta_up.reshape(n, groups, f // groups, -1)
        x_pad = pad(x, spec.padding)
        dw = np.zeros(w.shape, dtype=np.result_type(dy, x))
        for t in np.ndindex(*w.shape[2:]):
            lag = tuple(r * i for r, i in zip(spec.dilation, t, strict=True))
            x_lag = x_pad[spatial(*(slice(a, a + m) for a, m in zip(lag, length, strict=True)))]
            x_g = x_lag.reshape(n, groups, c_g, -1)
            dw[(..., *t)] = np.einsum("ngcp,ngfp->gcf", x_g, delta_g).reshape(f, c_g)  # MISTAKE
        return dw


class BatchAveraged(NaiveConv):
    """dw divided by the batch size N: a mean over the batch instead of the sum.

    Right: ``dw = Σ_n …``; L already is whatever the loss makes it, and if the loss averages
    over the batch, δ carries the 1/N.  Dividing again counts it twice.
    Visible when N > 1.
    """

    mistake = "batch-averaged"

    def grad_weight(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        return super().grad_weight(dy, x, w, spec) / x.shape[0]  # MISTAKE: mean over the batch


class ScaledByTwo(NaiveConv):
    """dw doubled: the factor 2 of d(y²)/dy applied again although δ already is dL/dy.

    Right: ``dw = x_pad ⋆ δ↑s`` exactly, with no factor: the layer is linear in w.
    Visible on every configuration.
    """

    mistake = "scaled-by-two"

    def grad_weight(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        return 2 * super().grad_weight(dy, x, w, spec)  # MISTAKE: d(y²)/dy = 2y, once too often


# --------------------------------------------------------------------------- db, dtype, forward


class BiasMeanOverPositions(NaiveConv):
    """db summed over the batch but *averaged* over the output positions.

    The bias is shared by all positions, which tempts one to average; but a shared parameter
    gets the *sum* of the gradients of all its uses.  Right: ``db[f] = Σ_{n, o} δ[n, f, o]``.
    Visible when the output has more than one position (∏O > 1) and there is a bias.
    """

    mistake = "bias-not-summed-spatially"

    def grad_bias(self, dy: np.ndarray, b: np.ndarray) -> np.ndarray:
        return dy.sum(axis=0).mean(axis=tuple(range(1, dy.ndim - 1)))  # MISTAKE: mean


class PrecisionLoss(NaiveConv):
    """Backward computed in float16 "to save memory": inputs cast down, results cast back.

    The formulas are right; the errors look like rounding noise of float16 (about 1e-3
    relative), far above float32's or float64's.  Right: compute in the inputs' precision.
    Visible on every float32 and float64 configuration; it claims only those (casting complex
    to float16 would drop the imaginary part).
    """

    mistake = "precision-loss"
    supports: ClassVar[dict[str, object]] = {"dtypes": ("float32", "float64")}

    def backward(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec
    ) -> Grads:
        half = np.float16  # MISTAKE: half precision for the whole backward pass
        b_half = None if b is None else b.astype(half)
        dx, dw, db = super().backward(dy.astype(half), x.astype(half), w.astype(half), b_half, spec)
        dx = dx.astype(np.result_type(dy, w))
        dw = dw.astype(np.result_type(dy, x))
        return dx, dw, None if db is None else db.astype(dy.dtype)


class ForwardConvolves(NaiveConv):
    """The forward computes a true convolution (kernel flipped); the backward matches it.

    ``y = b + x_pad * w`` (textbook signal-processing convolution) instead of the deep-learning
    cross-correlation ``y = b + x_pad ⋆ w``.  Its gradients are right *for its own forward*, so
    finite differences of this forward agree with them; only a comparison with the reference
    forward (or backward) catches it.  Visible whenever some kernel size K > 1.
    """

    mistake = "forward-convolves"

    def forward(
        self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec
    ) -> np.ndarray:
        return super().forward(x, flip(w), b, spec)  # MISTAKE: convolution, not correlation

    def backward(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec
    ) -> Grads:
        # correct for the forward above: y depends on flip(w), so dw = flip(d/d flip(w))
        dx, dw_flipped, db = super().backward(dy, x, flip(w), b, spec)
        return dx, np.ascontiguousarray(flip(dw_flipped)), db


no_flip = NoFlip()
dw_convolution = DwConvolution()
stride_ignored_dx = StrideIgnoredDx()
stride_ignored_dw = StrideIgnoredDw()
dilation_ignored = DilationIgnored()
padding_crop_swapped = PaddingCropSwapped()
crop_off_by_one = CropOffByOne()
tail_not_zeroed = TailNotZeroed()
groups_crossed = GroupsCrossed()
batch_averaged = BatchAveraged()
bias_mean_over_positions = BiasMeanOverPositions()
kernel_transposed = KernelTransposed()
channels_swapped = ChannelsSwapped()
sign_flipped = SignFlipped()
scaled_by_two = ScaledByTwo()
precision_loss = PrecisionLoss()
forward_convolves = ForwardConvolves()

MISTAKES: dict[str, NaiveConv] = {
    layer.mistake: layer
    for layer in (
        no_flip,
        dw_convolution,
        stride_ignored_dx,
        stride_ignored_dw,
        dilation_ignored,
        padding_crop_swapped,
        crop_off_by_one,
        tail_not_zeroed,
        groups_crossed,
        batch_averaged,
        bias_mean_over_positions,
        kernel_transposed,
        channels_swapped,
        sign_flipped,
        scaled_by_two,
        precision_loss,
        forward_convolves,
    )
}
