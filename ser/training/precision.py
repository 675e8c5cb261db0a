"""The numeric precision a run trains and tests in, chosen from the hardware when asked."""

from __future__ import annotations

import torch
from omegaconf import DictConfig


def trainer_precision(trainer: DictConfig) -> str | int:
    """``trainer.precision``, with ``auto`` resolved: bf16 autocast on a CUDA GPU that has it
    (Ampere and newer), full float32 elsewhere.

    bf16 halves the activations' memory and runs on tensor cores; CPUs gain nothing from it
    here and would lose accuracy, and older GPUs emulate it slowly. The spectrogram images are
    made in float32 whatever this says (``SpectrogramImage`` turns autocast off).
    """
    value = trainer.get("precision", "32-true")
    if str(value) != "auto":
        return value
    accelerator = str(trainer.get("accelerator", "auto")).lower()
    on_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if on_gpu and torch.cuda.is_bf16_supported() else "32-true"
