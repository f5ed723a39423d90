"""The one error type of :mod:`engines`: its message is one line that says what to do."""

from __future__ import annotations

__all__ = ["EngineError"]


class EngineError(RuntimeError):
    """An engine cannot be built, loaded or run as asked. ``str()`` is one line naming the input and the fix."""
