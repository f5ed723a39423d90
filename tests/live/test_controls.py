"""Keyboard controls, the avatar list, and the settings file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from live.controls import KEYMAP, Action, AvatarList, actions_for, help_lines
from live.settings import Settings, SettingsError, load_settings, parse_size, save_settings, settings_path
from live.sinks import QUIT_KEY

# --- keys ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "action"),
    [
        ("c", Action.CALIBRATE),
        ("b", Action.FIND_BEST_FRAME),
        ("n", Action.NEXT_AVATAR),
        ("]", Action.NEXT_AVATAR),
        ("p", Action.PREVIOUS_AVATAR),
        ("[", Action.PREVIOUS_AVATAR),
        ("m", Action.TOGGLE_MIRROR),
        (" ", Action.TOGGLE_PASSTHROUGH),
        ("o", Action.TOGGLE_OVERLAY),
        ("r", Action.TOGGLE_RELATIVE),
        ("q", Action.QUIT),
        ("\x1b", Action.QUIT),
        ("C", Action.CALIBRATE),
    ],
)
def test_keymap(key: str, action: Action) -> None:
    assert KEYMAP[ord(key)] is action
    assert actions_for([ord(key)]) == [action]


def test_actions_for_masks_and_ignores() -> None:
    keys = [-1, ord("x"), 0x100000 | ord("c"), 0xFF00 | ord("q"), 27, ord(" "), 255, ord("c")]
    assert actions_for(keys) == [
        Action.CALIBRATE,
        Action.QUIT,
        Action.QUIT,
        Action.TOGGLE_PASSTHROUGH,
        Action.CALIBRATE,
    ]
    assert actions_for([]) == []


def test_every_action_has_a_key_and_the_preview_quit_key_quits() -> None:
    assert set(KEYMAP.values()) == set(Action)
    assert actions_for([QUIT_KEY]) == [Action.QUIT]


def test_help_lines() -> None:
    lines = help_lines()
    assert len(lines) == len(Action)
    assert lines[0].startswith("c ") and lines[0].endswith("calibrate")
    assert any(line.startswith("space") and "passthrough" in line for line in lines)
    assert any(line.startswith("q Esc") and line.endswith("quit") for line in lines)
    assert any(line.startswith("n ]") for line in lines)
    starts = {len(line) - len(line.split("  ")[-1].lstrip()) for line in lines}
    assert len(starts) == 1  # descriptions aligned


# --- avatars ------------------------------------------------------------------------------------------------------


@pytest.fixture
def avatar_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "avatars"
    folder.mkdir()
    for name in ["10.png", "2.PNG", "1.jpg", "b.webp", "a.bmp", "c.jpeg", ".hidden.png", "notes.txt"]:
        (folder / name).write_bytes(b"x")
    (folder / "sub.png").mkdir()  # a folder, not an image
    return folder


def test_avatar_list_natural_order_and_wrap_around(avatar_folder: Path) -> None:
    avatars = AvatarList(avatar_folder)
    names = [p.name for p in avatars.paths]
    assert names == ["1.jpg", "2.PNG", "10.png", "a.bmp", "b.webp", "c.jpeg"]
    assert len(avatars) == 6 and avatars.current.name == "1.jpg"
    assert avatars.previous().name == "c.jpeg"  # wraps backwards
    assert avatars.next().name == "1.jpg"  # and forwards
    for _ in range(5):
        avatars.next()
    assert avatars.current.name == "c.jpeg"
    assert avatars.next().name == "1.jpg"
    assert AvatarList(avatar_folder, start="10.png").current.name == "10.png"
    assert AvatarList(avatar_folder, start="missing.png").current.name == "1.jpg"


def test_avatar_list_single_image(avatar_folder: Path) -> None:
    avatars = AvatarList(avatar_folder / "b.webp")
    assert len(avatars) == 1
    assert avatars.next() == avatars.previous() == avatars.current == avatar_folder / "b.webp"


def test_avatars_are_what_the_image_loader_reads(tmp_path: Path) -> None:
    import cv2

    from fomm.media.assets import DEFAULT_AVATAR
    from fomm.media.image import IMAGE_SUFFIXES, load_image
    from live.checks import check_inputs
    from live.config import LiveConfig

    tif = tmp_path / "face.tif"
    cv2.imwrite(str(tif), cv2.imread(str(DEFAULT_AVATAR)))
    assert AvatarList(tif).current == tif and load_image(tif).shape[2] == 3
    check_inputs(LiveConfig(avatar=tif))  # run_live --avatar face.tif: accepted, as by fomm animate --source
    for suffix in IMAGE_SUFFIXES:  # one list: every file the loader reads is an avatar
        (tmp_path / f"x{suffix}").write_bytes(b"x")
        assert AvatarList(tmp_path / f"x{suffix}").paths == [tmp_path / f"x{suffix}"]


def test_avatar_list_errors(tmp_path: Path, avatar_folder: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist") as info:
        AvatarList(tmp_path / "nope.png")
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images")
    with pytest.raises(SettingsError, match="holds no images"):
        AvatarList(empty)
    with pytest.raises(SettingsError, match="not an image"):
        AvatarList(avatar_folder / "notes.txt")


# --- settings -----------------------------------------------------------------------------------------------------


@pytest.fixture
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "conf" / "settings.json"
    monkeypatch.setenv("FOMM_LIVE_SETTINGS", str(path))
    return path


def test_settings_path_env_and_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOMM_LIVE_SETTINGS", raising=False)
    monkeypatch.delenv("APPDATA", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert settings_path() == tmp_path / "xdg" / "fomm-live" / "settings.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "home"))
    assert settings_path() == tmp_path / "home" / ".config" / "fomm-live" / "settings.json"
    monkeypatch.setenv("FOMM_LIVE_SETTINGS", str(tmp_path / "mine.json"))
    assert settings_path() == tmp_path / "mine.json"


def test_missing_file_gives_defaults(settings_file: Path) -> None:
    assert load_settings() == Settings()
    assert not settings_file.exists()


def test_settings_round_trip_through_the_env_path(settings_file: Path) -> None:
    settings = Settings(
        camera="0",
        avatar="~/faces",
        checkpoint="vox-cpk.pth.tar",
        relative=False,
        mirror=True,
        vcam_size="1280x720",
        fps_cap=24.0,
    )
    assert save_settings(settings) == settings_file
    assert load_settings() == settings
    assert load_settings(settings_file) == settings
    data = json.loads(settings_file.read_text())
    assert data["relative"] is False and data["fps_cap"] == 24.0 and "device" not in data  # None is not written
    assert [p.name for p in settings_file.parent.iterdir()] == ["settings.json"]  # no temporary file left


def test_unknown_keys_are_preserved(settings_file: Path) -> None:
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(json.dumps({"theme": "dark", "future": {"a": [1, 2]}, "mirror": False}))
    loaded = load_settings()
    assert loaded.mirror is False and loaded.extra == {"theme": "dark", "future": {"a": [1, 2]}}
    save_settings(Settings(mirror=True, avatar="me.png"))  # a fresh object still keeps the file's other keys
    data = json.loads(settings_file.read_text())
    assert data == {"theme": "dark", "future": {"a": [1, 2]}, "mirror": True, "avatar": "me.png"}
    save_settings(Settings(avatar="me.png"))  # mirror unset: removed
    assert "mirror" not in json.loads(settings_file.read_text())


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "", "\x00\xff"])
def test_corrupt_file_gives_defaults_and_a_warning(
    settings_file: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(content, encoding="latin-1")
    with caplog.at_level(logging.WARNING, logger="live.settings"):
        assert load_settings() == Settings()
    assert "settings file" in caplog.text and "defaults" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="live.settings"):
        save_settings(Settings(mirror=True))
    assert load_settings().mirror is True
    assert (settings_file.parent / "settings.json.bak").read_bytes() == content.encode("latin-1")


def test_wrong_types_are_ignored_with_a_warning(settings_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings_file.parent.mkdir(parents=True)
    bad = {"mirror": "yes", "fps_cap": -3, "vcam_size": "big", "camera": 1, "relative": True, "avatar": 5}
    settings_file.write_text(json.dumps(bad))
    with caplog.at_level(logging.WARNING, logger="live.settings"):
        loaded = load_settings()
    assert loaded == Settings(camera="1", relative=True)
    for key in ("mirror", "fps_cap", "vcam_size", "avatar"):
        assert key in caplog.text
    assert "key 'vcam_size' = 'big' is not a size WIDTHxHEIGHT (e.g. 640x480)" in caplog.text
    assert "key 'avatar' = 5 is not a text" in caplog.text


@pytest.mark.parametrize("text", ["Infinity", "NaN", "1e308"])
def test_remembered_fps_cap_must_be_a_usable_frame_rate(
    settings_file: Path, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(f'{{"fps_cap": {text}, "mirror": true}}')  # json reads Infinity and NaN
    with caplog.at_level(logging.WARNING, logger="live.settings"):
        loaded = load_settings()
    assert loaded == Settings(mirror=True)
    assert "'fps_cap'" in caplog.text and "<= 1000" in caplog.text


def test_save_failure_is_a_settings_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SettingsError, match="cannot write"):
        save_settings(Settings(), blocker / "settings.json")


def test_merged_and_parse_size() -> None:
    base = Settings(camera="0", mirror=True, extra={"x": 1})
    merged = base.merged(Settings(mirror=False, avatar="a.png", extra={"y": 2}))
    assert merged == Settings(camera="0", mirror=False, avatar="a.png", extra={"x": 1, "y": 2})
    assert parse_size("640x480") == (640, 480) and parse_size(" 1280 X 720 ") == (1280, 720)
    for bad in ("640", "0x480", "axb", "640x480x3"):
        with pytest.raises(SettingsError, match="WIDTHxHEIGHT"):
            parse_size(bad)
