"""Paths of the bundled assets (see ``fomm/assets/NOTICE.md`` for their sources and licences)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ASSETS_DIR", "DEFAULT_AVATAR", "DEFAULT_DRIVING", "DEMO_MODEL"]

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
#: 256x256 face-centred portrait of Grace Hopper (public domain).
DEFAULT_AVATAR = ASSETS_DIR / "avatar.png"
#: 10 s, 25 fps, 256x256 real talking-head clip (MIT), the default driving video.
DEFAULT_DRIVING = ASSETS_DIR / "driving.mp4"
#: The bundled demo model (project format), once one is trained; ``None``-checked by callers.
DEMO_MODEL = ASSETS_DIR / "demo.safetensors"
