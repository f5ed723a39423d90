"""The shared face frame (similarity onto the 5-point template), the face-anchor loss built on it and the
landmark-keypoint loss: known answers on placed templates, face-blind keypoints, the margin, the keypoint-landmark
matching, frames without landmarks, and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fomm.geometry import make_coordinate_grid
from fomm.train.face_frame import FACE_TEMPLATE, align_to_face, face_similarity
from fomm.train.losses import (
    face_anchor_loss,
    landmark_heatmap_loss,
    landmark_keypoint_loss,
    landmark_roll_loss,
    match_keypoints_to_landmarks,
    mouth_crop_grid,
    mouth_region_loss,
)

TEMPLATE = torch.tensor(FACE_TEMPLATE, dtype=torch.float64)


def _placed(points: torch.Tensor, angle: float, scale: float, shift: tuple[float, float]) -> torch.Tensor:
    c, s = np.cos(angle), np.sin(angle)
    m = torch.tensor([[c, -s], [s, c]], dtype=points.dtype) * scale
    return points @ m.T + torch.tensor(shift, dtype=points.dtype)


def _poses(count: int, seed: int) -> list[tuple[float, float, tuple[float, float]]]:
    rng = np.random.default_rng(seed)
    return [
        (float(rng.uniform(-0.6, 0.6)), float(rng.uniform(0.15, 0.5)), tuple(rng.uniform(-0.4, 0.4, 2)))
        for _ in range(count)
    ]


def test_similarity_maps_a_placed_template_back_exactly() -> None:
    poses = _poses(5, 0)
    landmarks = torch.stack([_placed(TEMPLATE, *pose) for pose in poses])
    m, t = face_similarity(landmarks)
    assert m.shape == (5, 2, 2) and t.shape == (5, 2)
    torch.testing.assert_close(landmarks @ m.transpose(-1, -2) + t.unsqueeze(-2), TEMPLATE.expand(5, 5, 2))
    for (angle, scale, _), matrix in zip(poses, m, strict=True):  # the inverse rotation and scale
        torch.testing.assert_close(float(torch.linalg.det(matrix)), 1.0 / scale**2)
        torch.testing.assert_close(float(torch.atan2(matrix[1, 0], matrix[0, 0])), -angle)


def test_similarity_never_reflects_and_fits_noisy_points_in_least_squares() -> None:
    mirrored = TEMPLATE * torch.tensor([-1.0, 1.0], dtype=torch.float64)  # eyes swapped left-right
    m, _ = face_similarity(mirrored)
    assert float(torch.linalg.det(m)) > 0  # a rotation (here by 180 degrees), not a mirror
    noisy = _placed(TEMPLATE, 0.3, 0.2, (0.1, -0.2)) + torch.randn(5, 2, dtype=torch.float64) * 0.01
    m, t = face_similarity(noisy)
    best = ((noisy @ m.T + t - TEMPLATE) ** 2).sum()
    for delta in (1e-3, -1e-3):  # a slightly different scale or rotation fits worse
        for change in (torch.eye(2, dtype=torch.float64) * (1 + delta), _placed(torch.eye(2), delta, 1.0, (0, 0))):
            other = noisy @ (change.to(m) @ m).T + t
            assert ((other - TEMPLATE) ** 2).sum() >= best
    with pytest.raises(ValueError, match=r"\(\.\.\., 5, 2\) landmarks"):
        face_similarity(torch.zeros(4, 2))


def test_keypoints_on_the_same_face_parts_align_to_the_same_place() -> None:
    parts = torch.rand(10, 2, dtype=torch.float64) * 3 - 1  # keypoint k's place on a face, template frame
    poses = _poses(6, 1)
    landmarks = torch.stack([_placed(TEMPLATE, *pose) for pose in poses])
    keypoints = torch.stack([_placed(parts, *pose) for pose in poses])
    aligned = align_to_face(keypoints, landmarks)
    torch.testing.assert_close(aligned, parts.expand(6, 10, 2))
    assert float(face_anchor_loss(keypoints, landmarks, torch.ones(6, dtype=torch.bool), margin=0.0)) < 1e-6


def _face_blind() -> tuple[torch.Tensor, torch.Tensor]:
    """Two faces 0.25 wide (eye distance) and 0.2 apart; keypoints at the same image positions in both: once
    aligned, each keypoint is 0.8 eye distances from its twin, 0.4 from their mean."""
    landmarks = torch.stack(
        [_placed(TEMPLATE, 0.0, 0.25, (-0.1, 0.0)), _placed(TEMPLATE, 0.0, 0.25, (0.1, 0.0))]
    ).float()
    keypoints = (torch.rand(1, 7, 2) * 2 - 1).expand(2, 7, 2).clone()
    return keypoints, landmarks


@pytest.mark.parametrize(("margin", "weight", "expected"), [(0.0, 1.0, 0.4), (0.2, 1.0, 0.2), (0.1, 10.0, 3.0)])
def test_face_anchor_loss_of_face_blind_keypoints(margin: float, weight: float, expected: float) -> None:
    keypoints, landmarks = _face_blind()
    both = torch.ones(2, dtype=torch.bool)
    loss = face_anchor_loss(keypoints, landmarks, both, margin=margin, weight=weight)
    assert loss.dtype == torch.float32 and loss.ndim == 0
    assert float(loss) == pytest.approx(expected, abs=1e-5)
    assert float(face_anchor_loss(keypoints, landmarks, both, margin=0.5)) == 0.0  # within the margin: free


def test_frames_without_landmarks_take_no_part() -> None:
    keypoints, landmarks = _face_blind()
    stray = torch.cat((keypoints, torch.full((1, 7, 2), 5.0)))  # a third frame, far away, with no face found
    marks = torch.cat((landmarks, torch.zeros(1, 5, 2)))
    found = torch.tensor([True, True, False])
    assert float(face_anchor_loss(stray, marks, found, margin=0.0)) == pytest.approx(0.4, abs=1e-5)
    lonely = stray.clone().requires_grad_(True)
    loss = face_anchor_loss(lonely, marks, torch.tensor([True, False, False]))
    loss.backward()
    assert float(loss.detach()) == 0.0 and lonely.grad is not None and float(lonely.grad.abs().sum()) == 0.0
    with pytest.raises(ValueError, match=r"\(2, 5, 2\) landmarks and \(2,\) valid"):
        face_anchor_loss(keypoints, landmarks[:, :4], torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B, K, 2\) keypoints"):
        face_anchor_loss(keypoints[0], landmarks, torch.ones(2, dtype=torch.bool))


def test_descending_the_loss_moves_keypoints_onto_the_same_face_parts() -> None:
    """Gradient steps on face-blind keypoints bring every keypoint within the margin of its twin; the landmarks
    are constants."""
    keypoints, landmarks = _face_blind()
    keypoints.requires_grad_(True)
    landmarks.requires_grad_(True)
    optimizer = torch.optim.SGD([keypoints], lr=0.05)
    found = torch.ones(2, dtype=torch.bool)
    first = None
    for _ in range(200):
        optimizer.zero_grad()
        loss = face_anchor_loss(keypoints, landmarks, found, margin=0.05)
        loss.backward()
        first = float(loss.detach()) if first is None else first
        optimizer.step()
    assert landmarks.grad is None
    assert first > 0.3 and float(face_anchor_loss(keypoints, landmarks, found, margin=0.05).detach()) < 1e-3
    aligned = align_to_face(keypoints.detach(), landmarks.detach())
    assert float((aligned[0] - aligned[1]).norm(dim=-1).max()) < 0.11  # twins within 2 x margin (+ a step)


# --- landmark keypoints ------------------------------------------------------------------------------------------


def _planted(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """10 random keypoints per frame; keypoints 7, 2, 9, 0, 4 sit exactly on landmarks 0..4 plus (0.03, 0.04)."""
    g = torch.Generator().manual_seed(seed)
    landmarks = torch.stack([_placed(TEMPLATE, *pose).float() for pose in _poses(4, seed)])  # (4, 5, 2)
    keypoints = torch.rand(4, 10, 2, generator=g) * 2 - 1
    order = torch.tensor([7, 2, 9, 0, 4])
    keypoints[:, order] = landmarks + torch.tensor([0.03, 0.04])
    return keypoints, landmarks, order


def test_matching_finds_the_keypoint_on_each_landmark() -> None:
    keypoints, landmarks, order = _planted()
    found = torch.ones(4, dtype=torch.bool)
    assert match_keypoints_to_landmarks(keypoints, landmarks, found).tolist() == order.tolist()
    # a frame without landmarks takes no part: its keypoints may be anywhere
    stray = keypoints.clone()
    stray[1] = torch.flip(stray[1], dims=(0,))
    found[1] = False
    assert match_keypoints_to_landmarks(stray, landmarks, found).tolist() == order.tolist()
    # two landmarks nearest to one keypoint still get distinct keypoints
    crowded = torch.zeros(1, 6, 2)
    crowded[0, 3] = torch.tensor([0.5, 0.5])
    crowded[0, 5] = torch.tensor([0.9, 0.9])
    marks = torch.tensor([[[0.5, 0.5], [0.55, 0.55], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    chosen = match_keypoints_to_landmarks(crowded, marks, torch.ones(1, dtype=torch.bool)).tolist()
    assert chosen[0] == 3 and len(set(chosen)) == 5 and chosen[1] != 3


def test_landmark_keypoint_loss_known_answers() -> None:
    keypoints, landmarks, _ = _planted()
    found = torch.ones(4, dtype=torch.bool)
    # every matched keypoint is (0.03, 0.04) from its landmark: distance 0.05
    assert float(landmark_keypoint_loss(keypoints, landmarks, found)) == pytest.approx(0.05, abs=1e-6)
    assert float(landmark_keypoint_loss(keypoints, landmarks, found, weight=10.0)) == pytest.approx(0.5, abs=1e-5)
    moved = keypoints.clone()
    moved[2] = moved[2] + 5.0  # a frame without landmarks does not count
    found[2] = False
    assert float(landmark_keypoint_loss(moved, landmarks, found)) == pytest.approx(0.05, abs=1e-6)
    none = torch.zeros(4, dtype=torch.bool)
    assert float(landmark_keypoint_loss(keypoints, landmarks, none)) == 0.0
    with pytest.raises(ValueError, match="landmarks"):
        landmark_keypoint_loss(keypoints, landmarks[:3], torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="cannot stand for"):
        landmark_keypoint_loss(keypoints[:, :4], landmarks, torch.ones(4, dtype=torch.bool))


def test_landmark_keypoint_loss_with_a_fixed_assignment() -> None:
    """A fixed assignment pulls the named keypoints, whichever are nearest; one of the wrong length is refused."""
    keypoints, landmarks, order = _planted()
    found = torch.ones(4, dtype=torch.bool)
    planted = landmark_keypoint_loss(keypoints, landmarks, found, assignment=order)
    assert float(planted) == pytest.approx(0.05, abs=1e-6)
    other = torch.tensor([1, 3, 5, 6, 8])  # keypoints elsewhere: the loss is their own mean distance
    keypoints.requires_grad_(True)
    loss = landmark_keypoint_loss(keypoints, landmarks, found, assignment=other)
    expected = (keypoints.detach()[:, other] - landmarks).norm(dim=-1).mean()
    assert float(loss.detach()) == pytest.approx(float(expected), abs=1e-6) and float(loss.detach()) > 0.2
    loss.backward()
    pulled = keypoints.grad.abs().sum(dim=(0, 2))
    assert (pulled[other] > 0).all() and float(pulled[order].max()) == 0.0
    with pytest.raises(ValueError, match="expected a \\(5,\\) landmark assignment, got \\(4,\\)"):
        landmark_keypoint_loss(keypoints, landmarks, found, assignment=order[:4])


def test_descending_the_landmark_loss_puts_keypoints_on_the_landmarks() -> None:
    """Gradient steps move the matched keypoints onto the landmarks; the other keypoints and the landmarks get no
    gradient."""
    keypoints, landmarks, order = _planted(seed=3)
    keypoints = keypoints + 0.0
    keypoints[:, order] += torch.tensor([0.1, -0.08])
    keypoints.requires_grad_(True)
    landmarks.requires_grad_(True)
    found = torch.ones(4, dtype=torch.bool)
    loss = landmark_keypoint_loss(keypoints, landmarks, found)
    loss.backward()
    free = [k for k in range(10) if k not in order.tolist()]
    assert landmarks.grad is None and float(keypoints.grad[:, free].abs().max()) == 0.0
    optimizer = torch.optim.SGD([keypoints], lr=0.1)  # steps of 0.005 (the gradient of a distance is a unit)
    for _ in range(150):
        optimizer.zero_grad()
        landmark_keypoint_loss(keypoints, landmarks, found).backward()
        optimizer.step()
    assert float(landmark_keypoint_loss(keypoints, landmarks, found).detach()) < 0.01
    # the planted keypoints (possibly two of them swapped between neighbouring landmarks) now sit on the landmarks
    chosen = match_keypoints_to_landmarks(keypoints.detach(), landmarks.detach(), found)
    assert sorted(chosen.tolist()) == sorted(order.tolist())
    assert float((keypoints.detach()[:, chosen] - landmarks.detach()).norm(dim=-1).max()) < 0.02


# --- landmark heatmaps -------------------------------------------------------------------------------------------


def _gaussian_logits(centres: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """``(B, K, size, size)`` logits of Gaussian heatmaps centred on ``centres`` ``(B, K, 2)``."""
    grid = make_coordinate_grid(size, size, dtype=torch.float32)
    return -((grid - centres[:, :, None, None, :]) ** 2).sum(-1) / (2 * sigma**2)


def _log_heatmaps(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.flatten(2), dim=2).view_as(logits)


def test_landmark_heatmap_loss_known_answers() -> None:
    """0 for the target itself; log(h w) minus the target's entropy for a flat heatmap; frames without landmarks
    take no part; the keypoint is the one assigned; bad shapes and widths are refused."""
    landmarks = torch.tensor([[[0.2, -0.3], [-0.5, 0.4]], [[0.0, 0.1], [0.6, 0.6]]])  # (2, 2, 2)
    found = torch.ones(2, dtype=torch.bool)
    on_target = _log_heatmaps(_gaussian_logits(landmarks, 30, 0.06))
    three = torch.cat((torch.zeros(2, 1, 30, 30), on_target), dim=1)  # keypoint 0 flat, 1 and 2 on the landmarks
    assert float(landmark_heatmap_loss(three, landmarks, found, torch.tensor([1, 2]), sigma=0.06)) < 1e-5
    flat = _log_heatmaps(torch.zeros(2, 3, 30, 30))
    target = on_target.exp()
    entropy = -(target * on_target).sum(dim=(2, 3)).mean()
    expected = np.log(900) - float(entropy)
    loss = landmark_heatmap_loss(flat, landmarks, found, torch.tensor([0, 1]), sigma=0.06, weight=2.0)
    assert float(loss) == pytest.approx(2 * expected, rel=1e-4) and expected > 1.0
    # a frame without landmarks: only the other counts
    found[1] = False
    mixed = three.clone()
    mixed[1] = flat[1]
    one = landmark_heatmap_loss(mixed, landmarks, found, torch.tensor([1, 2]), sigma=0.06)
    assert float(one) < 1e-5
    assert float(landmark_heatmap_loss(flat, landmarks, torch.zeros(2, dtype=torch.bool), torch.tensor([0, 1]))) == 0
    with pytest.raises(ValueError, match="expected a \\(2,\\) landmark assignment"):
        landmark_heatmap_loss(flat, landmarks, found, torch.tensor([0]))
    with pytest.raises(ValueError, match="expected \\(2, L, 2\\) landmarks"):
        landmark_heatmap_loss(flat, landmarks[:1], found, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="sigma must be > 0"):
        landmark_heatmap_loss(flat, landmarks, found, torch.tensor([0, 1]), sigma=0.0)


def test_landmark_heatmap_loss_moves_a_far_peak_that_the_distance_loss_does_not() -> None:
    """A sharp peak far from its landmark: the keypoint-distance loss sends the landmark's pixels no gradient (their
    probability is ~0), the heatmap loss does, and gradient steps on it move the peak onto the landmark."""
    size, temperature = 32, 0.1
    landmark = torch.tensor([[[0.5, 0.4]]])
    logits = (_gaussian_logits(torch.tensor([[[-0.6, -0.5]]]), size, 0.1) * temperature).requires_grad_(True)
    grid = make_coordinate_grid(size, size, dtype=torch.float32)
    found = torch.ones(1, dtype=torch.bool)
    assignment = torch.tensor([0])
    near = ((grid - landmark[0, 0]).norm(dim=-1) < 0.1)[None, None]  # the landmark's pixels

    def keypoint(lg: torch.Tensor) -> torch.Tensor:
        heatmap = torch.softmax((lg / temperature).flatten(2), dim=2).view_as(lg)
        return (heatmap.unsqueeze(-1) * grid).sum(dim=(2, 3))

    landmark_keypoint_loss(keypoint(logits), landmark, found, assignment=assignment).backward()
    from_distance = float(logits.grad[near].abs().max())
    logits.grad = None
    landmark_heatmap_loss(_log_heatmaps(logits / temperature), landmark, found, assignment).backward()
    from_heatmap = float(-logits.grad[near].sum())  # raised, with a total of about 1 / temperature
    assert from_distance < 1e-12 and from_heatmap > 5.0
    optimizer = torch.optim.SGD([logits], lr=1.0)
    start = float((keypoint(logits.detach()) - landmark).norm())  # about 1.4
    for _ in range(600):  # 300 passed (< 0.05) on AVX512 CPUs but left 0.066 on an AVX2 one
        optimizer.zero_grad()
        landmark_heatmap_loss(_log_heatmaps(logits / temperature), landmark, found, assignment).backward()
        optimizer.step()
    end = float((keypoint(logits.detach()) - landmark).norm())
    assert start > 1.0 and end < 0.05, (start, end)


def test_detector_heatmaps_for_training_agree_with_its_keypoints(make_tiny) -> None:
    """``forward_with_heatmaps``: the same keypoints as ``forward``, and log-heatmaps whose mean is the keypoint."""
    from fomm.keypoint_detector import KeypointDetector

    detector = KeypointDetector(make_tiny(num_kp=5).keypoint_detector).eval()
    with torch.no_grad():
        detector.jacobian.weight.normal_(0, 0.01)  # jacobians that depend on the heatmap
        image = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        plain = detector(image)
        keypoints, log_heatmaps = detector.forward_with_heatmaps(image)
    torch.testing.assert_close(keypoints.value, plain.value)
    torch.testing.assert_close(keypoints.jacobian, plain.jacobian)
    batch, count, height, width = log_heatmaps.shape
    assert (batch, count) == (2, 5) and log_heatmaps.dtype == torch.float32
    heatmap = log_heatmaps.exp()
    torch.testing.assert_close(heatmap.sum(dim=(2, 3)), torch.ones(2, 5))
    grid = make_coordinate_grid(height, width, dtype=torch.float32)
    torch.testing.assert_close((heatmap.unsqueeze(-1) * grid).sum(dim=(2, 3)), plain.value, atol=1e-5, rtol=0)


def _rotation(angle: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    c, s = np.cos(angle), np.sin(angle)
    return torch.tensor([[c, -s], [s, c]], dtype=dtype)


def _roll_case(seed: int = 0, batch: int = 4, kp: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random well-conditioned source jacobians, a source face and each pair's tilt (radians)."""
    g = torch.Generator().manual_seed(seed)
    jac = torch.randn(batch, kp, 2, 2, generator=g) * 0.3 + torch.eye(2)
    face = TEMPLATE.float()[None].repeat(batch, 1, 1) * 0.3
    tilt = (torch.rand(batch, generator=g) - 0.5) * 0.8
    return jac, face, tilt


