"""fomm-live: webcam in, animated avatar out (virtual camera, preview window, video file).

The loop: ``capture`` (newest frame) -> ``crop`` (face framing) -> ``processor`` (pixels to tensors) ->
``backends`` (keypoints, dense motion, generation) -> ``sinks``; ``pipeline`` ties the per-frame work
together, ``loop`` paces it and measures latency, ``run_live.py`` is the entry point.
"""
