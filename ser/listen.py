"""``python -m ser.listen``: the command :mod:`ser.commands.listen` (``ser-listen``)."""

from ser.commands.listen import main

if __name__ == "__main__":
    main()
