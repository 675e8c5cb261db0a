"""An adversarial speaker head: training that makes the emotion embedding speaker-blind.

A network fine-tuned on a few dozen voices learns them: its embedding tells speakers apart as
well as emotions, and on new speakers the part it spent on voices is wasted or misleads. A
small head learns to name the *training* speaker from the embedding, through a gradient
reversal layer (Ganin & Lempitsky 2015): the head gets better at naming speakers while the
network below is pushed, by the reversed gradient, towards an embedding from which no speaker
can be named. The reversal's weight ramps from 0 to ``weight`` over the run (Ganin's schedule
2 / (1 + exp(-10 p)) - 1 of the training progress p), so the emotion head learns first.

Used by :class:`ser.models.module.EmotionClassifier` when ``optim.speaker_adversary`` is set;
only training uses it: checkpoints keep the head (a resumed run goes on with it), the ONNX
graph and predictions never run it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ser.errors import SerError


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient times ``-scale`` backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` unchanged; gradients flowing back through it are multiplied by ``-scale``."""
    return _ReverseGradient.apply(x, float(scale))


def ramp(progress: float, weight: float) -> float:
    """Ganin's schedule: 0 at the start of training, ~``weight`` from about half-way."""
    p = min(max(float(progress), 0.0), 1.0)
    return float(weight) * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)


class SpeakerAdversary(nn.Module):
    """(B, D) embeddings -> (B, n_speakers) speaker logits behind a gradient reversal.

    ``hidden`` units in one ReLU layer (0: a linear head). ``weight`` is the reversal's full
    scale (the ramp's end); the speaker head itself learns at full rate.
    """

    def __init__(self, dim: int, n_speakers: int, weight: float = 0.1, hidden: int = 256,
                 dropout: float = 0.2) -> None:
        super().__init__()
        if n_speakers < 2:
            raise SerError(f"optim.speaker_adversary needs at least 2 training speakers to tell "
                           f"apart, but the training part has {n_speakers}. Set "
                           "optim.speaker_adversary=null for this corpus.")
        self.weight = float(weight)
        layers: list[nn.Module] = [nn.Dropout(float(dropout))]
        if int(hidden) > 0:
            layers += [nn.Linear(dim, int(hidden)), nn.ReLU(), nn.Linear(int(hidden), n_speakers)]
        else:
            layers.append(nn.Linear(dim, n_speakers))
        self.classify = nn.Sequential(*layers)

    def forward(self, embedding: torch.Tensor, progress: float) -> torch.Tensor:
        return self.classify(reverse_gradient(embedding, ramp(progress, self.weight)))


def embedding_dim(net: nn.Module) -> int:
    """The width of the embedding the emotion head reads: its ``in_features``. Only networks
    whose head is one ``nn.Linear`` on the fine-tuned stages' output have one to share."""
    head = getattr(net, "head", None)
    if not isinstance(head, nn.Linear) or not hasattr(net, "embed"):
        raise SerError(f"optim.speaker_adversary reads the embedding below a linear emotion head, "
                       f"and {type(net).__name__} has none (the ImageNet CNNs have one; the speech "
                       "encoders' layer-weighted head does not). Set optim.speaker_adversary=null.")
    return int(head.in_features)


def speaker_index(utterance_speakers: list[str], train_utterances: set[int]) -> tuple[torch.Tensor, list[str]]:
    """(n_utt,) speaker number of each utterance among the training speakers (-1 for the
    others), and those speakers' names in that order."""
    names = sorted({utterance_speakers[u] for u in train_utterances})
    number = {s: i for i, s in enumerate(names)}
    index = torch.tensor([number.get(s, -1) for s in utterance_speakers], dtype=torch.long)
    return index, names
