"""One deliberately wrong layer per entry of gradcheck's mistake catalogue, generated from it.

:mod:`gradcheck.explain.catalogue` describes each classic mistake once, as a family of wrong
formulas per gradient.  Here each (family, gradient) entry becomes a layer: the reference
forward and backward of :mod:`gradcheck.formulas.conv`, computed in the problem's own dtype,
with the entry's gradient replaced by the entry's first mistaken formula that applies to the
problem (the forward too, for the entries of ``y``).  The two fitted entries get a layer of their
own making: a gradient scaled by 0.7381 (``constant-scale``) and a backward computed in float16
(``precision-loss``).  ``CATALOGUE_LAYERS`` maps ``(name, gradient)`` to its layer::

    gradcheck fuzz examples/catalogue.py:layer_dilation_ignored_dw

These layers test the *naming*, not the catching: the formulas they apply are the ones the
catalogue compares against (in the user's dtype here, in float64 there, so the rounding rule is
exercised).  The hand-written layers of ``examples/mistakes.py`` are the independent check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gradcheck.explain.catalogue import CATALOGUE, Fingerprint
from gradcheck.formulas.conv import conv_backward, conv_forward
from gradcheck.geometry.problem import ConvProblem

if TYPE_CHECKING:
    from gradcheck.geometry.spec import ConvSpec

Grads = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]
_INDEX = {"dx": 0, "dw": 1, "db": 2}


class CatalogueLayer:
    """The reference layer with one catalogue entry's mistake in one array."""

    supports: ClassVar[dict[str, object]] = {"dtypes": ("float32", "float64", "complex128")}

    def __init__(self, entry: Fingerprint) -> None:
        self.entry = entry
        self.mistake = entry.name
        self.gradient = entry.gradient

    def __repr__(self) -> str:
        return f"CatalogueLayer({self.entry.name!r}, {self.entry.gradient!r})"

    def _mistaken(self, problem: ConvProblem) -> np.ndarray | None:
        """The entry's first formula that applies here (None: this problem cannot show it)."""
        entry = self.entry
        if entry.variants is None:
            return _fitted(entry, problem)
        for _, compute in entry.variants(problem):
            value = compute(problem)
            if value is not None:
                return value
        return None

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                spec: ConvSpec) -> np.ndarray:
        y = conv_forward(x, w, b, spec)
        if self.gradient != "y":
            return y
        dy = np.zeros_like(y)
        wrong = self._mistaken(ConvProblem(x, w, b, dy, spec))
        return y if wrong is None else wrong.astype(y.dtype)

    def backward(self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                 spec: ConvSpec) -> Grads:
        grads: list[Any] = list(conv_backward(dy, x, w, b, spec))
        if self.gradient in _INDEX and grads[_INDEX[self.gradient]] is not None:
            right = grads[_INDEX[self.gradient]]
            wrong = self._mistaken(ConvProblem(x, w, b, dy, spec))
            if wrong is not None:
                grads[_INDEX[self.gradient]] = np.ascontiguousarray(wrong).astype(right.dtype)
        return grads[0], grads[1], grads[2]


def _fitted(entry: Fingerprint, p: ConvProblem) -> np.ndarray | None:
    """The fitted families' layers: an unnamed constant factor, or float16 arithmetic."""
    if entry.family == "constant-scale":
        if entry.gradient == "y":
            return 0.7381 * conv_forward(p.x, p.w, p.b, p.spec)
        return _times(0.7381, conv_backward(p.dy, p.x, p.w, p.b, p.spec)[_INDEX[entry.gradient]])
    if p.dtype.kind == "c":
        return None
    half = [None if a is None else a.astype(np.float16) for a in (p.dy, p.x, p.w, p.b)]
    low = conv_backward(*half, p.spec)[_INDEX[entry.gradient]]  # type: ignore[arg-type]
    return None if low is None else low.astype(p.dtype)


def _times(c: float, a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else c * a


def _identifier(entry: Fingerprint) -> str:
    """``layer_<name>_<gradient>`` (the gradient once: ``layer_stride_ignored_dx``)."""
    name = entry.name if entry.name.endswith(entry.gradient) else f"{entry.name}-{entry.gradient}"
    return "layer_" + name.replace("-", "_")


CATALOGUE_LAYERS: dict[tuple[str, str], CatalogueLayer] = {
    (entry.name, entry.gradient): CatalogueLayer(entry) for entry in CATALOGUE}

globals().update({_identifier(layer.entry): layer for layer in CATALOGUE_LAYERS.values()})
