"""Configuration of the FOMM networks: frozen dataclasses, named presets, and the original YAML reader.

Every network takes its own config as its only constructor argument. The parameters that the original
YAML files keep in ``common_params`` (``num_kp``, ``num_channels``, ``estimate_jacobian``) are copied into
each network's config by :func:`make_config`, and :class:`FommConfig` checks that they agree.

The eight released configurations are named builders (``vox_256()``, ...), listed in :data:`PRESETS`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "EXTRA_CONFIGS",
    "PRESETS",
    "ConfigError",
    "DenseMotionConfig",
    "DiscriminatorConfig",
    "FommConfig",
    "GeneratorConfig",
    "KeypointDetectorConfig",
    "config_from_dict",
    "config_to_dict",
    "load_yaml_config",
    "make_config",
    "preset",
]


class ConfigError(ValueError):
    """A configuration value, preset name or config file that cannot be used."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _positive(name: str, value: float) -> None:
    _require(value > 0, f"{name} must be > 0, got {value!r}")


@dataclass(frozen=True)
class KeypointDetectorConfig:
    """Keypoint detector (original ``kp_detector_params`` plus the common parameters)."""

    num_kp: int = 10
    num_channels: int = 3
    estimate_jacobian: bool = True
    single_jacobian_map: bool = False
    temperature: float = 0.1
    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    scale_factor: float = 0.25
    pad: int = 0

    def __post_init__(self) -> None:
        _positive("keypoint_detector.num_kp", self.num_kp)
        _positive("keypoint_detector.num_channels", self.num_channels)
        _positive("keypoint_detector.temperature", self.temperature)
        _positive("keypoint_detector.block_expansion", self.block_expansion)
        _positive("keypoint_detector.max_features", self.max_features)
        _positive("keypoint_detector.num_blocks", self.num_blocks)
        _require(
            0 < self.scale_factor <= 1,
            f"keypoint_detector.scale_factor must be in (0, 1], got {self.scale_factor!r}",
        )
        _require(self.pad >= 0, f"keypoint_detector.pad must be >= 0, got {self.pad!r}")


@dataclass(frozen=True)
class DenseMotionConfig:
    """Dense motion network (original ``dense_motion_params`` plus what the generator passes down)."""

    num_kp: int = 10
    num_channels: int = 3
    estimate_occlusion_map: bool = True
    block_expansion: int = 64
    max_features: int = 1024
    num_blocks: int = 5
    scale_factor: float = 0.25
    kp_variance: float = 0.01
    align_corners: bool = True

    def __post_init__(self) -> None:
        _positive("dense_motion.num_kp", self.num_kp)
        _positive("dense_motion.block_expansion", self.block_expansion)
        _positive("dense_motion.max_features", self.max_features)
        _positive("dense_motion.num_blocks", self.num_blocks)
        _positive("dense_motion.kp_variance", self.kp_variance)
        _require(
            0 < self.scale_factor <= 1,
            f"dense_motion.scale_factor must be in (0, 1], got {self.scale_factor!r}",
        )


