"""Keypoints and motion transfer (absolute / relative, relative jacobians, adapt-movement-scale).

Conventions: ``value`` is ``(B, K, 2)``, ``(x, y)`` in ``[-1, 1]``; ``jacobian`` is ``(B, K, 2, 2)``,
row-major, the local affine map of the keypoint's neighbourhood from the abstract reference frame R.
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import torch

from .geometry import DET_EPS, convex_hull_area, determinant_2x2, inverse_2x2

__all__ = ["SCALE_RANGE", "Calibration", "Keypoints", "calibrate", "transfer_motion", "usable_keypoints"]

logger = logging.getLogger(__name__)


class Keypoints(NamedTuple):
    """Keypoints of a batch of images.

    Attributes:
        value: ``(B, K, 2)`` float, ``(x, y)`` in ``[-1, 1]``.
        jacobian: ``(B, K, 2, 2)`` float, row-major; the identity when the model has no jacobians.
    """

    value: torch.Tensor
    jacobian: torch.Tensor

    def index(self, index: int | slice) -> Keypoints:
        """The keypoints of batch item(s) ``index`` (batch dimension kept)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Keypoints(self.value[index], self.jacobian[index])

    def expand(self, batch: int) -> Keypoints:
        """Broadcast a batch of one to ``batch`` items (no copy)."""
        return Keypoints(
            self.value.expand(batch, *self.value.shape[1:]), self.jacobian.expand(batch, *self.jacobian.shape[1:])
        )

    def detach(self) -> Keypoints:
        return Keypoints(self.value.detach(), self.jacobian.detach())


class Calibration(NamedTuple):
    """What relative motion transfer fixes once: computed by :func:`calibrate`, reused every frame.

    Attributes:
        source: keypoints of the source image, ``(1, K, ...)`` or ``(B, K, ...)``.
        initial_value: ``(B, K, 2)`` keypoints of the calibration driving frame D_1.
        initial_jacobian_inv: ``(B, K, 2, 2)`` inverse of D_1's jacobians.
        scale: ``(B, 1, 1)`` movement scale ``sqrt(area(hull(p_S)) / area(hull(p_D1)))``, or ones.
    """

    source: Keypoints
    initial_value: torch.Tensor
    initial_jacobian_inv: torch.Tensor
    scale: torch.Tensor


#: The adapt-movement-scale ratio is clamped to this range: a keypoint hull 100 times smaller or larger than the
#: other's is a detection failure, not a face (normal faces give ratios of 0.5-2).
SCALE_RANGE = (0.1, 10.0)


def _hull_scale(source: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
    low, high = SCALE_RANGE
    scales = []
    for i in range(initial.shape[0]):
        src_area = convex_hull_area(source[min(i, source.shape[0] - 1)])
        drv_area = convex_hull_area(initial[i])
        if not (math.isfinite(src_area) and math.isfinite(drv_area)) or src_area <= 0 or drv_area <= 0:
            logger.warning("degenerate keypoint hull (source %.3g, driving %.3g): movement scale 1", src_area, drv_area)
            scales.append(1.0)
            continue
        scale = (src_area**0.5) / (drv_area**0.5)
        if not low <= scale <= high:
            clamped = min(max(scale, low), high)
            logger.warning("movement scale %.3g is out of [%g, %g]: using %g", scale, low, high, clamped)
            scale = clamped
        scales.append(scale)
    return torch.tensor(scales, dtype=initial.dtype, device=initial.device).view(-1, 1, 1)


def usable_keypoints(kp: Keypoints, eps: float = DET_EPS) -> bool:
    """Whether every keypoint value and jacobian is finite and no jacobian is (near-)singular (``|det| < eps``).

    A frame whose keypoints fail this check would animate to garbage (NaN or huge warps); the live pipeline
    skips it. One host sync.
    """
    det = determinant_2x2(kp.jacobian.float())
    ok = torch.isfinite(kp.value).all() & torch.isfinite(det).all() & (det.abs() >= eps).all()
    return bool(ok)


def _calibration_inverse(jacobian: torch.Tensor) -> torch.Tensor:
    """Inverse of the calibration jacobians; a non-finite or (near-)singular one is replaced by the identity (its
    keypoint then moves the source jacobian by the driving jacobian alone) with a warning."""
    det = determinant_2x2(jacobian)
    bad = ~(torch.isfinite(det) & (det.abs() >= DET_EPS))
    if not bool(bad.any()):
        return inverse_2x2(jacobian)
    logger.warning(
        "calibration frame: %d of %d keypoint jacobians are singular or not finite: using the identity for them",
        int(bad.sum()),
        bad.numel(),
    )
    eye = torch.eye(2, dtype=jacobian.dtype, device=jacobian.device).expand_as(jacobian)
    safe = torch.where(bad[..., None, None], eye, jacobian)
    return inverse_2x2(safe)


def calibrate(source: Keypoints, initial: Keypoints, *, adapt_movement_scale: bool) -> Calibration:
    """Fix the relative-motion reference: the source keypoints and an initial driving frame D_1.

    D_1 should show the driver in the same pose as the source. With ``adapt_movement_scale`` the motion
    is scaled by the ratio of the keypoint hulls' square-root areas, as in the original ``normalize_kp``, clamped
    to :data:`SCALE_RANGE` (1 when a hull is empty or not finite). A singular or non-finite jacobian of D_1 is
    replaced by the identity (logged), so its inverse is never infinite.
    """
    if adapt_movement_scale:
        scale = _hull_scale(source.value, initial.value)
    else:
        scale = torch.ones(initial.value.shape[0], 1, 1, dtype=initial.value.dtype, device=initial.value.device)
    return Calibration(
        source=source,
        initial_value=initial.value,
        initial_jacobian_inv=_calibration_inverse(initial.jacobian),
        scale=scale,
    )


def transfer_motion(
    driving: Keypoints,
    calibration: Calibration | None,
    *,
    relative: bool = True,
    relative_jacobian: bool | None = None,
) -> Keypoints:
    """Driving keypoints as the generator should see them.

    Absolute mode (``relative=False``) returns ``driving`` unchanged. Relative mode moves the source
    keypoints by the driver's displacement since D_1: ``p = p_S + s (p_D - p_D1)`` and, with relative
    jacobians (default: same as ``relative``), ``J = J_D J_D1^-1 J_S``.
    """
    if not relative:
        return driving
    if calibration is None:
        raise ValueError("relative motion transfer needs a calibration (call calibrate() first)")
    if relative_jacobian is None:
        relative_jacobian = relative
    value = (driving.value - calibration.initial_value) * calibration.scale + calibration.source.value
    jacobian = driving.jacobian
    if relative_jacobian:
        jacobian = torch.matmul(
            torch.matmul(driving.jacobian, calibration.initial_jacobian_inv), calibration.source.jacobian
        )
    return Keypoints(value, jacobian)
