"""One cropping rule for training data, ``fomm animate --driving-crop face`` and the live face framer."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from fomm.media.image import Box, place_square, square_box
from fomm.train.prepare import crop_for_boxes
from live.crop import CropConfig, FaceFramer


class _Fixed:
    def __init__(self, box: tuple[float, float, float, float]) -> None:
        self.face = box

    def box(self, image: np.ndarray) -> tuple[float, float, float, float]:
        return self.face


@pytest.mark.parametrize(
    "face",
    [
        (10.0, 12.0, 70.0, 80.0),  # top-left corner: the 1.8x square would leave the frame
        (560.0, 380.0, 630.0, 470.0),  # bottom-right corner
        (250.0, 150.0, 330.0, 250.0),  # in the middle: nothing to shift
        (100.0, 40.0, 400.0, 400.0),  # a face too large for the 1.8x square: the frame's shorter side
    ],
)
def test_training_animate_and_live_crop_the_same_square(face: tuple[float, float, float, float]) -> None:
    height, width = 480, 640
    frame = np.zeros((height, width, 3), np.uint8)
    train, _ = crop_for_boxes(np.array([face] * 10), (width, height))
    animate = square_box(frame, "face", face_box=face)
    framer = FaceFramer(CropConfig(detect_side=0), detector=_Fixed(face))
    x0, y0, side = framer(frame).box
    live = Box(round(x0), round(y0), round(x0) + round(side), round(y0) + round(side))
    assert Box(*train) == animate == live
    assert live.x0 >= 0 and live.y0 >= 0 and live.x1 <= width and live.y1 <= height


def test_place_square_pads_only_when_it_must() -> None:
    assert place_square(5.0, 5.0, 20.0, (100, 50)) == Box(0, 0, 20, 20)
    assert place_square(95.0, 45.0, 20.0, (100, 50)) == Box(80, 30, 100, 50)
    assert place_square(50.0, 25.0, 80.0, (100, 50)) == Box(25, 0, 75, 50)  # shrunk to the shorter side
    # what must stay in view is larger than the frame: centred, padded on both sides
    assert place_square(50.0, 25.0, 80.0, (100, 50), min_side=70.0) == Box(15, -10, 85, 60)
