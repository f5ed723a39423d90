"""Export a model's three graphs to ONNX with a manifest, and load an export folder back (checked).

An export folder holds ``keypoints.onnx``, ``source.onnx``, ``animate.onnx`` and ``manifest.json``: graph
names, files and I/O specs (:mod:`export.specs`), opset, preset, align_corners, precision, warp variant,
the SHA-256 of the weights the graphs came from and of each graph file, and the project version. A folder
whose manifest does not match (other version, other weights, other options, a file changed or not ONNX)
is refused with one line (:class:`ExportError`). Folders are written next to their destination and renamed
into place when complete: a failed export leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import fomm
from fomm.config import config_to_dict
from fomm.hashing import sha256_file

from . import warp_op
from .specs import GRAPH_NAMES, PRECISIONS, NetworkSpec, network_specs
from .wrappers import graph_modules

__all__ = [
    "MANIFEST",
    "MANIFEST_FORMAT",
    "WARP_VARIANTS",
    "ExportError",
    "ExportOptions",
    "Manifest",
    "check_destination",
    "export_model",
    "load_manifest",
    "max_opset",
    "weights_sha256",
]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
WARP_VARIANTS = ("standard", "fused")
MIN_OPSET = 17
_FALLBACK_MAX_OPSET = 23

_ONNX_HINT = "install the export extra: pip install 'fomm-live[export]' (onnx, onnxruntime)"


class ExportError(ValueError):
    """An export that cannot be written or a folder that cannot be used (one line, says why)."""


def max_opset() -> int:
    """The newest default-domain opset the installed torch's ONNX exporter writes (23 for torch 2.13)."""
    try:
        from torch.onnx import _constants
    except ImportError:  # private module: without it, assume no newer opset than torch 2.13's
        return _FALLBACK_MAX_OPSET
    return int(getattr(_constants, "ONNX_MAX_OPSET", _FALLBACK_MAX_OPSET))


def import_onnx() -> Any:
    """``onnx``, or :class:`ExportError` with an install hint."""
    try:
        import onnx
    except ImportError:
        raise ExportError(f"ONNX export needs the onnx package; {_ONNX_HINT}") from None
    return onnx


