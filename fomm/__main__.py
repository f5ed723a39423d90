"""``python -m fomm``: the same command as the ``fomm`` console script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
