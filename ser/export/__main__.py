"""``python -m ser.export``: the command :mod:`ser.commands.export` (``ser-export``). A package's
``__main__`` is an entry point, so it sits in the commands' layer (tests/test_layout.py)."""

from ser.commands.export import main

if __name__ == "__main__":
    main()
