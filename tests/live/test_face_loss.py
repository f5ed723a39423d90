"""Face loss on a real clip: the face leaves (cut to black, then sky, then a face-less part of the picture) and
comes back. Only confirmed faces may drive the avatar: while none is seen the output is the last good output,
pixel for pixel, then it eases to the rest pose; on re-acquire the animation resumes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

import fomm  # noqa: E402
from fomm.media import MediaError, find_yunet_model, open_frames  # noqa: E402
from fomm.media.assets import DEFAULT_AVATAR, DEFAULT_DRIVING, DEMO_MODEL  # noqa: E402
from live.backends import TorchBackend  # noqa: E402
from live.crop import CropConfig, FaceFramer  # noqa: E402
from live.pipeline import PuppetPipeline, StepResult  # noqa: E402


def _yunet_missing() -> str | None:
    try:
        find_yunet_model()
    except MediaError as exc:
        return str(exc)
    return None


pytestmark = pytest.mark.skipif(_yunet_missing() is not None, reason=f"YuNet missing: {_yunet_missing()}")

FPS = 25.0
FACE, BLACK, SKY, NO_FACE, BACK = 22, 6, 6, 28, 8  # frames of each part (the cut falls between detections)
HOLD, EASE = 0.6, 0.4  # 15 frames held, 10 frames of easing, then at rest (the loss lasts 40 frames)


def face_leaves_clip() -> tuple[list[np.ndarray], list[str]]:
    """Real frames of the bundled clip (640x360 camera frames, the face at the left), then the face leaves:
    black, a sky gradient, the clip's right part shifted over the face (no face in it), then the face again."""
    with open_frames(DEFAULT_DRIVING, max_frames=FACE + BACK) as frames:
        faces = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]

    def camera(face: np.ndarray) -> np.ndarray:
        canvas = np.full((360, 640, 3), 70, np.uint8)
        canvas[40:296, 60:316] = face
        return canvas

    sky = np.zeros((360, 640, 3), np.uint8)
    sky[..., 0] = np.linspace(250, 180, 360, dtype=np.uint8)[:, None]  # BGR: blue to pale
    sky[..., 1] = np.linspace(200, 170, 360, dtype=np.uint8)[:, None]
    sky[..., 2] = np.linspace(140, 160, 360, dtype=np.uint8)[:, None]
    clip, kinds = [], []
    for face in faces[:FACE]:
        clip.append(camera(face))
        kinds.append("face")
    for _ in range(BLACK):
        clip.append(np.zeros((360, 640, 3), np.uint8))
        kinds.append("gone")
    for _ in range(SKY):
        clip.append(sky.copy())
        kinds.append("gone")
    for k in range(NO_FACE):  # the face-less corner of a real frame, stretched over the picture
        corner = faces[k][:64, 192:256]
        clip.append(cv2.resize(corner, (640, 360), interpolation=cv2.INTER_CUBIC))
        kinds.append("gone")
    for face in faces[FACE : FACE + BACK]:
        clip.append(camera(face))
        kinds.append("face")
    return clip, kinds


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend(fomm.load_checkpoint(DEMO_MODEL).model)


@pytest.fixture(scope="module")
def run(backend: TorchBackend) -> tuple[PuppetPipeline, list[StepResult], list[str]]:
    """The clip through the pipeline with the real YuNet framer (detector every 5 frames) and the demo model."""
    from live.filters import KeypointFilter

    framer = FaceFramer(CropConfig(size=backend.image_size, detect_every=5))
    pipeline = PuppetPipeline(
        backend, framer, keypoint_filter=KeypointFilter(0.3), hold_seconds=HOLD, ease_seconds=EASE
    )
    pipeline.set_source(np.ascontiguousarray(cv2.imread(str(DEFAULT_AVATAR), cv2.IMREAD_COLOR)))
    clip, kinds = face_leaves_clip()
    results = [pipeline.step(frame, timestamp=i / FPS) for i, frame in enumerate(clip)]
    return pipeline, results, kinds


def test_while_the_face_is_gone_the_output_is_the_last_good_one_then_the_rest_pose(
    backend: TorchBackend, run: tuple[PuppetPipeline, list[StepResult], list[str]]
) -> None:
    pipeline, results, kinds = run
    gone = [i for i, kind in enumerate(kinds) if kind == "gone"]
    assert all(results[i].framing.face_found for i in range(FACE)), "the face must be found in the real frames"
    assert not any(results[i].framing.face_found for i in gone), "no face may be reported while it is gone"
    last_confirmed = results[gone[0] - 1]
    last_good = last_confirmed.output
    assert pipeline._kp_source is not None
    rest = pipeline.processor.to_image(backend.generate(pipeline._kp_source))
    whole = np.abs(rest.astype(int) - last_good.astype(int)).mean()
    assert whole > 1.0, "rest and last pose must differ in this clip"
    weights = []
    for i in gone:
        elapsed = (i - gone[0]) / FPS
        weights.append(results[i].rest)
        np.testing.assert_array_equal(results[i].keypoints, last_confirmed.keypoints)  # the held pose
        if elapsed <= HOLD:
            np.testing.assert_array_equal(results[i].output, last_good, err_msg=f"frame {i}: not the held pose")
        elif elapsed >= HOLD + EASE:
            np.testing.assert_array_equal(results[i].output, rest, err_msg=f"frame {i}: not the rest pose")
    assert weights == sorted(weights) and weights[0] == 0.0 and weights[-1] == 1.0
    # easing is gradual: no step between consecutive frames is as large as half the way
    easing = [results[i].output.astype(int) for i in gone if 0.0 < results[i].rest < 1.0]
    assert len(easing) >= 5
    path = [last_good.astype(int), *easing, rest.astype(int)]
    assert max(np.abs(b - a).mean() for a, b in itertools.pairwise(path)) < 0.5 * whole
    # the face comes back: animation resumes from it
    back = [results[i] for i, kind in enumerate(kinds) if kind == "face" and i > gone[-1]]
    assert all(r.framing.face_found and r.rest == 0.0 for r in back)
    assert np.abs(back[-1].output.astype(int) - rest.astype(int)).mean() > 1.0


def test_hold_and_ease_are_validated(backend: TorchBackend) -> None:
    framer = FaceFramer(CropConfig(size=backend.image_size))
    with pytest.raises(ValueError, match="hold_seconds"):
        PuppetPipeline(backend, framer, hold_seconds=-1.0)
    with pytest.raises(ValueError, match="ease_seconds"):
        PuppetPipeline(backend, framer, ease_seconds=float("nan"))
