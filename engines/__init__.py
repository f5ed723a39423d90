"""TensorRT engines for the exported FOMM graphs: flavour, build, cache, warp plugin, runtime.

``engines`` imports torch only; TensorRT (``tensorrt`` or ``tensorrt_rtx``) and ONNX are imported lazily
when a function needs them, with an install hint when they are missing (see :mod:`engines.trt`).
"""

from engines.errors import EngineError

__all__ = ["EngineError"]
