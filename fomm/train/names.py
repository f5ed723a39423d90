"""What the ``fomm`` command needs from the training package before any command runs (its parser and its error
handling), kept free of torch so that ``fomm --help`` does not load it."""

from __future__ import annotations

__all__ = ["LANDMARK_CHOICES", "MOTION_LANDMARK_CHOICES", "DatasetError"]

#: ``faces=`` / ``--landmarks`` choices: which landmark detector gives AKD (``off``: no face metrics).
LANDMARK_CHOICES: tuple[str, ...] = ("auto", "fan", "dlib", "yunet", "off")

#: ``--motion-landmarks`` choices: which landmarks measure motion following (FaceMesh, or YuNet's 5 points).
MOTION_LANDMARK_CHOICES: tuple[str, ...] = ("auto", "facemesh", "yunet")


class DatasetError(ValueError):
    """A data set, video or source file that cannot be used. The message is one line naming the file."""