def test_landmark_roll_loss_known_answers() -> None:
    """Jacobians that turn by the eye line's tilt give 0, whatever the scale, shear or translation on top; still
    jacobians give the mean tilt; pairs without landmarks take no part; the error wraps around +-pi."""
    jac, face, tilt = _roll_case()
    turned = torch.stack([_rotation(float(a)) for a in tilt])  # (B, 2, 2)
    moved = face @ turned.transpose(1, 2) * 1.3 + 0.2  # the driving face: tilted, bigger, shifted
    valid = torch.ones(4, dtype=torch.bool)
    shear = torch.tensor([[1.2, 0.1], [0.1, 0.9]])  # symmetric, positive definite: no rotation of its own
    follows = turned[:, None] @ (shear @ jac)
    assert float(landmark_roll_loss(jac, follows, face, moved, valid)) < 1e-5
    still = landmark_roll_loss(jac, jac, face, moved, valid, weight=10.0)
    assert float(still) == pytest.approx(10.0 * float(tilt.abs().mean()), rel=1e-5)
    some = torch.tensor([True, False, True, False])
    part = landmark_roll_loss(jac, jac, face, moved, some)
    assert float(part) == pytest.approx(float(tilt[some].abs().mean()), rel=1e-5)
    assert float(landmark_roll_loss(jac, jac, face, moved, torch.zeros(4, dtype=torch.bool))) == 0.0
    # a jacobian turned by pi - 0.1 against a face tilted by -pi + 0.1: 0.2 apart, not 2 pi - 0.2
    flipped = face @ _rotation(-np.pi + 0.1).T
    back = _rotation(np.pi - 0.1) @ jac
    assert float(landmark_roll_loss(jac, back, face, flipped, valid)) == pytest.approx(0.2, abs=1e-4)
    with pytest.raises(ValueError, match="jacobians"):
        landmark_roll_loss(jac[..., 0], jac[..., 0], face, moved, valid)
    with pytest.raises(ValueError, match="landmark sets"):
        landmark_roll_loss(jac, jac, face, moved[:, :1], valid)


