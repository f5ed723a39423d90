"""``python -m engines``: build an engine from an exported graph into the cache, or inspect an engine.

    python -m engines build exported/animate.onnx --precision fp16 [--batch 1,2,4] [--target SM86] [--cache DIR]
    python -m engines inspect ~/.cache/fomm-live/engines/animate-fp16-0123abcd.engine

Bad input prints one line ``engines: error: ...`` and exits with 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from engines.errors import EngineError


def _batch(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN,OPT,MAX (three integers)")
    lo, opt, hi = (int(p) for p in parts)
    return lo, opt, hi


def build_parser() -> argparse.ArgumentParser:
    from fomm.cli_errors import RaisingParser, path_argument

    parser = RaisingParser(prog="python -m engines", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=RaisingParser)
    build = commands.add_parser("build", help="build (or reuse) the cached engine of an exported ONNX graph")
    build.add_argument("onnx", type=path_argument, help="exported graph, e.g. exported/animate.onnx")
    build.add_argument("--name", help="graph name (default: the file name without .onnx)")
    build.add_argument("--precision", choices=("fp32", "fp16"), default="fp32")
    build.add_argument("--batch", type=_batch, metavar="MIN,OPT,MAX", help="batch profile (dynamic-batch exports)")
    build.add_argument("--target", action="append", default=[], metavar="SM86", help="TensorRT-RTX target (repeat)")
    build.add_argument(
        "--cache", type=path_argument, help="engine cache folder (default: $FOMM_ENGINE_CACHE or ~/.cache)"
    )
    build.add_argument("--rebuild", action="store_true", help="build even if a valid engine is cached")
    inspect = commands.add_parser("inspect", help="print an engine's key, I/O and layers")
    inspect.add_argument("engine", type=path_argument)
    return parser


def _build(args: argparse.Namespace) -> int:
    from engines.build import EngineConfig
    from engines.cache import EngineCache
    from engines.spec import GraphSpec

    spec = GraphSpec.from_onnx(args.onnx, args.name)
    config = EngineConfig(precision=args.precision, batch=args.batch, compute_capabilities=tuple(args.target))
    path = EngineCache(args.cache).get_or_build(args.onnx, spec, config, rebuild=args.rebuild)
    print(path)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from engines.cache import read_key_file

    path: Path = args.engine
    if not path.is_file():
        raise EngineError(f"engine {str(path)!r} " + ("is a folder" if path.is_dir() else "does not exist"))
    try:
        meta = read_key_file(path)
    except EngineError as exc:
        raise EngineError(f"engine {str(path)!r} cannot be inspected: {exc}") from None
    key, network = meta["key"], meta.get("network") or {}
    print(f"engine: {path}")
    print("key: " + ", ".join(f"{k}={v}" for k, v in key.items()))
    for kind in ("inputs", "outputs"):
        for t in network.get(kind, []):
            print(f"{kind[:-1]}: {t['name']} {tuple(t['shape'])} {t['dtype']}")
    counts: dict[str, int] = {}
    for layer in network.get("layers", []):
        counts[layer["type"]] = counts.get(layer["type"], 0) + 1
    print("layers: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from fomm.cli import CliError

    logging.basicConfig(level=logging.INFO, format="engines: %(message)s", stream=sys.stderr)
    try:
        args = build_parser().parse_args(argv)
        return _build(args) if args.command == "build" else _inspect(args)
    except (CliError, EngineError) as exc:
        print("engines: error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code) if isinstance(exc.code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
