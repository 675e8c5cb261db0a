"""``python -m ser.bench``: the command :mod:`ser.commands.bench` (``ser-bench``)."""

import sys

from ser.commands.bench import main

if __name__ == "__main__":
    sys.exit(main())
