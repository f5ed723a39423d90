"""Export tests need onnx and onnxruntime (the ``export`` extra); they skip with a reason without them."""

from __future__ import annotations

import pytest

pytest.importorskip("onnx", reason="the export tests need onnx: pip install 'fomm-live[export]'")
pytest.importorskip("onnxruntime", reason="the export tests need onnxruntime: pip install 'fomm-live[export]'")
