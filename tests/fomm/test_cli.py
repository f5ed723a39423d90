"""The ``fomm`` command: animate (video, folder, audio, best frame), convert, info, and user errors."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")
av = pytest.importorskip("av")

from conftest import write_audio_only, write_tiny_original  # noqa: E402

import fomm  # noqa: E402
from fomm.cli import main  # noqa: E402
from fomm.media.image import fit_square, load_image, to_tensor  # noqa: E402
from fomm.media.video import VideoWriter, open_frames  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "fomm" / "assets"
AVATAR = ASSETS / "avatar.png"
CLIP = ASSETS / "driving.mp4"


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny original-format checkpoint (random weights) and its YAML, made here (no reference fixtures)."""
    return write_tiny_original(tmp_path_factory.mktemp("tiny-original"))


@pytest.fixture(scope="module")
def tiny(tiny_files: tuple[Path, Path]) -> list[str]:
    """Arguments selecting the tiny original-format checkpoint (128x128 frames)."""
    checkpoint, yaml_path = tiny_files
    return ["--checkpoint", str(checkpoint), "--config", str(yaml_path), "--size", "128"]


@pytest.fixture(scope="module")
def small_safetensors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project-format checkpoint of a small custom config (64x64), random weights."""
    config = fomm.make_config(
        "tiny",
        common={"num_kp": 4, "num_channels": 3, "estimate_jacobian": True},
        kp_detector={
            "block_expansion": 8,
            "max_features": 32,
            "num_blocks": 3,
            "scale_factor": 0.25,
            "temperature": 0.1,
        },
        generator={
            "block_expansion": 8,
            "max_features": 32,
            "num_down_blocks": 2,
            "num_bottleneck_blocks": 1,
            "estimate_occlusion_map": True,
        },
        dense_motion={"block_expansion": 8, "max_features": 32, "num_blocks": 3, "scale_factor": 0.25},
        image_size=64,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "m.safetensors"
    return fomm.save_checkpoint(path, fomm.build_fomm(config))


def _stream_facts(path: Path) -> dict[str, object]:
    """Facts about a video as PyAV and OpenCV see it (both must open it)."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
        facts: dict[str, object] = {
            "frames": frames,
            "rate": video.average_rate,
            "size": (video.codec_context.width, video.codec_context.height),
            "codec": video.codec_context.name,
        }
    with av.open(str(path)) as container:
        audio = container.streams.audio
        facts["audio_seconds"] = (
            float(audio[0].duration * audio[0].time_base) if audio and audio[0].duration else (0.0 if audio else None)
        )
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"OpenCV cannot open {path}"
    cv2_frames = 0
    while capture.read()[0]:
        cv2_frames += 1
    facts["cv2_frames"] = cv2_frames
    facts["cv2_fps"] = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return facts


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


# --- animate ----------------------------------------------------------------------------------------------------


