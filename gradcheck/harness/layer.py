"""The Layer protocol and adapters from the shapes user code comes in.

A convolution layer is any object with::

    forward(x, w, b, spec) -> y
    backward(dy, x, w, b, spec) -> (dx, dw, db)      # db is None when b is None

and an optional attribute ``supports`` (a :class:`gradcheck.Supports` or a dict with its keys)
saying which configurations it handles.  Adapters turn other conventions into layers: a pair
of plain functions, the cs231n ``(out, cache)`` pair, torch ``Conv1d/2d/3d`` and
``torch.autograd.Function`` subclasses (torch is imported only when those are used).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gradcheck.errors import invalid, invalid_type
from gradcheck.geometry.spec import ConvSpec
from gradcheck.geometry.supports import Supports


@runtime_checkable
class Layer(Protocol):
    """What gradcheck checks: a forward and its hand-written backward."""

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                spec: ConvSpec) -> np.ndarray: ...

    def backward(self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                 spec: ConvSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]: ...


def as_layer(obj: Any, name: str = "layer") -> Layer:
    """Return ``obj`` if it follows the Layer protocol, else raise naming what is missing."""
    missing = [m for m in ("forward", "backward") if not callable(getattr(obj, m, None))]
    if missing:
        raise invalid_type(
            name, obj,
            f"expected a layer with forward(x, w, b, spec) and backward(dy, x, w, b, spec); "
            f"missing {', '.join(missing)} (adapters: gradcheck.layer_from_functions, "
            "layer_from_cs231n, layer_from_torch)",
        )
    return obj


def supports_of(layer: Any, **overrides: Any) -> Supports:
    """The layer's support claim (``layer.supports``; everything if absent), with overrides.

    A family the layer declares itself wins over an override (``--family`` only picks the
    protocol of a layer that does not say).
    """
    claim = Supports.from_claim(getattr(layer, "supports", None))
    if claim.family != "conv":
        overrides.pop("family", None)
    return claim.restrict(**overrides)


def describe_layer(layer: Any) -> str:
    """``module:name`` of the user's own object behind ``layer``.

    An adapter is named by what it wraps (the user's forward function, torch module or
    Function), a class by itself, an instance by its class with ``()``.
    """
    for attribute in ("forward_fn", "call"):
        inner = getattr(layer, attribute, None)
        if inner is not None:
            return describe_layer(inner)
    name = getattr(layer, "__qualname__", None)
    if name is not None:
        return f"{getattr(layer, '__module__', '?')}:{name}"
    kind = type(layer)
    return f"{kind.__module__}:{kind.__qualname__}()"


@dataclass(frozen=True)
class FunctionLayer:
    """A layer made of two plain functions with the protocol's signatures."""

    forward_fn: Callable[..., np.ndarray]
    backward_fn: Callable[..., tuple[Any, Any, Any]]
    supports: Supports | Mapping[str, Any] | None = None

    def forward(self, x, w, b, spec):
        return self.forward_fn(x, w, b, spec)

    def backward(self, dy, x, w, b, spec):
        return self.backward_fn(dy, x, w, b, spec)


def layer_from_functions(
    forward: Callable[..., np.ndarray],
    backward: Callable[..., tuple[Any, Any, Any]],
    supports: Supports | Mapping[str, Any] | None = None,
) -> FunctionLayer:
    """Make a layer from ``forward(x, w, b, spec)`` and ``backward(dy, x, w, b, spec)``."""
    for name, fn in (("forward", forward), ("backward", backward)):
        if not callable(fn):
            raise invalid_type(name, fn, "expected a callable")
    return FunctionLayer(forward, backward, supports)


#: The cs231n convention: 2-d, one stride and one symmetric padding for both dims, no
#: dilation or groups, always a bias.
CS231N_SUPPORTS = Supports(dims=(2,), dilation=False, groups=False, padding="symmetric",
                           uniform=True, bias=True)


@dataclass(frozen=True)
class Cs231nLayer:
    """Adapter for ``conv_forward(x, w, b, conv_param) -> (out, cache)`` and
    ``conv_backward(dout, cache) -> (dx, dw, db)`` with ``conv_param = {'stride', 'pad'}``.

    A missing bias is passed as zeros and its gradient dropped.
    """

    forward_fn: Callable[..., tuple[np.ndarray, Any]]
    backward_fn: Callable[..., tuple[Any, Any, Any]]
    supports: Supports = CS231N_SUPPORTS

    @staticmethod
    def conv_param(spec: ConvSpec) -> dict[str, int]:
        (lo, hi), stride = spec.padding[0], spec.stride[0]
        if spec.dims != 2 or lo != hi or len(set(spec.padding)) != 1 or len(set(spec.stride)) != 1:
            raise invalid("spec", spec, "the cs231n convention needs 2-d, one stride, one "
                          "symmetric padding")
        if spec.groups != 1 or set(spec.dilation) != {1}:
            raise invalid("spec", spec, "the cs231n convention has no groups or dilation")
        return {"stride": stride, "pad": lo}

    def forward(self, x, w, b, spec):
        bias = np.zeros(w.shape[0], dtype=w.dtype) if b is None else b
        out, _ = self.forward_fn(x, w, bias, self.conv_param(spec))
        return out

    def backward(self, dy, x, w, b, spec):
        bias = np.zeros(w.shape[0], dtype=w.dtype) if b is None else b
        _, cache = self.forward_fn(x, w, bias, self.conv_param(spec))
        dx, dw, db = self.backward_fn(dy, cache)
        return dx, dw, None if b is None else db


