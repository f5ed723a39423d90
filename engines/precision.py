"""FP16 for strongly typed TensorRT: rewrite an FP32 ONNX graph so that its tensor types say the precision.

TensorRT for RTX (and TensorRT 11) networks are strongly typed: there is no ``BuilderFlag.FP16`` and no
per-layer precision; the ONNX graph's types decide. :func:`to_mixed_fp16` turns an FP32 graph into one that
computes in FP16 except for the precision-sensitive operations (:data:`KEEP_FP32_OPS`: the warps, the
softmax heatmaps and masks, the sigmoid occlusion and output heads), which keep FP32 with casts around them.
Graph inputs and outputs stay FP32, so buffers and callers do not change with the precision. The same graph
builds on standard TensorRT 10 with the network flag ``STRONGLY_TYPED``: one FP16 path for both flavours.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from engines.errors import EngineError
from engines.onnx_utils import require_onnx

__all__ = ["KEEP_FP32_OPS", "fp32_parameter_inputs", "to_mixed_fp16"]

logger = logging.getLogger(__name__)

KEEP_FP32_OPS = frozenset({"GridSample", "Softmax", "LogSoftmax", "Sigmoid", "WarpMulti", "WarpOccluded"})
"""Op types computed in FP32 in an FP16 engine (sampling positions and normalised heads lose too much in FP16)."""

# Ops whose ONNX definition has no FP16 type: they compute in FP32 (inputs cast up, outputs cast down).
_NO_FP16_OPS = frozenset({"Range"})

# (op type, input index) whose float input is a parameter that ONNX requires in FP32 whatever the data type.
_FP32_PARAMETERS = {("Resize", 1), ("Resize", 2), ("Upsample", 1)}


def fp32_parameter_inputs(op_type: str, index: int) -> bool:
    """Whether input ``index`` of ``op_type`` must stay FP32 (``Resize`` roi/scales) in an FP16 graph."""
    return (op_type, index) in _FP32_PARAMETERS


def to_mixed_fp16(model: Any, keep_ops: Iterable[str] = KEEP_FP32_OPS) -> Any:
    """An FP16 copy of ``model`` (an ``onnx.ModelProto``), FP32 for ``keep_ops``, FP32 inputs and outputs.

    Float initializers and ``Constant`` values become FP16 copies where an FP16 node reads them; ``Cast``
    nodes to float and float ``ConstantOfShape`` values follow the precision of their region.

    Raises:
        EngineError: the graph is not a valid ONNX model after the rewrite (a bug here: the message names it).
    """
    onnx = require_onnx()
    from onnx import TensorProto, helper, numpy_helper

    keep = frozenset(keep_ops)
    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    float_ = TensorProto.FLOAT
    half = TensorProto.FLOAT16

    elem: dict[str, int] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        elem[value.name] = value.type.tensor_type.elem_type
    initializers = {t.name: t for t in graph.initializer}
    for t in graph.initializer:
        elem[t.name] = t.data_type
    # Constant nodes become initializers: one mechanism for FP16 copies of constants.
    nodes = []
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            initializers[tensor.name] = tensor
            elem[tensor.name] = tensor.data_type
        else:
            nodes.append(node)

    current = {name: t for name, t in elem.items()}  # the type each tensor has in the rewritten graph
    casts: dict[tuple[str, int], str] = {}
    new_nodes: list[Any] = []
    new_initializers: dict[str, Any] = dict(initializers)

    def as_type(name: str, wanted: int) -> str:
        if current.get(name) == wanted or name == "":
            return name
        key = (name, wanted)
        if key not in casts:
            suffix = "fp16" if wanted == half else "fp32"
            target = f"{name}__{suffix}"
            if name in initializers:
                array = numpy_helper.to_array(initializers[name])
                np_type = helper.tensor_dtype_to_np_dtype(wanted)
                new_initializers[target] = numpy_helper.from_array(array.astype(np_type), target)
            else:
                new_nodes.append(helper.make_node("Cast", [name], [target], to=wanted, name=f"{target}__cast"))
            current[target] = wanted
            casts[key] = target
        return casts[key]

    for node in nodes:
        keep_node = node.op_type in keep or node.op_type in _NO_FP16_OPS
        data_type = float_ if keep_node else half
        for i, name in enumerate(node.input):
            if elem.get(name) == float_ or (name in current and current[name] == half):
                wanted = float_ if fp32_parameter_inputs(node.op_type, i) else data_type
                node.input[i] = as_type(name, wanted)
        if node.op_type == "Cast":
            to = next(a for a in node.attribute if a.name == "to")
            if to.i == float_ and not keep_node:
                to.i = half
        if node.op_type == "ConstantOfShape":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == float_ and not keep_node:
                    array = numpy_helper.to_array(attr.t).astype("float16")
                    attr.t.CopyFrom(numpy_helper.from_array(array, attr.t.name))
        for name in node.output:
            if elem.get(name) == float_:
                current[name] = data_type
        new_nodes.append(node)

    # Graph outputs keep FP32: the producer writes <name>__fp16, a cast writes <name>.
    for output in graph.output:
        name = output.name
        if elem.get(name) == float_ and current.get(name) == half:
            inner = f"{name}__fp16"
            for node in new_nodes:
                for i, value in enumerate(node.output):
                    if value == name:
                        node.output[i] = inner
                for i, value in enumerate(node.input):
                    if value == name:
                        node.input[i] = inner
            new_nodes.append(helper.make_node("Cast", [inner], [name], to=float_, name=f"{name}__cast"))

    used = {name for node in new_nodes for name in node.input}
    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.initializer[:]
    graph.initializer.extend(t for name, t in new_initializers.items() if name in used)
    del graph.value_info[:]
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        onnx.checker.check_model(model)
    except Exception as exc:
        raise EngineError(f"FP16 rewrite of graph {graph.name!r} is not valid ONNX: {exc}".replace("\n", " ")) from exc
    kept = sum(1 for n in new_nodes if n.op_type in keep)
    logger.info("FP16 graph %r: %d nodes, %d kept in FP32", graph.name, len(new_nodes), kept)
    return model
