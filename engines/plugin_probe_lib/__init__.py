"""The compiled probe plugin (``warp_probe.cpp``): a C++ IPluginV3 for ``fomm.warp::WarpOccluded`` without a
kernel, built with g++ against TensorRT's public C++ headers, to probe whether TensorRT for RTX parses and builds
a fused warp node from a compiled plugin library (see :mod:`engines.plugin_probe` and the README).

The headers (the ``include/`` folder of a TensorRT 10.x release of its GitHub repository) are not in this
repository, and no PyPI package checked ships them (the README lists which): :func:`build_probe_library` takes
their folder as an argument or from ``$FOMM_TRT_INCLUDE``. CUDA's headers are not needed: a two-line stub
``cuda_runtime_api.h`` (opaque stream and event types, all that TensorRT's headers use) is written next to the
library.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from engines.errors import EngineError

__all__ = [
    "INCLUDE_ENV",
    "LIBRARY_NAME",
    "SOURCE",
    "build_network_probe",
    "build_probe_check",
    "build_probe_library",
    "find_headers",
    "header_version",
]

logger = logging.getLogger(__name__)

INCLUDE_ENV = "FOMM_TRT_INCLUDE"
"""Environment variable naming TensorRT's C++ include folder (the one holding ``NvInferRuntime.h``)."""

SOURCE = Path(__file__).with_name("warp_probe.cpp")
NETWORK_SOURCE = Path(__file__).with_name("network_probe.cpp")
CHECK_SOURCE = Path(__file__).with_name("warp_probe_check.cpp")
LIBRARY_NAME = "libwarp_probe.so"

CUDA_STUB = """\
// Stub for TensorRT's headers without the CUDA toolkit: the opaque handle types they name. Probe builds only.
#pragma once
typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;
"""

_HINT = (
    "TensorRT's C++ headers: the include/ folder of a TensorRT 10.x release of github.com/NVIDIA/TensorRT, "
    f"given as the include argument or ${INCLUDE_ENV}"
)


def find_headers(include: Path | str | None = None) -> Path:
    """The TensorRT include folder: ``include``, else ``$FOMM_TRT_INCLUDE``.

    Raises:
        EngineError: neither is given, or the folder has no ``NvInferRuntime.h``.
    """
    given = include if include is not None else os.environ.get(INCLUDE_ENV)
    if not given:
        raise EngineError(f"no TensorRT include folder given; the probe plugin needs {_HINT}")
    folder = Path(given)
    if not (folder / "NvInferRuntime.h").is_file():
        raise EngineError(f"TensorRT include folder {str(folder)!r} has no NvInferRuntime.h; the probe needs {_HINT}")
    return folder


def header_version(include: Path | str) -> str:
    """``"10.16.0.72"``: the version in the folder's ``NvInferVersion.h`` (``"unknown"`` if it has none)."""
    path = Path(include) / "NvInferVersion.h"
    text = path.read_text(errors="replace") if path.is_file() else ""
    parts = []
    for field in ("MAJOR", "MINOR", "PATCH", "BUILD"):
        match = re.search(rf"#define\s+(?:TRT_{field}_ENTERPRISE|NV_TENSORRT_{field})\s+(\d+)", text)
        if match is None:
            return "unknown"
        parts.append(match.group(1))
    return ".".join(parts)


def build_probe_library(out_dir: Path | str, include: Path | str | None = None, compiler: str = "g++") -> Path:
    """Compile ``warp_probe.cpp`` into ``out_dir/libwarp_probe.so`` (about a second) and return its path.

    Args:
        out_dir: build folder (created); also gets the stub ``cuda_runtime_api.h``.
        include: TensorRT's include folder; default ``$FOMM_TRT_INCLUDE``.
        compiler: a C++17 compiler command.

    Raises:
        EngineError: no headers (see :func:`find_headers`), no compiler, or a compile error (its first line).
    """
    return _compile(
        SOURCE, Path(out_dir) / LIBRARY_NAME, ["-shared", "-fPIC", "-fvisibility=hidden"], include, compiler
    )


def build_probe_check(out_dir: Path | str, include: Path | str | None = None, compiler: str = "g++") -> Path:
    """Compile ``warp_probe_check.cpp`` into ``out_dir/warp_probe_check``: run as ``warp_probe_check LIBRARY``, it
    calls the probe library's creator and plugin as TensorRT would (no TensorRT needed) and prints ``ok: ...`` or
    ``FAIL: ...`` per check. Raises as :func:`build_probe_library`."""
    return _compile(CHECK_SOURCE, Path(out_dir) / "warp_probe_check", ["-ldl"], include, compiler)


def build_network_probe(out_dir: Path | str, include: Path | str | None = None, compiler: str = "g++") -> Path:
    """Compile ``network_probe.cpp`` (the plugin through TensorRT's C++ network API, no ONNX parser) into
    ``out_dir/network_probe``; run it as ``network_probe LIBTENSORRT PLUGIN_LIBRARY fp32|fp16``.

    It calls TensorRT's builder and network classes, whose virtual-function tables must match the headers: for
    TensorRT-RTX that needs TensorRT-RTX's own SDK headers (the TensorRT 10.16 and 11.x headers do not match
    TensorRT-RTX 1.7's classes; see the README). Raises as :func:`build_probe_library`.
    """
    return _compile(NETWORK_SOURCE, Path(out_dir) / "network_probe", ["-ldl"], include, compiler)


def _compile(source: Path, output: Path, flags: list[str], include: Path | str | None, compiler: str) -> Path:
    headers = find_headers(include)
    if shutil.which(compiler) is None:
        raise EngineError(f"C++ compiler {compiler!r} not found; the probe plugin needs one (apt-get install g++)")
    stub = output.parent / "cuda-stub"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "cuda_runtime_api.h").write_text(CUDA_STUB)
    cmd = [
        compiler, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-isystem", str(stub), "-isystem", str(headers),
        str(source), "-o", str(output), *flags,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "error" in line] or done.stderr.splitlines()[-1:]
        raise EngineError(
            f"{source.name} does not compile against {str(headers)!r} (TensorRT {header_version(headers)}): "
            f"{errors[0] if errors else f'{compiler} exited {done.returncode}'}"
        )
    logger.info("built %s against TensorRT %s headers", output, header_version(headers))
    return output
