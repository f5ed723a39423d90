"""Shared test fixtures: device from the environment, the official fixtures folder, tiny configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import fomm

REPO = Path(__file__).resolve().parents[1]
OFFICIAL = Path(os.environ.get("FOMM_FIXTURES", REPO.parent / "shared" / "fixtures" / "official"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    no_cuda = pytest.mark.skip(reason="needs a CUDA GPU (none visible to torch)")
    import importlib.util

    has_trt = any(importlib.util.find_spec(name) for name in ("tensorrt", "tensorrt_rtx"))  # either flavour
    no_trt = pytest.mark.skip(reason="needs TensorRT (pip install -e .[trt], or tensorrt, on a CUDA machine)")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(no_cuda)
        if "trt" in item.keywords and not has_trt:
            item.add_marker(no_trt)


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
        pytest.skip(f"official fixtures not found at {OFFICIAL} (set FOMM_FIXTURES)")
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
