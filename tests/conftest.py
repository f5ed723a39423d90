"""Shared test fixtures: device from the environment, the official fixtures folder, tiny configs."""

from __future__ import annotations

import os
from pathlib import Path

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. On a loaded machine spinning threads
# fight the other processes for the cores: a CPU training test ran 5x slower with the default policy.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import torch

import fomm

REPO = Path(__file__).resolve().parents[1]
OFFICIAL = Path(os.environ.get("FOMM_FIXTURES", REPO.parent / "shared" / "fixtures" / "official"))
#: Under CI (``CI=true``) tests that need the official fixtures fail instead of skipping.
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    no_cuda = pytest.mark.skip(reason="needs a CUDA GPU (none visible to torch)")
    import importlib.util

    has_trt = any(importlib.util.find_spec(name) for name in ("tensorrt", "tensorrt_rtx"))  # either flavour
    no_trt = pytest.mark.skip(reason="needs TensorRT (pip install -e .[trt], or tensorrt, on a CUDA machine)")
    no_camera = pytest.mark.skip(reason="needs a real webcam: set FOMM_TEST_CAMERA=<index> to run it")
    unsupported = _trt_cannot_run_here() if has_trt and torch.cuda.is_available() else None
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(no_cuda)
        if "trt" in item.keywords and not has_trt:
            item.add_marker(no_trt)
        if "trt" in item.keywords and "gpu" in item.keywords and unsupported:
            item.add_marker(pytest.mark.skip(reason=unsupported))
        if "camera" in item.keywords and not os.environ.get("FOMM_TEST_CAMERA"):
            item.add_marker(no_camera)


def _trt_cannot_run_here() -> str | None:
    """Why the installed TensorRT flavour cannot run engines on this GPU (TensorRT-RTX on an H200, say), or
    ``None``: engines run here."""
    from engines.engine import check_gpu_supported
    from engines.errors import EngineError
    from engines.trt import load_tensorrt

    try:
        check_gpu_supported(load_tensorrt(), torch.cuda.get_device_name(), torch.cuda.get_device_capability())
    except EngineError as exc:
        return str(exc)
    return None


TINY_ORIGINAL_YAML = """\
# Tiny network of the original structure (128x128 frames), written by the tests.
model_params:
  common_params: {num_kp: 10, num_channels: 3, estimate_jacobian: true}
  kp_detector_params: {temperature: 0.1, block_expansion: 8, max_features: 64, scale_factor: 0.25, num_blocks: 4}
  generator_params:
    block_expansion: 8
    max_features: 32
    num_down_blocks: 2
    num_bottleneck_blocks: 2
    estimate_occlusion_map: true
    dense_motion_params: {block_expansion: 8, max_features: 64, num_blocks: 4, scale_factor: 0.25}
  discriminator_params: {scales: [1], block_expansion: 8, max_features: 32, num_blocks: 4, sn: true}
train_params: {lr_generator: 2.0e-4, lr_discriminator: 2.0e-4, lr_kp_detector: 2.0e-4}
"""


def write_tiny_original(folder: Path) -> tuple[Path, Path]:
    """An original-format checkpoint (``generator``/``kp_detector``/``discriminator`` state dicts in a
    ``.pth.tar``, random weights, seeded) and its YAML ``tiny-jac.yaml``: no reference fixtures needed."""
    from fomm.config import load_yaml_config

    folder.mkdir(parents=True, exist_ok=True)
    yaml_path = folder / "tiny-jac.yaml"
    yaml_path.write_text(TINY_ORIGINAL_YAML)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        model = fomm.build_fomm(load_yaml_config(yaml_path), with_discriminator=True)
    checkpoint = folder / "checkpoint.pth.tar"
    sections = {"generator": model.generator, "kp_detector": model.kp_detector, "discriminator": model.discriminator}
    torch.save({name: module.state_dict() for name, module in sections.items()} | {"epoch": 0}, checkpoint)
    return checkpoint, yaml_path


def write_audio_only(path: Path, container_format: str | None = None) -> Path:
    """A media file with one short silent AAC track and no video stream."""
    import av
    import numpy as np

    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def device() -> torch.device:
    """Test device: ``FOMM_TEST_DEVICE`` (default cpu). On CUDA, TF32 is off so fp32 parity holds."""
    dev = torch.device(os.environ.get("FOMM_TEST_DEVICE", "cpu"))
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            pytest.skip("FOMM_TEST_DEVICE asks for CUDA, which torch cannot see")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return dev


@pytest.fixture(scope="session")
def official() -> Path:
    """The original implementation's reference outputs (``../shared/fixtures/official``)."""
    if not OFFICIAL.is_dir():
        message = f"official fixtures not found at {OFFICIAL} (set FOMM_FIXTURES)"
        if IN_CI:
            pytest.fail(f"{message}: CI must run the parity tests", pytrace=False)
        pytest.skip(message)
    return OFFICIAL


def tiny_config(num_kp: int = 4, size: int = 64, **overrides: object) -> fomm.FommConfig:
    """A tiny model of the original structure: 64x64 frames, block_expansion 8."""
    kp = {"block_expansion": 8, "max_features": 32, "num_blocks": 3, "scale_factor": 0.25, "temperature": 0.1}
    kp.update(overrides.pop("kp_detector", {}))  # type: ignore[arg-type]
    return fomm.make_config(
        "tiny",
        common={"num_kp": num_kp, "num_channels": 3, "estimate_jacobian": overrides.pop("estimate_jacobian", True)},
        kp_detector=kp,
        generator={
            "block_expansion": 8,
            "max_features": 32,
            "num_down_blocks": 2,
            "num_bottleneck_blocks": 1,
            "estimate_occlusion_map": overrides.pop("estimate_occlusion_map", True),
        },
        dense_motion={"block_expansion": 8, "max_features": 32, "num_blocks": 3, "scale_factor": 0.25},
        discriminator={"scales": [1], "block_expansion": 8, "max_features": 32, "num_blocks": 3, "sn": True},
        image_size=size,
    )


@pytest.fixture
def tiny() -> fomm.FommConfig:
    return tiny_config()


@pytest.fixture
def make_tiny():
    """Factory of tiny configs: ``make_tiny(num_kp=..., size=..., estimate_jacobian=..., ...)``."""
    return tiny_config
