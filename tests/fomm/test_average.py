"""Weight averaging (``fomm.average``, ``fomm average``): exact averages, the keypoint agreement check, user errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("cv2")

from conftest import tiny_config

import fomm
from fomm.average import AverageError, average_states, keypoint_disagreement, normalise_weights
from fomm.checkpoint import read_training_record
from fomm.cli import main


def _spot_model(seed: int = 0, swap: bool = False, nudge: float = 0.0) -> fomm.Fomm:
    """A tiny model whose keypoint 0 follows red and keypoint 1 blue in the image (the keypoint head reads the
    image channels the hourglass passes through); ``swap`` exchanges the two keypoints, as a model that has
    learnt them the other way round; ``nudge`` adds a small change to every weight, as a fine-tuned model."""
    torch.manual_seed(seed)
    model = fomm.build_fomm(tiny_config())
    with torch.no_grad():
        head = model.kp_detector.kp
        head.weight.zero_()
        head.bias.zero_()
        red, blue = head.weight.shape[1] - 3, head.weight.shape[1] - 1
        head.weight[1 if swap else 0, red, 3, 3] = 40.0
        head.weight[0 if swap else 1, blue, 3, 3] = 40.0
        if nudge:
            generator = torch.Generator().manual_seed(seed + 1)
            for parameter in model.generator.parameters():
                parameter.add_(nudge * torch.randn(parameter.shape, generator=generator))
    return model.eval()


def _probe() -> torch.Tensor:
    """A 64x64 image with a red patch on the left and a blue one on the right."""
    image = torch.zeros(1, 3, 64, 64)
    image[0, 0, 28:36, 8:16] = 1.0
    image[0, 2, 28:36, 48:56] = 1.0
    return image


def _probe_file(folder: Path) -> Path:
    import cv2

    path = folder / "probe.png"
    rgb = (_probe()[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def test_normalise_weights() -> None:
    assert normalise_weights(None, 4) == [0.25] * 4
    assert normalise_weights([1, 3], 2) == [0.25, 0.75]
    for weights, count in (([1.0], 2), ([1.0, -1.0], 2), ([0.0, 0.0], 2), ([float("nan"), 1.0], 2), (None, 1)):
        with pytest.raises(AverageError):
            normalise_weights(weights, count)


def test_average_states_is_the_weighted_mean() -> None:
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3), "h": torch.tensor([1.0], dtype=torch.float16)}
    b = {"w": torch.tensor([5.0, -2.0]), "n": torch.tensor(7), "h": torch.tensor([3.0], dtype=torch.float16)}
    out = average_states([a, b], [0.25, 0.75])
    torch.testing.assert_close(out["w"], torch.tensor([4.0, -1.0]))
    assert out["h"].dtype == torch.float16 and float(out["h"]) == 2.5
    assert int(out["n"]) == 3  # a counter: part 1's
    with pytest.raises(AverageError, match="other tensors"):
        average_states([a, {"w": a["w"], "n": a["n"]}], [0.5, 0.5])
    with pytest.raises(AverageError, match="'w'"):
        average_states([a, {**b, "w": torch.zeros(3)}], [0.5, 0.5])


def test_keypoint_disagreement_finds_swapped_keypoints() -> None:
    same = keypoint_disagreement([_spot_model(), _spot_model(nudge=1e-3)], _probe())
    assert same.shape == (4,) and float(same.max()) < 1e-6  # the generator does not move keypoints
    swapped = keypoint_disagreement([_spot_model(), _spot_model(swap=True)], _probe())
    assert float(swapped[0]) > 1.0 and float(swapped[1]) > 1.0  # red and blue patches are ~1.3 apart
    assert float(swapped[2:].max()) < 1e-6


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Path, Path, Path]:
    first = fomm.save_checkpoint(tmp_path / "a.safetensors", _spot_model(), step=7, training={"steps": 7, "data": "x"})
    second = fomm.save_checkpoint(tmp_path / "b.safetensors", _spot_model(nudge=0.01), step=9)
    swapped = fomm.save_checkpoint(tmp_path / "c.safetensors", _spot_model(swap=True), step=9)
    return first, second, swapped


def test_cli_averages_fine_tuned_parts(parts: tuple[Path, Path, Path], tmp_path: Path, capsys) -> None:
    first, second, _ = parts
    out = tmp_path / "soup.safetensors"
    probe = _probe_file(tmp_path)
    code = main(["average", str(first), str(second), "--weights", "1,3", "--probe", str(probe), "--output", str(out)])
    assert code == 0
    a, b, soup = (fomm.load_checkpoint(p).model.state_dict() for p in (first, second, out))
    for key, value in soup.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.25 * a[key] + 0.75 * b[key], rtol=1e-6, atol=1e-7)
    record = read_training_record(out)
    assert record is not None and record["steps"] == 7  # part 1's record, with the average
    assert [(p["weight"], p["checkpoint"], p["step"]) for p in record["weight_average"]] == [
        (0.25, "a.safetensors", 7),
        (0.75, "b.safetensors", 9),
    ]
    assert all(len(p["sha256"]) == 64 for p in record["weight_average"])
    assert "/" not in json.dumps([p["checkpoint"] for p in record["weight_average"]])  # no local paths
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "weights: the average of 0.25 x a.safetensors, 0.75 x b.safetensors" in capsys.readouterr().out


def test_cli_refuses_parts_whose_keypoints_disagree(parts: tuple[Path, Path, Path], tmp_path: Path, capsys) -> None:
    first, _, swapped = parts
    out = tmp_path / "soup.safetensors"
    probe = ["--probe", str(_probe_file(tmp_path))]
    assert main(["average", str(first), str(swapped), *probe, "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("fomm: error: keypoint 0 sits") and "--force" in err
    assert not out.exists()
    # a looser limit, or --force, averages them anyway (with a warning)
    assert main(["average", str(first), str(swapped), *probe, "--max-keypoint-shift", "5", "--output", str(out)]) == 0
    assert main(["average", str(first), str(swapped), *probe, "--force", "--overwrite", "--output", str(out)]) == 0
    assert "averaging anyway" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--weights", "1,2,3"], "--weights: expected 2 weights"),
        (["--weights", "1,x"], "comma-separated numbers"),
        (["--weights", "1,-1"], "--weights: weights must be finite and >= 0"),
        (["--max-keypoint-shift", "0"], "--max-keypoint-shift: expected a distance > 0"),
        (["--probe", "missing.png"], "--probe 'missing.png'"),
    ],
)
def test_cli_user_errors(
    parts: tuple[Path, Path, Path], tmp_path: Path, capsys, extra: list[str], message: str
) -> None:
    first, second, _ = parts
    out = tmp_path / "soup.safetensors"
    assert main(["average", str(first), str(second), "--output", str(out), *extra]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists()


def test_cli_keeps_existing_files_and_one_config(parts: tuple[Path, Path, Path], tmp_path: Path, capsys) -> None:
    first, second, _ = parts
    existing = tmp_path / "keep.safetensors"
    existing.write_bytes(b"precious")
    assert main(["average", str(first), str(second), "--output", str(existing)]) == 2
    assert existing.read_bytes() == b"precious"
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["average", str(first), "--output", str(tmp_path / "x.safetensors")]) == 2
    assert "two or more checkpoints" in capsys.readouterr().err
    torch.manual_seed(0)
    other = fomm.save_checkpoint(tmp_path / "other.safetensors", fomm.build_fomm(tiny_config(num_kp=5)))
    assert main(["average", str(first), str(other), "--output", str(tmp_path / "y.safetensors")]) == 2
    assert "only checkpoints of one config can be averaged" in capsys.readouterr().err
