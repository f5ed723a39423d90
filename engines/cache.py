"""Engine cache: engine files keyed by what makes an engine valid, never loaded blindly.

A key holds the graph name, the ONNX file's SHA-256, the precision and batch profile, the TensorRT flavour and
version, the warp plugin's version (when the graph has fused warp nodes) and the device: GPU name and compute
capability for standard TensorRT (an engine is specific to both), the compute-capability targets for
TensorRT-RTX (its ahead-of-time engines are portable across the GPUs they target). Each engine
``<graph>-<precision>-<digest>.engine`` has a ``.json`` sidecar with the full key and the engine's SHA-256.
A lookup rebuilds (or, for an engine given explicitly, refuses with the reason) when the sidecar is missing,
the key differs, the file's hash differs (truncated or corrupt), or TensorRT-RTX's
``IRuntime.get_engine_validity`` says the header does not fit this system.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from engines.build import EngineConfig, build_engine
from engines.errors import EngineError
from engines.onnx_utils import onnx_sha256
from engines.spec import GraphSpec
from engines.trt import TensorRT, load_tensorrt
from fomm.hashing import sha256_file

__all__ = [
    "CacheLookup",
    "EngineCache",
    "EngineKey",
    "default_cache_dir",
    "device_identity",
    "engine_key",
    "onnx_plugin_version",
    "read_key_file",
]

logger = logging.getLogger(__name__)

ENGINE_SUFFIX = ".engine"
KEY_FORMAT = 1


def default_cache_dir() -> Path:
    """``$FOMM_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/fomm-live/engines`` (``~/.cache/fomm-live/engines``)."""
    if os.environ.get("FOMM_ENGINE_CACHE"):
        return Path(os.environ["FOMM_ENGINE_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fomm-live" / "engines"


def device_identity(trt: TensorRT, config: EngineConfig) -> tuple[str, str]:
    """``(gpu, compute_capability)`` of the key.

    Standard TensorRT: the CUDA device torch sees (``"none"`` without one). TensorRT-RTX: ``"any"`` and the
    targets (``"SM86+SM89"``, or ``"portable"`` for its default set): the GPU's name does not matter to it.
    """
    if trt.is_rtx:
        return "any", "+".join(config.compute_capabilities) or "portable"
    if not torch.cuda.is_available():
        return "none", "none"
    major, minor = torch.cuda.get_device_capability()
    return torch.cuda.get_device_name(), f"{major}.{minor}"


def onnx_plugin_version(path: str | Path) -> str:
    """``"fomm.warp/1"`` when the graph has fused warp nodes (the plugin's identity is part of the key), else
    ``"none"``."""
    from engines.onnx_utils import load_onnx
    from export.warp_op import DOMAIN, OP_VERSION

    model = load_onnx(path)
    if any(node.domain == DOMAIN for node in model.graph.node):
        return f"{DOMAIN}/{OP_VERSION}"
    return "none"


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine's validity depends on."""

    graph: str
    onnx_sha256: str
    precision: str
    batch: str
    flavour: str
    tensorrt_version: str
    plugin: str
    gpu: str
    compute_capability: str
    format: int = KEY_FORMAT

    @property
    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def filename(self) -> str:
        return f"{self.graph}-{self.precision}-{self.digest}{ENGINE_SUFFIX}"

    def differences(self, other: dict[str, Any]) -> list[str]:
        """``"field: theirs != ours"`` for each field that differs from a sidecar's key."""
        ours = asdict(self)
        return [f"{name}: {other.get(name)!r} != {value!r}" for name, value in ours.items() if other.get(name) != value]


def engine_key(onnx_path: str | Path, spec: GraphSpec, config: EngineConfig, trt: TensorRT | None = None) -> EngineKey:
    trt = trt or load_tensorrt()
    gpu, cc = device_identity(trt, config)
    batch = "static" if config.batch is None else "x".join(str(b) for b in config.batch)
    return EngineKey(
        graph=spec.name,
        onnx_sha256=onnx_sha256(onnx_path),
        precision=config.precision,
        batch=batch,
        flavour=trt.flavour,
        tensorrt_version=trt.version,
        plugin=onnx_plugin_version(onnx_path),
        gpu=gpu,
        compute_capability=cc,
    )


@dataclass(frozen=True)
class CacheLookup:
    """Result of a lookup: ``path`` is usable when ``valid``; ``reason`` says why not."""

    path: Path
    valid: bool
    reason: str


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _engine_validity(trt: TensorRT, path: Path) -> str | None:
    """TensorRT-RTX's check of the engine file's header (only the header is read); ``None`` when valid or when it
    cannot tell here (no GPU, other flavour)."""
    if not trt.has_engine_validity or not torch.cuda.is_available():
        return None
    runtime = trt.module.Runtime(trt.logger("ERROR"))
    with path.open("rb") as file:
        header = file.read(runtime.engine_header_size)
    validity, diagnostics = runtime.get_engine_validity(header)
    if validity == trt.module.EngineValidity.INVALID:
        members = trt.module.EngineInvalidityDiagnostics.__members__.items()
        flags = [name for name, flag in members if diagnostics & int(flag)]
        return f"{trt.label} says the engine is invalid here ({', '.join(flags) or 'no diagnostics'})"
    if validity == trt.module.EngineValidity.SUBOPTIMAL:
        logger.warning("%s: engine is valid but suboptimal on this GPU; rebuild for full speed", trt.label)
    return None


def read_key_file(path: Path) -> dict[str, Any]:
    """The key file of the engine at ``path``, checked against the engine's bytes.

    Raises :class:`EngineError` with the reason when the engine or its key file is missing, the key file is
    unreadable, or the engine's SHA-256 differs from the one recorded at build time (truncated or corrupt).
    """
    meta = _read_meta(path)
    _check_hash(path, meta)
    return meta


def _read_meta(path: Path) -> dict[str, Any]:
    """The key file of the engine at ``path`` (:func:`read_key_file` without the hash, which reads the engine)."""
    if not path.is_file():
        raise EngineError("no engine file")
    sidecar = _sidecar(path)
    if not sidecar.is_file():
        raise EngineError(f"no key file {sidecar.name} (not built by this tool)")
    try:
        meta = json.loads(sidecar.read_text())
        if not isinstance(meta["key"], dict) or not isinstance(meta["engine_sha256"], str):
            raise TypeError("'key' must be an object and 'engine_sha256' a string")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineError(f"unreadable key file {sidecar.name} ({type(exc).__name__}: {exc})") from None
    return meta


def _check_hash(path: Path, meta: dict[str, Any]) -> None:
    if sha256_file(path) != meta["engine_sha256"]:
        raise EngineError("corrupt: the file's SHA-256 differs from the one recorded at build time")


def check_engine(path: Path, key: EngineKey, trt: TensorRT) -> CacheLookup:
    """Whether the engine file at ``path`` is the one ``key`` describes, intact, and fits this system."""
    try:
        meta = _read_meta(path)
        differences = key.differences(meta["key"])
        if differences:  # stale: no need to hash the engine
            return CacheLookup(path, False, "stale: " + "; ".join(differences))
        _check_hash(path, meta)
    except EngineError as exc:
        return CacheLookup(path, False, str(exc))
    reason = _engine_validity(trt, path)
    if reason is not None:
        return CacheLookup(path, False, reason)
    return CacheLookup(path, True, "valid")


class EngineCache:
    """A folder of engines with their key files.

    Args:
        folder: where engines live (:func:`default_cache_dir` when ``None``).
        trt: the TensorRT flavour (:func:`engines.trt.load_tensorrt` when ``None``).
    """

    def __init__(self, folder: str | Path | None = None, trt: TensorRT | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_cache_dir()
        self.trt = trt or load_tensorrt()

    def key(self, onnx_path: str | Path, spec: GraphSpec, config: EngineConfig) -> EngineKey:
        return engine_key(onnx_path, spec, config, self.trt)

    def lookup(self, key: EngineKey) -> CacheLookup:
        return check_engine(self.folder / key.filename, key, self.trt)

    def check_writable(self) -> None:
        """:class:`EngineError` (one line) when engines cannot be written to the folder (or it cannot be created);
        called before a build, so that minutes of building are not lost to a folder that cannot take the result.
        """
        from fomm.media.errors import MediaError
        from fomm.media.video import check_writable_folder

        try:
            check_writable_folder(self.folder, "engine cache folder")
        except MediaError as exc:
            raise EngineError(str(exc)) from None

    def store(self, key: EngineKey, blob: bytes, **extra: Any) -> Path:
        """Write the engine and its key file atomically (a crash leaves no half-written engine under the name)."""
        path = self.folder / key.filename
        tmp = path.with_suffix(".engine.tmp")
        sidecar_tmp = _sidecar(path).with_suffix(".json.tmp")
        meta = {"key": asdict(key), "engine_sha256": hashlib.sha256(blob).hexdigest(), **extra}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(blob)
            sidecar_tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
            os.replace(tmp, path)
            os.replace(sidecar_tmp, _sidecar(path))
        except OSError as exc:
            raise EngineError(f"cannot write engine {str(path)!r} ({exc.strerror})") from None
        finally:
            tmp.unlink(missing_ok=True)
            sidecar_tmp.unlink(missing_ok=True)
        return path

    def get_or_build(
        self, onnx_path: str | Path, spec: GraphSpec, config: EngineConfig | None = None, *, rebuild: bool = False
    ) -> Path:
        """The cached engine for this ONNX/spec/config, built (and stored) when missing, stale or invalid."""
        config = config or EngineConfig()
        key = self.key(onnx_path, spec, config)
        found = self.lookup(key)
        if found.valid and not rebuild:
            logger.info("engine cache hit: %s", found.path)
            return found.path
        if found.reason != "no engine file":
            logger.info("engine %s is not usable (%s): rebuilding", found.path.name, found.reason)
        self.check_writable()
        built = build_engine(onnx_path, spec, config, trt=self.trt)
        return self.store(
            key, built.blob, build_seconds=round(built.seconds, 3), network=built.network.to_json(), onnx=str(onnx_path)
        )

    def require(self, path: str | Path, key: EngineKey) -> Path:
        """An engine given explicitly (``--engine FILE``): returned if valid, else :class:`EngineError` with why."""
        path = Path(path)
        found = check_engine(path, key, self.trt)
        if not found.valid:
            raise EngineError(f"engine {str(path)!r} cannot be used ({found.reason}); delete it and let it rebuild")
        return path