@dataclass(frozen=True)
class GeneratorConfig:
    """Occlusion-aware generator (original ``generator_params`` plus the common parameters)."""

    num_kp: int = 10
    num_channels: int = 3
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    num_bottleneck_blocks: int = 6
    estimate_occlusion_map: bool = True
    dense_motion: DenseMotionConfig | None = field(default_factory=DenseMotionConfig)
    align_corners: bool = True

    def __post_init__(self) -> None:
        _positive("generator.block_expansion", self.block_expansion)
        _positive("generator.max_features", self.max_features)
        _require(self.num_down_blocks >= 0, f"generator.num_down_blocks must be >= 0, got {self.num_down_blocks}")
        _require(
            self.num_bottleneck_blocks >= 0,
            f"generator.num_bottleneck_blocks must be >= 0, got {self.num_bottleneck_blocks}",
        )
        if self.dense_motion is not None:
            _require(
                self.dense_motion.num_kp == self.num_kp,
                f"dense_motion.num_kp ({self.dense_motion.num_kp}) must equal generator.num_kp ({self.num_kp})",
            )


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Multi-scale patch discriminator (original ``discriminator_params``); used for training only."""

    num_kp: int = 10
    num_channels: int = 3
    scales: tuple[float, ...] = (1.0,)
    block_expansion: int = 32
    max_features: int = 512
    num_blocks: int = 4
    sn: bool = False
    use_kp: bool = False
    kp_variance: float = 0.01

    def __post_init__(self) -> None:
        _require(len(self.scales) > 0, "discriminator.scales must not be empty")
        _positive("discriminator.num_blocks", self.num_blocks)


@dataclass(frozen=True)
class FommConfig:
    """A whole FOMM model: the three networks, the input size and the grid-sampling convention.

    Attributes:
        name: preset name or a free label.
        image_size: side of the square frames the model was trained on (pixels).
        align_corners: grid-sampling convention used by every ``warp()``. ``True`` is what the released
            checkpoints were trained with (torch 1.0); ``False`` reproduces the original code run under
            torch >= 1.3.
    """

    name: str
    keypoint_detector: KeypointDetectorConfig
    generator: GeneratorConfig
    discriminator: DiscriminatorConfig
    image_size: int = 256
    align_corners: bool = True

    def __post_init__(self) -> None:
        kp, gen, disc = self.keypoint_detector, self.generator, self.discriminator
        _require(
            kp.num_kp == gen.num_kp == disc.num_kp,
            f"num_kp differs between networks: keypoint_detector={kp.num_kp}, generator={gen.num_kp}, "
            f"discriminator={disc.num_kp}",
        )
        _require(
            kp.num_channels == gen.num_channels == disc.num_channels,
            "num_channels differs between networks",
        )
        _require(self.image_size >= 16, f"image_size must be >= 16, got {self.image_size}")
        dm_ac = gen.dense_motion.align_corners if gen.dense_motion is not None else gen.align_corners
        _require(
            gen.align_corners == dm_ac == self.align_corners,
            "align_corners differs between generator and dense motion; use FommConfig.with_align_corners()",
        )

    @property
    def num_kp(self) -> int:
        return self.keypoint_detector.num_kp

    def with_align_corners(self, value: bool) -> FommConfig:
        """The same model with every grid sample using ``align_corners=value``."""
        gen = self.generator
        dm = gen.dense_motion
        if dm is not None:
            dm = dataclasses.replace(dm, align_corners=value)
        gen = dataclasses.replace(gen, dense_motion=dm, align_corners=value)
        return dataclasses.replace(self, generator=gen, align_corners=value)

    def with_image_size(self, value: int) -> FommConfig:
        return dataclasses.replace(self, image_size=value)


# --- building from the original parameter groups -------------------------------------------------------

_COMMON_KEYS = {"num_kp", "num_channels", "estimate_jacobian"}


def _fail(where: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{where}: expected {expected}, got {value!r}")


def yaml_int(value: Any, where: str) -> int:
    """``value`` read from a config file as an integer (``10``, ``10.0``, ``"10"``; not ``10.5``, ``true``).

    Raises:
        ConfigError: ``<where>: expected an integer, got <value>``.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    raise _fail(where, "an integer", value)


def yaml_float(value: Any, where: str) -> float:
    """``value`` read from a config file as a finite number (also a string such as ``"1e-3"``, which YAML 1.1
    reads as a string).

    Raises:
        ConfigError: ``<where>: expected a number, got <value>``.
    """
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise _fail(where, "a number", value)
    return number


def yaml_bool(value: Any, where: str) -> bool:
    """``value`` read from a config file as a boolean (``true``/``false``, or ``1``/``0``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _fail(where, "true or false", value)


def yaml_floats(value: Any, where: str) -> tuple[float, ...]:
    """``value`` read from a config file as a list of numbers."""
    if not isinstance(value, list | tuple):
        raise _fail(where, "a list of numbers", value)
    return tuple(yaml_float(v, f"{where}[{i}]") for i, v in enumerate(value))


def yaml_ints(value: Any, where: str) -> tuple[int, ...]:
    """``value`` read from a config file as a list of integers."""
    if not isinstance(value, list | tuple):
        raise _fail(where, "a list of integers", value)
    return tuple(yaml_int(v, f"{where}[{i}]") for i, v in enumerate(value))


def yaml_mapping(value: Any, where: str) -> dict[str, Any]:
    """``value`` read from a config file as a mapping; an empty entry (``null``) is an empty mapping."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(where, "a mapping", value)
    return dict(value)


