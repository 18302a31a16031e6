"""Classic mistakes in transposed convolution and pooling backprop, one wrong layer each.

Every layer subclasses a correct layer of :mod:`examples.family_layers` and overrides one hook
with one plausible wrong line, marked ``# MISTAKE``.  ``mistake`` is the name the catalogue
(:mod:`gradcheck.explain.family_mistakes`) gives it; ``FAMILY_MISTAKES`` maps each name to its
layer::

    gradcheck fuzz examples/family_mistakes.py:kernel_not_flipped

Max pooling's "gradient to every tie" needs tied data, where max pooling has no gradient; on
the tie-free data gradcheck draws its visible cousin is "max-pool-gradient-to-every-window-entry".
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from examples.family_layers import Spec, TapAvgPool, TapConvTranspose, TapMaxPool

# --------------------------------------------------------------------------- transposed


class OutputPaddingIgnored(TapConvTranspose):
    """Computes O − a positions and pads the output padding with zeros (no taps, no bias)."""

    mistake: ClassVar[str] = "transpose-output-padding-ignored"

    def forward(self, x, w, b, spec):
        y = super().forward(x, w, b, spec)
        for axis, a in enumerate(spec.output_padding):
            if a:
                index = [slice(None)] * y.ndim
                index[2 + axis] = slice(y.shape[2 + axis] - a, None)
                y[tuple(index)] = 0  # MISTAKE: the output padding holds taps and the bias too
        return y

    def backward(self, dy, x, w, b, spec):
        dy = dy.copy()
        for axis, a in enumerate(spec.output_padding):
            if a:
                index = [slice(None)] * dy.ndim
                index[2 + axis] = slice(dy.shape[2 + axis] - a, None)
                dy[tuple(index)] = 0  # MISTAKE: consistent with the forward above
        return super().backward(dy, x, w, b, spec)


class KernelNotFlipped(TapConvTranspose):
    """dx pairs δ_full[s·i + r·t] with the flipped tap K − 1 − t."""

    mistake: ClassVar[str] = "transpose-kernel-not-flipped"

    def dx_weight(self, wg, t):
        flipped = tuple(k - 1 - ti for k, ti in zip(wg.shape[3:], t))
        return wg[(..., *flipped)]  # MISTAKE: the backward of a transposed conv does not flip


class ChannelsSwapped(TapConvTranspose):
    """dw built per output channel, (C_out, C_in/G, K…), and reshaped into w's layout."""

    mistake: ClassVar[str] = "transpose-in-out-channel-axes-swapped"

    def dw_layout(self, dw, w):
        return dw.swapaxes(1, 2).reshape(w.shape)  # MISTAKE: conv layout reshaped, not moved


class StrideIgnored(TapConvTranspose):
    """The backward reads δ_full at i + r·t."""

    mistake: ClassVar[str] = "transpose-stride-ignored"

    def gather_stride(self, spec):
        return (1,) * spec.dims  # MISTAKE: the forward scattered with stride s


class DilationIgnored(TapConvTranspose):
    """The backward reads δ_full at s·i + t."""

    mistake: ClassVar[str] = "transpose-dilation-ignored"

    def gather_start(self, t, spec):
        return tuple(t)  # MISTAKE: tap t sits at r·t


class GroupsMixed(TapConvTranspose):
    """dx of group g reads δ of group g + 1."""

    mistake: ClassVar[str] = "transpose-groups-mixed"

    def dx_delta(self, delta):
        return np.roll(delta, -1, axis=1)  # MISTAKE: groups are independent


class CropWrongSide(TapConvTranspose):
    """Crops hi from the start of the full result (and reads δ there in the backward)."""

    mistake: ClassVar[str] = "transpose-crop-on-the-wrong-side"

    def crop_start(self, spec):
        return tuple(hi for _, hi in spec.padding)  # MISTAKE: lo comes off the start

    def full_size(self, x, w, spec):
        out = spec.output_size(x.shape[2:], w.shape[2:])
        return tuple(max(size, hi + o) for size, (_, hi), o in
                     zip(super().full_size(x, w, spec), spec.padding, out))


# --------------------------------------------------------------------------- max pooling


class EveryWindowEntry(TapMaxPool):
    """δ to every entry of the window, as if each were the maximum."""

    mistake: ClassVar[str] = "max-pool-gradient-to-every-window-entry"

    def backward(self, dy, x, spec):
        return _Unit().backward(dy, x, spec)  # MISTAKE: only the argmax gets δ


class _Unit(TapAvgPool):
    def divisor(self, x: np.ndarray, spec: Spec) -> np.ndarray:
        return np.ones(spec.output_size(x.shape[2:]), dtype=np.int64)


class FixedPosition(TapMaxPool):
    """δ to the first tap of every window."""

    mistake: ClassVar[str] = "max-pool-gradient-to-a-fixed-window-position"

    def winners(self, x, spec):
        return np.zeros(x.shape[:2] + spec.output_size(x.shape[2:]), dtype=np.intp)  # MISTAKE


