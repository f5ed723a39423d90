"""Probe, meant to run in a subprocess: put a warp plugin into FLAVOUR's registry, parse a one-node fused graph
(``WarpOccluded``) with TensorRT's ONNX parser and build it. Prints one line per stage on stdout, ``built ...``
on success.

    python -m engines.plugin_probe tensorrt_rtx                    # the Python IPluginV3 of engines.plugin
    python -m engines.plugin_probe tensorrt_rtx --library libwarp_probe.so [--dtype fp16]   # a compiled one

See :func:`engines.plugin.probe_python_plugin`, :func:`engines.plugin.probe_compiled_plugin`; the compiled probe
library comes from :func:`engines.plugin_probe_lib.build_probe_library`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

STAGES = ("registered", "loaded", "creator", "parsing", "parsed", "parser rejected", "build failed", "built")
"""How the stage lines on stdout start (what :func:`engines.plugin.probe_python_plugin` reads back)."""


def fused_model(dtype: str = "fp32") -> Any:
    """The one-node graph: ``WarpOccluded(image (1, 4, 8, 8), grid (1, 8, 8, 2), occlusion (1, 1, 8, 8))`` with
    ``align_corners=1``, every tensor ``dtype`` (``fp32`` or ``fp16``), parser attributes added."""
    from onnx import TensorProto, helper

    from engines.plugin import add_parser_attributes
    from export.warp_op import DOMAIN, OP_VERSION, WARP_OCCLUDED

    element = {"fp32": TensorProto.FLOAT, "fp16": TensorProto.FLOAT16}[dtype]
    node = helper.make_node(
        WARP_OCCLUDED,
        ["image", "grid", "occlusion"],
        ["out"],
        name="warp",
        domain=DOMAIN,
        align_corners=1,
        padding_mode=0,
    )
    graph = helper.make_graph(
        [node],
        "probe",
        [
            helper.make_tensor_value_info("image", element, [1, 4, 8, 8]),
            helper.make_tensor_value_info("grid", element, [1, 8, 8, 2]),
            helper.make_tensor_value_info("occlusion", element, [1, 1, 8, 8]),
        ],
        [helper.make_tensor_value_info("out", element, [1, 4, 8, 8])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, OP_VERSION)]
    model = helper.make_model(graph, opset_imports=opsets)
    add_parser_attributes(model)
    return model


def _say(line: str) -> None:
    print(line, flush=True)  # flushed at once: the process may die on the next call


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engines.plugin_probe", description=__doc__)
    parser.add_argument("flavour", nargs="?", default="tensorrt_rtx", choices=("tensorrt", "tensorrt_rtx"))
    parser.add_argument("--library", help="compiled plugin library to load (default: the Python plugin)")
    parser.add_argument("--dtype", choices=("fp32", "fp16"), default="fp32", help="the graph's tensors")
    args = parser.parse_args(argv)

    from engines.plugin import PLUGIN_VERSION, plugin_classes
    from engines.trt import load_tensorrt
    from export.warp_op import DOMAIN, WARP_OCCLUDED

    trt = load_tensorrt(args.flavour)
    module = trt.module
    logger = trt.logger("WARNING")
    builder = module.Builder(logger)
    if args.library is None:
        _plugin, creator_class = plugin_classes(trt, WARP_OCCLUDED, probe=True)
        _say(f"registered {module.get_plugin_registry().register_creator(creator_class(), DOMAIN)}")
    else:
        registry = builder.get_plugin_registry()
        if registry.load_library(args.library) is None:
            _say(f"build failed: {trt.label} did not load {args.library}")
            return 1
        _say(f"loaded {args.library}")
        creator = registry.get_creator(WARP_OCCLUDED, PLUGIN_VERSION, DOMAIN)
        if creator is None:
            _say(f"build failed: no creator {DOMAIN}::{WARP_OCCLUDED} v{PLUGIN_VERSION} after loading")
            return 1
        _say(f"creator {creator.plugin_namespace}::{creator.name} v{creator.plugin_version}")
    network = builder.create_network(0)
    onnx_parser = module.OnnxParser(network, logger)
    _say(f"parsing the {args.dtype} WarpOccluded node")
    if not onnx_parser.parse(fused_model(args.dtype).SerializeToString()):
        errors = "; ".join(str(onnx_parser.get_error(i).desc()) for i in range(onnx_parser.num_errors))
        _say(f"parser rejected the node: {errors}")
        return 1
    layers = [str(network.get_layer(i).type).rsplit(".", 1)[-1] for i in range(network.num_layers)]
    _say(f"parsed: {network.num_layers} layer(s) {layers}")
    blob = builder.build_serialized_network(network, builder.create_builder_config())
    if blob is None:
        _say("build failed")
        return 1
    _say(f"built {blob.nbytes} bytes with {trt.label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
