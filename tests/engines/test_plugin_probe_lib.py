"""The compiled probe plugin: its build helper, and what TensorRT-RTX does with it (recorded in the README).

The probe needs g++ and TensorRT's C++ headers (``$FOMM_TRT_INCLUDE``: the ``include/`` folder of a TensorRT 10.x
release of github.com/NVIDIA/TensorRT; no PyPI wheel ships them); without them those tests skip.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from engines.errors import EngineError
from engines.plugin_probe_lib import (
    INCLUDE_ENV,
    build_network_probe,
    build_probe_check,
    build_probe_library,
    find_headers,
    header_version,
)

pytest_plugins = ["engine_fixtures"]

RECORDED_RTX = "1.7.1.116"


@pytest.fixture(scope="module")
def probe_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("g++") is None:
        pytest.skip("the probe plugin needs g++ (apt-get install g++)")
    include = os.environ.get(INCLUDE_ENV)
    if not include or not (Path(include) / "NvInferRuntime.h").is_file():
        pytest.skip(f"the probe plugin needs TensorRT's C++ headers: ${INCLUDE_ENV} (include/ of TensorRT 10.x)")
    return build_probe_library(tmp_path_factory.mktemp("warp-probe"), include)


def test_headers_are_found_or_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INCLUDE_ENV, raising=False)
    with pytest.raises(EngineError, match=rf"no TensorRT include folder given; .*\${INCLUDE_ENV}"):
        find_headers()
    with pytest.raises(EngineError, match=r"has no NvInferRuntime.h"):
        find_headers(tmp_path)
    (tmp_path / "NvInferRuntime.h").write_text("")
    monkeypatch.setenv(INCLUDE_ENV, str(tmp_path))
    assert find_headers() == tmp_path
    assert header_version(tmp_path) == "unknown"
    (tmp_path / "NvInferVersion.h").write_text(
        "#define TRT_MAJOR_ENTERPRISE 10\n#define TRT_MINOR_ENTERPRISE 16\n"
        "#define TRT_PATCH_ENTERPRISE 0\n#define TRT_BUILD_ENTERPRISE 72\n"
    )
    assert header_version(tmp_path) == "10.16.0.72"


def test_build_reports_the_compile_error(tmp_path: Path) -> None:
    if shutil.which("g++") is None:
        pytest.skip("needs g++")
    include = tmp_path / "include"
    include.mkdir()
    (include / "NvInferRuntime.h").write_text('#error "not TensorRT"\n')
    with pytest.raises(
        EngineError, match=r"warp_probe.cpp does not compile against .*include.* \(TensorRT unknown\): .*not TensorRT"
    ):
        build_probe_library(tmp_path / "build", include)
    with pytest.raises(EngineError, match=r"C\+\+ compiler 'no-such-c\+\+' not found"):
        build_probe_library(tmp_path / "build", include, compiler="no-such-c++")


def test_probe_library_logic(probe_library: Path) -> None:
    """The plugin's creator and capabilities called as TensorRT would call them (warp_probe_check.cpp): identity,
    attribute parsing and rejection, types, formats, shapes, serialisation round trip, enqueue failing."""
    import subprocess

    program = build_probe_check(probe_library.parent, os.environ[INCLUDE_ENV])
    done = subprocess.run([str(program), str(probe_library)], capture_output=True, text=True, timeout=60)
    results = done.stdout.splitlines()
    assert [line for line in results if not line.startswith("ok: ")] == [] and done.returncode == 0
    assert len(results) == 28 and "ok: rejects mixed FP32/FP16" in results
    # the library reports the calls it gets on stderr (what the TensorRT-RTX probe reads)
    assert "warp_probe: supportsFormatCombination" in done.stderr.splitlines()


def test_probe_library_exports_the_loader_entry_points(probe_library: Path) -> None:
    """What IPluginRegistry::loadLibrary looks up with dlsym (V3 creators; the logger finder)."""
    import ctypes

    library = ctypes.CDLL(str(probe_library))
    assert library.getCreators and library.setLoggerFinder
    with pytest.raises(AttributeError):
        library.getPluginCreators  # noqa: B018 (the deprecated V2 entry point: not provided)


@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_rtx_compiled_plugin_probe(trt, probe_library: Path, dtype: str) -> None:
    """Recorded finding (README): TensorRT-RTX 1.7 loads the compiled library, finds its creator and creates the
    plugin from the node's attributes, then its ONNX parser aborts the process (as with the Python plugin)."""
    from engines.plugin import probe_compiled_plugin

    if not trt.is_rtx or trt.version != RECORDED_RTX:
        pytest.skip(f"the finding is recorded for TensorRT-RTX {RECORDED_RTX}")
    result = probe_compiled_plugin("tensorrt_rtx", probe_library, dtype)
    assert not result.works
    assert result.detail == (
        f"the process died with SIGABRT at: parsing the {dtype} WarpOccluded node "
        "(terminate called without an active exception)"
    )
    assert result.lines == (
        f"loaded {probe_library}",
        "creator fomm.warp::WarpOccluded v1",
        f"parsing the {dtype} WarpOccluded node",
        "warp_probe: getCreators -> fomm.warp::WarpOccluded v1",
        "warp_probe: createPlugin 'warp' phase=build align_corners=1 padding_mode=0",
    )


def test_network_probe_builds_and_checks_its_arguments(probe_library: Path) -> None:
    """The network-API probe compiles; its results need TensorRT-RTX's own SDK headers (README), so it is not run
    against TensorRT-RTX here."""
    import subprocess

    program = build_network_probe(probe_library.parent, os.environ[INCLUDE_ENV])
    done = subprocess.run([str(program), "libtensorrt.so", str(probe_library), "int8"], capture_output=True, text=True)
    assert done.returncode == 2 and "usage:" in done.stderr and done.stdout == ""
