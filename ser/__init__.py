"""ser: noise-robust speech emotion recognition with Hydra and PyTorch Lightning."""

from ser.allocator import configure_allocator

configure_allocator()  # before torch allocates: see ser/allocator.py (SER_MALLOC=default skips it)

__version__ = "0.1.0"
