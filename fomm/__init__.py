"""First Order Motion Model in PyTorch: faithful to the original, split for live use.

``import fomm`` needs only torch. Video, image and face-landmark helpers (``fomm.media``) and the CLI
(``fomm.cli``) import their optional dependencies lazily.
"""

from .animator import AnimationOptions, Animator
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
from .keypoints import Calibration, Keypoints, calibrate, transfer_motion
from .model import Fomm, build_fomm

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "AnimationOptions",
    "Animator",
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
]
