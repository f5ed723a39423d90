"""Export of the FOMM networks to ONNX, and running the exported graphs in ONNX Runtime.

Modules (each imports onnx / onnxruntime lazily, with an install hint when missing):

- :mod:`export.specs`: one :class:`~export.specs.NetworkSpec` per graph (``keypoints``, ``source``,
  ``animate``): tensor names, shapes, dtypes, read by name. The single source for export, runtime buffers and
  TensorRT profiles: ``network_specs(config, precision="fp16", dynamic_batch=True)["animate"].input("features")``.
- :mod:`export.warp_op`: identity of the fused warp nodes (domain ``fomm.warp``), shared with TensorRT.
- :mod:`export.exporter`: ``export_model(model, out, ExportOptions(...))`` writes the graphs and
  ``manifest.json``; ``load_manifest(folder, weights_sha256=..., options=...)`` checks a folder.
- :mod:`export.fused`: the ``fused`` variant's warp implementation (one custom node per fused warp).
- :mod:`export.runtime`: ``OrtGraph`` / ``open_export``: ONNX Runtime sessions, inputs and outputs by name;
  the fused ops registered through onnxruntime-extensions.
- :mod:`export.backend`: ``OnnxBackend`` (the live ``InferenceBackend`` protocol; ``fomm.BackendAnimator``
  for offline use).
- :mod:`export.cache`: the export cache of ``--backend onnx``; :mod:`export.quantize`: int8 QDQ quantisation.
"""
