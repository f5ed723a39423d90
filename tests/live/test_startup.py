"""Start-up: --help without torch, bad input reported before the model loads, remembered settings that no longer
work, and native (OpenCV/FFmpeg) log lines kept out of the terminal."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fomm.cli
import live.app
from fomm.media.assets import DEFAULT_AVATAR, DEFAULT_DRIVING
from live.cli import main, prog_name
from live.stats import LatencyStats

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCV_", "FOMM_LIVE"))}
    env.update(PYTHONPATH=str(ROOT), FOMM_LIVE_SETTINGS=str(tmp_path / "settings.json"))
    return env


def _imported(stderr: str) -> set[str]:
    """Top-level modules listed by ``python -X importtime``."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


HELP = {
    "run_live.py": [str(ROOT / "run_live.py"), "--help"],
    "fomm-live": ["-c", "import sys; sys.argv[0] = 'fomm-live'; from live.cli import main; sys.exit(main(['--help']))"],
    "fomm": ["-c", "import sys; from fomm.cli import main; sys.exit(main(['--help']))"],
    "fomm animate": ["-m", "fomm", "animate", "--help"],
}


@pytest.mark.parametrize("command", list(HELP), ids=list(HELP))
def test_help_does_not_import_torch(command: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *HELP[command]],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"usage: {command.split()[0]}")
    imported = _imported(proc.stderr)
    assert "fomm" in imported and not imported & {"torch", "cv2", "av"}, sorted(imported)


def test_prog_name_follows_how_the_tool_was_started() -> None:
    assert prog_name("/home/u/.venv/bin/fomm-live") == "fomm-live"
    assert prog_name("fomm-live.exe") == "fomm-live"
    assert prog_name("/src/fomm-live/run_live.py") == "run_live.py"


