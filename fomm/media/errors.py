"""The error type of the media helpers."""

from __future__ import annotations

__all__ = ["MediaError"]


class MediaError(ValueError):
    """An input image, video, folder or face model that cannot be used.

    The message is one line meant for the user: it names the input and says what was expected.
    """
