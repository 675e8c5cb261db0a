"""Checkpoints written so that a kill at any moment never leaves a broken last.ckpt.

Lightning's default writes through an fsspec transaction whose temporary file lives in the
system temp folder, so the final move can be a cross-device copy that a SIGKILL interrupts.
Here the temporary file sits beside the target and ``os.replace`` swaps it in atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from ser.atomic import write_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any = None) -> None:
        write_atomic(Path(path), lambda f: torch.save(checkpoint, f))
