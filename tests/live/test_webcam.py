"""A real webcam (``camera`` marker): runs only with ``FOMM_TEST_CAMERA=<index>``, skipped with a reason otherwise."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("cv2")

from live.capture import LatestFrameCapture

pytestmark = pytest.mark.camera


def test_webcam_delivers_fresh_frames_in_order() -> None:
    index = int(os.environ["FOMM_TEST_CAMERA"])
    with LatestFrameCapture(index) as capture:
        frames = [capture.read(timeout=10.0) for _ in range(5)]
    assert all(f is not None for f in frames)
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices)), f"frames repeated or out of order: {indices}"
    assert all(f.image.ndim == 3 and f.image.shape[2] == 3 and f.image.size > 0 for f in frames)
