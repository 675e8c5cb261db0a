"""``python -m ser.serve``: the command :mod:`ser.commands.serve` (``ser-serve``)."""

from ser.commands.serve import main

if __name__ == "__main__":
    main()
