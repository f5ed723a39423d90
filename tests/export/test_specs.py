"""NetworkSpec: names, shapes and dtypes by name, for every preset."""

from __future__ import annotations

import pytest
import torch

import fomm
from export.specs import BATCH, GRAPH_NAMES, NetworkSpec, network_specs


def test_vox_256_shapes_by_name():
    specs = network_specs(fomm.preset("vox-256"))
    assert list(specs) == list(GRAPH_NAMES)
    kp, source, animate = specs["keypoints"], specs["source"], specs["animate"]
    assert kp.input("image").shape == (1, 3, 256, 256)
    assert kp.output("kp_value").shape == (1, 10, 2)
    assert kp.output("kp_jacobian").shape == (1, 10, 2, 2)
    assert source.output("features").shape == (1, 256, 64, 64)
    assert source.output("source_small").shape == (1, 3, 64, 64)
    assert animate.output("frame").shape == (1, 3, 256, 256)
    # the animate graph takes the source graph's outputs under the same names
    assert animate.input_names[:4] == source.output_names
    assert animate.input("driving_kp_jacobian").dtype == "float32"
    with pytest.raises(KeyError, match="'nope' is not an input of graph 'animate'"):
        animate.input("nope")


@pytest.mark.parametrize("name", [*fomm.PRESETS, "demo-256", "tiny-256"])
def test_every_preset_has_specs(name):
    specs = network_specs(fomm.preset(name), precision="fp16", dynamic_batch=True)
    for spec in specs.values():
        for t in (*spec.inputs, *spec.outputs):
            assert t.shape[0] == BATCH and t.torch_dtype == torch.float16
        assert spec.dynamic_axes and all(axes == {0: BATCH} for axes in spec.dynamic_axes.values())
        assert NetworkSpec.from_dict(spec.to_dict()) == spec


def test_sample_inputs_follow_the_spec():
    spec = network_specs(fomm.preset("tiny-256"), dynamic_batch=True)["animate"]
    sample = spec.sample_inputs(3)
    assert list(sample) == spec.input_names
    for t in spec.inputs:
        assert tuple(sample[t.name].shape) == t.resolve(3) and sample[t.name].dtype == torch.float32


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision 'int4' is not one of fp32, fp16"):
        network_specs(fomm.preset("tiny-256"), precision="int4")
