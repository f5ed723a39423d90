"""Causal temporal filters for the driving keypoints: the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012).

The One-Euro filter is a first-order low-pass filter whose cutoff rises with the signal's speed: slow motion
(jitter of a still face) is smoothed strongly, fast motion passes with little lag. Per sample, with
``dt`` the time step in seconds and ``alpha(fc) = 1 / (1 + 1 / (2 pi fc dt))``::

    dx      = (x - x_hat_prev) / dt                       # speed, units of x per second
    dx_hat  = dx_hat_prev + alpha(d_cutoff) (dx - dx_hat_prev)
    cutoff  = min_cutoff + beta |dx_hat|                  # Hz, elementwise
    x_hat   = x_hat_prev + alpha(cutoff) (x - x_hat_prev)
"""

from __future__ import annotations

import math
import time
from typing import TypeVar

import numpy as np
import torch

from fomm.keypoints import Keypoints

__all__ = ["KeypointFilter", "OneEuroFilter", "strength_to_min_cutoff"]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

#: Time step assumed when no positive one has been seen yet (seconds; a 30 fps camera).
DEFAULT_DT = 1.0 / 30.0
#: ``min_cutoff`` (Hz) of :class:`KeypointFilter` at strength -> 0 and at strength 1.
WEAKEST_CUTOFF = 10.0
STRONGEST_CUTOFF = 0.3
#: :class:`KeypointFilter`'s default ``beta`` (seconds per keypoint unit): keypoints live in ``[-1, 1]``, a brisk
#: head turn moves them ~1 unit/s, which raises the cutoff by ~5 Hz (lag ~30 ms), while the speed of the
#: jitter of a still face (~0.05 unit/s after the speed filter) adds only ~0.25 Hz.
DEFAULT_BETA = 5.0


def _alpha(cutoff: float | ArrayT, dt: float) -> float | ArrayT:
    """Smoothing factor of a first-order low-pass filter of ``cutoff`` Hz sampled every ``dt`` s."""
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff * dt))


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'} and finite, got {value!r}")
    return float(value)


