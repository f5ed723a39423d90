"""``python -m export ...``: the same as ``fomm export ...``."""

from __future__ import annotations

import sys

from fomm.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
