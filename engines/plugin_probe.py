"""Probe, meant to run in a subprocess: register the warp plugin in FLAVOUR's registry, parse a one-node
fused graph with TensorRT's ONNX parser and build it. Prints ``built ...`` on success.

``python -m engines.plugin_probe tensorrt_rtx`` (see :func:`engines.plugin.probe_python_plugin`).
"""

from __future__ import annotations

import sys


def main(flavour: str) -> int:
    from onnx import TensorProto, helper

    from engines.plugin import add_parser_attributes, plugin_classes
    from engines.trt import load_tensorrt
    from export.warp_op import DOMAIN, OP_VERSION, WARP_OCCLUDED

    trt = load_tensorrt(flavour)
    module = trt.module
    _plugin, creator_class = plugin_classes(trt, WARP_OCCLUDED, probe=True)
    creator = creator_class()
    print("registered", module.get_plugin_registry().register_creator(creator, DOMAIN), flush=True)
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
            helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 4, 8, 8]),
            helper.make_tensor_value_info("grid", TensorProto.FLOAT, [1, 8, 8, 2]),
            helper.make_tensor_value_info("occlusion", TensorProto.FLOAT, [1, 1, 8, 8]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 8, 8])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, OP_VERSION)]
    model = helper.make_model(graph, opset_imports=opsets)
    add_parser_attributes(model)
    logger = trt.logger("WARNING")
    builder = module.Builder(logger)
    network = builder.create_network(0)
    parser = module.OnnxParser(network, logger)
    print("parsing", flush=True)
    if not parser.parse(model.SerializeToString()):
        errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
        print(f"parser rejected the node: {errors}", flush=True)
        return 1
    blob = builder.build_serialized_network(network, builder.create_builder_config())
    if blob is None:
        print("build failed", flush=True)
        return 1
    print(f"built {blob.nbytes} bytes with {trt.label}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "tensorrt_rtx"))
