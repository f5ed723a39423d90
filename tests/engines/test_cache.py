"""Engine cache keys and staleness, with real engines built here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import engines.cache as cache_module
from engines.build import EngineConfig
from engines.cache import EngineCache, check_engine, default_cache_dir
from engines.errors import EngineError

pytest_plugins = ["engine_fixtures"]

pytest.importorskip("onnx")


def _no_build(*args, **kwargs):
    raise AssertionError("the cache rebuilt an engine it should have reused")


def test_engine_is_built_once_then_reused(trt, tiny_graph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, spec, _ = tiny_graph
    cache = EngineCache(tmp_path / "engines", trt)
    engine = cache.get_or_build(path, spec, EngineConfig())
    meta = json.loads(engine.with_suffix(".json").read_text())
    assert meta["key"]["graph"] == "tiny" and meta["key"]["flavour"] == trt.flavour
    assert meta["key"]["tensorrt_version"] == trt.version and meta["key"]["plugin"] == "none"
    assert meta["network"]["inputs"][0]["name"] == "image"
    monkeypatch.setattr(cache_module, "build_engine", _no_build)
    assert cache.get_or_build(path, spec, EngineConfig()) == engine


def _other_weights(path: Path, out: Path) -> Path:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    weight = model.graph.initializer[0]
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) + 1, weight.name))
    onnx.save(model, str(out))
    return out


def test_key_changes_with_what_makes_an_engine_valid(trt, tiny_graph, tmp_path: Path) -> None:
    path, spec, _ = tiny_graph
    cache = EngineCache(tmp_path, trt)
    base = cache.key(path, spec, EngineConfig())
    assert cache.key(path, spec, EngineConfig()) == base  # deterministic
    other_onnx = _other_weights(path, tmp_path / "other.onnx")
    variants = [
        cache.key(path, spec, EngineConfig(precision="fp16")),
        cache.key(other_onnx, spec, EngineConfig()),
    ]
    if trt.has_compute_capability_targets:
        variants.append(cache.key(path, spec, EngineConfig(compute_capabilities=("SM89",))))
        assert variants[-1].compute_capability == "SM89" and base.compute_capability == "portable"
    assert len({base.digest, *(k.digest for k in variants)}) == len(variants) + 1
    assert base.filename.startswith("tiny-fp32-") and base.filename.endswith(".engine")


@pytest.mark.parametrize("field", ["tensorrt_version", "gpu", "plugin"], ids=["version", "device", "plugin-version"])
def test_stale_engine_is_rebuilt(trt, tiny_graph, tmp_path: Path, field: str) -> None:
    path, spec, _ = tiny_graph
    cache = EngineCache(tmp_path, trt)
    engine = cache.get_or_build(path, spec)
    sidecar = engine.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    meta["key"][field] = "something else"
    sidecar.write_text(json.dumps(meta))
    found = cache.lookup(cache.key(path, spec, EngineConfig()))
    assert not found.valid and found.reason.startswith(f"stale: {field}: 'something else' != ")
    cache.get_or_build(path, spec)  # rebuilt in place
    assert cache.lookup(cache.key(path, spec, EngineConfig())).valid


def test_corrupt_or_foreign_engine_is_refused(trt, tiny_graph, tmp_path: Path) -> None:
    path, spec, _ = tiny_graph
    cache = EngineCache(tmp_path / "cache", trt)
    engine = cache.get_or_build(path, spec)
    key = cache.key(path, spec, EngineConfig())
    truncated = engine.read_bytes()[: engine.stat().st_size // 2]
    engine.write_bytes(truncated)
    assert check_engine(engine, key, trt).reason.startswith("corrupt:")
    with pytest.raises(EngineError, match=r"cannot be used \(corrupt: .*\); delete it and let it rebuild") as err:
        cache.require(engine, key)
    assert "\n" not in str(err.value)
    foreign = tmp_path / "downloaded.engine"
    shutil.copy(engine, foreign)
    with pytest.raises(EngineError, match="not built by this tool"):
        cache.require(foreign, key)
    assert cache.get_or_build(path, spec).read_bytes() != truncated  # the cache rebuilds the corrupt one


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FOMM_ENGINE_CACHE", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("FOMM_ENGINE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "fomm-live" / "engines"
