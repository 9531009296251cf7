"""``python -m mediacore``: the command-line interface (see :mod:`mediacore.cli`)."""

import sys

from mediacore.cli import main

if __name__ == "__main__":
    sys.exit(main())
