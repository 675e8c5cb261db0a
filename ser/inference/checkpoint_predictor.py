"""A checkpoint's classifier for inference only: front-end + network, without Lightning.

``EmotionClassifier`` is a LightningModule: importing it pulls in pytorch_lightning, which
takes seconds to import and is no use for classifying a recording. Inference needs only what
the checkpoint carries (classes, front-end settings, network settings, weights), so this
rebuilds the same two modules from the hyper-parameters as plain ``nn.Module``s and loads the
same weights. For clean blocks the result equals ``EmotionClassifier.predict_blocks`` (mixing
at SNR = +inf adds nothing), which the tests check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import nn

from ser.errors import SerError
from ser.features.group_norm import grouping_setting
from ser.models.calibration import calibrate
from ser.models.checkpoints import (block_settings, find_checkpoint, load_weights, read_checkpoint,
                                    trained_hyper_parameters)


class BlockClassifier(nn.Module):
    """(N, samples) clean float32 waveform -> (N, C) probabilities: front-end, network, softmax.

    The attribute names (``frontend``, ``net``) are the LightningModule's, so a checkpoint's
    ``state_dict`` loads into it unchanged.
    """

    def __init__(self, hp: Mapping):
        super().__init__()
        from ser.models.builders import build_calibration, build_frontend, build_network

        model = {**dict(hp["model"]), "pretrained": False}  # every weight comes from the checkpoint
        self.classes = list(hp["classes"])
        self.channels_last = bool(model.get("channels_last", False))
        self.net = build_network(model, len(self.classes))
        self.frontend = build_frontend(dict(hp["features"]), self.channels_last)
        self.calibration = build_calibration(hp.get("calibration"), len(self.classes))

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        image = self.frontend(blocks)
        if self.channels_last and image.dim() == 4:
            image = image.contiguous(memory_format=torch.channels_last)
        return torch.softmax(calibrate(self.calibration, self.net(image), image), dim=1)


def load_block_classifier(path: str | Path) -> tuple[BlockClassifier, dict]:
    """(classifier in eval mode, hyper-parameters) of a ``.ckpt`` written by train.py; SerError
    (one paragraph) for a file that is not one or whose weights do not fit its network."""
    ckpt = read_checkpoint(path)
    hp = trained_hyper_parameters(ckpt, path)
    grouping = grouping_setting(((hp.get("run_config") or {}).get("data") or {}).get("speaker_norm"))
    if grouping is not None:
        raise SerError(f"{path} was trained with data.speaker_norm={grouping}: its network expects "
                       "images normalised by a speaker's (or a whole recording's) band statistics, "
                       "which single-block inference (ser-predict, ser-listen, ser-serve, ser-export) "
                       "does not compute. Test it with `evaluate.py ckpt=`, which takes the "
                       "statistics from the rebuilt test sets, or train without data.speaker_norm.")
    model = BlockClassifier(hp)
    load_weights(model, ckpt, path)
    model.eval()
    return model, hp


class CheckpointPredictor:
    """A checkpoint behind the :class:`ser.inference.predictor.Predictor` interface.

    ``hp`` stays available (block settings come from it); inference runs under
    ``torch.inference_mode`` so no autograd state is kept between hops of a live stream.
    """

    def __init__(self, model: nn.Module, hp: dict, path: Path, batch_size: int = 64):
        self.model, self.hp, self.path, self.batch_size = model, hp, Path(path), int(batch_size)
        self.classes = list(hp["classes"])
        self.sample_rate, self.block_seconds, self.pad_min_fraction = block_settings(hp)
        # the abstention threshold chosen on the run's validation part (None: never unsure)
        self.min_confidence: float | None = hp.get("min_confidence")

    def predict_blocks(self, blocks: np.ndarray) -> np.ndarray:
        """(N, samples) float32 clean blocks -> (N, C) float32 probabilities."""
        x = torch.as_tensor(np.ascontiguousarray(blocks, np.float32))
        with torch.inference_mode():
            out = [self.model(chunk).float() for chunk in torch.split(x, self.batch_size)]
        return (torch.cat(out) if out else torch.empty(0, len(self.classes))).numpy()


def load_checkpoint_predictor(path: str | Path) -> CheckpointPredictor:
    """A predictor for a ``.ckpt`` file or a run directory (its best checkpoint, else last)."""
    ckpt = find_checkpoint(path)
    model, hp = load_block_classifier(ckpt)
    return CheckpointPredictor(model, hp, ckpt)
