"""A frame shared by all faces: points mapped by the similarity that puts a face's 5 landmarks onto one template.

Keypoints of different people are comparable in this frame: keypoint ``k`` sitting on the same part of every face
(what relative motion transfer to another person needs) lands on about the same template position for all of them.
Used by the keypoint-spread metric (:func:`fomm.train.motion.keypoint_spread`) and the face-anchor training loss
(:func:`fomm.train.losses.face_anchor_loss`).

Units: the template's eyes are one unit apart, so distances in the frame are in eye distances.
"""

from __future__ import annotations

import torch

__all__ = ["FACE_TEMPLATE", "align_to_face", "face_similarity"]

#: Where a face's 5 landmarks go (YuNet's order: the eye on the image's left, the other eye, the nose tip, the
#: mouth corner on the image's left, the other one), ``(x, y)`` with ``y`` down; eyes one unit apart.
FACE_TEMPLATE: tuple[tuple[float, float], ...] = ((-0.5, 0.0), (0.5, 0.0), (0.0, 0.55), (-0.4, 1.0), (0.4, 1.0))


def face_similarity(landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) taking each face's landmarks
    onto :data:`FACE_TEMPLATE`.

    Closed form: with the points as complex numbers, centred, the best ``z -> a z + b`` has
    ``a = sum(conj(p) t) / sum(|p|^2)``.

    Args:
        landmarks: ``(..., 5, 2)`` ``(x, y)`` points in any coordinates (pixels or ``[-1, 1]``).

    Returns:
        ``(M, t)``: ``(..., 2, 2)`` and ``(..., 2)`` with ``template ~ landmarks @ M.T + t`` (same dtype/device).

    Raises:
        ValueError: ``landmarks`` is not ``(..., 5, 2)``.
    """
    if landmarks.ndim < 2 or tuple(landmarks.shape[-2:]) != (5, 2):
        raise ValueError(f"expected (..., 5, 2) landmarks, got {tuple(landmarks.shape)}")
    template = torch.tensor(FACE_TEMPLATE, dtype=landmarks.dtype, device=landmarks.device)
    mu_p = landmarks.mean(-2)
    mu_t = template.mean(-2)
    p = landmarks - mu_p.unsqueeze(-2)
    t = template - mu_t
    norm = (p**2).sum((-2, -1)).clamp_min(torch.finfo(landmarks.dtype).tiny)
    a = (p[..., 0] * t[..., 0] + p[..., 1] * t[..., 1]).sum(-1) / norm  # real part
    b = (p[..., 0] * t[..., 1] - p[..., 1] * t[..., 0]).sum(-1) / norm  # imaginary part
    m = torch.stack((torch.stack((a, -b), -1), torch.stack((b, a), -1)), -2)
    return m, mu_t - (m @ mu_p.unsqueeze(-1)).squeeze(-1)


def align_to_face(points: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """Points of each face in the shared face frame.

    Args:
        points: ``(..., K, 2)`` points (e.g. keypoints) of faces, in the coordinates of ``landmarks``.
        landmarks: ``(..., 5, 2)`` the same faces' landmarks, taken as constants (no gradient flows into them).

    Returns:
        ``(..., K, 2)`` positions in eye distances from the template's eye line centre.
    """
    m, t = face_similarity(landmarks.detach())
    return points @ m.transpose(-1, -2) + t.unsqueeze(-2)