# --- bad input, before the model loads ---------------------------------------------------------------------------


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Loading a model fails the test: the errors below must come first."""

    def load(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the model was loaded before the bad input was reported")

    monkeypatch.setattr(live.app, "load_backend", load)
    monkeypatch.setattr(fomm.cli.fomm, "load_checkpoint", load)
    monkeypatch.setenv("FOMM_LIVE_SETTINGS", str(tmp_path / "settings.json"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "broken.mp4").write_text("not a video")
    (tmp_path / "text.png").write_text("not an image")
    shutil.copy(DEFAULT_DRIVING, tmp_path / "clip.mp4")
    (tmp_path / "link.mp4").symlink_to("clip.mp4")
    os.link(tmp_path / "clip.mp4", tmp_path / "hard.mp4")
    shutil.copy(DEFAULT_AVATAR, tmp_path / "face.png")
    (tmp_path / "faces").mkdir()
    shutil.copy(DEFAULT_AVATAR, tmp_path / "faces" / "1.png")


LIVE_BAD = {
    "output folder": (["--output", "folder"], "--output: video 'folder' is a folder"),
    "output folder slash": (["--output", "new/"], "--output: video 'new' has no extension"),
    "output .txt": (["--output", "out.txt"], "video 'out.txt' ends in '.txt'; expected a file name ending in .mp4"),
    "output without extension": (["--output", "out"], "video 'out' has no extension"),
    "output .webm": (["--output", "out.webm"], "ends in '.webm'"),
    "output in a missing folder": (["--output", "nowhere/out.mp4"], "the folder 'nowhere' does not exist"),
    "output under a file": (["--output", "a_file/out.mp4"], "'a_file' is not a folder"),
    "stats folder": (["--stats", "folder"], "--stats: statistics file 'folder' is a folder"),
    "stats in a missing folder": (["--stats", "nowhere/s.json"], "the folder 'nowhere' does not exist"),
    "missing video": (["--camera", "missing.mp4"], "'missing.mp4' is not a camera index, an existing file"),
    "broken video": (["--camera", "broken.mp4"], "'broken.mp4' cannot be opened by OpenCV"),
    "camera that does not open": (["--camera", "7"], "camera 7 cannot be opened; cameras that open: none"),
    "missing avatar": (["--avatar", "nowhere.png"], "avatar 'nowhere.png' does not exist"),
    "unreadable avatar": (["--avatar", "text.png"], "text.png"),
    "negative ease": (["--ease-seconds", "-1"], "--ease-seconds: expected a number of seconds >= 0 and <= 86400"),
    # outputs that would destroy an input or each other
    "output is the camera": (["--camera", "clip.mp4", "--output", "clip.mp4"], "--output 'clip.mp4' is the --camera"),
    "output is the camera by a link": (["--camera", "clip.mp4", "--output", "link.mp4"], "is the --camera video"),
    "output is the camera by a hard link": (["--camera", "clip.mp4", "--output", "hard.mp4"], "is the --camera"),
    "output is the camera by ..": (["--camera", "clip.mp4", "--output", "folder/../clip.mp4"], "is the --camera"),
    "stats is the camera": (["--camera", "clip.mp4", "--stats", "link.mp4"], "--stats 'link.mp4' is the --camera"),
    "stats is the avatar": (["--avatar", "face.png", "--stats", "face.png"], "--stats 'face.png' is the avatar image"),
    "stats is an avatar of the folder": (["--avatar", "faces", "--stats", "faces/1.png"], "is the avatar image"),
    "stats is the output": (["--output", "o.mp4", "--stats", "o.mp4"], "--stats 'o.mp4' is also the recorded video"),
    # numbers that are not finite or mean nothing
    "fps cap inf": (["--fps-cap", "inf"], "--fps-cap: expected a frame rate > 0 and <= 1000, got 'inf'"),
    "fps cap huge": (["--fps-cap", "1e308", "--output", "o.mp4"], "--fps-cap: expected a frame rate > 0 and <= 1000"),
    "fps cap nan": (["--fps-cap", "nan"], "--fps-cap: expected a frame rate > 0"),
    "capture fps inf": (["--capture-fps", "inf"], "--capture-fps: expected a frame rate > 0 and <= 1000"),
    "best frame inf": (["--best-frame-seconds", "inf"], "--best-frame-seconds: expected a number of seconds > 0"),
    "best frame huge": (["--best-frame-seconds", "1e308", "--find-best-frame"], "<= 86400 (1 day), got '1e308'"),
    "hold huge": (["--hold-seconds", "1e308"], "--hold-seconds: expected a number of seconds >= 0 and <= 86400"),
    "reconnect inf": (["--reconnect-seconds", "inf"], "--reconnect-seconds: expected a number of seconds >= 0"),
    "empty avatar path": (["--avatar", ""], "argument --avatar: empty path"),
    "empty checkpoint path": (["--checkpoint", ""], "argument --checkpoint: empty path"),
}


@pytest.mark.parametrize("case", list(LIVE_BAD), ids=list(LIVE_BAD))
@pytest.mark.usefixtures("no_model")
def test_live_bad_input_before_the_model(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    args, needle = LIVE_BAD[case]
    assert main(["--no-remember", "--no-preview", *args]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("run_live: error: ") and needle in err[0], err


def test_bad_output_is_reported_without_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from live.cli import main; rc = main(['--output', 'out.txt']); print('torch' in sys.modules, rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=_env(tmp_path)
    )
    assert proc.stdout.split() == ["False", "2"], proc.stderr
    assert proc.stderr.splitlines() == [
        "run_live: error: --output: video 'out.txt' ends in '.txt'; expected a file name ending in "
        ".mp4/.m4v/.mov/.mkv/.avi"
    ]


ANIMATE_BAD = {
    "folder": (["--output", "folder"], "--output: video 'folder' is a folder"),
    ".txt": (["--output", "out.txt"], "--output: video 'out.txt' ends in '.txt'"),
    "no extension": (["--output", "out"], "--output: video 'out' has no extension"),
    "missing folder": (["--output", "nowhere/out.mp4"], "the folder 'nowhere' does not exist"),
    "the driving video": (["--driving", "clip.mp4", "--output", "hard.mp4"], "'hard.mp4' is the driving video itself"),
}


@pytest.mark.parametrize("case", list(ANIMATE_BAD), ids=list(ANIMATE_BAD))
@pytest.mark.usefixtures("no_model")
def test_animate_bad_output_before_the_model(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    args, needle = ANIMATE_BAD[case]
    assert fomm.cli.main(["animate", "--quiet", *args]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("fomm: error: ") and needle in err[0], err


# --- remembered settings ---------------------------------------------------------------------------------------


@pytest.fixture
def fake_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[live.app.LiveConfig]:
    """``live.app.run`` replaced by one that records its config (the settings logic is what is tested)."""
    seen: list[live.app.LiveConfig] = []

    def run(config: live.app.LiveConfig, **_kwargs: object) -> live.app.LiveRun:
        seen.append(config)
        return live.app.LiveRun(LatencyStats(), config.camera, "model", False)

    monkeypatch.setattr(live.app, "run", run)
    monkeypatch.setenv("FOMM_LIVE_SETTINGS", str(tmp_path / "settings.json"))
    monkeypatch.chdir(tmp_path)
    return seen


def test_bad_remembered_values_fall_back_to_defaults(
    fake_run: list[live.app.LiveConfig], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = tmp_path / "settings.json"
    remembered = {
        "device": "tpu",
        "avatar": str(tmp_path / "deleted.png"),
        "camera": str(tmp_path / "deleted.mp4"),
        "checkpoint": str(tmp_path / "deleted.safetensors"),
        "config": "no-such-preset",
        "vcam_fit": "zoom",
        "mirror": True,  # a good value stays
        "theme": "dark",  # an unknown key stays
    }
    settings.write_text(json.dumps(remembered))
    with caplog.at_level(logging.WARNING):
        assert main(["--no-preview"]) == 0
    (config,) = fake_run
    assert config.device == "cpu" and config.avatar is None and config.camera == "auto"
    assert config.checkpoint is None and config.model_config is None and config.vcam_fit == "letterbox"
    assert config.mirror is True
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"settings file {settings}: key 'device' = 'tpu' is not a device; expected cpu, cuda or cuda:N; " in (
        "\n".join(warnings)
    )
    for key in ("device", "avatar", "camera", "checkpoint", "config", "vcam_fit"):
        line = [w for w in warnings if f"key {key!r} = " in w]
        assert len(line) == 1 and line[0].startswith(f"settings file {settings}:"), warnings
        assert line[0].endswith("; using the default")
    saved = json.loads(settings.read_text())  # the run went on and saved; the bad keys are gone
    assert saved == {"mirror": True, "theme": "dark"}


def test_flags_are_not_checked_against_settings_and_their_errors_stay_theirs(
    fake_run: list[live.app.LiveConfig], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "settings.json").write_text(json.dumps({"device": "tpu", "camera": str(tmp_path / "gone.mp4")}))
    assert main(["--no-preview", "--device", "cpu", "--camera", str(DEFAULT_DRIVING)]) == 0
    assert "settings file" not in capsys.readouterr().err  # the flags win: nothing to report
    assert fake_run[0].camera == str(DEFAULT_DRIVING)
    assert main(["--no-preview", "--camera", str(tmp_path / "typo.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"run_live: error: capture source {str(tmp_path / 'typo.mp4')!r} is not a camera index, an "
                   "existing file or a URL: expected a camera index (0, 1, ...), an existing video file or a stream "
                   "URL (rtsp://...)"]  # fmt: skip


def test_explicit_bad_device_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("FOMM_LIVE_SETTINGS", str(tmp_path / "settings.json"))
    monkeypatch.chdir(tmp_path)
    assert main(["--no-preview", "--device", "tpu", "--camera", str(DEFAULT_DRIVING)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "run_live: error: --device 'tpu' is not a device; expected cpu, cuda or cuda:N"


# --- native log lines ------------------------------------------------------------------------------------------


def _only_tool_lines(stderr: str, prefix: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "expected the tool to report something"
    assert all(line.startswith(prefix) for line in lines), stderr


@pytest.mark.parametrize(
    "camera",
    ["broken.mp4", "5", "rtsp://127.0.0.1:9/stream"],
    ids=["broken file", "missing webcam", "refused stream"],
)
def test_native_log_lines_stay_out_of_the_terminal(tmp_path: Path, camera: str) -> None:
    (tmp_path / "broken.mp4").write_text("not a video")
    cmd = [sys.executable, str(ROOT / "run_live.py"), "--no-remember", "--no-preview", "--camera", camera]
    cmd += ["--output", "out.mp4", "--config", "tiny-256"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=tmp_path, env=_env(tmp_path))
    assert proc.returncode == 2, proc.stderr
    _only_tool_lines(proc.stderr, "run_live: ")


def test_animate_native_log_lines_stay_out_of_the_terminal(tmp_path: Path) -> None:
    (tmp_path / "broken.mp4").write_text("not a video")
    cmd = [sys.executable, "-m", "fomm", "animate", "--driving", "broken.mp4", "--output", "out.mp4"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=tmp_path, env=_env(tmp_path))
    assert proc.returncode == 2, proc.stderr
    _only_tool_lines(proc.stderr, "fomm: ")


def test_interrupt_during_the_checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    import live.checks

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(live.checks, "check_inputs", interrupted)
    monkeypatch.chdir(tmp_path)
    assert main(["--no-remember", "--no-preview"]) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["run_live: interrupted"]


def test_hold_and_ease_seconds_reach_the_config() -> None:
    from live.cli import _config, build_parser

    config, _ = _config(build_parser().parse_args(["--hold-seconds", "3", "--ease-seconds", "0.25", "--no-remember"]))
    assert (config.hold_seconds, config.ease_seconds) == (3.0, 0.25)
    config, _ = _config(build_parser().parse_args(["--no-remember"]))
    assert (config.hold_seconds, config.ease_seconds) == (2.0, 1.0)


def test_interrupt_while_the_libraries_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    """Ctrl-C in the first second, before the checks and the session's own signal handler (imports)."""
    import fomm.media.native_logs

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fomm.media.native_logs, "route_native_logs", interrupted)
    monkeypatch.chdir(tmp_path)
    assert main(["--no-remember", "--no-preview", "--max-frames", "1"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "run_live: interrupted"
