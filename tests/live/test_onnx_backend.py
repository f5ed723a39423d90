"""The ONNX Runtime backend in the live pipeline: same frames as torch, the export cache, bad input."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import fomm
from live.app import load_backend
from live.backends import InferenceBackend, TorchBackend
from live.config import LiveConfig
from live.crop import Framing
from live.pipeline import PuppetPipeline

pytest.importorskip("onnxruntime", reason="the ONNX backend needs onnxruntime: pip install 'fomm-live[export]'")
from export.backend import OnnxBackend
from fomm import BackendAnimator

FRAME_ATOL = 1e-4


class CentreFramer:
    def __init__(self, size: int) -> None:
        self.size = size

    def crop_image(self, image: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
        return image[: self.size, : self.size].copy(), (0.0, 0.0, float(self.size))

    def __call__(self, image: np.ndarray) -> Framing:
        crop = image[: self.size, : self.size].copy()
        return Framing(crop, (0.0, 0.0, float(self.size)), True, False, True, 1.0)

    def reset(self) -> None:
        pass


class Recording:
    """Wraps a backend and keeps every frame it generates (float, before pixel conversion)."""

    def __init__(self, backend: InferenceBackend) -> None:
        self.inner = backend
        self.name, self.image_size, self.device = backend.name, backend.image_size, backend.device
        self.frames: list[torch.Tensor] = []

    def set_source(self, source):
        return self.inner.set_source(source)

    def keypoints(self, image):
        return self.inner.keypoints(image)

    def generate(self, kp):
        frame = self.inner.generate(kp)
        self.frames.append(frame.clone())
        return frame

    def close(self):
        self.inner.close()


def camera_frames(n: int, size: int) -> list[np.ndarray]:
    """A moving pattern (smooth, so keypoints move between frames)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    out = []
    for i in range(n):
        image = 127 + 100 * np.sin((x + 3 * i) / 7.0) * np.cos((y - 2 * i) / 9.0)
        out.append(np.repeat(image[..., None], 3, axis=2).clip(0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def tiny_model() -> fomm.Fomm:
    from conftest import tiny_config

    torch.manual_seed(3)
    return fomm.build_fomm(tiny_config(num_kp=5))


def test_live_pipeline_gives_the_same_frames(tiny_model, tmp_path):
    onnx = OnnxBackend.from_model(tiny_model, cache_dir=tmp_path)
    assert isinstance(onnx, InferenceBackend) and onnx.name == "onnx-cpu-fp32"
    results = {}
    for name, backend in (("torch", TorchBackend(tiny_model)), ("onnx", onnx)):
        recording = Recording(backend)
        pipeline = PuppetPipeline(recording, CentreFramer(64), relative=True, adapt_scale=True)
        avatar = camera_frames(1, 64)[0][::-1].copy()
        pipeline.set_source(avatar)
        outputs = [pipeline.step(f, timestamp=i * 0.04).output for i, f in enumerate(camera_frames(6, 64))]
        results[name] = (recording.frames, outputs)
        recording.close()
    (torch_frames, torch_out), (onnx_frames, onnx_out) = results["torch"], results["onnx"]
    assert len(torch_frames) == len(onnx_frames) >= 6
    for a, b in zip(torch_frames, onnx_frames, strict=True):
        torch.testing.assert_close(b, a, atol=FRAME_ATOL, rtol=0)
    assert max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(torch_out, onnx_out, strict=True)) <= 1
    assert not np.array_equal(torch_out[1], torch_out[-1])  # the avatar moved


def test_backend_animator_matches_fomm_animator(tiny_model, tmp_path):
    source, driving = torch.rand(1, 3, 64, 64), torch.rand(3, 3, 64, 64)
    reference = fomm.Animator(tiny_model)
    reference.set_source(source)
    with OnnxBackend.from_model(tiny_model, cache_dir=tmp_path) as backend:
        animator = BackendAnimator(backend)
        animator.set_source(source)
        torch.testing.assert_close(animator.step(driving), reference.step(driving), atol=FRAME_ATOL, rtol=0)


def test_export_cache_is_reused_and_rebuilt_when_stale(tiny_model, tmp_path, caplog):
    from export.cache import cached_export

    caplog.set_level(logging.INFO)
    folder, built = cached_export(tiny_model, root=tmp_path)
    assert built and folder.parent == tmp_path and (folder / "manifest.json").is_file()
    assert cached_export(tiny_model, root=tmp_path) == (folder, False)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["project_version"] = "0.0.0"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    caplog.clear()
    assert cached_export(tiny_model, root=tmp_path) == (folder, True)
    assert "stale ONNX cache" in caplog.text and "written by fomm-live 0.0.0" in caplog.text
    other = fomm.build_fomm(tiny_model.config)  # other weights: another folder
    other_folder, built = cached_export(other, root=tmp_path)
    assert built and other_folder != folder


def test_load_backend_onnx_exports_into_the_cache(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FOMM_CACHE_DIR", str(tmp_path / "cache"))
    caplog.set_level(logging.INFO)
    backend, _described, untrained = load_backend(LiveConfig(backend="onnx", model_config="tiny-256"))
    assert isinstance(backend, OnnxBackend) and untrained
    assert str(tmp_path / "cache") in caplog.text  # says where
    backend.close()
    from live.config import LiveConfigError

    with pytest.raises(LiveConfigError, match="bf16 autocast is a torch option"):  # said before the model loads
        LiveConfig(backend="onnx", model_config="tiny-256", dtype="bf16")


@pytest.fixture
def no_onnxruntime(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError


def test_live_without_onnxruntime_is_one_line(no_onnxruntime, tmp_path, capsys):
    from live.cli import main

    code = main(["--backend", "onnx", "--config", "tiny-256", "--no-remember", "--max-frames", "1"])
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2 and len(err) == 1
    assert "run_live: error: the ONNX backend needs onnxruntime, which is not installed" in err[0]
    assert "pip install" in err[0]


def test_animate_without_onnxruntime_is_one_line(no_onnxruntime, tmp_path, capsys):
    from fomm.cli import main

    out = tmp_path / "out.mp4"
    assert main(["animate", "--backend", "onnx", "--output", str(out), "--max-frames", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("fomm: error: --backend onnx: the ONNX backend needs onnxruntime")
    assert not out.exists()


def test_animate_on_onnx(tmp_path, monkeypatch, capsys):
    from fomm.cli import main
    from fomm.media.video import open_frames

    monkeypatch.setenv("FOMM_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out.mp4"
    assert main(["animate", "--backend", "onnx", "--output", str(out), "--max-frames", "4", "--no-audio"]) == 0
    assert "graphs in " + str(tmp_path / "cache") in capsys.readouterr().err
    with open_frames(Path(out)) as frames:
        assert sum(1 for _ in frames) == 4


# --- --onnx-dir ---------------------------------------------------------------------------------------------------


def test_from_model_opens_a_given_export_folder(tiny_model, tmp_path):
    from export.cache import cached_export
    from export.exporter import ExportError

    folder, _ = cached_export(tiny_model, root=tmp_path / "exported")
    with OnnxBackend.from_model(tiny_model, cache_dir=tmp_path / "cache", folder=folder) as backend:
        assert backend.export.folder == folder
    assert not (tmp_path / "cache").exists()  # nothing exported
    with pytest.raises(ExportError, match="exported from other weights"):
        OnnxBackend.from_model(fomm.build_fomm(tiny_model.config), folder=folder)


def test_load_backend_onnx_uses_the_onnx_dir(tmp_path, monkeypatch):
    from export.cache import cached_export

    monkeypatch.setenv("FOMM_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(0)
    folder, _ = cached_export(fomm.build_fomm(fomm.preset("tiny-256")), root=tmp_path / "exported")
    torch.manual_seed(0)  # the same untrained weights in load_backend
    backend, _described, _untrained = load_backend(LiveConfig(backend="onnx", model_config="tiny-256", onnx_dir=folder))
    assert isinstance(backend, OnnxBackend) and backend.export.folder == folder
    backend.close()
    assert not (tmp_path / "cache").exists()  # the cache was not used


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["--onnx-dir", "{tmp}"],
            "--onnx-dir is for --backend onnx or trt (graphs from `fomm export`); --backend torch",
        ),
        (["--backend", "onnx", "--onnx-dir", "{tmp}/missing"], "/missing' is not a folder; expected an export folder"),
        (["--backend", "onnx", "--onnx-dir", "{tmp}"], "--onnx-dir: export folder"),  # after the model: no manifest
    ],
    ids=["torch backend", "missing folder", "not an export"],
)
def test_live_onnx_dir_errors_are_one_line(tmp_path, capsys, monkeypatch, args, needle):
    from live.cli import main

    monkeypatch.setenv("FOMM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # a fallback recording would go here
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["--config", "tiny-256", "--no-remember", "--no-preview", "--max-frames", "1", *args]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and err[0].startswith("run_live: error: ") and needle in err[0], err


def test_animate_uses_the_onnx_dir(tmp_path, monkeypatch, capsys):
    from export.cache import cached_export
    from fomm.checkpoint import load_checkpoint
    from fomm.cli import main
    from fomm.media.assets import DEMO_MODEL
    from fomm.media.video import open_frames

    monkeypatch.setenv("FOMM_CACHE_DIR", str(tmp_path / "cache"))
    folder, _ = cached_export(load_checkpoint(DEMO_MODEL).model, root=tmp_path / "exported")
    out = tmp_path / "out.mp4"
    base = ["animate", "--output", str(out), "--max-frames", "2", "--no-audio"]
    assert main([*base, "--backend", "onnx", "--onnx-dir", str(folder)]) == 0
    assert f"graphs in {folder}" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()  # the given folder, not the cache
    with open_frames(out) as frames:
        assert sum(1 for _ in frames) == 2
    out.unlink()
    for args, needle in [
        (["--onnx-dir", str(folder)], "--onnx-dir is for --backend onnx or trt (graphs from `fomm export`)"),
        (["--backend", "onnx", "--onnx-dir", str(tmp_path / "missing")], "missing' is not a folder"),
        (["--backend", "onnx", "--onnx-dir", str(folder), "--size", "128"], "graphs are 256x256; give --size 256"),
    ]:
        assert main([*base, *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("fomm: error: ") and needle in err[0], err
        assert not out.exists()
