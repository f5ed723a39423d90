"""All checkpoint I/O: the original ``.pth.tar`` format and the project's safetensors format.

Original files (``vox-cpk.pth.tar``, ...) hold ``generator``, ``kp_detector``, ``discriminator``,
``optimizer_*`` and ``epoch``; they are read with ``torch.load(..., weights_only=True)`` only, never by
unpickling arbitrary objects. Their key names are this project's names, so no remapping is needed.

The project's format is one ``.safetensors`` file: tensors ``kp_detector.*``, ``generator.*``,
``discriminator.*`` and metadata ``format``, ``config`` (JSON of the :class:`FommConfig`) and ``step``: it
describes itself and loads without a YAML file.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch

from .cli_errors import one_line
from .config import EXTRA_CONFIGS, PRESETS, FommConfig, config_from_dict, config_to_dict
from .model import Fomm, build_fomm

__all__ = [
    "CheckpointError",
    "LoadedCheckpoint",
    "checkpoint_format",
    "convert_checkpoint",
    "load_checkpoint",
    "matching_presets",
    "read_original_checkpoint",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

FORMAT_NAME = "fomm-live"
FORMAT_VERSION = "1"
SECTIONS = ("kp_detector", "generator", "discriminator")
REQUIRED_SECTIONS = ("kp_detector", "generator")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


class LoadedCheckpoint(NamedTuple):
    """A model restored from a checkpoint.

    Attributes:
        model: the networks, in eval mode, on the requested device.
        config: the model's config (from the file for the project's format, else the one given).
        step: training step or epoch stored in the file (0 when absent).
        source_format: ``"original"`` or ``"safetensors"``.
    """

    model: Fomm
    config: FommConfig
    step: int
    source_format: str


# --- reading ------------------------------------------------------------------------------------------------


def checkpoint_format(path: Path) -> str:
    """``"safetensors"``, ``"torch"`` (zip or legacy pickle) or ``"unknown"`` from the first bytes."""
    with path.open("rb") as f:
        head = f.read(16)
    if len(head) >= 9:
        header_len = int.from_bytes(head[:8], "little")
        if head[8:9] == b"{" and 0 < header_len < 100_000_000:
            return "safetensors"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return "torch"
    return "unknown"


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {str(path)!r} is empty")


def read_original_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read an original first-order-model checkpoint safely (``weights_only=True``) onto the CPU.

    Raises:
        CheckpointError: the file is missing, truncated, not a torch checkpoint, holds objects other than
            tensors and plain containers, or lacks the ``generator``/``kp_detector`` state dicts.
    """
    path = Path(path)
    _check_readable(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for bad files
        reason = one_line(exc)
        if "Weights only load failed" in reason:
            reason = "it holds Python objects other than tensors (refusing to unpickle them)"
        raise CheckpointError(
            f"checkpoint {str(path)!r} is not a readable PyTorch checkpoint (truncated or another file?): {reason}"
        ) from exc
    if not isinstance(data, Mapping):
        raise CheckpointError(f"checkpoint {str(path)!r} holds a {type(data).__name__}, expected a dict of state dicts")
    missing = [s for s in REQUIRED_SECTIONS if not isinstance(data.get(s), Mapping)]
    if missing:
        found = ", ".join(sorted(map(str, data))[:8]) or "nothing"
        raise CheckpointError(
            f"checkpoint {str(path)!r} has no {' / '.join(missing)} state dict (found: {found}); "
            "expected a first-order-model checkpoint such as vox-cpk.pth.tar"
        )
    return dict(data)


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        from safetensors import safe_open
    except ImportError as exc:  # pragma: no cover - core dependency
        raise CheckpointError("reading .safetensors checkpoints needs safetensors: pip install safetensors") from exc
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                tensors[key] = f.get_tensor(key)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a readable safetensors file: {exc}") from exc
    if metadata.get("format") != FORMAT_NAME or "config" not in metadata:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is a safetensors file without fomm-live metadata (format, config)"
        )
    return tensors, metadata


# --- matching -------------------------------------------------------------------------------------------------


def _shapes(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}


def _expected_shapes(config: FommConfig, sections: tuple[str, ...]) -> dict[str, dict[str, tuple[int, ...]]]:
    model = build_fomm(config, with_discriminator="discriminator" in sections, device="meta")
    return {s: _shapes(getattr(model, s).state_dict()) for s in sections}