def test_animate_defaults_to_the_bundled_avatar_and_clip(tiny: list[str], tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    assert main(["animate", *tiny, "--max-frames", "3", "--output", str(out), "--quiet"]) == 0
    facts = _stream_facts(out)
    assert facts["frames"] == 3 and facts["rate"] == Fraction(25) and facts["size"] == (128, 128)


def test_animate_bundled_clip(tiny: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.mp4"
    rc = main(
        ["animate", "--source", str(AVATAR), "--driving", str(CLIP), *tiny, "--max-frames", "40", "--output", str(out)]
    )
    assert rc == 0
    facts = _stream_facts(out)
    assert facts["frames"] == 40 and facts["cv2_frames"] == 40
    assert facts["rate"] == Fraction(25) and abs(float(facts["cv2_fps"]) - 25) < 1e-6  # type: ignore[arg-type]
    assert facts["size"] == (128, 128) and facts["codec"] == "h264"
    assert facts["audio_seconds"] is None
    err = capsys.readouterr().err
    assert "wrote" in err and "40 frames" in err and str(out) in err
    assert "Traceback" not in err
    assert "\r" not in err and "animating" not in err  # stderr is not a terminal here: no progress bar in the log
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_animate_folder_of_frames(tiny: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    with open_frames(CLIP, max_frames=12) as source:
        for i, frame in enumerate(source):
            cv2.imwrite(str(folder / f"f{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    out = tmp_path / "folder.mp4"
    rc = main(
        [
            "animate",
            "--source",
            str(AVATAR),
            "--driving",
            str(folder),
            *tiny,
            "--fps",
            "12",
            "--output",
            str(out),
            "--output-size",
            "96",
            "--batch-size",
            "5",
            "--quiet",
        ]
    )
    assert rc == 0
    facts = _stream_facts(out)
    assert facts["frames"] == 12 and facts["cv2_frames"] == 12
    assert facts["rate"] == Fraction(12) and facts["size"] == (96, 96)


def test_animate_safetensors_without_config(small_safetensors: Path, tmp_path: Path) -> None:
    out = tmp_path / "abs.mp4"
    rc = main(
        [
            "animate",
            "--source",
            str(AVATAR),
            "--driving",
            str(CLIP),
            "--checkpoint",
            str(small_safetensors),
            "--max-frames",
            "6",
            "--mode",
            "absolute",
            "--no-adapt-scale",
            "--source-crop",
            "center",
            "--align-corners",
            "false",
            "--output",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    facts = _stream_facts(out)
    assert facts["frames"] == 6 and facts["size"] == (64, 64)


def _clip_with_audio(path: Path, frames: int = 30, rate: int = 25) -> float:
    """A short copy of the bundled clip with a 440 Hz AAC sine track; returns its duration in seconds."""
    seconds = frames / rate
    with open_frames(CLIP, max_frames=frames) as source:
        video = list(source)
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
    audio = container.add_stream("aac", rate=22050)
    audio.layout = "mono"
    for i, frame in enumerate(video):
        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        vf.pts = i
        for packet in stream.encode(vf):
            container.mux(packet)
    t = np.arange(int(22050 * seconds)) / 22050
    samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for start in range(0, len(samples), 1024):
        af = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="fltp", layout="mono")
        af.sample_rate = 22050
        af.pts = start
        for packet in audio.encode(af):
            container.mux(packet)
    for packet in [*stream.encode(None), *audio.encode(None)]:
        container.mux(packet)
    container.close()
    return seconds


def test_animate_keeps_audio(tiny: list[str], tmp_path: Path) -> None:
    driving = tmp_path / "talk.mp4"
    seconds = _clip_with_audio(driving)
    assert open_frames(driving).info.has_audio
    out = tmp_path / "with-audio.mp4"
    assert (
        main(["animate", "--source", str(AVATAR), "--driving", str(driving), *tiny, "--output", str(out), "--quiet"])
        == 0
    )
    facts = _stream_facts(out)
    assert facts["frames"] == 30 and facts["rate"] == Fraction(25)
    assert facts["audio_seconds"] == pytest.approx(seconds, abs=0.1)

    silent = tmp_path / "silent.mp4"
    rc = main(
        [
            "animate",
            "--source",
            str(AVATAR),
            "--driving",
            str(driving),
            *tiny,
            "--output",
            str(silent),
            "--no-audio",
            "--quiet",
        ]
    )
    assert rc == 0
    facts = _stream_facts(silent)
    assert facts["frames"] == 30 and facts["audio_seconds"] is None


def test_best_frame_is_the_calibration_frame(tiny: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--best-frame k calibrates on driving frame k (fitted like every frame); the default is frame 0."""
    folder = tmp_path / "frames"
    folder.mkdir()
    with open_frames(CLIP, max_frames=60) as source:
        frames = [f for i, f in enumerate(source) if i % 10 == 0]  # 6 frames with visible motion
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    seen: list[torch.Tensor] = []
    real_calibrate = fomm.Animator.calibrate

    def calibrate(self: fomm.Animator, initial: torch.Tensor) -> object:
        seen.append(initial.clone())
        return real_calibrate(self, initial)

    monkeypatch.setattr(fomm.Animator, "calibrate", calibrate)
    common = ["--source", str(AVATAR), "--driving", str(folder), *tiny, "--quiet"]
    assert main(["animate", *common, "--best-frame", "4", "--output", str(tmp_path / "k.mp4")]) == 0
    assert main(["animate", *common, "--output", str(tmp_path / "0.mp4")]) == 0
    assert main(["animate", *common, "--mode", "absolute", "--output", str(tmp_path / "abs.mp4")]) == 0
    assert len(seen) == 2  # absolute mode needs no calibration
    torch.testing.assert_close(seen[0], to_tensor(fit_square(frames[4], 128)))
    torch.testing.assert_close(seen[1], to_tensor(fit_square(frames[0], 128)))
    assert _stream_facts(tmp_path / "k.mp4")["frames"] == 6


def test_find_best_frame(tiny: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = fit_square(load_image(AVATAR), 128)
    folder = tmp_path / "poses"
    folder.mkdir()
    h, w = source.shape[:2]
    poses = [(15, 1.0, 1.0, 0, 0), (-12, 1.0, 1.2, 6, -3), (0, 1.25, 0.9, -5, 2), None, (8, 0.9, 1.1, 8, 0)]
    for i, pose in enumerate(poses):
        if pose is None:
            frame = source  # frame 3 is the source itself
        else:
            angle, sx, sy, tx, ty = pose
            m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            m[0] *= sx
            m[1] *= sy
            m[0, 2] += tx
            m[1, 2] += ty
            frame = cv2.warpAffine(source, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    out = tmp_path / "best.mp4"
    rc = main(
        ["animate", "--source", str(AVATAR), "--driving", str(folder), *tiny, "--find-best-frame", "--output", str(out)]
    )
    assert rc == 0
    err = capsys.readouterr().err
    assert "best frame: 3 " in err
    assert _stream_facts(out)["frames"] == 5


def test_interrupt_leaves_no_output(
    tiny: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = {"n": 0}
    real_step = fomm.Animator.step

    def step(self: fomm.Animator, driving: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_step(self, driving)

    monkeypatch.setattr(fomm.Animator, "step", step)
    out_dir = tmp_path / "out"
    out_dir.mkdir()  # an output folder must exist (checked before the model loads)
    rc = main(
        [
            "animate",
            "--source",
            str(AVATAR),
            "--driving",
            str(CLIP),
            *tiny,
            "--max-frames",
            "20",
            "--output",
            str(out_dir / "x.mp4"),
            "--quiet",
        ]
    )
    assert rc == 130
    assert _error_lines(capsys.readouterr().err) == ["fomm: interrupted"]
    assert list(out_dir.iterdir()) == []


# --- convert and info -------------------------------------------------------------------------------------------


def test_convert_then_info_then_animate(tiny: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    converted = tmp_path / "tiny.safetensors"
    assert main(["convert", "--checkpoint", tiny[1], "--config", tiny[3], "--output", str(converted)]) == 0
    assert converted.is_file()
    capsys.readouterr()

    assert main(["info", str(converted)]) == 0
    text = capsys.readouterr().out
    assert "format: safetensors" in text and "config: tiny-jac" in text and "step: 0" in text
    assert "generator: 234,327 parameters" in text and "fits presets: none" in text

    assert main(["info", tiny[1]]) == 2  # an original file that fits no preset needs its YAML
    assert "fits no preset" in capsys.readouterr().err

    assert main(["info", tiny[1], "--config", tiny[3]]) == 0
    text = capsys.readouterr().out
    assert "format: original" in text and "config: tiny-jac (given)" in text and "fits presets: none" in text

    assert "kp_detector: 173,472 parameters" in text

    out = tmp_path / "from-safetensors.mp4"
    rc = main(
        [
            "animate",
            "--source",
            str(AVATAR),
            "--driving",
            str(CLIP),
            "--checkpoint",
            str(converted),
            "--size",
            "128",
            "--max-frames",
            "4",
            "--output",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0 and _stream_facts(out)["frames"] == 4


def test_help_explains_align_corners(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["animate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "true: what the released checkpoints were trained with (torch 1.0)" in text
    assert "false: what the original code computes under torch >= 1.3" in text


# --- user errors ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory, tiny_files: tuple[Path, Path]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    text = root / "notes.png"
    text.write_text("not an image")
    not_video = root / "notes.mp4"
    not_video.write_text("not a video")
    empty_dir = root / "empty"
    empty_dir.mkdir()
    audio_only = write_audio_only(root / "sound.mp4")
    truncated = root / "truncated.pth.tar"
    truncated.write_bytes(tiny_files[0].read_bytes()[:50_000])
    junk_ckpt = root / "junk.pth.tar"
    junk_ckpt.write_text("hello")
    return {
        "text": text,
        "not_video": not_video,
        "empty_dir": empty_dir,
        "audio_only": audio_only,
        "truncated": truncated,
        "junk_ckpt": junk_ckpt,
        "root": root,
    }


BAD_CASES = {
    # name: (argument overrides, text the one error line must contain)
    "missing source": ({"--source": "{root}/nope.png"}, "nope.png"),
    "unreadable source": ({"--source": "{text}"}, "notes.png"),
    "missing driving": ({"--driving": "{root}/nope.mp4"}, "nope.mp4"),
    "unreadable driving": ({"--driving": "{not_video}"}, "notes.mp4"),
    "driving without video": ({"--driving": "{audio_only}"}, "sound.mp4"),
    "driving folder without frames": ({"--driving": "{empty_dir}"}, "empty"),
    "checkpoint of another preset": ({"--config": "vox-256", "--size": None}, "vox-256"),
    "original checkpoint that fits no preset": ({"--config": None, "--size": None}, "fits no preset"),
    "truncated checkpoint": ({"--checkpoint": "{truncated}"}, "truncated.pth.tar"),
    "not a checkpoint": ({"--checkpoint": "{junk_ckpt}"}, "junk.pth.tar"),
    "missing checkpoint": ({"--checkpoint": "{root}/none.pth.tar"}, "none.pth.tar"),
    "device name": ({"--device": "gpu0"}, "gpu0"),
    "best frame out of range": ({"--best-frame": "40"}, "--best-frame 40"),
    "negative best frame": ({"--best-frame": "-2"}, "--best-frame"),
    "config name": ({"--config": "vox-1024"}, "vox-1024"),
    "missing config file": ({"--config": "{root}/gone.yaml"}, "gone.yaml"),
    "batch size": ({"--batch-size": "0"}, "--batch-size"),
    "size the model cannot take": ({"--size": "100"}, "--size 100"),
    "output is the input": ({"--output": str(CLIP)}, "--output"),
    "output size too large": ({"--output-size": "99999"}, "--output-size: expected a frame size of 1 to 4096"),
    "model size too large": ({"--size": "99968"}, "--size: expected a frame size of 1 to 4096"),
    "frame rate too high": ({"--fps": "1e308"}, "--fps: expected a frame rate of 0.01 to 1000"),
    "frame rate too low": ({"--fps": "1e-9"}, "--fps: expected a frame rate of 0.01 to 1000"),
    "frame rate not a number": ({"--fps": "nan"}, "--fps"),
    "empty checkpoint path": ({"--checkpoint": ""}, "argument --checkpoint: empty path"),
    "empty source path": ({"--source": ""}, "argument --source: empty path"),
    "empty output path": ({"--output": ""}, "argument --output: empty path"),
}


def _argv(tiny: list[str], bad: dict[str, Path], overrides: dict[str, str | None], out: Path) -> list[str]:
    values: dict[str, str | None] = {
        "--source": str(AVATAR),
        "--driving": str(CLIP),
        "--checkpoint": tiny[1],
        "--config": tiny[3],
        "--size": "128",
        "--max-frames": "40",
        "--output": str(out),
    }
    values.update(overrides)
    argv = ["animate", "--quiet"]
    for key, value in values.items():
        if value is not None:
            argv += [key, value.format(**{k: str(v) for k, v in bad.items()})]
    return argv


@pytest.mark.parametrize("case", list(BAD_CASES), ids=list(BAD_CASES))
def test_user_errors_are_one_line(
    case: str, tiny: list[str], bad_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides, needle = BAD_CASES[case]
    out = tmp_path / "out.mp4"
    rc = main(_argv(tiny, bad_files, overrides, out))
    captured = capsys.readouterr()
    lines = _error_lines(captured.err)
    assert rc == 2, captured.err
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("fomm: error: ")
    assert needle in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_device_without_cuda(tiny: list[str], bad_files: dict[str, Path], tmp_path: Path, capsys) -> None:
    rc = main(_argv(tiny, bad_files, {"--device": "cuda"}, tmp_path / "o.mp4"))
    lines = _error_lines(capsys.readouterr().err)
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("fomm: error: --device 'cuda'")


def test_other_command_errors(tiny: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, needle in [
        ([], "COMMAND"),
        (["animate", "--source", str(tmp_path / "nobody.png")], "nobody.png"),
        (["info", str(tmp_path / "missing.safetensors")], "missing.safetensors"),
        (
            [
                "convert",
                "--checkpoint",
                tiny[1],
                "--config",
                "vox-256",
                "--output",
                str(tmp_path / "o.safetensors"),
            ],
            "vox-256",
        ),
        (
            [
                "animate",
                "--source",
                str(AVATAR),
                "--driving",
                str(CLIP),
                "--checkpoint",
                tiny[1],
                "--align-corners",
                "maybe",
            ],
            "maybe",
        ),
    ]:
        rc = main(argv)
        lines = _error_lines(capsys.readouterr().err)
        assert rc == 2, argv
        assert len(lines) == 1 and lines[0].startswith("fomm: error: ") and needle in lines[0], lines
    assert not (tmp_path / "o.safetensors").exists()


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("folder", "--output: checkpoint '{tmp}/folder' is a folder; expected a file name"),
        ("notes.txt/c.safetensors", "'{tmp}/notes.txt' is not a folder"),
        ("gone/c.safetensors", "the folder '{tmp}/gone' does not exist"),
        ("c.pth", "--output '{tmp}/c.pth' ends in '.pth'; expected a file name ending in .safetensors"),
        ("c", "--output '{tmp}/c' has no extension; expected a file name ending in .safetensors"),
        ("keep.safetensors", "--output '{tmp}/keep.safetensors' exists; pass --overwrite to replace it"),
    ],
)
def test_convert_output_errors(
    tiny: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str, message: str
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("notes")
    (tmp_path / "keep.safetensors").write_bytes(b"precious")
    before = sorted(tmp_path.rglob("*"))
    argv = ["convert", "--checkpoint", tiny[1], "--config", tiny[3], "--output", str(tmp_path / output)]
    assert main(argv) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("fomm: error: --output"), lines
    assert message.format(tmp=tmp_path) in lines[0]
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, no temporary file left
    assert (tmp_path / "keep.safetensors").read_bytes() == b"precious"


def test_convert_overwrites_only_when_asked(tiny: list[str], tmp_path: Path) -> None:
    out = tmp_path / "c.safetensors"
    out.write_bytes(b"old")
    argv = ["convert", "--checkpoint", tiny[1], "--config", tiny[3], "--output", str(out), "--quiet"]
    assert main(argv) == 2 and out.read_bytes() == b"old"
    assert main([*argv, "--overwrite"]) == 0
    assert fomm.load_checkpoint(out).config.name == "tiny-jac"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors"]


def _run_module(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "fomm", *args], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )


def test_subprocess_errors_have_no_traceback(tiny: list[str], bad_files: dict[str, Path], tmp_path: Path) -> None:
    for overrides, needle in [
        ({"--driving": str(bad_files["not_video"])}, "notes.mp4"),
        ({"--checkpoint": str(bad_files["truncated"])}, "truncated.pth.tar"),
        ({"--device": "gpu0"}, "gpu0"),
    ]:
        argv = _argv(tiny, bad_files, overrides, tmp_path / "out.mp4")
        result = _run_module(*argv)
        lines = _error_lines(result.stderr)
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1 and lines[0].startswith("fomm: error: ") and needle in lines[0], result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_wrong_typed_yaml_config_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_params: {common_params: {num_kp: abc}}\n")
    converted = tmp_path / "c.safetensors"
    for argv in (
        ["info", str(ASSETS / "demo.safetensors"), "--config", str(bad)],
        ["convert", "--checkpoint", str(ASSETS / "demo.safetensors"), "--config", str(bad), "--output", str(converted)],
    ):
        result = _run_module(*argv)
        lines = _error_lines(result.stderr)
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0].startswith("fomm: error: ") and str(bad) in lines[0]
        assert "model_params.common_params.num_kp: expected an integer, got 'abc'" in lines[0]
    assert not converted.exists()


def test_info_names_the_project_preset_of_the_demo_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(ASSETS / "demo.safetensors")]) == 0
    assert "fits presets: demo-256\n" in capsys.readouterr().out


def test_subprocess_animate(tiny: list[str], tmp_path: Path) -> None:
    out = tmp_path / "cli.mp4"
    result = _run_module(
        "animate",
        "--source",
        str(AVATAR),
        "--driving",
        str(CLIP),
        *tiny,
        "--max-frames",
        "8",
        "--output",
        str(out),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
    assert _stream_facts(out)["frames"] == 8


def test_short_copy_with_video_writer(tiny: list[str], tmp_path: Path) -> None:
    """The clip cut with VideoWriter (mp4v fallback) also drives the CLI."""
    short = tmp_path / "short.mp4"
    with open_frames(CLIP, max_frames=10) as source, VideoWriter(short, source.info.fps, codec="mp4v") as writer:
        for frame in source:
            writer.write(frame)
    out = tmp_path / "o.mp4"
    assert (
        main(["animate", "--source", str(AVATAR), "--driving", str(short), *tiny, "--output", str(out), "--quiet"]) == 0
    )
    facts = _stream_facts(out)
    assert facts["frames"] == 10 and facts["rate"] == Fraction(25)


def test_cli_and_training_do_not_import_each_other() -> None:
    """``import fomm.cli`` loads no training code, and ``import fomm.train.__main__`` does not load ``fomm.cli``."""
    script = (
        "import sys\n"
        "import fomm.cli\n"
        "print(sorted(m for m in sys.modules if m.startswith('fomm.train')))\n"
        "del sys.modules['fomm.cli']\n"
        "import fomm.train.__main__\n"
        "print('fomm.cli' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:2] == ["[]", "False"]


def test_info_shows_a_weight_average(make_tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A checkpoint whose weights are an average of others says so, with each part's weight, under its record."""
    record = {
        "steps": 250,
        "seconds": 60.0,
        "device": "cpu",
        "batch_size": 8,
        "data": "faces",
        "init": "run A",
        "weight_average": [{"weight": 0.5, "checkpoint": "model A"}, {"weight": 0.5, "checkpoint": "step 250"}],
    }
    path = fomm.save_checkpoint(tmp_path / "mix.safetensors", fomm.build_fomm(make_tiny()), training=record)
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    trained = [i for i, line in enumerate(lines) if line.startswith("trained: 250 steps")]
    assert trained and lines[trained[0] + 1] == "weights: the average of 0.50 x model A, 0.50 x step 250"
    plain = fomm.save_checkpoint(tmp_path / "plain.safetensors", fomm.build_fomm(make_tiny()), training={"steps": 3})
    assert main(["info", str(plain)]) == 0
    assert "weights:" not in capsys.readouterr().out