_FIELD_READERS: dict[str, Callable[[Any, str], Any]] = {
    "int": yaml_int,
    "float": yaml_float,
    "bool": yaml_bool,
    "tuple[float, ...]": yaml_floats,
}


def _known(cls: type, params: Any, where: str, path: str) -> dict[str, Any]:
    """``params`` (the group ``path`` of a config file) checked against ``cls``'s fields, each value converted
    to its field's type."""
    params = yaml_mapping(params, path)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - set(fields))
    _require(not unknown, f"unknown {where} parameter(s): {', '.join(map(str, unknown))}")
    out = {}
    for key, value in params.items():
        reader = _FIELD_READERS.get(str(fields[key].type))
        out[key] = reader(value, f"{path}.{key}") if reader is not None else value
    return out


def make_config(
    name: str,
    *,
    common: Mapping[str, Any] | None = None,
    kp_detector: Mapping[str, Any] | None = None,
    generator: Mapping[str, Any] | None = None,
    dense_motion: Mapping[str, Any] | None = None,
    discriminator: Mapping[str, Any] | None = None,
    image_size: int = 256,
    align_corners: bool = True,
    path: str = "",
) -> FommConfig:
    """Build a :class:`FommConfig` from parameter groups named as in the original YAML files.

    ``dense_motion=None`` gives a generator without a dense motion network (as in the original code when
    ``dense_motion_params`` is absent); pass ``{}`` for the defaults. Each value is type-checked; an error names
    it by its key in the original YAML, after ``path`` (e.g. ``"model_params."``).
    """
    common = yaml_mapping(common, f"{path}common_params")
    unknown = sorted(set(common) - _COMMON_KEYS)
    _require(not unknown, f"unknown common parameter(s): {', '.join(map(str, unknown))}")
    num_kp = yaml_int(common.get("num_kp", 10), f"{path}common_params.num_kp")
    num_channels = yaml_int(common.get("num_channels", 3), f"{path}common_params.num_channels")
    estimate_jacobian = yaml_bool(common.get("estimate_jacobian", False), f"{path}common_params.estimate_jacobian")

    kp_params = _known(KeypointDetectorConfig, kp_detector, "kp_detector", f"{path}kp_detector_params")
    kp_cfg = KeypointDetectorConfig(
        **{**kp_params, "num_kp": num_kp, "num_channels": num_channels, "estimate_jacobian": estimate_jacobian}
    )

    gen_params = yaml_mapping(generator, f"{path}generator_params")
    gen_params.pop("dense_motion_params", None)
    gen_params = _known(GeneratorConfig, gen_params, "generator", f"{path}generator_params")
    occlusion = bool(gen_params.get("estimate_occlusion_map", False))
    dm_cfg = None
    if dense_motion is not None:
        dm_params = _known(
            DenseMotionConfig, dense_motion, "dense_motion", f"{path}generator_params.dense_motion_params"
        )
        dm_cfg = DenseMotionConfig(
            **{
                **dm_params,
                "num_kp": num_kp,
                "num_channels": num_channels,
                "estimate_occlusion_map": occlusion,
                "align_corners": align_corners,
            }
        )
    gen_cfg = GeneratorConfig(
        **{
            **gen_params,
            "num_kp": num_kp,
            "num_channels": num_channels,
            "estimate_occlusion_map": occlusion,
            "dense_motion": dm_cfg,
            "align_corners": align_corners,
        }
    )

    disc_params = _known(DiscriminatorConfig, discriminator, "discriminator", f"{path}discriminator_params")
    disc_cfg = DiscriminatorConfig(**{**disc_params, "num_kp": num_kp, "num_channels": num_channels})
    return FommConfig(
        name=name,
        keypoint_detector=kp_cfg,
        generator=gen_cfg,
        discriminator=disc_cfg,
        image_size=image_size,
        align_corners=align_corners,
    )


# --- presets: the eight released configurations ---------------------------------------------------------

