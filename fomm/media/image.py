"""Still images: loading, square crops for the model, and uint8 <-> tensor conversion.

Images are numpy ``uint8`` arrays, RGB, ``(H, W, 3)`` (or ``(N, H, W, 3)`` batches), values in ``[0, 255]``.
Model tensors are ``float32`` ``(N, 3, H, W)``, RGB, values in ``[0, 1]``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np

from ._deps import import_cv2
from .errors import MediaError

if TYPE_CHECKING:
    import torch

    from .faces import FaceLandmarker

__all__ = [
    "CROP_MODES",
    "IMAGE_SUFFIXES",
    "Box",
    "CropMode",
    "crop_resize",
    "face_square",
    "fit_square",
    "load_image",
    "place_square",
    "resize",
    "square_box",
    "to_tensor",
    "to_uint8",
]

logger = logging.getLogger(__name__)

CropMode = Literal["resize", "center", "face"]
CROP_MODES: tuple[str, ...] = ("resize", "center", "face")
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})

#: Side of a face crop relative to the larger side of the detected face box.
FACE_CROP_SCALE = 1.8
#: Upward shift of the face crop's centre, relative to the face box height (the box stops at the brows,
#: so this keeps some hair in the crop, as in the VoxCeleb crops the models were trained on).
FACE_CROP_LIFT = 0.1


class Box(NamedTuple):
    """A pixel rectangle ``[x0, x1) x [y0, y1)``; it may reach outside the image (then padded)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


# --- loading ------------------------------------------------------------------------------------------------