def test_descending_the_landmark_roll_loss_turns_the_jacobians() -> None:
    """Gradient steps on the driving jacobians alone bring their turn to the faces' tilt."""
    jac, face, tilt = _roll_case(seed=3)
    moved = face @ torch.stack([_rotation(float(a)) for a in tilt]).transpose(1, 2)
    driving = jac.clone().requires_grad_(True)
    valid = torch.ones(4, dtype=torch.bool)
    optimizer = torch.optim.Adam([driving], lr=0.02)
    first = float(landmark_roll_loss(jac, driving.detach(), face, moved, valid))
    for _ in range(200):
        optimizer.zero_grad()
        landmark_roll_loss(jac, driving, face, moved, valid).backward()
        optimizer.step()
    assert first > 0.1 and float(landmark_roll_loss(jac, driving.detach(), face, moved, valid)) < 0.1 * first


def _mouth_face(batch: int = 3) -> torch.Tensor:
    """``(B, 7, 2)`` face landmarks (YuNet's 5, then the inner upper and lower lip), mouth centred at (0.2, 0.4)
    with its corners 0.3 apart."""
    face = torch.tensor([[-0.2, -0.2], [0.4, -0.2], [0.1, 0.1], [0.05, 0.4], [0.35, 0.4], [0.2, 0.35], [0.2, 0.45]])
    return face.expand(batch, 7, 2).clone()