class OneEuroFilter:
    """One-Euro filter of an array signal, elementwise (each element filtered on its own).

    Args:
        min_cutoff: cutoff frequency at zero speed, Hz (> 0); lower = smoother and laggier when still.
        beta: how fast the cutoff rises with speed, Hz per (unit of x per second) (>= 0); higher = less lag
            during fast motion.
        d_cutoff: cutoff of the speed estimate, Hz (> 0).

    ``filter(x, t)`` takes a numpy array or a torch tensor of a fixed shape and the sample time ``t`` in
    seconds, and returns the same type, shape, dtype and device. Floating dtypes are kept (half precision is
    computed in float32); integer inputs come back as float64 (numpy) or torch's default float dtype. The
    first sample after construction or :meth:`reset` passes through unchanged. A time step ``dt <= 0``
    (a repeated or backwards timestamp, e.g. a looping video) is replaced by the last positive step
    (1/30 s before there was one) and ``t`` becomes the new reference. Tensors are filtered with tensor
    operations on their device (no host round trip or synchronisation); the stored state is detached.

    Raises:
        ValueError: (on call) the shape changed without a :meth:`reset`.
        TypeError: (on call) numpy and torch inputs mixed without a :meth:`reset`.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        self.min_cutoff = _check_positive("min_cutoff", min_cutoff)
        self.beta = _check_positive("beta", beta, allow_zero=True)
        self.d_cutoff = _check_positive("d_cutoff", d_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through."""
        self._x: np.ndarray | torch.Tensor | None = None  # last output
        self._dx: np.ndarray | torch.Tensor | None = None  # last filtered speed
        self._t = 0.0
        self._dt = DEFAULT_DT

    @property
    def initialized(self) -> bool:
        """Whether a sample has been seen since construction or :meth:`reset`."""
        return self._x is not None

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape of the signal being filtered, ``None`` before the first sample."""
        return None if self._x is None else tuple(self._x.shape)

    @staticmethod
    def _working(x: ArrayT) -> ArrayT:
        """``x`` in the dtype the filter computes in."""
        if isinstance(x, torch.Tensor):
            x = x.detach()
            if x.dtype in (torch.float16, torch.bfloat16):
                return x.float()
            return x if x.is_floating_point() else x.to(torch.get_default_dtype())
        x = np.asarray(x)
        if x.dtype == np.float16:
            return x.astype(np.float32)
        return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)

    @staticmethod
    def _output(value: ArrayT, like: ArrayT) -> ArrayT:
        if isinstance(value, torch.Tensor):
            return value.to(like.dtype) if like.is_floating_point() and value.dtype != like.dtype else value
        if np.issubdtype(like.dtype, np.floating) and value.dtype != like.dtype:
            return value.astype(like.dtype)
        return value.copy()

    def __call__(self, x: ArrayT, t: float) -> ArrayT:
        """Filter one sample ``x`` (numpy array or torch tensor) taken at time ``t`` (seconds)."""
        is_tensor = isinstance(x, torch.Tensor)
        if not is_tensor and not isinstance(x, np.ndarray):
            raise TypeError(f"expected a numpy array or a torch tensor, got {type(x).__name__}")
        t = float(t)
        work = self._working(x)
        previous = self._x
        if previous is None:
            self._x = work.clone() if is_tensor else work.copy()
            self._dx = torch.zeros_like(work) if is_tensor else np.zeros_like(work)
            self._t = t
            return self._output(self._x.clone() if is_tensor else self._x, x)
        if isinstance(previous, torch.Tensor) != is_tensor:
            raise TypeError("OneEuroFilter got numpy and torch inputs mixed; call reset() between them")
        if tuple(previous.shape) != tuple(work.shape):
            raise ValueError(
                f"OneEuroFilter got shape {tuple(work.shape)} after {tuple(previous.shape)}; call reset() first"
            )
        if is_tensor and (previous.device != work.device or previous.dtype != work.dtype):
            previous = previous.to(device=work.device, dtype=work.dtype)
            self._dx = self._dx.to(device=work.device, dtype=work.dtype)
        dt = t - self._t
        if not dt > 0:  # repeated or backwards timestamp (or NaN): reuse the last step
            dt = self._dt
        self._t, self._dt = t, dt
        speed = (work - previous) / dt
        dx = self._dx + _alpha(self.d_cutoff, dt) * (speed - self._dx)
        cutoff = self.min_cutoff + self.beta * abs(dx)
        out = previous + _alpha(cutoff, dt) * (work - previous)
        self._x, self._dx = out, dx
        return self._output(out.clone() if is_tensor else out, x)


def strength_to_min_cutoff(strength: float) -> float:
    """:class:`KeypointFilter`'s ``min_cutoff`` (Hz) for a strength in ``(0, 1]``: geometric from 10 Hz (barely
    smoothed at 30 fps) to 0.3 Hz (strong)."""
    return WEAKEST_CUTOFF * (STRONGEST_CUTOFF / WEAKEST_CUTOFF) ** strength


class KeypointFilter:
    """Temporal smoothing of driving keypoints (:class:`fomm.Keypoints`) with two One-Euro filters.

    ``value`` ``(B, K, 2)`` and ``jacobian`` ``(B, K, 2, 2)`` are filtered elementwise on their own device and
    dtype, without gradients. Call :meth:`reset` when the track breaks (recalibration, face lost or found).

    Args:
        strength: smoothing in ``[0, 1]``: 0 = none (the input is returned as is), 1 = strong;
            mapped to ``min_cutoff`` by :func:`strength_to_min_cutoff` (10 Hz -> 0.3 Hz).
        enabled: ``False`` returns the input as is.
        beta: speed coefficient (Hz per keypoint unit per second); default :data:`DEFAULT_BETA`, so that fast
            motion still follows with little lag.
        d_cutoff: cutoff of the speed estimate, Hz.
    """

    def __init__(
        self, strength: float = 0.5, enabled: bool = True, *, beta: float = DEFAULT_BETA, d_cutoff: float = 1.0
    ) -> None:
        if not isinstance(enabled, (bool, np.bool_)):
            raise ValueError(f"KeypointFilter enabled must be True or False, got {enabled!r}")
        self.enabled = bool(enabled)
        self._beta = _check_positive("KeypointFilter beta", beta, allow_zero=True)
        self._d_cutoff = _check_positive("KeypointFilter d_cutoff", d_cutoff)
        self._value = OneEuroFilter(1.0, self._beta, self._d_cutoff)
        self._jacobian = OneEuroFilter(1.0, self._beta, self._d_cutoff)
        self.strength = strength

    @property
    def strength(self) -> float:
        """Smoothing strength in ``[0, 1]`` (settable at run time; the filter state is kept)."""
        return self._strength

    @strength.setter
    def strength(self, strength: float) -> None:
        value = _check_positive("KeypointFilter strength", strength, allow_zero=True)
        if value > 1.0:
            raise ValueError(f"KeypointFilter strength must be in [0, 1], got {strength!r}")
        self._strength = value
        if value > 0:
            cutoff = strength_to_min_cutoff(value)
            self._value.min_cutoff = self._jacobian.min_cutoff = cutoff

    @property
    def active(self) -> bool:
        """Whether calls smooth anything (enabled and strength > 0)."""
        return self.enabled and self._strength > 0

    def reset(self) -> None:
        """Forget the past: the next keypoints pass through."""
        self._value.reset()
        self._jacobian.reset()

    def __call__(self, keypoints: Keypoints, t: float | None = None) -> Keypoints:
        """Smooth one frame's keypoints.

        Args:
            keypoints: ``value`` ``(B, K, 2)`` and ``jacobian`` ``(B, K, 2, 2)`` torch tensors, any device/dtype;
                the batch is a stream (the same B every call).
            t: capture time of the frame, seconds (e.g. ``Frame.timestamp``); default ``time.perf_counter()``.

        Returns:
            Smoothed keypoints of the same shapes, dtypes and devices; the input object itself when inactive.
        """
        if not self.active:
            if self._value.initialized:
                self.reset()  # switching back on starts from the current pose, not a stale one
            return keypoints
        if t is None:
            t = time.perf_counter()
        if self._value.shape not in (None, tuple(keypoints.value.shape)):
            self.reset()  # another model or batch: a new stream
        with torch.no_grad():
            value = self._value(keypoints.value, t)
            jacobian = self._jacobian(keypoints.jacobian, t)
        return Keypoints(value, jacobian)
