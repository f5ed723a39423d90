from __future__ import annotations

import dataclasses

import pytest

import fomm
from fomm.config import config_from_dict, config_to_dict

VOX_YAML = """
dataset_params:
  root_dir: data/vox-png
  frame_shape: [256, 256, 3]
model_params:
  common_params: {num_kp: 10, num_channels: 3, estimate_jacobian: True}
  kp_detector_params: {temperature: 0.1, block_expansion: 32, max_features: 1024, scale_factor: 0.25, num_blocks: 5}
  generator_params:
    block_expansion: 64
    max_features: 512
    num_down_blocks: 2
    num_bottleneck_blocks: 6
    estimate_occlusion_map: True
    dense_motion_params: {block_expansion: 64, max_features: 1024, num_blocks: 5, scale_factor: 0.25}
  discriminator_params: {scales: [1], block_expansion: 32, max_features: 512, num_blocks: 4, sn: True}
train_params: {num_epochs: 100}
"""


def test_yaml_reader_gives_the_preset(tmp_path):
    path = tmp_path / "vox-256.yaml"
    path.write_text(VOX_YAML)
    config = fomm.load_yaml_config(path)
    assert dataclasses.replace(config, name="vox-256") == fomm.preset("vox-256")


def test_yaml_reader_fixture_configs(official):
    single = fomm.load_yaml_config(official / "tiny-single-jac.yaml")
    assert single.keypoint_detector.single_jacobian_map
    assert single.num_kp == 6
    assert single.discriminator.use_kp and not single.discriminator.sn
    assert single.generator.dense_motion is not None and single.generator.dense_motion.num_kp == 6


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_params: {common_params: {num_kp: 0}}", "num_kp must be > 0"),
        ("model_params: {kp_detector_params: {blocks: 3}}", "unknown kp_detector parameter(s): blocks"),
        ("just: [a, list]", "no 'model_params' section"),
        ("model_params: [1, 2", "not valid YAML"),
    ],
)
def test_yaml_reader_errors_name_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(fomm.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fomm.load_yaml_config(path)
    with pytest.raises(fomm.ConfigError, match="cannot read config file"):
        fomm.load_yaml_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "model_params: {common_params: {num_kp: abc}}",
            "model_params.common_params.num_kp: expected an integer, got 'abc'",
        ),
        (
            "model_params: {common_params: {num_kp: 10.5}}",
            "model_params.common_params.num_kp: expected an integer, got 10.5",
        ),
        (
            "model_params: {common_params: {num_kp: null}}",
            "model_params.common_params.num_kp: expected an integer, got None",
        ),
        (
            "model_params: {common_params: {num_kp: true}}",
            "model_params.common_params.num_kp: expected an integer, got True",
        ),
        ("model_params: {common_params: [1, 2]}", "model_params.common_params: expected a mapping, got [1, 2]"),
        (
            "model_params: {common_params: {estimate_jacobian: maybe}}",
            "model_params.common_params.estimate_jacobian: expected true or false, got 'maybe'",
        ),
        (
            "model_params: {kp_detector_params: {scale_factor: abc}}",
            "model_params.kp_detector_params.scale_factor: expected a number, got 'abc'",
        ),
        (
            "model_params: {kp_detector_params: {num_blocks: 2.5}}",
            "model_params.kp_detector_params.num_blocks: expected an integer, got 2.5",
        ),
        ("model_params: {kp_detector_params: abc}", "model_params.kp_detector_params: expected a mapping, got 'abc'"),
        (
            "model_params: {generator_params: {max_features: [1]}}",
            "model_params.generator_params.max_features: expected an integer, got [1]",
        ),
        (
            "model_params: {generator_params: {dense_motion_params: [1]}}",
            "model_params.generator_params.dense_motion_params: expected a mapping, got [1]",
        ),
        (
            "model_params: {generator_params: {dense_motion_params: {kp_variance: .nan}}}",
            "model_params.generator_params.dense_motion_params.kp_variance: expected a number, got nan",
        ),
        (
            "model_params: {discriminator_params: {scales: 1}}",
            "model_params.discriminator_params.scales: expected a list of numbers, got 1",
        ),
        (
            "model_params: {discriminator_params: {scales: [1, x]}}",
            "model_params.discriminator_params.scales[1]: expected a number, got 'x'",
        ),
        (
            "model_params: {}\ndataset_params: {frame_shape: [abc, 256, 3]}",
            "dataset_params.frame_shape[0]: expected an integer, got 'abc'",
        ),
        (
            "model_params: {}\ndataset_params: {frame_shape: 256}",
            "dataset_params.frame_shape: expected a list of integers, got 256",
        ),
        ("model_params: {}\ndataset_params: [1]", "dataset_params: expected a mapping, got [1]"),
    ],
)
def test_yaml_reader_wrong_types_name_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n")
    with pytest.raises(fomm.ConfigError) as info:
        fomm.load_yaml_config(path)
    assert str(info.value) == f"config file {str(path)!r}: {message}"


def test_yaml_reader_converts_what_yaml_reads_loosely(tmp_path):
    # YAML 1.1 reads 1e-3 as a string and 10.0 as a float; an empty group is null
    path = tmp_path / "loose.yaml"
    path.write_text(
        "model_params:\n  common_params: {num_kp: 10.0, estimate_jacobian: 1}\n  kp_detector_params:\n"
        "  generator_params: {dense_motion_params: {kp_variance: 1e-3}}\n"
        "dataset_params: {frame_shape: [128.0, 128, 3]}\n"
    )
    config = fomm.load_yaml_config(path)
    assert config.num_kp == 10 and type(config.num_kp) is int and config.keypoint_detector.estimate_jacobian
    assert config.generator.dense_motion is not None and config.generator.dense_motion.kp_variance == 0.001
    assert config.image_size == 128 and type(config.image_size) is int


def test_preset_names():
    assert set(fomm.PRESETS) == {
        "vox-256", "vox-adv-256", "taichi-256", "taichi-adv-256", "bair-256", "mgif-256", "nemo-256", "fashion-256",
    }  # fmt: skip
    assert fomm.preset("VOX-256.yaml").name == "vox-256"
    with pytest.raises(fomm.ConfigError, match="unknown preset 'vox'; expected one of: vox-256"):
        fomm.preset("vox")


def test_align_corners_reaches_every_network():
    config = fomm.preset("vox-256")
    assert config.align_corners and config.generator.align_corners
    flipped = config.with_align_corners(False)
    assert not flipped.generator.align_corners
    assert flipped.generator.dense_motion is not None and not flipped.generator.dense_motion.align_corners
    with pytest.raises(fomm.ConfigError, match="align_corners differs"):
        dataclasses.replace(config, align_corners=False)


@pytest.mark.parametrize("name", sorted(fomm.PRESETS))
def test_config_dict_round_trip(name):
    config = fomm.preset(name).with_align_corners(False)
    assert config_from_dict(config_to_dict(config)) == config
