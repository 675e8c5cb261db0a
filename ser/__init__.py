"""ser: noise-robust speech emotion recognition with Hydra and PyTorch Lightning."""

__version__ = "0.1.0"
