"""One TensorRT module for both flavours: standard TensorRT (``tensorrt``, 10 or 11) when installed, else
TensorRT for RTX (``tensorrt_rtx``, what the ``[trt]`` extra installs).

The two share the builder/parser/runtime Python API that :mod:`engines` uses, with these differences
(checked against both flavours' Python API documentation and the installed ``tensorrt_rtx`` 1.7 bindings):

=================================  ====================================  ===================================
feature                            ``tensorrt`` 10 / 11                  ``tensorrt_rtx`` 1.x
=================================  ====================================  ===================================
build without a GPU                no (the builder needs a device)       yes (ahead-of-time phase)
target compute capabilities        the build device only                 ``IBuilderConfig.set_compute_capability``
FP16                               strongly typed ONNX graph (FP16 pass)  the same (networks are strongly typed;
                                                                          no ``BuilderFlag.FP16``)
timing cache                       ``create_timing_cache``/``set_...``    accepted but a no-op (deprecated 1.2);
                                                                          kernels are JIT-compiled at run time
plugins (IPluginV3, ``add_plugin_v3``)  yes                               no ``add_plugin_v3``; see README
engine validity before loading     no (we check our own cache key)        ``IRuntime.get_engine_validity``
=================================  ====================================  ===================================
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

from engines.errors import EngineError

__all__ = [
    "INSTALL_HINT",
    "RTX_SUPPORTED_CAPABILITIES",
    "LogBridge",
    "TensorRT",
    "load_tensorrt",
    "rtx_runs_on",
    "tensorrt_available",
]

logger = logging.getLogger(__name__)

RTX_SUPPORTED_CAPABILITIES = ((7, 5), (8, 0), (8, 6), (8, 9), (12, 0), (12, 1))
"""Compute capabilities TensorRT-RTX 1.7 builds for by name (RTX GPUs: Turing, Ampere, Ada, Blackwell); its runtime
also takes the ones above 12.0 (an H200 run listed "8.0 8.6 8.9 12.0 12.1 >12.0" for a portable engine)."""


def rtx_runs_on(capability: tuple[int, int]) -> bool:
    """Whether TensorRT-RTX 1.7 runs engines on a GPU of this compute capability (not on 9.0, Hopper: measured)."""
    return tuple(capability) in RTX_SUPPORTED_CAPABILITIES or tuple(capability) > (12, 0)


INSTALL_HINT = (
    "install TensorRT: `pip install -e .[trt]` (TensorRT for RTX, RTX GPUs) or `pip install tensorrt` "
    "(standard TensorRT 10/11, data-centre GPUs)"
)
FLAVOURS = ("tensorrt", "tensorrt_rtx")


@dataclass(frozen=True)
class TensorRT:
    """The TensorRT module in use and what it can do.

    Attributes:
        module: ``tensorrt`` or ``tensorrt_rtx`` (same Python API for what :mod:`engines` uses).
        flavour: ``"tensorrt"`` or ``"tensorrt_rtx"``.
        version: the module's ``__version__``.
    """

    module: Any
    flavour: str
    version: str

    @property
    def is_rtx(self) -> bool:
        return self.flavour == "tensorrt_rtx"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def label(self) -> str:
        """``"TensorRT 10.13.0"`` or ``"TensorRT-RTX 1.7.1.116"``."""
        return f"{'TensorRT-RTX' if self.is_rtx else 'TensorRT'} {self.version}"

    # --- features one flavour lacks -------------------------------------------------------------------

    @property
    def has_timing_cache(self) -> bool:
        """TensorRT-RTX accepts timing-cache calls but ignores them (deprecated in 1.2)."""
        return not self.is_rtx

    @property
    def has_compute_capability_targets(self) -> bool:
        """Build for named compute capabilities (no GPU needed): TensorRT-RTX only."""
        return hasattr(self.module.IBuilderConfig, "set_compute_capability")

    @property
    def has_plugin_layers(self) -> bool:
        """``INetworkDefinition.add_plugin_v3`` exists (TensorRT-RTX has none)."""
        return hasattr(self.module.INetworkDefinition, "add_plugin_v3")

    @property
    def has_engine_validity(self) -> bool:
        """``IRuntime.get_engine_validity`` (TensorRT-RTX) checks an engine's header before loading it."""
        return hasattr(self.module.Runtime, "get_engine_validity")

    @property
    def has_progress_monitor(self) -> bool:
        return hasattr(self.module, "IProgressMonitor")

    def logger(self, severity: str = "WARNING") -> Any:
        """A TensorRT logger (one per severity per process; TensorRT prefers a single logger)."""
        return _logger(self.module, severity)


