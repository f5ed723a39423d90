#!/usr/bin/env python3
"""fomm-live from a checkout: ``python run_live.py [options]`` (installed: ``fomm-live``). See live/cli.py."""

import sys

from live.cli import main

if __name__ == "__main__":
    sys.exit(main())