class Overwrite(TapMaxPool):
    """``dx[positions] = δ``: where windows share a maximum, one δ survives."""

    mistake: ClassVar[str] = "max-pool-overwrite-instead-of-accumulate"

    def route(self, dx, index, dy):
        dx[index] = dy  # MISTAKE: repeated positions keep only the last δ


class RoutingStrideIgnored(TapMaxPool):
    """Routes window o to o − lo + r·t*."""

    mistake: ClassVar[str] = "max-pool-stride-ignored-in-the-routing"

    def positions(self, x, spec):
        # MISTAKE: the window start is s·o − lo, not o − lo
        return [p - (s - 1) * np.arange(p.shape[2 + d]).reshape(
            [1] * (2 + d) + [-1] + [1] * (spec.dims - d - 1))
            for d, (p, s) in enumerate(zip(super().positions(x, spec), spec.stride))]


class RoutingPaddingOffset(TapMaxPool):
    """Routes window o to s·o + r·t*, an index of the padded input."""

    mistake: ClassVar[str] = "max-pool-padding-offset-in-the-routing"

    def positions(self, x, spec):
        # MISTAKE: the padded index s·o + r·t* is not the input index s·o − lo + r·t*
        return [p + lo for p, (lo, _) in zip(super().positions(x, spec), spec.padding)]


# --------------------------------------------------------------------------- average pooling


class PadNeverCounted(TapAvgPool):
    """Divides by the window's input positions even with count_include_pad."""

    mistake: ClassVar[str] = "avg-pool-padding-never-counted-in-the-divisor"

    def counts(self, size, out, k, s, r, lo, hi, include_pad):
        return super().counts(size, out, k, s, r, lo, hi, False)  # MISTAKE: flag ignored


class PadAlwaysCounted(TapAvgPool):
    """Divides by the window's padded-input positions even without count_include_pad."""

    mistake: ClassVar[str] = "avg-pool-padding-counted-in-the-divisor"

    def counts(self, size, out, k, s, r, lo, hi, include_pad):
        return super().counts(size, out, k, s, r, lo, hi, True)  # MISTAKE: flag ignored


class KernelSizeDivisor(TapAvgPool):
    """Divides every window by K (the first kernel size), not by its size."""

    mistake: ClassVar[str] = "avg-pool-k-instead-of-prod-k"

    def divisor(self, x, spec):
        # MISTAKE: a window of a d-dim pooling has ∏K taps (less what it leaves out)
        return np.full(spec.output_size(x.shape[2:]), spec.kernel_size[0])


class PartialWindowsFull(TapAvgPool):
    """Counts every tap of ceil_mode's partial windows, also those past the padded input."""

    mistake: ClassVar[str] = "avg-pool-partial-windows-divided-by-the-full-size"

    def counts(self, size, out, k, s, r, lo, hi, include_pad):
        if include_pad:
            return np.full(out, k)  # MISTAKE: the last window may reach past S + hi
        return super().counts(size, out, k, s, r, lo, hi, include_pad)


_CLASSES = (OutputPaddingIgnored, KernelNotFlipped, ChannelsSwapped, StrideIgnored,
            DilationIgnored, GroupsMixed, CropWrongSide, EveryWindowEntry, FixedPosition,
            Overwrite, RoutingStrideIgnored, RoutingPaddingOffset, PadNeverCounted,
            PadAlwaysCounted, KernelSizeDivisor, PartialWindowsFull)

#: Every family mistake by name, a layer instance each.
FAMILY_MISTAKES = {cls.mistake: cls() for cls in _CLASSES}

output_padding_ignored = FAMILY_MISTAKES["transpose-output-padding-ignored"]
kernel_not_flipped = FAMILY_MISTAKES["transpose-kernel-not-flipped"]
channels_swapped = FAMILY_MISTAKES["transpose-in-out-channel-axes-swapped"]
stride_ignored = FAMILY_MISTAKES["transpose-stride-ignored"]
dilation_ignored = FAMILY_MISTAKES["transpose-dilation-ignored"]
groups_mixed = FAMILY_MISTAKES["transpose-groups-mixed"]
crop_wrong_side = FAMILY_MISTAKES["transpose-crop-on-the-wrong-side"]
every_window_entry = FAMILY_MISTAKES["max-pool-gradient-to-every-window-entry"]
fixed_position = FAMILY_MISTAKES["max-pool-gradient-to-a-fixed-window-position"]
overwrite = FAMILY_MISTAKES["max-pool-overwrite-instead-of-accumulate"]
routing_stride_ignored = FAMILY_MISTAKES["max-pool-stride-ignored-in-the-routing"]
routing_padding_offset = FAMILY_MISTAKES["max-pool-padding-offset-in-the-routing"]
pad_never_counted = FAMILY_MISTAKES["avg-pool-padding-never-counted-in-the-divisor"]
pad_always_counted = FAMILY_MISTAKES["avg-pool-padding-counted-in-the-divisor"]
kernel_size_divisor = FAMILY_MISTAKES["avg-pool-k-instead-of-prod-k"]
partial_windows_full = FAMILY_MISTAKES["avg-pool-partial-windows-divided-by-the-full-size"]