_KP_256 = {"temperature": 0.1, "block_expansion": 32, "max_features": 1024, "scale_factor": 0.25, "num_blocks": 5}
_GEN_256 = {
    "block_expansion": 64,
    "max_features": 512,
    "num_down_blocks": 2,
    "num_bottleneck_blocks": 6,
    "estimate_occlusion_map": True,
}
_DM_256 = {"block_expansion": 64, "max_features": 1024, "num_blocks": 5, "scale_factor": 0.25}
_DISC_256 = {"scales": (1.0,), "block_expansion": 32, "max_features": 512, "num_blocks": 4}


def _released(name: str, *, single_jacobian_map: bool = False, **disc: Any) -> FommConfig:
    kp = dict(_KP_256)
    if single_jacobian_map:
        kp["single_jacobian_map"] = True
    return make_config(
        name,
        common={"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
        kp_detector=kp,
        generator=_GEN_256,
        dense_motion=_DM_256,
        discriminator={**_DISC_256, **disc},
    )


def vox_256() -> FommConfig:
    """VoxCeleb faces (``vox-cpk.pth.tar``): spectral-norm discriminator."""
    return _released("vox-256", sn=True)


def vox_adv_256() -> FommConfig:
    """VoxCeleb faces, adversarial (``vox-adv-cpk.pth.tar``): discriminator sees keypoint heatmaps."""
    return _released("vox-adv-256", use_kp=True)


def taichi_256() -> FommConfig:
    """Tai-Chi-HD bodies (``taichi-cpk.pth.tar``)."""
    return _released("taichi-256")


def taichi_adv_256() -> FommConfig:
    """Tai-Chi-HD bodies, adversarial (``taichi-adv-cpk.pth.tar``)."""
    return _released("taichi-adv-256", use_kp=True)


def bair_256() -> FommConfig:
    """BAIR robot pushing (``bair-cpk.pth.tar``)."""
    return _released("bair-256", sn=True)


def mgif_256() -> FommConfig:
    """Moving GIF cartoons (``mgif-cpk.pth.tar``): one jacobian map shared by all keypoints."""
    return _released("mgif-256", single_jacobian_map=True, sn=True)


def nemo_256() -> FommConfig:
    """Nemo smiling faces (``nemo-cpk.pth.tar``)."""
    return _released("nemo-256", sn=True)


def fashion_256() -> FommConfig:
    """Fashion videos (``fashion-cpk.pth.tar``)."""
    return _released("fashion-256")


def tiny_256() -> FommConfig:
    """The smallest useful network of the original structure at 256x256 (block_expansion 8, 10 keypoints).

    Not a released configuration: the live tool's fallback when no checkpoint is given (untrained) and
    the small end of the speed benchmarks.
    """
    return make_config(
        "tiny-256",
        common={"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
        kp_detector={
            "temperature": 0.1,
            "block_expansion": 8,
            "max_features": 64,
            "num_blocks": 3,
            "scale_factor": 0.25,
        },
        generator={
            "block_expansion": 8,
            "max_features": 64,
            "num_down_blocks": 2,
            "num_bottleneck_blocks": 2,
            "estimate_occlusion_map": True,
        },
        dense_motion={"block_expansion": 8, "max_features": 64, "num_blocks": 3, "scale_factor": 0.25},
        discriminator={"scales": (1.0,), "block_expansion": 8, "max_features": 64, "num_blocks": 4},
    )


PRESETS: dict[str, Callable[[], FommConfig]] = {
    "vox-256": vox_256,
    "vox-adv-256": vox_adv_256,
    "taichi-256": taichi_256,
    "taichi-adv-256": taichi_adv_256,
    "bair-256": bair_256,
    "mgif-256": mgif_256,
    "nemo-256": nemo_256,
    "fashion-256": fashion_256,
}


def demo_256() -> FommConfig:
    """The bundled demo model's network, sized for 25 fps live on a 2-core CPU at 256x256.

    Keypoint detector and dense motion at 64x64 get block_expansion 16 (cheap at that size); the generator,
    which runs at full resolution and dominates the cost, keeps block_expansion 8 with 4 residual blocks at
    64x64. About 1.3 M parameters, 32 ms per frame on a 2-core CPU (``tiny-256``: 34 ms, vox-256: 560 ms).
    """
    return make_config(
        "demo-256",
        common={"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
        kp_detector={
            "temperature": 0.1,
            "block_expansion": 16,
            "max_features": 128,
            "num_blocks": 4,
            "scale_factor": 0.25,
        },
        generator={
            "block_expansion": 8,
            "max_features": 64,
            "num_down_blocks": 2,
            "num_bottleneck_blocks": 4,
            "estimate_occlusion_map": True,
        },
        dense_motion={"block_expansion": 16, "max_features": 128, "num_blocks": 4, "scale_factor": 0.25},
        discriminator={"scales": (1.0,), "block_expansion": 16, "max_features": 128, "num_blocks": 4, "sn": True},
    )


#: Configurations of this project (not released checkpoints); accepted by :func:`preset` too.
EXTRA_CONFIGS: dict[str, Callable[[], FommConfig]] = {"tiny-256": tiny_256, "demo-256": demo_256}


def preset(name: str) -> FommConfig:
    """The released configuration called ``name`` (e.g. ``"vox-256"``), or one of :data:`EXTRA_CONFIGS`."""
    key = name.strip().lower().removesuffix(".yaml")
    if key in PRESETS:
        return PRESETS[key]()
    if key in EXTRA_CONFIGS:
        return EXTRA_CONFIGS[key]()
    raise ConfigError(f"unknown preset {name!r}; expected one of: {', '.join([*PRESETS, *EXTRA_CONFIGS])}")


# --- the original YAML files -----------------------------------------------------------------------------


def config_from_original(params: Mapping[str, Any], name: str = "custom") -> FommConfig:
    """Build a config from a parsed original YAML document (a mapping with ``model_params``)."""
    _require(isinstance(params, Mapping), "config file must hold a mapping at its top level")
    model = params.get("model_params")
    _require(isinstance(model, Mapping), "config file has no 'model_params' section")
    gen = yaml_mapping(model.get("generator_params"), "model_params.generator_params")
    dataset = yaml_mapping(params.get("dataset_params"), "dataset_params")
    shape_key = "frame_shape" if dataset.get("frame_shape") is not None else "image_shape"
    shape = yaml_ints(dataset[shape_key], f"dataset_params.{shape_key}") if dataset.get(shape_key) else ()
    return make_config(
        name,
        common=model.get("common_params"),
        kp_detector=model.get("kp_detector_params"),
        generator=gen,
        dense_motion=gen.get("dense_motion_params"),
        discriminator=model.get("discriminator_params"),
        image_size=shape[0] if shape else 256,
        align_corners=True,
        path="model_params.",
    )


def load_yaml_config(path: str | Path) -> FommConfig:
    """Read an original first-order-model YAML config (e.g. ``config/vox-256.yaml``)."""
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - pyyaml is a core dependency
        raise ConfigError("reading YAML configs needs PyYAML: pip install pyyaml") from exc
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") from exc
    try:
        params = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML") from exc
    try:
        return config_from_original(params, name=path.stem)
    except ConfigError as exc:
        raise ConfigError(f"config file {str(path)!r}: {exc}") from exc


# --- serialisation (embedded in the project's checkpoints) -----------------------------------------------


def config_to_dict(config: FommConfig) -> dict[str, Any]:
    """A JSON-ready dict of ``config`` (inverse of :func:`config_from_dict`)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(data: Mapping[str, Any]) -> FommConfig:
    """Rebuild a :class:`FommConfig` saved with :func:`config_to_dict`."""
    try:
        gen = dict(data["generator"])
        dm = gen.get("dense_motion")
        gen["dense_motion"] = DenseMotionConfig(**dm) if dm is not None else None
        disc = dict(data["discriminator"])
        disc["scales"] = tuple(disc.get("scales", (1.0,)))
        return FommConfig(
            name=data["name"],
            keypoint_detector=KeypointDetectorConfig(**data["keypoint_detector"]),
            generator=GeneratorConfig(**gen),
            discriminator=DiscriminatorConfig(**disc),
            image_size=int(data.get("image_size", 256)),
            align_corners=bool(data.get("align_corners", True)),
        )
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"stored model config is incomplete or malformed: {exc}") from exc
