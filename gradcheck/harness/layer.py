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
    for attribute in ("wrapped", "forward_fn", "call"):
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
) -> Any:
    """Make a layer from torch code; torch is imported only here.

    Parameters
    ----------
    obj : torch.nn.Conv1d/2d/3d, ConvTranspose1d/2d/3d, MaxPool1d/2d/3d, AvgPool1d/2d/3d
        (class or instance), or a torch.autograd.Function subclass
        A module type is run functionally with the fuzzed geometry and weights
        (asymmetric padding through ``F.pad``, or by cropping the transposed convolution's
        full result; torch's pools pad symmetrically and average without dilation, and say
        so in their claim).  A Function is called as
        ``obj.apply(x, w, b, spec)`` unless ``call`` says otherwise.
    call : callable, optional
        ``call(x, w, b, spec) -> y`` on tensors, for any other calling convention.
    supports : Supports or dict, optional
        The claim; by default 1-d/2-d/3-d for a Function, the module's dims for a module.
    """
    layer = _torch_layer(obj, call, supports)
    layer.wrapped = obj  # the report names the user's module or Function, not the adapter
    return layer


def _torch_layer(obj: Any, call: Callable[..., Any] | None,
                 supports: Supports | Mapping[str, Any] | None) -> Any:
    torch = _torch()
    module_type = obj if isinstance(obj, type) else type(obj)
    if issubclass(module_type, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
        base = next(t for t in (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
                    if issubclass(module_type, t))
        default_call, dims = _torch_module_call(base)
        claim = supports if supports is not None else Supports(
            dims=(dims,), dtypes=("float64", "float32"))
        return TorchLayer(call or default_call, claim)
    family_layer = _family_from_torch(obj, call, supports)
    if family_layer is not None:
        return family_layer
    if isinstance(obj, type) and issubclass(obj, torch.autograd.Function):
        function: Any = obj
        return TorchLayer(call or (lambda x, w, b, spec: function.apply(x, w, b, spec)),
                          supports)
    if call is not None:
        return TorchLayer(call, supports)
    raise invalid_type("obj", obj, "expected torch.nn.Conv1d/2d/3d or a "
                       "torch.autograd.Function subclass (or pass call=...)")


# --------------------------------------------------------------------------- the family


def _family_module_types(torch: Any) -> dict[type, tuple[str, int]]:
    nn = torch.nn
    return {nn.ConvTranspose1d: ("conv_transpose", 1), nn.ConvTranspose2d: ("conv_transpose", 2),
            nn.ConvTranspose3d: ("conv_transpose", 3), nn.MaxPool1d: ("max_pool", 1),
            nn.MaxPool2d: ("max_pool", 2), nn.MaxPool3d: ("max_pool", 3),
            nn.AvgPool1d: ("avg_pool", 1), nn.AvgPool2d: ("avg_pool", 2),
            nn.AvgPool3d: ("avg_pool", 3)}


def _conv_transpose_call(x: Any, w: Any, b: Any, spec: Any) -> Any:
    """``F.conv_transpose{d}d`` with asymmetric padding: the full result (torch's output
    padding only where ours reaches past it, ``max(0, a − hi)``), then ``[lo : lo + O]``."""
    torch = _torch()
    fn = (torch.nn.functional.conv_transpose1d, torch.nn.functional.conv_transpose2d,
          torch.nn.functional.conv_transpose3d)[spec.dims - 1]
    extra = tuple(max(0, a - hi) for a, (_, hi) in zip(spec.output_padding, spec.padding))
    full = fn(x, w, b, stride=spec.stride, padding=0, output_padding=extra,
              groups=spec.groups, dilation=spec.dilation)
    out = spec.output_size(x.shape[2:], w.shape[2:])
    crop = tuple(slice(lo, lo + o) for (lo, _), o in zip(spec.padding, out))
    index = (slice(None), slice(None), *crop)
    return full[index]


def _pool_call(family: str) -> Callable[..., Any]:
    """torch's ``{max,avg}_pool{d}d`` with the spec's symmetric padding."""

    def call(x: Any, spec: Any) -> Any:
        functional = _torch().nn.functional
        if any(lo != hi for lo, hi in spec.padding):
            raise invalid("spec", spec, "torch pools pad symmetrically (lo == hi)")
        padding = tuple(lo for lo, _ in spec.padding)
        if family == "max_pool":
            fn = (functional.max_pool1d, functional.max_pool2d,
                  functional.max_pool3d)[spec.dims - 1]
            return fn(x, spec.kernel_size, spec.stride, padding, spec.dilation,
                      ceil_mode=spec.ceil_mode)
        if set(spec.dilation) != {1}:
            raise invalid("spec", spec, "torch's average pooling has no dilation")
        fn = (functional.avg_pool1d, functional.avg_pool2d, functional.avg_pool3d)[spec.dims - 1]
        return fn(x, spec.kernel_size, spec.stride, padding, ceil_mode=spec.ceil_mode,
                  count_include_pad=spec.count_include_pad)

    return call


class TorchPoolLayer:
    """Adapter for a torch pooling: ``forward(x, spec)`` runs ``call(x, spec)`` on a tensor,
    ``backward(dy, x, spec)`` is autograd's vector-Jacobian product.  Build with
    :func:`layer_from_torch`."""

    def __init__(self, call: Callable[..., Any], supports: Supports) -> None:
        self.call, self.supports = call, supports

    def forward(self, x: np.ndarray, spec: Any) -> np.ndarray:
        torch = _torch()
        return self.call(torch.from_numpy(np.array(x)), spec).numpy()

    def backward(self, dy: np.ndarray, x: np.ndarray, spec: Any) -> np.ndarray:
        torch = _torch()
        tensor = torch.from_numpy(np.array(x)).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.call(tensor, spec), (tensor,),
                                      torch.from_numpy(np.array(dy)))
        return grad.numpy()


def _family_from_torch(obj: Any, call: Callable[..., Any] | None,
                       supports: Supports | Mapping[str, Any] | None) -> Any:
    """The family's torch modules (None when ``obj`` is none of them)."""
    torch = _torch()
    module_type = obj if isinstance(obj, type) else type(obj)
    found = next(((family, dims) for t, (family, dims) in _family_module_types(torch).items()
                  if issubclass(module_type, t)), None)
    if found is None:
        return None
    family, dims = found
    if family == "conv_transpose":
        claim = Supports.from_claim(supports) if supports is not None else Supports(
            dims=(dims,), dtypes=("float64", "float32"), family=family)
        return TorchLayer(call or _conv_transpose_call, claim)
    claim = Supports.from_claim(supports) if supports is not None else Supports(
        dims=(dims,), dtypes=("float64", "float32"), family=family, padding="symmetric",
        dilation=family == "max_pool")
    return TorchPoolLayer(call or _pool_call(family), claim)


#: The cs231n pooling convention: 2-d, one stride, no padding or dilation, windows that tile.
CS231N_POOL_SUPPORTS = Supports(dims=(2,), dilation=False, padding="none", uniform=True,
                                exact_tiling=True, bias=False, family="max_pool")


@dataclass(frozen=True)
class Cs231nPoolLayer:
    """Adapter for ``max_pool_forward_naive(x, pool_param) -> (out, cache)`` and
    ``max_pool_backward_naive(dout, cache) -> dx`` with
    ``pool_param = {'pool_height', 'pool_width', 'stride'}``."""

    forward_fn: Callable[..., tuple[np.ndarray, Any]]
    backward_fn: Callable[..., np.ndarray]
    supports: Supports = CS231N_POOL_SUPPORTS

    @staticmethod
    def pool_param(spec: Any, input_size: tuple[int, ...]) -> dict[str, int]:
        """The spec as cs231n's pool_param; refused when the convention cannot say it."""
        if spec.dims != 2 or len(set(spec.stride)) != 1:
            raise invalid("spec", spec, "the cs231n convention needs 2-d and one stride")
        if any(lo or hi for lo, hi in spec.padding) or set(spec.dilation) != {1}:
            raise invalid("spec", spec, "the cs231n convention has no padding or dilation")
        floor = type(spec)(2, spec.kernel_size, spec.stride)
        if spec.output_size(input_size) != floor.output_size(input_size):
            raise invalid("spec", spec, "ceil_mode with partial windows: cs231n floors")
        return {"pool_height": spec.kernel_size[0], "pool_width": spec.kernel_size[1],
                "stride": spec.stride[0]}

    def forward(self, x: np.ndarray, spec: Any) -> np.ndarray:
        out, _ = self.forward_fn(x, self.pool_param(spec, x.shape[2:]))
        return out

    def backward(self, dy: np.ndarray, x: np.ndarray, spec: Any) -> np.ndarray:
        _, cache = self.forward_fn(x, self.pool_param(spec, x.shape[2:]))
        return self.backward_fn(dy, cache)


def layer_from_cs231n_pool(
    forward: Callable[..., tuple[np.ndarray, Any]],
    backward: Callable[..., np.ndarray],
    supports: Supports | Mapping[str, Any] | None = None,
) -> Cs231nPoolLayer:
    """Make a max-pooling layer from cs231n's ``max_pool_forward_naive`` /
    ``max_pool_backward_naive`` pair (``pool_param = {'pool_height', 'pool_width', 'stride'}``).
    """
    for name, fn in (("forward", forward), ("backward", backward)):
        if not callable(fn):
            raise invalid_type(name, fn, "expected a callable")
    claim = CS231N_POOL_SUPPORTS if supports is None else Supports.from_claim(supports)
    return Cs231nPoolLayer(forward, backward, claim)
