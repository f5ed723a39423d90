"""Every preset builds exactly the released checkpoints' state-dict names, shapes and dtypes."""

from __future__ import annotations

import json

import pytest
import torch

import fomm

RELEASED = {"vox-256": "vox", "vox-adv-256": "vox-adv", "taichi-256": "taichi"}


def entries(module: torch.nn.Module) -> dict[str, tuple[list[int], str, str]]:
    params = {name for name, _ in module.named_parameters()}
    return {
        name: (list(t.shape), str(t.dtype).removeprefix("torch."), "param" if name in params else "buffer")
        for name, t in module.state_dict().items()
    }


@pytest.mark.parametrize("preset", sorted(RELEASED))
def test_preset_matches_released_keys(official, preset):
    released = json.loads((official / f"fomm-keys-{RELEASED[preset]}-256.json").read_text())
    model = fomm.build_fomm(fomm.preset(preset), with_discriminator=True, device="meta")
    for section in ("generator", "kp_detector", "discriminator"):
        want = {e["name"]: (e["shape"], e["dtype"], e["kind"]) for e in released[section]["entries"]}
        have = entries(getattr(model, section))
        assert have == want, f"{preset} {section}: {sorted(set(have) ^ set(want))[:5]}"
        n_params = sum(p.numel() for p in getattr(model, section).parameters())
        assert n_params == released[section]["num_parameters"]


def test_preset_matches_released_yaml(official):
    """The preset equals the config built from the released YAML's model_params."""
    for preset in RELEASED:
        released = json.loads((official / f"fomm-keys-{RELEASED[preset]}-256.json").read_text())
        built = fomm.config.config_from_original({"model_params": released["model_params"]}, name=preset)
        assert built == fomm.preset(preset)


@pytest.mark.parametrize("name", sorted(fomm.PRESETS))
def test_every_preset_builds(name):
    config = fomm.preset(name)
    assert config.name == name
    model = fomm.build_fomm(config, with_discriminator=True, device="meta")
    assert sum(p.numel() for p in model.generator.parameters()) == 45_575_391
    assert sum(p.numel() for p in model.kp_detector.parameters()) == (
        14_215_368 if name != "mgif-256" else 14_215_368 - 36 * (35 * 7 * 7 + 1)
    )
    jac = model.kp_detector.jacobian
    assert jac is not None and jac.out_channels == (4 if name == "mgif-256" else 40)
    disc = model.discriminator.discs["1"]
    assert disc.config.sn == (name in {"vox-256", "bair-256", "mgif-256", "nemo-256"})
    assert disc.config.use_kp == name.endswith("adv-256")