def _diff(
    expected: Mapping[str, Mapping[str, tuple[int, ...]]], actual: Mapping[str, Mapping[str, Any]]
) -> tuple[list[str], list[str], list[str]]:
    missing: list[str] = []
    unexpected: list[str] = []
    mismatched: list[str] = []
    for section, want in expected.items():
        have = _shapes(actual.get(section, {}))
        for key, shape in want.items():
            if key not in have:
                missing.append(f"{section}.{key}")
            elif have[key] != shape:
                mismatched.append(f"{section}.{key} (file {list(have[key])}, model {list(shape)})")
        unexpected.extend(f"{section}.{key}" for key in have if key not in want)
    return missing, unexpected, mismatched


def _sections_of(state: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(s for s in SECTIONS if isinstance(state.get(s), Mapping) and len(state[s]) > 0)


def _candidates() -> dict[str, Callable[[], FommConfig]]:
    """What :func:`matching_presets` tries, in this order: the released presets, then the project's own
    configurations (``tiny-256``, ``demo-256``; e.g. a ``.pth.tar`` written by ``fomm.train --export-original``)."""
    return {**PRESETS, **EXTRA_CONFIGS}


def matching_presets(state: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Names of the presets (released ones first, then :data:`~fomm.config.EXTRA_CONFIGS`) whose networks have
    exactly the keys and shapes of ``state``'s sections."""
    sections = _sections_of(state)
    return [name for name, make in _candidates().items() if not any(_diff(_expected_shapes(make(), sections), state))]


def _summarise(label: str, items: list[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return f"{len(items)} {label}: {shown}{more}"


def _check_fits(state: Mapping[str, Mapping[str, Any]], config: FommConfig, path: Path) -> None:
    sections = _sections_of(state)
    missing, unexpected, mismatched = _diff(_expected_shapes(config, sections), state)
    if not (missing or unexpected or mismatched):
        return
    parts = [
        _summarise(label, items)
        for label, items in (("missing", missing), ("unexpected", unexpected), ("mismatched", mismatched))
        if items
    ]
    fits = matching_presets(state)
    hint = (
        f"preset {' or '.join(repr(f) for f in fits)} fits this file"
        if fits
        else "no preset fits: pass the model's original YAML config"
    )
    raise CheckpointError(f"checkpoint {str(path)!r} does not fit config {config.name!r}: {'; '.join(parts)}; {hint}")


def _guess_preset(state: Mapping[str, Mapping[str, Any]], path: Path) -> FommConfig:
    """The preset that fits an original file, preferring one named in the file name (``taichi-cpk``)."""
    fits = matching_presets(state)
    if not fits:
        raise CheckpointError(
            f"checkpoint {str(path)!r} fits no preset ({', '.join(_candidates())}): "
            "pass the model's original YAML config"
        )
    stem = path.name.lower().replace("_", "-")
    named = [name for name in fits if name.removesuffix("-256") + "-" in stem + "-"]
    # the longest match wins: 'vox-adv-256' over 'vox-256' for vox-adv-cpk.pth.tar
    choice = max(named, key=len) if named else fits[0]
    logger.info("checkpoint %s: no config given, using preset %s (fits: %s)", path, choice, ", ".join(fits))
    return _candidates()[choice]()


# --- public API -------------------------------------------------------------------------------------------------


def load_checkpoint(
    path: str | Path,
    config: FommConfig | None = None,
    *,
    with_discriminator: bool | None = False,
    device: torch.device | str = "cpu",
    align_corners: bool | None = None,
) -> LoadedCheckpoint:
    """Load an original ``.pth.tar`` or a project ``.safetensors`` checkpoint into a :class:`Fomm`.

    Args:
        path: checkpoint file; the format is detected from its first bytes.
        config: the model structure (a preset or a YAML-derived config). ``None`` for an original file
            picks the preset whose keys and shapes fit it (preferring one named in the file name; presets
            with equal shapes compute the same function). For the project's format the stored config is
            used and ``config`` only has to agree with it.
        with_discriminator: also restore the discriminator (training); the file must hold one. ``None``:
            restore it when the file holds one.
        device: where to put the networks.
        align_corners: override the grid-sampling convention (``None`` keeps the config's).

    Raises:
        CheckpointError: unreadable file, or keys/shapes that do not fit the config (the message names
            the missing, unexpected and mismatched keys and a preset that fits, if any).
    """
    path = Path(path)
    _check_readable(path)
    kind = checkpoint_format(path)
    step = 0
    if kind == "safetensors":
        tensors, metadata = _read_safetensors(path)
        try:
            stored = config_from_dict(json.loads(metadata["config"]))
        except (ValueError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"checkpoint {str(path)!r} has an unreadable stored config: {exc}") from exc
        state: dict[str, dict[str, torch.Tensor]] = {s: {} for s in SECTIONS}
        for key, value in tensors.items():
            section, _, rest = key.partition(".")
            if section not in state:
                raise CheckpointError(f"checkpoint {str(path)!r} has a tensor outside the known networks: {key!r}")
            state[section][rest] = value
        if config is not None:
            _check_fits(state, config, path)
        config = stored
        step = int(metadata.get("step", "0") or 0)
        source_format = "safetensors"
    elif kind == "torch":
        raw = read_original_checkpoint(path)
        state = {s: dict(raw[s]) for s in SECTIONS if isinstance(raw.get(s), Mapping)}
        if config is None:
            config = _guess_preset(state, path)
        _check_fits(state, config, path)
        epoch = raw.get("epoch", 0)
        step = int(epoch) if isinstance(epoch, int | float) else 0
        source_format = "original"
    else:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is neither a PyTorch checkpoint (.pth.tar) nor a safetensors file"
        )

    if with_discriminator is None:
        with_discriminator = bool(state.get("discriminator"))
    if with_discriminator and not state.get("discriminator"):
        raise CheckpointError(f"checkpoint {str(path)!r} holds no discriminator (needed for training)")
    if align_corners is not None:
        config = config.with_align_corners(align_corners)
    model = build_fomm(config, with_discriminator=with_discriminator)
    model.kp_detector.load_state_dict(state["kp_detector"], strict=True)
    model.generator.load_state_dict(state["generator"], strict=True)
    if model.discriminator is not None:
        model.discriminator.load_state_dict(state["discriminator"], strict=True)
    model = model.to(device).eval()
    logger.info("loaded %s checkpoint %s (config %s, step %d)", source_format, path, config.name, step)
    return LoadedCheckpoint(model, config, step, source_format)


def save_checkpoint(path: str | Path, model: Fomm, *, step: int = 0, training: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` in the project's format (safetensors + embedded config). Returns the path.

    ``training``: how the weights were made (steps, seconds, device, data, initial weights...), stored as JSON in
    the file's metadata (:func:`read_training_record`).

    The file is written to a hidden temporary file beside ``path`` and renamed, so ``path`` is never half-written;
    on any failure the temporary file is removed. The file gets the mode of any new file (the umask's).

    Raises:
        CheckpointError: safetensors cannot write the file.
        OSError: the folder cannot be created or written, ``path`` is a folder."""
    try:
        from safetensors.torch import save_file
    except ImportError as exc:  # pragma: no cover - core dependency
        raise CheckpointError("writing checkpoints needs safetensors: pip install safetensors") from exc
    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(config_to_dict(model.config)),
        "step": str(int(step)),
    }
    if training:
        metadata["training"] = json.dumps(dict(training), sort_keys=True, default=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        tmp.touch(exist_ok=False)  # created as any new file is (umask, default ACLs): the mode the output gets
        mode = stat.S_IMODE(tmp.stat().st_mode)
        try:
            save_file(tensors, str(tmp), metadata=metadata)  # safetensors writes its own 0600 temporary file
        except Exception as exc:  # SafetensorError: an I/O error of the Rust writer
            raise CheckpointError(f"checkpoint {str(path)!r} cannot be written: {exc}") from exc
        os.chmod(tmp, mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_training_record(path: str | Path) -> dict[str, Any] | None:
    """The ``training`` record of a project-format checkpoint (see :func:`save_checkpoint`), or ``None`` for a
    file without one (an original ``.pth.tar``, a converted file, an unreadable record)."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors" or not path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            text = (handle.metadata() or {}).get("training")
        record = json.loads(text) if text else None
    except Exception:  # a record is informative only: a broken one is reported as absent
        logger.warning("checkpoint %s: unreadable training record", path)
        return None
    return record if isinstance(record, dict) else None


def convert_checkpoint(src: str | Path, dst: str | Path, config: FommConfig) -> Path:
    """Convert an original ``.pth.tar`` checkpoint (all networks it holds) to the project's format."""
    loaded = load_checkpoint(src, config, with_discriminator=None)
    return save_checkpoint(dst, loaded.model, step=loaded.step)
