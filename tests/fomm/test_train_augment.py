"""Webcam-like degradation and synthetic occluders of the keypoint detector's copy of the driving frame, the
face-shape warp of whole pairs and the tilt of driving frames (fomm.train.augment, FramesDataset's
``driving_input``, the trainer's use of it and the CLI flags)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")

import fomm  # noqa: E402
from fomm.train import augment  # noqa: E402
from fomm.train.augment import degrade_webcam, paste_occluder, reshape_pair, tilt_frame  # noqa: E402
from fomm.train.data import DatasetConfig, DatasetError, FramesDataset  # noqa: E402

S = 64


def _face_like(index: int, tag: int) -> np.ndarray:
    """A light disc ('face') with two dark eyes on a coloured background; the disc moves with ``index``."""
    yy, xx = np.mgrid[0:S, 0:S]
    image = np.zeros((S, S, 3), np.uint8)
    image[...] = (30 + 40 * tag, 80, 140)
    cx, cy = 28 + 2 * index, 32
    image[(xx - cx) ** 2 + (yy - cy) ** 2 < 20**2] = (230, 190, 160)
    for ex in (cx - 7, cx + 7):
        image[(xx - ex) ** 2 + (yy - 27) ** 2 < 3**2] = (20, 20, 20)
    image[(abs(xx - cx) < 6) & (abs(yy - 42) < 2)] = (150, 40, 40)
    return image


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("augment")
    for tag in range(2):
        folder = root / "train" / f"video{tag}"
        folder.mkdir(parents=True)
        for k in range(5):
            assert cv2.imwrite(str(folder / f"{k}.png"), cv2.cvtColor(_face_like(k, tag), cv2.COLOR_RGB2BGR))
    return root


def _items(root: Path, seed: int, count: int = 6, **kwargs: object) -> list[dict]:
    dataset = FramesDataset(DatasetConfig(root=root, image_size=S, **kwargs))  # type: ignore[arg-type]
    items = []
    for k in range(count):
        torch.manual_seed(seed * 1000 + k)  # as the trainer does: every item from its own seed
        items.append(dataset[k % len(dataset)])
    return items


def test_off_by_default_items_are_as_before(root: Path) -> None:
    config = DatasetConfig(root=root, image_size=S)
    assert config.webcam_aug == 0.0 and config.occluders == 0.0
    default = _items(root, 3)
    explicit = _items(root, 3, webcam_aug=0.0, occluders=0.0)
    for a, b in zip(default, explicit, strict=True):
        assert set(a) == {"source", "driving", "name"}  # no extra key, so batches are as before
        assert torch.equal(a["source"], b["source"]) and torch.equal(a["driving"], b["driving"])
    # The global RNG is left where the clean pipeline leaves it: the next draw is the same.
    _items(root, 3)
    after_default = torch.rand(())
    _items(root, 3, webcam_aug=0.0)
    assert torch.equal(torch.rand(()), after_default)


@pytest.mark.parametrize("flags", [{"webcam_aug": 1.0}, {"occluders": 1.0}, {"webcam_aug": 1.0, "occluders": 1.0}])
def test_on_changes_only_the_detector_copy(root: Path, flags: dict[str, float]) -> None:
    clean = _items(root, 5)
    augmented = _items(root, 5, **flags)
    changed = 0
    for a, b in zip(clean, augmented, strict=True):
        # Source and driving (the loss target) are the clean pipeline's, bit for bit.
        assert torch.equal(a["source"], b["source"]) and torch.equal(a["driving"], b["driving"])
        d = b["driving_input"]
        assert d.shape == b["driving"].shape and d.dtype == torch.float32
        assert float(d.min()) >= 0.0 and float(d.max()) <= 1.0
        assert d.data_ptr() != b["driving"].data_ptr()
        changed += int((d - b["driving"]).abs().max() > 1e-3)
    assert changed >= len(clean) - 1  # a draw may rarely pick no degradation


def test_deterministic_for_a_seed_and_different_across_seeds(root: Path) -> None:
    flags = {"webcam_aug": 1.0, "occluders": 1.0}
    first, again, other = _items(root, 11, **flags), _items(root, 11, **flags), _items(root, 12, **flags)
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a["driving_input"], b["driving_input"])
    assert any(
        a["driving"].shape == b["driving"].shape and not torch.equal(a["driving_input"], b["driving_input"])
        for a, b in zip(first, other, strict=True)
    )


def test_helpers_keep_shape_range_and_input() -> None:
    frame = torch.rand(3, 40, 48)
    before = frame.clone()
    for seed in range(8):
        g = torch.Generator().manual_seed(seed)
        for out in (degrade_webcam(frame, generator=g), paste_occluder(frame, texture=frame.flip(-1), generator=g)):
            assert out.shape == frame.shape and out.dtype == torch.float32
            assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(frame, before)
    # An occluder covers part of the frame, not all of it and not nothing.
    flat = torch.full((3, S, S), 0.5)
    covered = [
        float(
            ((paste_occluder(flat, generator=torch.Generator().manual_seed(s)) - flat).abs().amax(0) > 0.02)
            .float()
            .mean()
        )
        for s in range(16)
    ]
    assert all(0.0 < c < 0.9 for c in covered), covered


def test_probabilities_are_validated(root: Path) -> None:
    for name, value in (("webcam_aug", 1.5), ("occluders", -0.1), ("webcam_aug", True)):
        with pytest.raises(DatasetError, match=f"DatasetConfig.{name} must be a number in \\[0, 1\\], got"):
            DatasetConfig(root=root, **{name: value})  # type: ignore[arg-type]


def test_preview_png_clean_degraded_occluded(root: Path, tmp_path: Path) -> None:
    """Clean | degraded | occluded rows for a few seeds, each changed and each seed different, written as a PNG
    (``$FOMM_PREVIEW_DIR`` keeps it to look at)."""
    dataset = FramesDataset(DatasetConfig(root=root, image_size=S, augment=False))
    frame = dataset[0]["driving"]
    texture = dataset[1]["source"]
    rows = []
    for seed in range(4):
        g = torch.Generator().manual_seed(seed)
        degraded = degrade_webcam(frame, generator=g)
        occluded = paste_occluder(frame, texture=texture, generator=g)
        assert not torch.equal(degraded, frame) or not torch.equal(occluded, frame)
        rows.append(torch.cat([frame, degraded, occluded], -1))
    assert len({r.sum().item() for r in rows}) == len(rows)  # every seed draws something else
    grid = (torch.cat(rows, -2).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    grid = cv2.resize(grid, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
    preview = Path(os.environ.get("FOMM_PREVIEW_DIR", tmp_path)) / "fomm-train-augment.png"
    assert cv2.imwrite(str(preview), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    assert cv2.imread(str(preview)).shape == (grid.shape[0], grid.shape[1], 3)


# --- trainer ----------------------------------------------------------------------------------------------------


def _one_step(make_tiny, tmp_path: Path, batch: dict) -> dict:
    from fomm.train.losses import LossWeights
    from fomm.train.trainer import TrainConfig, Trainer

    torch.manual_seed(0)
    model = fomm.build_fomm(make_tiny(), with_discriminator=False)
    config = TrainConfig(
        batch_size=2, num_workers=0, progress=False, loss_weights=LossWeights(perceptual=(0.0,), l1=10.0)
    )
    data = [{"source": s, "driving": d, "name": "x"} for s, d in zip(batch["source"], batch["driving"], strict=True)]
    with Trainer(model, config, data, tmp_path, features=None) as trainer:  # type: ignore[arg-type]
        return trainer.train_step(batch, keep_outputs=True)


def test_trainer_feeds_driving_input_to_the_keypoint_detector_only(make_tiny, tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    source, driving = torch.rand(2, 3, S, S, generator=g), torch.rand(2, 3, S, S, generator=g)
    plain = _one_step(make_tiny, tmp_path / "a", {"source": source, "driving": driving})
    same = _one_step(make_tiny, tmp_path / "b", {"source": source, "driving": driving, "driving_input": driving})
    other_input = torch.rand(2, 3, S, S, generator=g)
    other = _one_step(make_tiny, tmp_path / "c", {"source": source, "driving": driving, "driving_input": other_input})
    for name, value in plain["losses"].items():
        assert torch.equal(value, same["losses"][name]), name
    assert torch.equal(plain["outputs"]["kp_driving"], same["outputs"]["kp_driving"])
    assert not torch.equal(plain["outputs"]["kp_driving"], other["outputs"]["kp_driving"])
    # The reconstruction target stays the clean driving frame.
    assert torch.equal(other["outputs"]["driving"], driving)


# --- command line -----------------------------------------------------------------------------------------------


def test_cli_flags_reach_the_dataset_and_resume_keeps_them(root: Path, tmp_path: Path, capsys) -> None:
    from fomm.train.__main__ import _dataset, _run_paths, _write_run_record, build_parser, main

    parser = build_parser()
    args = parser.parse_args(
        ["--data", str(root), "--out", str(tmp_path), "--webcam-aug", "0.5", "--occluders", "0.25"]
    )
    dataset = _dataset(args, S)
    assert (dataset.config.webcam_aug, dataset.config.occluders) == (0.5, 0.25)
    assert _dataset(parser.parse_args(["--data", str(root), "--out", str(tmp_path)]), S).config.webcam_aug == 0.0
    _write_run_record(args)
    record = json.loads((tmp_path / "run.json").read_text())
    assert (record["webcam_aug"], record["occluders"]) == (0.5, 0.25)
    (tmp_path / "checkpoint.safetensors").write_bytes(b"")  # _run_paths only checks that it exists
    resumed = parser.parse_args(["--resume", str(tmp_path)])
    _run_paths(resumed)
    assert (resumed.webcam_aug, resumed.occluders) == (0.5, 0.25)
    changed = parser.parse_args(["--resume", str(tmp_path), "--data", str(root), "--webcam-aug", "0"])
    _run_paths(changed)
    assert (changed.webcam_aug, changed.occluders) == (0.0, 0.25)
    assert main(["--data", str(root), "--out", str(tmp_path / "x"), "--webcam-aug", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--webcam-aug" in err[0] and "probability in [0, 1]" in err[0]


def test_cli_trains_with_both_augmentations_and_resumes(root: Path, tmp_path: Path) -> None:
    from fomm.train.__main__ import main

    out = tmp_path / "run"
    common = ["--features", "none", "--log-every", "1", "--no-progress", "--batch-size", "2", "--workers", "0"]
    args = ["--data", str(root), "--out", str(out), "--preset", "tiny-256", "--image-size", str(S), *common]
    assert main([*args, "--max-steps", "1", "--webcam-aug", "1", "--occluders", "0.5"]) == 0
    assert main(["--resume", str(out), "--max-steps", "2"]) == 0
    record = json.loads((out / "run.json").read_text())
    assert (record["webcam_aug"], record["occluders"]) == (1.0, 0.5)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]


def _square_pair(shift: int, size: int = 96, half: int = 12) -> torch.Tensor:
    """Source: a white square centred in a black frame; driving: the same square moved right by ``shift`` px."""
    pair = torch.zeros(2, 3, size, size)
    c = size // 2
    pair[0, :, c - half : c + half, c - half : c + half] = 1.0
    pair[1, :, c - half : c + half, c - half + shift : c + half + shift] = 1.0
    return pair


def _extent(frame: torch.Tensor) -> tuple[float, float, float]:
    """Width, height and centre x (px) of the bright region of ``(3, H, W)``, from its mass per row/column."""
    mask = frame.mean(0)
    xs = torch.arange(mask.shape[1], dtype=torch.float32)
    width = float(mask.sum(1).max())  # bright pixels per row
    height = float(mask.sum(0).max())  # per column
    centre = float((mask.sum(0) * xs).sum() / mask.sum())
    return width, height, centre


@pytest.mark.parametrize(("scale_x", "scale_y"), [(1.15, 0.85), (0.85, 1.15)])
def test_reshape_pair_scales_both_frames_alike_and_keeps_their_motion(monkeypatch, scale_x, scale_y) -> None:
    """With the shear and spline off and fixed scale factors, a 24 px square becomes 24 s_x by 24 s_y in both
    frames, and the 8 px motion between them becomes 8 s_x: the same motion by a differently shaped face."""
    draws = iter((scale_x, scale_y, 0.0))
    monkeypatch.setattr(augment, "_uniform", lambda low, high, generator: next(draws))
    monkeypatch.setattr(augment, "SHAPE_TPS_SIGMA", 0.0)
    pair = _square_pair(8)
    before = pair.clone()
    out = reshape_pair(pair)
    assert torch.equal(pair, before) and out.shape == pair.shape and out.dtype == torch.float32
    (w0, h0, x0), (w1, h1, x1) = _extent(out[0]), _extent(out[1])
    for width, height in ((w0, h0), (w1, h1)):
        assert width == pytest.approx(24 * scale_x, abs=1.0) and height == pytest.approx(24 * scale_y, abs=1.0)
    assert x1 - x0 == pytest.approx(8 * scale_x, abs=0.5)


def test_reshape_pair_random_draws_stay_in_range_and_warp_both_frames_the_same(monkeypatch) -> None:
    still = _square_pair(0)  # source == driving: one warp for both keeps them equal
    low, high = (24 * s for s in augment.SHAPE_SCALE)
    for tps in (0.0, augment.SHAPE_TPS_SIGMA):
        monkeypatch.setattr(augment, "SHAPE_TPS_SIGMA", tps)
        changed = []
        for seed in range(12):
            out = reshape_pair(still, generator=torch.Generator().manual_seed(seed))
            assert torch.allclose(out[0], out[1], atol=1e-6)
            assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
            if tps == 0.0:  # scale and shear only: the square's size stays in the scale range
                width, height, _ = _extent(out[0])
                assert low - 1.0 <= width <= high + 1.0 and low - 1.0 <= height <= high + 1.0, (seed, width, height)
            changed.append(float((out - still).abs().max()))
        assert min(changed) > 0.1  # every draw reshapes
    again = reshape_pair(still, generator=torch.Generator().manual_seed(3))
    assert torch.equal(again, reshape_pair(still, generator=torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match=r"expected a \(N, 3, H, W\) pair"):
        reshape_pair(still[0])


def test_shape_aug_in_the_dataset_changes_both_frames_and_is_off_by_default(root: Path) -> None:
    assert DatasetConfig(root=root, image_size=S).shape_aug == 0.0
    clean = _items(root, 7)
    shaped = _items(root, 7, shape_aug=1.0)
    for a, b in zip(clean, shaped, strict=True):
        assert set(b) == {"source", "driving", "name"}  # the loss target itself is reshaped: no detector copy
        assert float((a["source"] - b["source"]).abs().max()) > 0.05
        assert float((a["driving"] - b["driving"]).abs().max()) > 0.05
    with pytest.raises(DatasetError, match=r"DatasetConfig.shape_aug must be a number in \[0, 1\], got 2"):
        DatasetConfig(root=root, shape_aug=2)


@pytest.mark.parametrize(("flag", "value"), [("--shape-aug", 0.4), ("--tilt-aug", 0.5)])
def test_cli_pair_augmentation_reaches_the_dataset_the_run_record_and_resume(
    root: Path, tmp_path: Path, capsys, flag: str, value: float
) -> None:
    from fomm.train.__main__ import _dataset, _run_paths, _write_run_record, build_parser, main

    name = flag[2:].replace("-", "_")
    parser = build_parser()
    args = parser.parse_args(["--data", str(root), "--out", str(tmp_path), flag, str(value)])
    assert getattr(_dataset(args, S).config, name) == value
    _write_run_record(args)
    assert json.loads((tmp_path / "run.json").read_text())[name] == value
    (tmp_path / "checkpoint.safetensors").write_bytes(b"")
    resumed = parser.parse_args(["--resume", str(tmp_path)])
    _run_paths(resumed)
    assert getattr(resumed, name) == value
    assert main(["--data", str(root), "--out", str(tmp_path / "x"), flag, "1.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0] and "probability in [0, 1]" in err[0]


def _bar_angle(frame: torch.Tensor) -> float:
    """The on-screen angle (degrees, counter-clockwise positive) of the bright bar in ``(3, H, W)``."""
    ys, xs = np.nonzero(frame[0].numpy() > 0.5)
    return float(np.degrees(np.arctan(-np.polyfit(xs, ys, 1)[0])))


@pytest.mark.parametrize("degrees", [20.0, -12.0])
def test_tilt_frame_turns_the_content_rigidly_about_the_centre(degrees: float) -> None:
    """A horizontal bar through the centre of a wide frame comes out at the asked angle (counter-clockwise on
    screen for positive), still centred; the input is not changed."""
    frame = torch.zeros(3, 64, 96)
    frame[:, 30:34, 12:84] = 1.0
    before = frame.clone()
    out = tilt_frame(frame, degrees=degrees)
    assert torch.equal(frame, before) and out.shape == frame.shape and out.dtype == torch.float32
    assert _bar_angle(out) == pytest.approx(degrees, abs=1.0)
    ys, xs = np.nonzero(out[0].numpy() > 0.5)
    assert xs.mean() == pytest.approx(47.5, abs=1.0) and ys.mean() == pytest.approx(31.5, abs=1.0)
    assert torch.allclose(tilt_frame(frame, degrees=0.0), frame, atol=1e-5)


def test_tilt_frame_random_angles_stay_in_range_and_repeat_with_the_seed() -> None:
    frame = torch.zeros(3, 64, 64)
    frame[:, 30:34, 8:56] = 1.0
    angles = [_bar_angle(tilt_frame(frame, generator=torch.Generator().manual_seed(seed))) for seed in range(16)]
    assert all(abs(a) <= augment.TILT_DEGREES + 1.0 for a in angles)
    assert max(angles) > 5.0 and min(angles) < -5.0  # both ways
    again = tilt_frame(frame, generator=torch.Generator().manual_seed(4))
    assert torch.equal(again, tilt_frame(frame, generator=torch.Generator().manual_seed(4)))
    with pytest.raises(ValueError, match=r"expected a \(3, H, W\) frame"):
        tilt_frame(frame[None])


def test_tilt_aug_in_the_dataset_turns_the_driving_frame_only(root: Path) -> None:
    assert DatasetConfig(root=root, image_size=S).tilt_aug == 0.0
    clean = _items(root, 9)
    tilted = _items(root, 9, tilt_aug=1.0)
    for a, b in zip(clean, tilted, strict=True):
        assert set(b) == {"source", "driving", "name"}
        assert torch.equal(a["source"], b["source"])
        assert float((a["driving"] - b["driving"]).abs().max()) > 0.05
    with pytest.raises(DatasetError, match=r"DatasetConfig.tilt_aug must be a number in \[0, 1\], got -1"):
        DatasetConfig(root=root, tilt_aug=-1)
