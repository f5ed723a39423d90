"""Weight averaging of checkpoints ("model soups"), with a check that the parts' keypoints mean the same thing.

Averaging the weights of models fine-tuned from one another often gives a model better than each part (the bundled
demo model is made this way). It only works when the parts agree on what each keypoint is: a keypoint detector's
keypoint ``k`` is the centre of mass of heatmap channel ``k``, and if one part has learnt to put keypoint ``k`` on the
lower lip while the other puts it on the forehead, the averaged heatmap is neither, and the keypoint ends up in
a third place that drives nothing. :func:`keypoint_disagreement` measures this on probe images before averaging.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .model import Fomm

__all__ = [
    "DEFAULT_MAX_KEYPOINT_SHIFT",
    "AverageError",
    "average_states",
    "keypoint_disagreement",
    "normalise_weights",
]

#: Largest distance (in the keypoints' ``[-1, 1]`` coordinates, so 0.1 = 5% of the image width) between two parts'
#: keypoint ``k`` on a probe image for the parts to count as agreeing: models fine-tuned from one another differ by
#: a few hundredths; a keypoint that has moved to another face part differs by several tenths.
DEFAULT_MAX_KEYPOINT_SHIFT = 0.1


class AverageError(ValueError):
    """Parts that cannot be averaged (different structures, bad weights)."""


def normalise_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """The parts' weights scaled to sum to 1 (``None``: equal weights).

    Raises:
        AverageError: a count that does not match the parts, a negative or non-finite weight, or a zero sum.
    """
    if count < 2:
        raise AverageError(f"averaging needs at least two checkpoints, got {count}")
    if weights is None:
        return [1.0 / count] * count
    values = [float(w) for w in weights]
    if len(values) != count:
        raise AverageError(f"expected {count} weights (one per checkpoint), got {len(values)}")
    if any(not torch.isfinite(torch.tensor(w)) or w < 0 for w in values):
        raise AverageError(f"weights must be finite and >= 0, got {values}")
    total = sum(values)
    if total <= 0:
        raise AverageError(f"weights must not all be 0, got {values}")
    return [w / total for w in values]


def average_states(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """The weighted average of state dicts with the same keys and shapes.

    Floating-point tensors are averaged in float64 and returned in their own dtype; other tensors (counters such
    as batch norm's ``num_batches_tracked``, which the networks do not compute with) are taken from part 1.

    Args:
        states: the parts' state dicts.
        weights: one weight per part, summing to 1 (:func:`normalise_weights`).

    Raises:
        AverageError: keys, shapes or dtypes that differ between parts.
    """
    if len(states) != len(weights):
        raise AverageError(f"expected one weight per state, got {len(weights)} for {len(states)}")
    first = states[0]
    for index, state in enumerate(states[1:], start=1):
        if set(state) != set(first):
            missing = sorted(set(first) - set(state))[:3]
            extra = sorted(set(state) - set(first))[:3]
            raise AverageError(f"part {index + 1} has other tensors than part 1 (missing {missing}, extra {extra})")
    out: dict[str, torch.Tensor] = {}
    for key, reference in first.items():
        tensors = [state[key] for state in states]
        for index, tensor in enumerate(tensors[1:], start=1):
            if tensor.shape != reference.shape or tensor.dtype != reference.dtype:
                raise AverageError(
                    f"tensor {key!r}: part {index + 1} has {tuple(tensor.shape)} {tensor.dtype}, "
                    f"part 1 has {tuple(reference.shape)} {reference.dtype}"
                )
        if reference.is_floating_point():
            total = sum(w * t.detach().to("cpu", torch.float64) for w, t in zip(weights, tensors, strict=True))
            out[key] = total.to(reference.dtype)  # type: ignore[union-attr]
        else:
            out[key] = reference.detach().cpu().clone()
    return out


@torch.no_grad()
def keypoint_disagreement(models: Sequence[Fomm], images: torch.Tensor) -> torch.Tensor:
    """How far apart the parts put each keypoint on the same images.

    Args:
        models: the parts (the same number of keypoints each).
        images: ``(N, 3, H, W)`` float in ``[0, 1]``, probe images (faces for face models).

    Returns:
        ``(K,)``: for each keypoint, the largest distance between any two parts' positions of it over the
        images, in the keypoints' ``[-1, 1]`` coordinates.
    """
    values = []
    for model in models:
        device = next(model.kp_detector.parameters()).device
        values.append(model.kp_detector(images.to(device)).value.to("cpu", torch.float64))  # (N, K, 2)
    counts = {v.shape[1] for v in values}
    if len(counts) != 1:
        raise AverageError(f"the parts have different keypoint counts: {sorted(counts)}")
    stack = torch.stack(values)  # (P, N, K, 2)
    pairwise = (stack[:, None] - stack[None, :]).norm(dim=-1)  # (P, P, N, K)
    return pairwise.amax(dim=(0, 1, 2))