def test_mouth_crop_grid_is_centred_on_the_mouth() -> None:
    """The crop is centred on the mean of the mouth points and reaches the corners' distance to each side."""
    grid = mouth_crop_grid(_mouth_face(), size=9)
    assert grid.shape == (3, 9, 9, 2)
    torch.testing.assert_close(grid[:, 4, 4], torch.tensor([0.2, 0.4]).expand(3, 2))
    torch.testing.assert_close(grid[0, 0, 0], torch.tensor([-0.1, 0.1]))
    torch.testing.assert_close(grid[0, -1, -1], torch.tensor([0.5, 0.7]))
    yunet = mouth_crop_grid(_mouth_face()[:, :5], size=9)  # the corners alone: the same centre here
    torch.testing.assert_close(yunet[:, 4, 4], torch.tensor([0.2, 0.4]).expand(3, 2))
    with pytest.raises(ValueError, match="L >= 5"):
        mouth_crop_grid(_mouth_face()[:, :3])


def test_mouth_region_loss_sees_the_mouth_alone() -> None:
    """A change outside the crop costs nothing; a change inside costs its mean absolute size in the crop; frames
    without landmarks take no part; the gradient reaches only the prediction's pixels in and near the crop."""
    face = _mouth_face()
    valid = torch.ones(3, dtype=torch.bool)
    target = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    xy = make_coordinate_grid(64, 64)  # (H, W, 2) pixel centres
    outside = ((xy[..., 0] - 0.2).abs() > 0.45) | ((xy[..., 1] - 0.4).abs() > 0.45)  # well away from the crop
    inside = ((xy[..., 0] - 0.2).abs() < 0.36) & ((xy[..., 1] - 0.4).abs() < 0.36)  # covers the whole crop
    far = target + 0.5 * outside.float()
    assert float(mouth_region_loss(far, target, face, valid, align_corners=False)) == 0.0
    near = target + 0.2 * inside.float()
    loss = mouth_region_loss(near, target, face, valid, align_corners=False, weight=10.0)
    assert float(loss) == pytest.approx(10.0 * 0.2, rel=1e-4)
    only_first = torch.zeros(3, 3, 64, 64)
    only_first[0] = 0.2 * inside.float()
    some = torch.tensor([True, False, False])
    assert float(mouth_region_loss(target + only_first, target, face, some, align_corners=False)) == pytest.approx(
        0.2, rel=1e-4
    )
    none = torch.zeros(3, dtype=torch.bool)
    assert float(mouth_region_loss(near, target, face, none, align_corners=False)) == 0.0
    prediction = near.clone().requires_grad_(True)
    mouth_region_loss(prediction, target, face, valid, align_corners=False).backward()
    grad = prediction.grad.abs().sum(dim=(0, 1))
    assert float(grad[outside].sum()) == 0.0 and float(grad[inside].sum()) > 0
    with pytest.raises(ValueError, match="two"):
        mouth_region_loss(near[:, :1], target, face, valid, align_corners=False)