def _to_uint8_rgb(data: np.ndarray, background: tuple[int, int, int], name: str) -> np.ndarray:
    """Decoded OpenCV array (BGR/BGRA/gray, any depth) -> uint8 RGB HWC."""
    cv2 = import_cv2()
    if data.dtype == np.uint16:
        data = ((data.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif data.dtype in (np.float32, np.float64):
        data = np.clip(np.nan_to_num(data) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif data.dtype != np.uint8:
        raise MediaError(f"image {name!r} has unsupported sample type {data.dtype}; expected 8 or 16 bits")
    if data.ndim == 2:
        return cv2.cvtColor(data, cv2.COLOR_GRAY2RGB)
    channels = data.shape[2]
    if channels == 1:
        return cv2.cvtColor(data[..., 0], cv2.COLOR_GRAY2RGB)
    if channels == 2:  # gray + alpha -> BGRA
        data = np.stack([data[..., 0], data[..., 0], data[..., 0], data[..., 1]], axis=2)
        channels = 4
    if channels == 3:
        return cv2.cvtColor(data, cv2.COLOR_BGR2RGB)
    if channels == 4:
        rgb = cv2.cvtColor(data, cv2.COLOR_BGRA2RGB).astype(np.float32)
        alpha = data[..., 3:4].astype(np.float32) / 255.0
        bg = np.asarray(background, dtype=np.float32).reshape(1, 1, 3)
        return np.clip(rgb * alpha + bg * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)
    raise MediaError(f"image {name!r} has {channels} channels; expected gray, RGB or RGBA")


def _decode_flags(raw: np.ndarray) -> int:
    """``cv2.imdecode`` flags for the encoded bytes ``raw``. ``IMREAD_UNCHANGED`` keeps alpha and 16 bits but
    ignores the EXIF orientation; a JPEG has neither, so it is decoded with flags that apply the orientation
    (phone photos are stored sideways with an Orientation tag)."""
    cv2 = import_cv2()
    if raw[:3].tobytes() == b"\xff\xd8\xff":  # JPEG
        return cv2.IMREAD_ANYCOLOR  # gray stays gray, colour (YCbCr, CMYK) becomes BGR; orientation applied
    return cv2.IMREAD_UNCHANGED


def load_image(path: str | Path, *, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB in ``[0, 255]``.

    Grayscale is replicated to three channels, 16-bit images are scaled to 8 bits, an alpha channel is
    composited over ``background`` (RGB, default white), and a JPEG's EXIF orientation is applied (a phone photo
    stored sideways comes out upright).

    Raises:
        MediaError: the file is missing, not a file, or not a readable image.
    """
    cv2 = import_cv2()
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise MediaError(f"image {name!r} does not exist")
    if not path.is_file():
        raise MediaError(f"image {name!r} is not a file")
    try:
        raw = np.fromfile(path, dtype=np.uint8)  # imdecode also handles non-ASCII paths on Windows
    except OSError as exc:
        raise MediaError(f"image {name!r} cannot be read: {exc.strerror or exc}") from exc
    data = cv2.imdecode(raw, _decode_flags(raw)) if raw.size else None
    if data is None or data.size == 0:
        raise MediaError(f"image {name!r} is not a readable image file (expected PNG, JPEG, BMP, TIFF or WebP)")
    return _to_uint8_rgb(data, background, name)


# --- resizing and cropping ------------------------------------------------------------------------------------


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a ``(H, W, C)`` uint8 image: area averaging when shrinking, bicubic when enlarging."""
    cv2 = import_cv2()
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    shrinking = width <= w and height <= h
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(image, (int(width), int(height)), interpolation=interpolation)


def crop_resize(image: np.ndarray, box: Box, size: int | tuple[int, int]) -> np.ndarray:
    """Cut ``box`` out of a ``(H, W, 3)`` image and resize it to ``size`` (``side`` or ``(width, height)``).

    Parts of the box outside the image are filled by replicating the edge pixels.
    """
    cv2 = import_cv2()
    width, height = (size, size) if isinstance(size, int) else size
    h, w = image.shape[:2]
    if box.width <= 0 or box.height <= 0:
        raise ValueError(f"empty crop box {tuple(box)}")
    pad_left, pad_top = max(0, -box.x0), max(0, -box.y0)
    pad_right, pad_bottom = max(0, box.x1 - w), max(0, box.y1 - h)
    inner = image[max(0, box.y0) : min(h, box.y1), max(0, box.x0) : min(w, box.x1)]
    if inner.size == 0:  # box entirely outside: nothing to replicate from, use the nearest edge pixels
        x = min(max(box.x0, 0), w - 1)
        y = min(max(box.y0, 0), h - 1)
        inner = image[y : y + 1, x : x + 1]
        pad_left, pad_top, pad_right, pad_bottom = 0, 0, box.width - 1, box.height - 1
    if pad_left or pad_top or pad_right or pad_bottom:
        inner = cv2.copyMakeBorder(inner, pad_top, pad_bottom, pad_left, pad_right, cv2.BORDER_REPLICATE)
    return resize(np.ascontiguousarray(inner), width, height)


def place_square(
    cx: float, cy: float, side: float, frame_size: tuple[int, int], *, min_side: float = 0.0, min_pixels: int = 1
) -> Box:
    """The project's one rule for cutting a square out of a frame (training data, ``fomm animate``'s face crop,
    the live face framer): a square wanted at centre ``(cx, cy)`` with ``side`` is

    1. shrunk to the frame's shorter side when it is larger (but not below ``min_side``, e.g. what must stay
       in view), and
    2. shifted into the frame along each axis where it fits.

    So a crop reaches outside the frame (to be padded) only when it must be larger than the frame, and the model
    never sees stretched edge pixels that the training crops did not have.

    Args:
        cx, cy: wanted centre, pixels.
        side: wanted side, pixels.
        frame_size: ``(width, height)`` of the frame.
        min_side: the side is not shrunk below this.
        min_pixels: smallest side in pixels.

    Returns:
        The integer square.
    """
    width, height = frame_size
    if side > min(width, height):
        side = max(float(min(width, height)), float(min_side))
    n = max(int(min_pixels), round(side))
    x0, y0 = round(cx - n / 2.0), round(cy - n / 2.0)
    if n <= width:
        x0 = min(max(x0, 0), width - n)
    if n <= height:
        y0 = min(max(y0, 0), height - n)
    return Box(x0, y0, x0 + n, y0 + n)


def face_square(
    face_box: tuple[float, float, float, float],
    *,
    scale: float = FACE_CROP_SCALE,
    lift: float = FACE_CROP_LIFT,
    frame_size: tuple[int, int] | None = None,
) -> Box:
    """The square crop around a face box ``(x0, y0, x1, y1)``: side ``scale`` times the box's larger side,
    centred on the box (raised by ``lift`` times its height). With ``frame_size`` (``(width, height)``) it is
    placed by :func:`place_square` (inside the frame); without, it may reach outside the image."""
    x0, y0, x1, y1 = (float(v) for v in face_box)
    side = max(1, round(scale * max(x1 - x0, y1 - y0)))
    cx = (x0 + x1) / 2.0
    cy = (y0 + y1) / 2.0 - lift * (y1 - y0)
    if frame_size is not None:
        return place_square(cx, cy, side, frame_size)
    left = round(cx - side / 2.0)
    top = round(cy - side / 2.0)
    return Box(left, top, left + side, top + side)


def square_box(
    image: np.ndarray,
    mode: CropMode | str,
    *,
    landmarker: FaceLandmarker | None = None,
    face_box: tuple[float, float, float, float] | None = None,
) -> Box:
    """The region of ``image`` (``(H, W, 3)`` uint8 RGB) that :func:`fit_square` scales to the model size.

    ``"resize"``: the whole image (its aspect ratio is not kept). ``"center"``: the largest centred square.
    ``"face"``: a square around the largest face (``face_box`` if given, else found with ``landmarker``,
    default YuNet), ~1.8x the face box, placed inside the image by :func:`place_square` (the rule of the training
    crops); it falls back to ``"center"`` with a warning when no face is found.

    Raises:
        MediaError: unknown mode, or ``"face"`` without a usable face detector.
    """
    h, w = image.shape[:2]
    if mode == "resize":
        return Box(0, 0, w, h)
    if mode == "center":
        side = min(h, w)
        left, top = (w - side) // 2, (h - side) // 2
        return Box(left, top, left + side, top + side)
    if mode == "face":
        if face_box is None:
            if landmarker is None:
                from .faces import default_detector

                landmarker = default_detector()
            face_box = landmarker.box(image)
        if face_box is None:
            logger.warning("no face found in the %dx%d image: using a centre crop instead", w, h)
            return square_box(image, "center")
        return face_square(face_box, frame_size=(w, h))
    raise MediaError(f"unknown crop mode {mode!r}; expected one of: {', '.join(CROP_MODES)}")


def fit_square(
    image: np.ndarray,
    size: int,
    mode: CropMode | str = "resize",
    *,
    landmarker: FaceLandmarker | None = None,
    face_box: tuple[float, float, float, float] | None = None,
) -> np.ndarray:
    """Make a ``(size, size, 3)`` uint8 RGB model input from a ``(H, W, 3)`` uint8 RGB image.

    Modes as in :func:`square_box`: ``"resize"`` (what the original demo does), ``"center"``, ``"face"``.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    return crop_resize(image, square_box(image, mode, landmarker=landmarker, face_box=face_box), size)


# --- tensors ------------------------------------------------------------------------------------------------


def to_tensor(
    images: np.ndarray, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """uint8 RGB ``(H, W, 3)`` or ``(N, H, W, 3)`` in ``[0, 255]`` -> float ``(N, 3, H, W)`` RGB in ``[0, 1]``
    (``dtype`` default float32; torch is imported here, so that image and video helpers load without it)."""
    import torch

    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected (H, W, 3) or (N, H, W, 3) images, got {images.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(images)).to(device=device)
    return tensor.permute(0, 3, 1, 2).to(dtype or torch.float32).div_(255.0).contiguous()


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """float ``(N, 3, H, W)`` or ``(3, H, W)`` RGB in ``[0, 1]`` -> uint8 ``(N, H, W, 3)`` RGB (clamped, rounded)."""
    import torch

    if tensor.dim() == 3:
        tensor = tensor[None]
    if tensor.dim() != 4 or tensor.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) or (3, H, W), got {tuple(tensor.shape)}")
    out = tensor.detach().float().clamp(0.0, 1.0).mul(255.0).round_().to(torch.uint8)
    return out.permute(0, 2, 3, 1).contiguous().cpu().numpy()