class LogBridge:
    """Forward TensorRT's log to :mod:`logging`; keep its errors for the exception message."""

    def __init__(self, trt: TensorRT) -> None:
        module = trt.module
        severities = module.ILogger.Severity
        levels = {
            severities.INTERNAL_ERROR: logging.ERROR,
            severities.ERROR: logging.ERROR,
            severities.WARNING: logging.WARNING,
            severities.INFO: logging.DEBUG,
            severities.VERBOSE: logging.DEBUG,
        }
        errors: list[str] = []
        warnings: list[str] = []

        class Bridge(module.ILogger):  # type: ignore[misc,name-defined]
            def __init__(self) -> None:
                module.ILogger.__init__(self)

            def log(self, severity: Any, msg: str) -> None:
                level = levels.get(severity, logging.DEBUG)
                if level >= logging.ERROR:
                    errors.append(msg)
                elif level == logging.WARNING:
                    warnings.append(msg)
                logger.log(level, "[%s] %s", trt.flavour, msg)

        self.logger = Bridge()
        self.errors = errors
        self.warnings = warnings

    def first_error(self) -> str | None:
        """The first error logged, without TensorRT's wrapping (``Class::method: Error Code N: Kind (...)``) and
        source location (``In fn at file:line``); ``None`` when none was."""
        if not self.errors:
            return None
        text = " ".join(self.errors[0].split())
        wrapped = re.fullmatch(r".*?Error Code \d+: [^(]*\((.*)\)", text)
        if wrapped:
            text = wrapped.group(1)
        return re.sub(r"\s*In \w+ at \S+$", "", text).strip().rstrip(".")


@cache
def _logger(module: Any, severity: str) -> Any:
    return module.Logger(getattr(module.Logger, severity))


def _import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
    except OSError as exc:  # a wheel whose shared libraries do not load (wrong CUDA, missing driver files)
        logger.warning("%s is installed but does not load: %s", name, exc)
        return None


@cache
def load_tensorrt(prefer: str | None = None) -> TensorRT:
    """The TensorRT flavour to use: ``prefer`` if given, else ``tensorrt`` when importable, else ``tensorrt_rtx``.

    Raises:
        EngineError: neither flavour imports (the message says how to install one).
    """
    if prefer is not None and prefer not in FLAVOURS:
        raise EngineError(f"TensorRT flavour {prefer!r} is not one of {', '.join(FLAVOURS)}")
    for name in (prefer,) if prefer else FLAVOURS:
        module = _import(name)
        if module is None:
            continue
        version = str(getattr(module, "__version__", "0"))
        info = TensorRT(module, name, version)
        if name == "tensorrt" and info.major < 10:
            logger.warning("TensorRT %s is older than 10 (IPluginV3, execute_async_v3 need 10): ignored", version)
            continue
        logger.debug("using %s", info.label)
        return info
    wanted = prefer or "tensorrt or tensorrt_rtx"
    raise EngineError(f"TensorRT is not installed ({wanted} does not import); {INSTALL_HINT}")


def tensorrt_available() -> bool:
    """Whether a TensorRT flavour imports (never raises)."""
    try:
        load_tensorrt()
    except EngineError:
        return False
    return True
