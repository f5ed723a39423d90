"""The random thin-plate-spline + affine transform of FOMM's equivariance constraint (paper Sec. 3.3).

A transform ``T`` maps coordinates of the *transformed* frame to coordinates of the original frame:
:meth:`RandomTpsTransform.transform_frame` samples the original at ``T(z)``, so a point that sits at ``p`` in
the original appears at ``z`` with ``T(z) = p`` in the transformed frame. Keypoints that follow the image
therefore satisfy ``p_D = T(p_{T(D)})``: the equivariance value loss.

As in the original implementation:

- ``T(z) = A z + t + sum_i w_i U(|z - c_i|_1)``, with ``[A | t] = [I | 0] + N(0, sigma_affine)`` (all six
  entries), ``w_i ~ N(0, sigma_tps)`` on a ``points_tps x points_tps`` grid of control points ``c_i`` over
  ``[-1, 1]^2``, and the radial basis ``U(r) = r^2 log(r + 1e-6)`` of the **L1** distance (the original's
  choice, kept so that ``sigma_tps`` means what it meant there);
- the frame is resampled with ``padding_mode="reflection"``;
- the jacobian ``dT/dz`` comes from autograd with ``create_graph=True``, so the jacobian loss also trains the
  keypoint positions through it.

Coordinates are ``(x, y)`` in ``[-1, 1]`` (the convention of :mod:`fomm.geometry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..config import ConfigError, yaml_float, yaml_int, yaml_mapping
from ..geometry import make_coordinate_grid, warp
from .names import DEFAULT_SIGMA_AFFINE

__all__ = ["RandomTpsTransform", "TransformParams"]


@dataclass(frozen=True)
class TransformParams:
    """How strong the random equivariance transforms are (original ``transform_params``).

    Attributes:
        sigma_affine: standard deviation of the noise added to the six entries of ``[I | 0]``.
        sigma_tps: standard deviation of the thin-plate-spline weights.
        points_tps: control points per side of the ``points_tps x points_tps`` grid.
    """

    sigma_affine: float = DEFAULT_SIGMA_AFFINE
    sigma_tps: float = 0.005
    points_tps: int = 5

    def __post_init__(self) -> None:
        if self.sigma_affine < 0:
            raise ConfigError(f"transform.sigma_affine must be >= 0, got {self.sigma_affine!r}")
        if self.sigma_tps < 0:
            raise ConfigError(f"transform.sigma_tps must be >= 0, got {self.sigma_tps!r}")
        if self.points_tps < 2:
            raise ConfigError(f"transform.points_tps must be >= 2, got {self.points_tps!r}")

    @classmethod
    def from_original(cls, params: Any) -> TransformParams:
        """From an original ``train_params.transform_params`` mapping (unknown keys are an error)."""
        params = yaml_mapping(params, "train_params.transform_params")
        readers = {"sigma_affine": yaml_float, "sigma_tps": yaml_float, "points_tps": yaml_int}
        unknown = sorted(set(params) - set(readers))
        if unknown:
            raise ConfigError(f"unknown transform_params key(s): {', '.join(map(str, unknown))}")
        return cls(**{k: readers[k](v, f"train_params.transform_params.{k}") for k, v in params.items()})


class RandomTpsTransform:
    """One random affine + thin-plate-spline transform per batch item.

    Build it with :meth:`sample` (random) or directly from its parameters (tests, replays).

    Args:
        theta: ``(B, 2, 3)`` affine part ``[A | t]``.
        control_params: ``(B, P)`` thin-plate-spline weights, one per control point.
        control_points: ``(P, 2)`` control points, ``(x, y)`` in ``[-1, 1]``.
        align_corners: grid-sampling convention of :meth:`transform_frame` (use the model's).
    """

    def __init__(
        self,
        theta: torch.Tensor,
        control_params: torch.Tensor,
        control_points: torch.Tensor,
        *,
        align_corners: bool,
    ) -> None:
        if theta.ndim != 3 or theta.shape[1:] != (2, 3):
            raise ValueError(f"theta must be (B, 2, 3), got {tuple(theta.shape)}")
        if control_points.ndim != 2 or control_points.shape[1] != 2:
            raise ValueError(f"control_points must be (P, 2), got {tuple(control_points.shape)}")
        if control_params.shape != (theta.shape[0], control_points.shape[0]):
            raise ValueError(
                f"control_params must be (B, P) = {(theta.shape[0], control_points.shape[0])}, "
                f"got {tuple(control_params.shape)}"
            )
        self.theta = theta
        self.control_params = control_params
        self.control_points = control_points
        self.align_corners = align_corners

    @classmethod
    def sample(
        cls,
        batch_size: int,
        params: TransformParams,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        align_corners: bool = True,
    ) -> RandomTpsTransform:
        """Draw ``batch_size`` transforms (affine noise first, then the spline weights, as the original).

        The draws run on the CPU with ``generator`` (so that a seeded CPU generator gives the same transforms
        on every device) and are then moved to ``device``.
        """
        noise = torch.randn(batch_size, 2, 3, generator=generator) * params.sigma_affine
        theta = noise + torch.eye(2, 3).unsqueeze(0)
        n = params.points_tps
        control_params = torch.randn(batch_size, n * n, generator=generator) * params.sigma_tps
        control_points = make_coordinate_grid(n, n).view(-1, 2)
        return cls(
            theta.to(device),
            control_params.to(device),
            control_points.to(device),
            align_corners=align_corners,
        )

    @property
    def batch_size(self) -> int:
        return self.theta.shape[0]

    def warp_coordinates(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Apply ``T`` to points.

        Args:
            coordinates: ``(B, N, 2)`` (or ``(1, N, 2)``, shared by the batch), ``(x, y)`` in ``[-1, 1]``, in
                the transformed frame.

        Returns:
            ``(B, N, 2)``: where those points are in the original frame.
        """
        dtype = coordinates.dtype
        theta = self.theta.to(dtype)
        affine = torch.matmul(theta[:, None, :, :2], coordinates.unsqueeze(-1)).squeeze(-1) + theta[:, None, :, 2]
        # Thin-plate spline on the L1 distance to each control point (as the original).
        distances = (coordinates.unsqueeze(-2) - self.control_points.to(dtype)).abs().sum(-1)  # (B, N, P)
        basis = distances**2 * torch.log(distances + 1e-6)
        spline = (basis * self.control_params.to(dtype).unsqueeze(1)).sum(-1, keepdim=True)  # (B, N, 1)
        return affine + spline

    def jacobian(self, coordinates: torch.Tensor) -> torch.Tensor:
        """``dT/dz`` at each point, by autograd (differentiable: ``create_graph=True``).

        Args:
            coordinates: ``(B, K, 2)`` points in the transformed frame (e.g. its keypoints). When they are
                part of a graph, the result stays differentiable with respect to them.

        Returns:
            ``(B, K, 2, 2)`` row-major: ``J[..., i, j] = d T_i / d z_j``.
        """
        with torch.enable_grad():
            if not coordinates.requires_grad:
                coordinates = coordinates.detach().requires_grad_(True)
            warped = self.warp_coordinates(coordinates)
            # Each output point depends on its own input point only, so the gradient of the sum is per point.
            grad_x = torch.autograd.grad(warped[..., 0].sum(), coordinates, create_graph=True)[0]
            grad_y = torch.autograd.grad(warped[..., 1].sum(), coordinates, create_graph=True)[0]
        return torch.stack([grad_x, grad_y], dim=-2)

    def transform_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """Resample ``(B, C, H, W)`` frames: output pixel ``z`` takes the input at ``T(z)`` (reflection padding)."""
        b, _, h, w = frame.shape
        if b != self.batch_size:
            raise ValueError(f"frame batch {b} differs from the transform batch {self.batch_size}")
        grid = make_coordinate_grid(h, w, dtype=frame.dtype, device=frame.device).view(1, h * w, 2)
        grid = self.warp_coordinates(grid).view(b, h, w, 2)
        return warp(frame, grid, align_corners=self.align_corners, padding_mode="reflection")
