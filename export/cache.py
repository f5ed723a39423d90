"""The export cache: ``--backend onnx`` exports a model once and reuses the folder while it matches.

A cache folder is keyed by the weights' SHA-256, the model config (structure, size, align_corners), the
export options and the project version. Before use its manifest is checked against the same things
(:func:`export.exporter.load_manifest`): a stale or damaged folder is rebuilt, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import fomm
from fomm.config import config_to_dict

from .exporter import ExportError, ExportOptions, export_model, load_manifest, weights_sha256

__all__ = ["cache_key", "cache_root", "cached_export"]

logger = logging.getLogger(__name__)


def cache_root() -> Path:
    """``$FOMM_CACHE_DIR``, else ``$XDG_CACHE_HOME/fomm-live/onnx`` (``~/.cache/fomm-live/onnx``)."""
    if os.environ.get("FOMM_CACHE_DIR"):
        return Path(os.environ["FOMM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fomm-live" / "onnx"


def _check_cache_folder(root: Path, *, named_by_env: bool) -> None:
    """:class:`ExportError` naming the cache (and ``$FOMM_CACHE_DIR`` when it chose it) if ``root`` cannot be
    written, before any export work."""
    from fomm.media.errors import MediaError
    from fomm.media.video import check_writable_folder

    try:
        check_writable_folder(root, "$FOMM_CACHE_DIR" if named_by_env else "the ONNX cache folder")
    except MediaError as exc:
        raise ExportError(f"{exc}; set FOMM_CACHE_DIR to a writable folder") from None


def cache_key(config: fomm.FommConfig, digest: str, options: ExportOptions) -> str:
    """16 hex digits naming one export of these weights, this config and these options."""
    payload = {
        "weights": digest,
        "config": config_to_dict(config),
        "options": options.to_dict(),
        "version": fomm.__version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def cached_export(
    model: fomm.Fomm,
    options: ExportOptions | None = None,
    *,
    root: str | Path | None = None,
    checkpoint: str | Path | None = None,
) -> tuple[Path, bool]:
    """The export folder of ``model`` with ``options`` in the cache, exported first when absent or stale.

    Returns:
        ``(folder, built)``: ``built`` is ``True`` when this call exported the graphs.

    Raises:
        ExportError: the cache cannot be written, or the model does not export.
    """
    options = options or ExportOptions()
    digest = weights_sha256(model)
    folder = Path(root) if root is not None else cache_root()
    folder = folder / f"{model.config.name}-{cache_key(model.config, digest, options)}"
    if folder.exists():
        try:
            manifest = load_manifest(folder, weights_sha256=digest, options=options)
            if manifest.config == config_to_dict(model.config):
                logger.info("ONNX graphs from the cache: %s", folder)
                return folder, False
            reason = "another model config"
        except ExportError as exc:
            reason = str(exc)
        logger.warning("stale ONNX cache %s (%s): exporting again", folder, reason)
        shutil.rmtree(folder, ignore_errors=True)
    _check_cache_folder(folder.parent, named_by_env=root is None and bool(os.environ.get("FOMM_CACHE_DIR")))
    logger.info("exporting the ONNX graphs to %s (first use of these weights and options)", folder)
    export_model(model, folder, options, checkpoint=checkpoint)
    return folder, True
