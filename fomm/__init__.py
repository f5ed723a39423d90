"""First Order Motion Model in PyTorch: faithful to the original, split for live use.

``import fomm`` needs only torch, and imports it only when a name below is first used (so that the command-line
entry points answer ``--help`` without loading torch). Video, image and face-landmark helpers (``fomm.media``)
and the CLI (``fomm.cli``) import their optional dependencies lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .animator import AnimationOptions, Animator, BackendAnimator
    from .checkpoint import CheckpointError, LoadedCheckpoint, convert_checkpoint, load_checkpoint, save_checkpoint
    from .config import (
        PRESETS,
        ConfigError,
        DenseMotionConfig,
        DiscriminatorConfig,
        FommConfig,
        GeneratorConfig,
        KeypointDetectorConfig,
        load_yaml_config,
        make_config,
        preset,
    )
    from .dense_motion import DenseMotionNetwork, MotionField
    from .discriminator import MultiScaleDiscriminator
    from .generator import OcclusionAwareGenerator, SourceEncoding
    from .keypoint_detector import KeypointDetector
    from .keypoints import Calibration, Keypoints, calibrate, transfer_motion, usable_keypoints
    from .model import Fomm, build_fomm

__version__ = "0.1.0"

#: public name -> the submodule that defines it (imported on first use, PEP 562)
_EXPORTS = {
    "AnimationOptions": "animator",
    "Animator": "animator",
    "BackendAnimator": "animator",
    "CheckpointError": "checkpoint",
    "LoadedCheckpoint": "checkpoint",
    "convert_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "PRESETS": "config",
    "ConfigError": "config",
    "DenseMotionConfig": "config",
    "DiscriminatorConfig": "config",
    "FommConfig": "config",
    "GeneratorConfig": "config",
    "KeypointDetectorConfig": "config",
    "load_yaml_config": "config",
    "make_config": "config",
    "preset": "config",
    "DenseMotionNetwork": "dense_motion",
    "MotionField": "dense_motion",
    "MultiScaleDiscriminator": "discriminator",
    "OcclusionAwareGenerator": "generator",
    "SourceEncoding": "generator",
    "KeypointDetector": "keypoint_detector",
    "Calibration": "keypoints",
    "Keypoints": "keypoints",
    "calibrate": "keypoints",
    "transfer_motion": "keypoints",
    "usable_keypoints": "keypoints",
    "Fomm": "model",
    "build_fomm": "model",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        if name.startswith("_"):
            raise AttributeError(f"module 'fomm' has no attribute {name!r}")
        try:  # a submodule, as `import fomm; fomm.geometry` found it when this file imported everything
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'fomm' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "PRESETS",
    "AnimationOptions",
    "Animator",
    "BackendAnimator",
    "Calibration",
    "CheckpointError",
    "ConfigError",
    "DenseMotionConfig",
    "DenseMotionNetwork",
    "DiscriminatorConfig",
    "Fomm",
    "FommConfig",
    "GeneratorConfig",
    "KeypointDetector",
    "KeypointDetectorConfig",
    "Keypoints",
    "LoadedCheckpoint",
    "MotionField",
    "MultiScaleDiscriminator",
    "OcclusionAwareGenerator",
    "SourceEncoding",
    "build_fomm",
    "calibrate",
    "convert_checkpoint",
    "load_checkpoint",
    "load_yaml_config",
    "make_config",
    "preset",
    "save_checkpoint",
    "transfer_motion",
    "usable_keypoints",
]
