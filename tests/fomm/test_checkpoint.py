from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import stat

import numpy as np
import pytest
import torch

import fomm
from fomm.checkpoint import matching_presets, read_original_checkpoint
from fomm.media.assets import DEMO_MODEL


@pytest.fixture
def tiny_jac(official):
    return official / "tiny-jac-ac-true" / "checkpoint.pth.tar", fomm.load_yaml_config(official / "tiny-jac.yaml")


def predict(model: fomm.Fomm, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    source, driving = torch.rand(1, 3, 128, 128, generator=g), torch.rand(2, 3, 128, 128, generator=g)
    animator = fomm.Animator(model)
    animator.set_source(source)
    return animator.step(driving)


def test_original_checkpoint_loads_every_network(tiny_jac):
    path, config = tiny_jac
    loaded = fomm.load_checkpoint(path, config, with_discriminator=True)
    assert loaded.source_format == "original"
    assert loaded.model.discriminator is not None
    raw = read_original_checkpoint(path)
    assert torch.equal(loaded.model.kp_detector.kp.weight, raw["kp_detector"]["kp.weight"])
    assert torch.equal(
        loaded.model.discriminator.discs["1"].conv.weight_orig, raw["discriminator"]["discs.1.conv.weight_orig"]
    )
    assert not loaded.model.training


def test_legacy_serialization_loads(tiny_jac, tmp_path):
    """Released checkpoints predate torch's zip format; weights_only must read the legacy format too."""
    path, config = tiny_jac
    raw = read_original_checkpoint(path)
    legacy = tmp_path / "legacy.pth.tar"
    torch.save(raw, legacy, _use_new_zipfile_serialization=False)
    assert legacy.read_bytes()[:1] == b"\x80"
    a = fomm.load_checkpoint(path, config).model
    b = fomm.load_checkpoint(legacy, config).model
    torch.testing.assert_close(predict(a), predict(b), atol=0, rtol=0)


def test_wrong_preset_names_keys_and_the_preset_that_fits(official, tiny_jac, monkeypatch):
    path, _ = tiny_jac
    monkeypatch.setitem(fomm.config.PRESETS, "tiny-jac", lambda: fomm.load_yaml_config(official / "tiny-jac.yaml"))
    other = fomm.load_yaml_config(official / "tiny-single-jac.yaml")
    with pytest.raises(fomm.CheckpointError) as info:
        fomm.load_checkpoint(path, other)
    message = str(info.value)
    assert "\n" not in message
    assert "does not fit config 'tiny-single-jac'" in message
    assert "mismatched: kp_detector.kp.weight (file [10, 11, 7, 7], model [6, 11, 7, 7])" in message
    assert "15 unexpected: discriminator.discs.1.down_blocks.0.conv.weight_orig" in message
    assert "5 missing: discriminator.discs.1.down_blocks.0.conv.weight," in message
    assert "preset 'tiny-jac' fits this file" in message


def test_no_preset_fits_says_so(tiny_jac):
    path, _ = tiny_jac
    with pytest.raises(fomm.CheckpointError, match=r"does not fit config 'vox-256'.*no preset fits"):
        fomm.load_checkpoint(path, fomm.preset("vox-256"))


def test_matching_presets_of_released_shapes():
    vox = fomm.build_fomm(fomm.preset("vox-256"), with_discriminator=True, device="meta")
    state = {s: getattr(vox, s).state_dict() for s in ("kp_detector", "generator", "discriminator")}
    assert matching_presets(state) == ["vox-256", "bair-256", "nemo-256"]
    del state["discriminator"]  # the demo only needs these two: then every non-mgif preset fits
    assert "mgif-256" not in matching_presets(state) and len(matching_presets(state)) == 7


def test_matching_presets_include_the_project_presets():
    demo = fomm.load_checkpoint(DEMO_MODEL).model
    state = {s: getattr(demo, s).state_dict() for s in ("kp_detector", "generator")}
    assert matching_presets(state) == ["demo-256"]
    tiny = fomm.build_fomm(fomm.preset("tiny-256"), with_discriminator=True, device="meta")
    state = {s: getattr(tiny, s).state_dict() for s in ("kp_detector", "generator", "discriminator")}
    assert matching_presets(state) == ["tiny-256"]


def test_original_file_of_a_project_preset_loads_without_config(tmp_path):
    # the layout Trainer.export_original writes (fomm.train --export-original)
    torch.manual_seed(0)
    model = fomm.build_fomm(fomm.preset("demo-256"), with_discriminator=True)
    path = tmp_path / "exported.pth.tar"
    sections = {"generator": model.generator, "kp_detector": model.kp_detector, "discriminator": model.discriminator}
    torch.save({name: net.state_dict() for name, net in sections.items()} | {"epoch": 3}, path)
    loaded = fomm.load_checkpoint(path)
    assert loaded.config == fomm.preset("demo-256") and loaded.source_format == "original"
    for (name, a), (_, b) in zip(loaded.model.state_dict().items(), model.state_dict().items(), strict=False):
        assert torch.equal(a, b), name


def test_bad_files_fail_with_one_clear_line(tiny_jac, tmp_path):
    path, config = tiny_jac
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a checkpoint\n")
    objects = tmp_path / "objects.pth.tar"
    torch.save({"generator": argparse.Namespace(a=1), "kp_detector": {}}, objects)
    sections = tmp_path / "sections.pth.tar"
    torch.save({"model": {"w": torch.zeros(1)}}, sections)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    cases = {
        truncated: "not a readable PyTorch checkpoint",
        text: "neither a PyTorch checkpoint",
        objects: "refusing to unpickle",
        sections: "has no kp_detector / generator state dict",
        empty: "is empty",
        tmp_path / "missing.pth.tar": "does not exist",
        tmp_path: "is not a file",
    }
    for bad, expected in cases.items():
        with pytest.raises(fomm.CheckpointError) as info:
            fomm.load_checkpoint(bad, config)
        assert expected in str(info.value), (bad.name, str(info.value))
        assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_convert_to_safetensors_round_trip(tiny_jac, tmp_path):
    path, config = tiny_jac
    out = fomm.convert_checkpoint(path, tmp_path / "tiny.safetensors", config.with_align_corners(False))
    assert out.read_bytes()[8:9] == b"{"
    loaded = fomm.load_checkpoint(out)  # no config needed: the file describes itself
    assert loaded.source_format == "safetensors"
    assert loaded.config == config.with_align_corners(False)
    original = fomm.load_checkpoint(path, config, align_corners=False).model
    torch.testing.assert_close(predict(loaded.model), predict(original), atol=0, rtol=0)
    full = fomm.load_checkpoint(out, with_discriminator=True)
    assert full.model.discriminator is not None
    with pytest.raises(fomm.CheckpointError, match="does not fit config 'vox-256'"):
        fomm.load_checkpoint(out, fomm.preset("vox-256"))


def test_original_format_without_config_picks_the_preset_that_fits(official, tiny_jac, tmp_path, monkeypatch):
    path, config = tiny_jac
    with pytest.raises(fomm.CheckpointError, match="fits no preset"):
        fomm.load_checkpoint(path)
    monkeypatch.setitem(fomm.config.PRESETS, "tiny-256", lambda: config)
    monkeypatch.setitem(fomm.config.PRESETS, "tiny-other-256", lambda: config)
    assert fomm.load_checkpoint(path).config == config  # no name in the file name: the first that fits
    named = tmp_path / "tiny-other-cpk.pth.tar"
    shutil.copy(path, named)
    monkeypatch.setitem(fomm.config.PRESETS, "tiny-other-256", lambda: dataclasses.replace(config, name="other"))
    assert fomm.load_checkpoint(named).config.name == "other"


def test_save_load_keeps_step_and_training_state(tiny, tmp_path):
    model = fomm.build_fomm(tiny, with_discriminator=True)
    for module in model.modules():  # non-default BN statistics must survive
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_()
            module.num_batches_tracked.fill_(7)
    fomm.save_checkpoint(tmp_path / "m.safetensors", model, step=1234)
    loaded = fomm.load_checkpoint(tmp_path / "m.safetensors", with_discriminator=True)
    assert loaded.step == 1234
    for (name, a), b in zip(model.state_dict().items(), loaded.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary file left


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_saved_checkpoint_has_the_mode_of_a_new_file(tiny, tmp_path, umask):
    previous = os.umask(umask)
    try:
        path = fomm.save_checkpoint(tmp_path / "m.safetensors", fomm.build_fomm(tiny))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # safetensors' own temporary file is 0600


def test_failed_save_leaves_no_temporary_file(tiny, tmp_path, monkeypatch):
    model = fomm.build_fomm(tiny)
    folder = tmp_path / "taken.safetensors"
    folder.mkdir()
    with pytest.raises(OSError):
        fomm.save_checkpoint(folder, model)
    assert [p.name for p in tmp_path.iterdir()] == ["taken.safetensors"] and not any(folder.iterdir())

    import safetensors.torch

    def broken(tensors, filename, metadata=None):  # writes part of the file, then fails (disk full, ...)
        with open(filename, "wb") as handle:
            handle.write(b"\0" * 1000)
        raise RuntimeError("Error while serializing: I/O error: No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(fomm.CheckpointError, match=r"m\.safetensors.*cannot be written.*No space left"):
        fomm.save_checkpoint(tmp_path / "m.safetensors", model)
    assert [p.name for p in tmp_path.iterdir()] == ["taken.safetensors"]


def test_reference_npz_matches_after_conversion(official, tmp_path):
    """Converting does not change what the released format computes."""
    config = fomm.load_yaml_config(official / "tiny-single-jac.yaml").with_align_corners(False)
    src = official / "tiny-single-jac-ac-false" / "checkpoint.pth.tar"
    dst = tmp_path / "copy.pth.tar"
    shutil.copy(src, dst)
    model = fomm.load_checkpoint(fomm.convert_checkpoint(dst, tmp_path / "m.safetensors", config)).model
    ref = np.load(official / "tiny-single-jac-ac-false" / "reference.npz")
    animator = fomm.Animator(model, fomm.AnimationOptions(relative=False))
    animator.set_source(torch.from_numpy(ref["source"]).permute(2, 0, 1)[None])
    out = animator.step(torch.from_numpy(ref["driving"]).permute(0, 3, 1, 2))
    torch.testing.assert_close(out.permute(0, 2, 3, 1), torch.from_numpy(ref["prediction_absolute"]), atol=1e-4, rtol=0)
