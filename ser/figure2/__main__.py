"""``python -m ser.figure2``: the command :mod:`ser.commands.figure2` (``ser-figure2``)."""

import sys

from ser.commands.figure2 import main

if __name__ == "__main__":
    sys.exit(main())
