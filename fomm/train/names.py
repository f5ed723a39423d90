"""What the ``fomm`` command needs from the training package before any command runs (its parser and its error
handling), kept free of torch so that ``fomm --help`` does not load it."""

from __future__ import annotations

__all__ = [
    "AUGMENTATION_LEVERS",
    "DEFAULT_SCALES",
    "LANDMARK_CHOICES",
    "LANDMARK_POINT_CHOICES",
    "LANDMARK_POINT_COUNTS",
    "MOTION_LANDMARK_CHOICES",
    "DatasetError",
]

#: ``faces=`` / ``--landmarks`` choices: which landmark detector gives AKD (``off``: no face metrics).
LANDMARK_CHOICES: tuple[str, ...] = ("auto", "fan", "dlib", "yunet", "off")

#: Training augmentations given as probabilities (``--webcam-aug``, ``--occluders``, ``--shape-aug``,
#: ``--tilt-aug``): data set settings, kept in a run's ``run.json`` and in its checkpoints' training record.
AUGMENTATION_LEVERS: tuple[str, ...] = ("webcam_aug", "occluders", "shape_aug", "tilt_aug")

#: ``--landmark-points`` choices: the training landmarks of the landmark losses (YuNet's 5 points, or 7 FaceMesh
#: points: those five and the inner lips).
LANDMARK_POINT_CHOICES: tuple[str, ...] = ("yunet", "facemesh")

#: How many landmarks each ``--landmark-points`` choice gives.
LANDMARK_POINT_COUNTS: dict[str, int] = {"yunet": 5, "facemesh": 7}

#: The perceptual loss's default image pyramid (``--scales``).
DEFAULT_SCALES: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)

#: The equivariance transforms' default affine strength (``--sigma-affine``; the original's vox ``sigma_affine``).
DEFAULT_SIGMA_AFFINE = 0.05

#: The equivariance losses' default weights (``--equivariance-value`` / ``--equivariance-jacobian``; every released
#: config's 10 and 10).
DEFAULT_EQUIVARIANCE_WEIGHT = 10.0

#: ``--motion-landmarks`` choices: which landmarks measure motion following (FaceMesh, or YuNet's 5 points).
MOTION_LANDMARK_CHOICES: tuple[str, ...] = ("auto", "facemesh", "yunet")


class DatasetError(ValueError):
    """A data set, video or source file that cannot be used. The message is one line naming the file."""
