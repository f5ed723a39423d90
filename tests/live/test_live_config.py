"""LiveConfig: values that cannot be used are refused with a message naming the field."""

from __future__ import annotations

import math

import pytest

from live.config import LiveConfig, LiveConfigError

BAD = {
    "fps_cap": [math.inf, math.nan, 1e308, 0.0],
    "capture_fps": [math.inf, 1e308],
    "best_frame_seconds": [math.inf, 1e308, 0.0],
    "hold_seconds": [math.inf, 1e308, -1.0],
    "ease_seconds": [math.nan, 1e308],
    "reconnect_seconds": [math.inf, 1e308],
}


@pytest.mark.parametrize(("name", "value"), [(name, value) for name, values in BAD.items() for value in values])
def test_unusable_numbers_are_refused(name: str, value: float) -> None:
    with pytest.raises(LiveConfigError, match=name.replace("_", ".")):
        LiveConfig(**{name: value})


def test_the_bounds_themselves_are_accepted() -> None:
    config = LiveConfig(fps_cap=1000.0, capture_fps=1000, best_frame_seconds=86400.0, hold_seconds=86400.0)
    assert (config.fps_cap, config.best_frame_seconds) == (1000.0, 86400.0)