@dataclass(frozen=True)
class ExportOptions:
    """How the graphs are exported.

    Attributes:
        precision: ``fp32`` or ``fp16`` (every input, output and weight).
        warp: ``standard`` (plain ONNX ``GridSample``: any runtime) or ``fused`` (one ``fomm.warp`` node per
            fused warp, for the TensorRT plugin and the registered ONNX Runtime custom op).
        dynamic_batch: dimension 0 of every tensor is symbolic (``"batch"``).
        opset: default-domain opset (17 to :func:`max_opset`).
    """

    precision: str = "fp32"
    warp: str = "standard"
    dynamic_batch: bool = False
    opset: int = MIN_OPSET

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ExportError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.warp not in WARP_VARIANTS:
            raise ExportError(f"warp variant {self.warp!r} is not one of {', '.join(WARP_VARIANTS)}")
        if not isinstance(self.opset, int) or self.opset < MIN_OPSET:
            raise ExportError(f"opset {self.opset!r} is too old; expected >= {MIN_OPSET} (GridSample needs 16)")
        newest = max_opset()
        if self.opset > newest:
            raise ExportError(
                f"opset {self.opset} is newer than torch {torch.__version__} can export; expected {MIN_OPSET}..{newest}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def weights_sha256(model: fomm.Fomm) -> str:
    """SHA-256 of the keypoint detector's and generator's weights (names, dtypes, shapes, bytes).

    Independent of the file format: a ``.pth.tar`` and its ``.safetensors`` conversion hash alike.
    """
    digest = hashlib.sha256()
    for section in ("kp_detector", "generator"):
        state = getattr(model, section).state_dict()
        for name in sorted(state):
            tensor = state[name].detach().to("cpu").contiguous()
            digest.update(f"{section}.{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What an export folder holds (``manifest.json``)."""

    project_version: str
    preset: str
    config: dict[str, Any]
    align_corners: bool
    image_size: int
    options: ExportOptions
    weights_sha256: str
    graphs: dict[str, NetworkSpec]
    files_sha256: dict[str, str]
    custom_domains: dict[str, int]
    torch_version: str = ""
    checkpoint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "project_version": self.project_version,
            "preset": self.preset,
            "config": self.config,
            "align_corners": self.align_corners,
            "image_size": self.image_size,
            "opset": self.options.opset,
            "precision": self.options.precision,
            "warp": self.options.warp,
            "dynamic_batch": self.options.dynamic_batch,
            "custom_domains": self.custom_domains,
            "weights_sha256": self.weights_sha256,
            "checkpoint": self.checkpoint,
            "torch_version": self.torch_version,
            "graphs": {
                name: {**spec.to_dict(), "sha256": self.files_sha256[name]} for name, spec in self.graphs.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        graphs = {name: NetworkSpec.from_dict(g) for name, g in data["graphs"].items()}
        return cls(
            project_version=str(data["project_version"]),
            preset=str(data["preset"]),
            config=dict(data["config"]),
            align_corners=bool(data["align_corners"]),
            image_size=int(data["image_size"]),
            options=ExportOptions(
                precision=data["precision"],
                warp=data["warp"],
                dynamic_batch=bool(data["dynamic_batch"]),
                opset=int(data["opset"]),
            ),
            weights_sha256=str(data["weights_sha256"]),
            graphs=graphs,
            files_sha256={name: str(g["sha256"]) for name, g in data["graphs"].items()},
            custom_domains={str(k): int(v) for k, v in data.get("custom_domains", {}).items()},
            torch_version=str(data.get("torch_version", "")),
            checkpoint=data.get("checkpoint"),
        )

    def path(self, folder: str | Path, graph: str) -> Path:
        return Path(folder) / self.graphs[graph].filename


# --- export --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The TorchScript exporter warns about its own deprecation and tracing details on every call."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


def _export_graph(module: torch.nn.Module, spec: NetworkSpec, path: Path, options: ExportOptions) -> None:
    onnx = import_onnx()
    sample = spec.sample_inputs(2 if options.dynamic_batch else 1, generator=torch.Generator().manual_seed(0))
    uses_warps = spec.name == "animate"  # the only graph with the fused warps
    custom = {warp_op.DOMAIN: warp_op.OP_VERSION} if options.warp == "fused" and uses_warps else {}
    with _quiet_exporter(), torch.no_grad():
        torch.onnx.export(
            module,
            tuple(sample[name] for name in spec.input_names),
            str(path),
            dynamo=False,
            opset_version=options.opset,
            input_names=spec.input_names,
            output_names=spec.output_names,
            dynamic_axes=spec.dynamic_axes or None,
            custom_opsets=custom or None,
            do_constant_folding=True,
        )
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    got_in = [i.name for i in proto.graph.input]
    got_out = [o.name for o in proto.graph.output]
    if got_in != spec.input_names or got_out != spec.output_names:
        raise ExportError(
            f"graph {spec.name!r} exported with inputs {got_in} and outputs {got_out}; "
            f"the spec says {spec.input_names} and {spec.output_names}"
        )


def check_destination(out: str | Path) -> None:
    """Refuse (:class:`ExportError`) a destination that cannot receive an export: a file, a folder holding
    something else than an earlier export, or a place under a file or without write permission."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"output folder {str(out)!r} is a file")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ExportError(f"output folder {str(out)!r} is not empty and holds no earlier export; choose another")
    ancestor = out.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ExportError(f"cannot write the output folder {str(out)!r}: a folder above it is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write the output folder {str(out)!r}: {str(ancestor)!r} is not writable")


def export_model(
    model: fomm.Fomm,
    out: str | Path,
    options: ExportOptions | None = None,
    *,
    checkpoint: str | Path | None = None,
) -> Manifest:
    """Export the three graphs of ``model`` into the folder ``out`` and write the manifest.

    The folder is built beside ``out`` and renamed into place when complete (an earlier export there is
    replaced); on any failure nothing is left behind.

    Args:
        model: the networks (any device; exported from a CPU copy, in eval mode).
        out: destination folder (created; must be empty, absent or an earlier export).
        options: precision, warp variant, dynamic batch, opset.
        checkpoint: the file the weights came from (recorded in the manifest).

    Raises:
        ExportError: unwritable destination, a model that does not export, missing ``onnx``.
    """
    options = options or ExportOptions()
    import_onnx()
    out = Path(out)
    check_destination(out)
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=parent))
        staging.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would make the export private
    except (FileExistsError, NotADirectoryError):
        raise ExportError(f"cannot write the output folder {str(out)!r}: a folder above it is a file") from None
    except OSError as exc:
        raise ExportError(f"cannot write the output folder {str(out)!r}: {exc.strerror or exc}") from None
    try:
        config = model.config
        specs = network_specs(config, precision=options.precision, dynamic_batch=options.dynamic_batch)
        cpu = fomm.build_fomm(config)
        cpu.kp_detector.load_state_dict(model.kp_detector.state_dict())
        cpu.generator.load_state_dict(model.generator.state_dict())
        digest = weights_sha256(cpu)
        if options.precision == "fp16":
            cpu = cpu.half()
        modules = graph_modules(cpu)
        impl = None
        if options.warp == "fused":
            from .fused import FusedWarpExport

            impl = FusedWarpExport()
        files: dict[str, str] = {}
        with fomm.geometry.use_warp_impl(impl):
            for name in GRAPH_NAMES:
                path = staging / specs[name].filename
                _export_graph(modules[name], specs[name], path, options)
                files[name] = sha256_file(path)
                logger.info("exported %s (%.1f MB)", path.name, path.stat().st_size / 1e6)
        manifest = Manifest(
            project_version=fomm.__version__,
            preset=config.name,
            config=config_to_dict(config),
            align_corners=config.align_corners,
            image_size=config.image_size,
            options=options,
            weights_sha256=digest,
            graphs=specs,
            files_sha256=files,
            custom_domains={warp_op.DOMAIN: warp_op.OP_VERSION} if options.warp == "fused" else {},
            torch_version=torch.__version__,
            checkpoint=str(checkpoint) if checkpoint is not None else None,
        )
        (staging / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
        _move_into_place(staging, out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExportError(f"cannot write the output folder {str(out)!r}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _move_into_place(staging: Path, out: Path) -> None:
    if out.is_dir() and any(out.iterdir()):
        old = staging.with_suffix(".old")
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        if out.is_dir():
            out.rmdir()
        staging.rename(out)


# --- loading -------------------------------------------------------------------------------------------------


def load_manifest(
    folder: str | Path,
    *,
    weights_sha256: str | None = None,
    options: ExportOptions | None = None,
    verify_files: bool = True,
) -> Manifest:
    """Read and check an export folder's manifest.

    Args:
        folder: an export folder.
        weights_sha256: when given, the weights the graphs must come from.
        options: when given, the options they must have been exported with.
        verify_files: hash every graph file against the manifest (and check that it is ONNX).

    Raises:
        ExportError: no or unreadable manifest, another project version, other weights or options, a graph
            file missing, changed or not ONNX.
    """
    folder = Path(folder)
    where = f"export folder {str(folder)!r}"
    path = folder / MANIFEST
    if not path.is_file():
        raise ExportError(f"{where} has no {MANIFEST} (not a folder written by fomm export)")
    try:
        data = json.loads(path.read_text())
        if data.get("format") != MANIFEST_FORMAT:
            raise ExportError(f"{where}: manifest format {data.get('format')!r}, expected {MANIFEST_FORMAT}")
        manifest = Manifest.from_dict(data)
    except ExportError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ExportError(f"{where}: unreadable {MANIFEST} ({type(exc).__name__}: {exc})") from None
    if manifest.project_version != fomm.__version__:
        raise ExportError(
            f"{where} was written by fomm-live {manifest.project_version}, this is {fomm.__version__}; export again"
        )
    if set(manifest.graphs) != set(GRAPH_NAMES):
        raise ExportError(f"{where} holds graphs {sorted(manifest.graphs)}, expected {list(GRAPH_NAMES)}")
    if weights_sha256 is not None and manifest.weights_sha256 != weights_sha256:
        raise ExportError(
            f"{where} was exported from other weights (sha256 {manifest.weights_sha256[:12]}..., "
            f"these are {weights_sha256[:12]}...); export again"
        )
    if options is not None and manifest.options != options:
        raise ExportError(f"{where} was exported with {manifest.options.to_dict()}, expected {options.to_dict()}")
    if verify_files:
        for name, spec in manifest.graphs.items():
            check_graph_file(folder / spec.filename, manifest.files_sha256[name])
    return manifest


def check_graph_file(path: Path, sha256: str | None = None) -> None:
    """Refuse a missing graph file, one that is not ONNX, or one whose hash differs from ``sha256``."""
    if not path.is_file():
        raise ExportError(f"graph file {str(path)!r} is missing")
    onnx = import_onnx()
    try:
        proto = onnx.load(str(path), load_external_data=False)
        valid = proto.ir_version > 0 and len(proto.graph.node) > 0
    except Exception:  # protobuf's DecodeError and friends
        valid = False
    if not valid:
        raise ExportError(f"graph file {str(path)!r} is not an ONNX model")
    if sha256 is not None and sha256_file(path) != sha256:
        raise ExportError(f"graph file {str(path)!r} changed since export (sha256 differs from the manifest)")
