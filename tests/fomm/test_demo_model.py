"""The bundled demo model: it loads, is small, and the avatar follows the driver's head."""

from __future__ import annotations

import numpy as np
import pytest

import fomm
from fomm.media.assets import DEFAULT_AVATAR, DEFAULT_DRIVING, DEMO_MODEL
from fomm.media.image import load_image, to_tensor, to_uint8
from fomm.media.video import open_frames


def test_demo_model_is_bundled_and_small() -> None:
    assert DEMO_MODEL.is_file() and DEMO_MODEL.stat().st_size < 50 * 2**20
    loaded = fomm.load_checkpoint(DEMO_MODEL)
    assert loaded.config == fomm.preset("demo-256") and loaded.step > 0


@pytest.mark.slow
def test_avatar_follows_the_driver() -> None:
    """Faces found in the driving frames and in the animated avatar move together (x, y, size)."""
    from fomm.media.faces import default_detector

    detector = default_detector()
    animator = fomm.Animator(fomm.load_checkpoint(DEMO_MODEL).model)
    animator.set_source(to_tensor(load_image(DEFAULT_AVATAR)))
    with open_frames(DEFAULT_DRIVING) as source:
        frames = [f for i, f in enumerate(source) if i % 5 == 0]  # 50 frames over the 10 s clip
    outputs = np.concatenate(
        [to_uint8(animator.step(to_tensor(np.stack(frames[i : i + 10])))) for i in range(0, len(frames), 10)]
    )

    def tracks(images: list[np.ndarray] | np.ndarray) -> np.ndarray:
        boxes = [detector.box(image) for image in images]
        assert all(b is not None for b in boxes), "a face was not found"
        return np.array([[(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0] for x0, y0, x1, y1 in boxes])

    driver, avatar = tracks(frames), tracks(outputs)
    for i, name in enumerate(("x", "y", "size")):
        corr = np.corrcoef(driver[:, i], avatar[:, i])[0, 1]
        assert corr > 0.8, f"avatar face {name} does not follow the driver (correlation {corr:.2f})"
    assert avatar[:, 0].std() > 5  # it really moves (pixels at 256x256)
