"""``python -m ser.predict``: the command :mod:`ser.commands.predict` (``ser-predict``)."""

from ser.commands.predict import main

if __name__ == "__main__":
    main()
