"""Evaluate a checkpoint, summarise a sweep, or classify recordings:
`python evaluate.py ckpt=PATH | sweep=DIR | ckpt=PATH audio=FILE|DIR [output=json]`
(installed: `ser-evaluate`, the same command; ser/commands/evaluate.py).

See conf/evaluate.yaml for the keys; README.md ("Evaluate") for examples.
"""

from ser.commands.evaluate import main

if __name__ == "__main__":
    main()
