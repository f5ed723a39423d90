"""Do a model's keypoints turn with a tilted head? Two measures of the keypoint detector alone (issue 10), per
model, printed and saved as JSON:

- synthetic: each avatar of ``compare_models.py`` (and the Pexels clip's first frame) turned about its centre by
  -20..20 degrees; the slope of the keypoint constellation's turn (least-squares rotation to the unturned
  image's keypoints) and of the jacobians' turn (the rotation angle of ``J(a) J(0)^-1``, mean over keypoints)
  against the angle. An equivariant detector gives slopes of magnitude 1 (the sign is the image convention).
- real: the Pexels clip (a person in no training split), the driver's head roll per frame from FaceMesh against
  the same two turns relative to frame 0: correlation and amplitude ratio (std of turn / std of roll).

First-order motion tilts the region around a keypoint only through its relative jacobian, so jacobians that do
not turn leave the avatar's tilt to the keypoints' positions alone.

    python benchmarks/jacobian_turn.py --model bundled=fomm/assets/demo.safetensors --model new=ckpt.safetensors \\
        [--out results/jacobian_turn.json]

Needs ``pip install -e ".[metrics]"`` and the FaceMesh model (``FOMM_FACEMESH_PATH``, see the README).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from compare_models import SIZE, _avatars

import fomm
from fomm.train.evaluate import read_video
from fomm.train.motion import SIGNALS, MotionLandmarks
from fomm.train.prepare import EVAL_SOURCES, SOURCES, fetch_sources

ANGLES = np.arange(-20.0, 20.5, 5.0)


def _turn(matrices: np.ndarray) -> np.ndarray:
    """Rotation angle (degrees) of ``(..., 2, 2)`` matrices."""
    return np.degrees(np.arctan2(matrices[..., 1, 0] - matrices[..., 0, 1], matrices[..., 0, 0] + matrices[..., 1, 1]))


def _turns(model: fomm.Fomm, frames: np.ndarray, reference: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the constellation's and the mean jacobian's turn (degrees) from frame ``reference``."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        kps = [model.kp_detector(x[i : i + 32]) for i in range(0, len(x), 32)]
    values = torch.cat([k.value for k in kps]).double().numpy()
    jacobians = torch.cat([k.jacobian for k in kps]).double().numpy()
    centred = values - values.mean(1, keepdims=True)
    constellation = _turn(np.einsum("ki,tkj->tij", centred[reference], centred).transpose(0, 2, 1))
    relative = jacobians @ np.linalg.inv(jacobians[reference])[None]
    return constellation, _turn(relative).mean(1)


def _follow(driver: np.ndarray, turn: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(driver) & np.isfinite(turn)
    d, t = driver[ok], turn[ok]
    return {"r": float(np.corrcoef(d, t)[0, 1]), "amp": float(t.std() / d.std())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH", help="a checkpoint (repeat)")
    parser.add_argument("--out", type=Path, default=Path("results/jacobian_turn.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(2)
    paths = fetch_sources((*SOURCES, *EVAL_SOURCES))
    clip = read_video(paths["pexels"], SIZE, crop="face")
    roll = MotionLandmarks("facemesh").track(clip)[:, SIGNALS.index("roll")]
    images = [("pexels frame 0", clip[0]), *_avatars(paths)]
    centre = len(ANGLES) // 2
    results: dict[str, object] = {"angles": ANGLES.tolist(), "pexels_frames": len(clip), "models": {}}
    for spec in args.model:
        name, _, path = spec.partition("=")
        start = time.time()
        model = fomm.load_checkpoint(path, device="cpu").model
        synthetic = {}
        for label, image in images:
            h, w = image.shape[:2]
            turned = np.stack(
                [
                    cv2.warpAffine(
                        image, cv2.getRotationMatrix2D((w / 2, h / 2), a, 1.0), (w, h), borderMode=cv2.BORDER_REFLECT
                    )
                    for a in ANGLES
                ]
            )
            constellation, jacobian = _turns(model, turned, centre)
            synthetic[label] = {
                "constellation_slope": float(np.polyfit(ANGLES, constellation, 1)[0]),
                "jacobian_slope": float(np.polyfit(ANGLES, jacobian, 1)[0]),
            }
        constellation, jacobian = _turns(model, clip, 0)
        real = {"constellation": _follow(roll, constellation), "jacobian": _follow(roll, jacobian)}
        results["models"][name] = {"checkpoint": path, "synthetic": synthetic, "pexels_roll": real}
        print(f"{name} ({time.time() - start:.0f} s)")
        for label, s in synthetic.items():
            print(
                f"  turned {label:15s} slope: constellation {s['constellation_slope']:+.2f}, "
                f"jacobians {s['jacobian_slope']:+.2f}"
            )
        for what, s in real.items():
            print(f"  Pexels roll vs {what:13s} turn: r {s['r']:+.2f}, amplitude {s['amp']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
