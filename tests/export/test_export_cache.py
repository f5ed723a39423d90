"""The ONNX export cache (``export.cache``): a folder that cannot be written is named before any export work."""

from __future__ import annotations

import pytest
import torch

import fomm
from export import cache as cache_module
from export.cache import cached_export
from export.exporter import ExportError

pytest.importorskip("onnx", reason="the export tests need onnx: pip install 'fomm-live[export]'")


def _no_export(*args, **kwargs):
    raise AssertionError("exported into a cache folder that cannot be written")


@pytest.mark.parametrize("from_env", [True, False], ids=["FOMM_CACHE_DIR", "root"])
def test_unwritable_cache_is_named_before_exporting(tmp_path, make_tiny, monkeypatch, from_env: bool) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setattr(cache_module, "export_model", _no_export)
    model = fomm.build_fomm(make_tiny(num_kp=5)).to(torch.float32)
    if from_env:
        monkeypatch.setenv("FOMM_CACHE_DIR", str(blocked / "cache"))
        where, root = r"\$FOMM_CACHE_DIR", None
    else:
        monkeypatch.delenv("FOMM_CACHE_DIR", raising=False)
        where, root = "the ONNX cache folder", blocked / "cache"
    message = rf"^{where} '{blocked / 'cache'}': '{blocked}' is a file, not a folder"
    with pytest.raises(ExportError, match=message) as err:
        cached_export(model, root=root)
    assert str(err.value).endswith("set FOMM_CACHE_DIR to a writable folder") and "\n" not in str(err.value)
