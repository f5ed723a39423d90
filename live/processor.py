"""All pixel conversion of the live loop: uint8 BGR HWC images <-> float RGB BCHW tensors on the device."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["FrameProcessor"]


class FrameProcessor:
    """Converts camera crops to model inputs and model outputs back to images.

    Args:
        device: where the model runs.
        dtype: input dtype of the model (float32; autocast handles lower precision).
    """

    def __init__(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        self.device = torch.device(device)
        self.dtype = dtype

    def to_tensor(self, image_bgr: np.ndarray) -> torch.Tensor:
        """``(H, W, 3)`` uint8 BGR -> ``(1, 3, H, W)`` float RGB in ``[0, 1]`` on the device."""
        if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 BGR image, got {image_bgr.shape} {image_bgr.dtype}")
        rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
        tensor = torch.from_numpy(rgb).to(self.device, non_blocking=True)
        return tensor.permute(2, 0, 1).unsqueeze(0).to(self.dtype).div_(255.0)

    def to_image(self, tensor: torch.Tensor) -> np.ndarray:
        """``(1, 3, H, W)`` float RGB in ``[0, 1]`` -> ``(H, W, 3)`` uint8 BGR (contiguous, on the CPU)."""
        out = tensor[0].float().clamp(0.0, 1.0).mul(255.0).round_().to(torch.uint8)
        rgb = out.permute(1, 2, 0).cpu().numpy()
        return np.ascontiguousarray(rgb[:, :, ::-1])
