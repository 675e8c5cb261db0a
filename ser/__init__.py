"""ser: noise-robust speech emotion recognition with Hydra and PyTorch Lightning.

Importing the package changes nothing global: the commands set up their process themselves
(:func:`ser.cli.prepare_process`: the C allocator, the warnings they expect).
"""

__version__ = "0.1.0"
