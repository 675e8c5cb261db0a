"""Train one model per configuration: `python train.py [overrides]`, `python train.py -m ...` for sweeps
(installed: `ser-train`, the same command; ser/commands/train.py).

`model=mfcc_svm` fits the conventional baseline (an SVM on MFCC statistics) on the same data.
See conf/train.yaml for the groups; README.md for examples.
"""

from ser.commands.train import main

if __name__ == "__main__":
    main()