def layer_from_cs231n(
    forward: Callable[..., tuple[np.ndarray, Any]],
    backward: Callable[..., tuple[Any, Any, Any]],
    supports: Supports | Mapping[str, Any] | None = None,
) -> Cs231nLayer:
    """Make a layer from a cs231n-style ``conv_forward`` / ``conv_backward`` pair."""
    claim = CS231N_SUPPORTS if supports is None else Supports.from_claim(supports)
    return Cs231nLayer(forward, backward, claim)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError(
            "the torch adapter needs PyTorch: pip install 'gradcheck[torch]'"
        ) from None
    return torch


class TorchLayer:
    """Adapter for torch: the forward runs ``call(x, w, b, spec)`` on tensors and the backward
    is torch.autograd's vector-Jacobian product of it.

    Build one with :func:`layer_from_torch`.
    """

    def __init__(self, call: Callable[..., Any], supports: Supports | Mapping | None = None):
        self.call = call
        self.supports = Supports.from_claim(supports).restrict(
            dtypes=("float64", "float32")) if supports is None else supports

    def _run(self, x, w, b, spec, requires_grad: bool):
        torch = _torch()
        tensors = [torch.from_numpy(np.array(a)).requires_grad_(requires_grad)
                   for a in (x, w) + (() if b is None else (b,))]
        return tensors, self.call(*tensors[:2], tensors[2] if b is not None else None, spec)

    def forward(self, x, w, b, spec):
        _, y = self._run(x, w, b, spec, requires_grad=False)
        return y.detach().numpy()

    def backward(self, dy, x, w, b, spec):
        torch = _torch()
        tensors, y = self._run(x, w, b, spec, requires_grad=True)
        grads = torch.autograd.grad(y, tensors, torch.from_numpy(np.array(dy)),
                                    allow_unused=True)
        out = [np.zeros(t.shape, dtype=x.dtype) if g is None else g.numpy() for t, g in
               zip(tensors, grads)]
        return out[0], out[1], out[2] if b is not None else None


def _functional_conv(dims: int) -> Callable[..., Any]:
    functional = _torch().nn.functional
    return (functional.conv1d, functional.conv2d, functional.conv3d)[dims - 1]


def _torch_module_call(module_type: type) -> tuple[Callable[..., Any], int]:
    torch = _torch()
    dims = {torch.nn.Conv1d: 1, torch.nn.Conv2d: 2, torch.nn.Conv3d: 3}[module_type]

    def call(x, w, b, spec):
        pads = [amount for lo_hi in reversed(spec.padding) for amount in lo_hi]
        return _functional_conv(spec.dims)(
            torch.nn.functional.pad(x, pads), w, b, stride=spec.stride,
            dilation=spec.dilation, groups=spec.groups,
        )

    return call, dims


def layer_from_torch(
    obj: Any,
    *,
    call: Callable[..., Any] | None = None,
    supports: Supports | Mapping[str, Any] | None = None,
) -> TorchLayer:
    """Make a layer from torch code; torch is imported only here.

    Parameters
    ----------
    obj : torch.nn.Conv1d/2d/3d (class or instance) or a torch.autograd.Function subclass
        A module type is run functionally with the fuzzed geometry and weights
        (asymmetric padding through ``F.pad``).  A Function is called as
        ``obj.apply(x, w, b, spec)`` unless ``call`` says otherwise.
    call : callable, optional
        ``call(x, w, b, spec) -> y`` on tensors, for any other calling convention.
    supports : Supports or dict, optional
        The claim; by default 1-d/2-d/3-d for a Function, the module's dims for a module.
    """
    torch = _torch()
    module_type = obj if isinstance(obj, type) else type(obj)
    if issubclass(module_type, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
        base = next(t for t in (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
                    if issubclass(module_type, t))
        default_call, dims = _torch_module_call(base)
        claim = supports if supports is not None else Supports(
            dims=(dims,), dtypes=("float64", "float32"))
        return TorchLayer(call or default_call, claim)
    if isinstance(obj, type) and issubclass(obj, torch.autograd.Function):
        function: Any = obj
        return TorchLayer(call or (lambda x, w, b, spec: function.apply(x, w, b, spec)),
                          supports)
    if call is not None:
        return TorchLayer(call, supports)
    raise invalid_type("obj", obj, "expected torch.nn.Conv1d/2d/3d or a "
                       "torch.autograd.Function subclass (or pass call=...)")
