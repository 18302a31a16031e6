"""Layers that misbehave instead of computing a wrong gradient.

A harness must tell these apart from gradient bugs: the gradient of a layer that raises, returns
the wrong things or changes its inputs has not been checked at all.  Each layer subclasses
:class:`~examples.naive_conv.NaiveConv` (so its forward is right), carries ``problem``, a stable
reason in the style of ``gradcheck.errors.LayerError.reason``, and ``MISBEHAVING`` maps every
reason to its layer::

    gradcheck fuzz examples/misbehaving.py:returns_none
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from examples.naive_conv import NaiveConv

if TYPE_CHECKING:
    from gradcheck.geometry.spec import ConvSpec

Grads = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]


def _check_layout(x: np.ndarray) -> None:
    """The user's own validation, left over from a channels-last version of the layer."""
    raise ValueError(f"backward: only channels-last input is implemented, got x.shape={x.shape}")


class Raises(NaiveConv):
    """backward raises ``ValueError`` from inside the user's code (a stale validation helper)."""

    problem = "raised"

    def backward(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec
    ) -> Grads:
        _check_layout(x)
        return super().backward(dy, x, w, b, spec)


class ReturnsNone(NaiveConv):
    """backward stores its gradients on the layer and forgets the ``return``."""

    problem = "returned-none"

    def backward(  # type: ignore[override]
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec
    ) -> None:
        self.grads = super().backward(dy, x, w, b, spec)


class WrongCount(NaiveConv):
    """backward returns ``(dx, dw)``: the bias gradient is forgotten, even when there is a bias."""

    problem = "wrong-count"

    def backward(  # type: ignore[override]
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec
    ) -> tuple[np.ndarray, np.ndarray]:
        dx, dw, _ = super().backward(dy, x, w, b, spec)
        return dx, dw


class WrongShape(NaiveConv):
    """dx summed over the batch like dw: shape (C, S…) instead of (N, C, S…)."""

    problem = "wrong-shape"

    def grad_input(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        return super().grad_input(dy, x, w, spec).sum(axis=0)


class WrongDtype(NaiveConv):
    """dx cast to float16 "to save memory", whatever the input dtype (float64 in, float16 out)."""

    problem = "wrong-dtype"

    def grad_input(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        return np.real(super().grad_input(dy, x, w, spec)).astype(np.float16)


class ReturnsNan(NaiveConv):
    """dw has NaNs: a NaN-filled buffer ("to catch unfilled entries"), its last tap never filled."""

    problem = "returned-nan"

    def grad_weight(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        computed = super().grad_weight(dy, x, w, spec)
        dw = np.full_like(computed, np.nan)
        taps = list(np.ndindex(*w.shape[2:]))
        for t in taps[:-1]:  # off by one: the last tap stays NaN
            dw[(..., *t)] = computed[(..., *t)]
        return dw


class MutatesInput(NaiveConv):
    """backward zeroes ``dy`` in place after using it ("zero_grad" for the next step).

    The gradients it returns are right; the caller's upstream gradient is gone.
    """

    problem = "mutated-input"

    def backward(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec
    ) -> Grads:
        grads = super().backward(dy, x, w, b, spec)
        dy[...] = 0  # reuse the buffer
        return grads


class Nondeterministic(NaiveConv):
    """dx gets noise from an unseeded generator, about 1e-6 of its scale.

    A stand-in for a reduction whose order changes from run to run (atomics, threads), made
    large enough to stand above float64 rounding: two calls with the same inputs disagree.
    """

    problem = "nondeterministic"

    def grad_input(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, spec: ConvSpec
    ) -> np.ndarray:
        dx = super().grad_input(dy, x, w, spec)
        rng = np.random.default_rng()  # unseeded: different every call
        scale = 1e-6 * (float(np.abs(dx).max()) or 1.0)
        noise = scale * rng.standard_normal(dx.shape)
        return dx + noise.astype(dx.real.dtype)


class Slow(NaiveConv):
    """backward sleeps 2 seconds (a stand-in for an accidentally quadratic implementation)."""

    problem = "slow"
    seconds = 2.0

    def backward(
        self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec
    ) -> Grads:
        time.sleep(self.seconds)
        return super().backward(dy, x, w, b, spec)


raises = Raises()
returns_none = ReturnsNone()
wrong_count = WrongCount()
wrong_shape = WrongShape()
wrong_dtype = WrongDtype()
returns_nan = ReturnsNan()
mutates_input = MutatesInput()
nondeterministic = Nondeterministic()
slow = Slow()

MISBEHAVING: dict[str, NaiveConv] = {
    layer.problem: layer
    for layer in (
        raises,
        returns_none,
        wrong_count,
        wrong_shape,
        wrong_dtype,
        returns_nan,
        mutates_input,
        nondeterministic,
        slow,
    )
}
