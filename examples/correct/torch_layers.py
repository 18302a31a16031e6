"""Correct layers computed by PyTorch on the CPU, contiguous and channels_last — torch optional.

``torch_layers()`` returns ``{}`` when torch is not installed, so importing this module (and
``examples.correct``) never needs torch.  The backward is torch.autograd's; the forward is
``torch.nn.functional.conv{1,2,3}d`` after ``F.pad`` for asymmetric padding, through
:func:`gradcheck.layer_from_torch`.  ``channels_last`` runs the 2-d (3-d) convolution on x and w
stored as NHWC (NDHWC), which sends PyTorch's CPU backend down its other kernels
(oneDNN / blocked im2col).  Both are direct sums, so ``rounding="entrywise"``.
"""

from __future__ import annotations

from typing import Any


def _channels_last_call(dims: int) -> Any:
    import torch

    functional = torch.nn.functional
    conv = {2: functional.conv2d, 3: functional.conv3d}[dims]
    memory = {2: torch.channels_last, 3: torch.channels_last_3d}[dims]

    def call(x: Any, w: Any, b: Any, spec: Any) -> Any:
        pads = [amount for lo_hi in reversed(spec.padding) for amount in lo_hi]
        x_nhwc = functional.pad(x, pads).contiguous(memory_format=memory)
        return conv(x_nhwc, w.contiguous(memory_format=memory), b, stride=spec.stride,
                    dilation=spec.dilation, groups=spec.groups)

    return call


def torch_layers() -> dict[str, Any]:
    """``{name: layer}`` for torch's Conv1d/2d/3d and the channels_last 2-d and 3-d ones."""
    try:
        import torch
    except ImportError:
        return {}
    from gradcheck.harness.layer import layer_from_torch

    layers: dict[str, Any] = {}
    for dims, module in ((1, torch.nn.Conv1d), (2, torch.nn.Conv2d), (3, torch.nn.Conv3d)):
        layers[f"torch-conv{dims}d"] = layer_from_torch(module)
    for dims in (2, 3):
        layers[f"torch-conv{dims}d-channels-last"] = layer_from_torch(
            torch.autograd.Function, call=_channels_last_call(dims),
            supports={"dims": (dims,), "dtypes": ("float64", "float32")})
    return layers
