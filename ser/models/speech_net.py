"""A speech encoder with the head the field uses: weighted layer sum, pooling, small MLP.

    (B, T) waveform -> conv feature encoder -> (B, C, F) frames (50 per second)
      -> projection + transformer -> L + 1 hidden states (B, F, D) (``output_hidden_states``)
      -> softmax(w) weighted sum over layers -> mean / attentive pooling over frames -> (B, D)
      -> Linear(D, hidden) -> ReLU -> Dropout -> Linear(hidden, classes)

``model.trainable_from`` says what trains, as it does for the CNNs (the first trained part):
- ``head``: the encoder is frozen and only the layer weights and the MLP learn (the SUPERB
  protocol). The trunk is then the whole encoder; with mean pooling and no layer norm the
  weighted sum commutes with the mean over frames, so the trunk hands on each layer's mean
  (B, L + 1, D), 40 KB a block for a base model, which is what the trunk cache keeps.
- ``encoder``: the transformer layers (and the projection before them) fine-tune at
  ``model.encoder_lr``; the convolutional feature encoder stays frozen, as in every published
  fine-tuning recipe, and is the trunk: (B, 512, 49) frames per 1-s block.
- ``encoder.layers.N``: as ``encoder``, with the transformer layers below N frozen too.

The same object works under :class:`ser.models.module.EmotionClassifier` as a
:class:`ser.models.backbones.TransferNet`: ``trunk``/``tail``/``has_frozen`` for the trunk
cache, ``finetune_stages`` and ``head`` for the parameter groups, ``finetune_lr``.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from torch import nn

from ser.errors import SerError
from ser.models.transfer import frozen_in_chunks
from ser.models.speech_encoders import load_encoder

POOLINGS = ("mean", "attentive")


def _encoded_or_wave(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The feature encoder's forward, taking (B, C, F) frames it made before as they are: the
    tail then feeds trunk-cached frames through the model's own forward (projection, masking,
    encoder, hidden-state capture) exactly as ``transformers`` defines it."""
    return x if x.dim() == 3 else type(self).forward(self, x)


class LayerPoolHead(nn.Module):
    """(B, L + 1, D) pooled or (B, L + 1, F, D) per-frame layer outputs -> (B, classes) logits.

    ``layer_weights`` (L + 1,) are logits: softmax(layer_weights) is the share of each layer,
    what :meth:`layer_shares` reports. ``layer_norm`` normalises each layer's frames over D
    before the sum (s3prl's ``normalize``). ``pooling``: ``mean`` over frames or ``attentive``
    (a learned score per frame, softmax over frames).
    """

    def __init__(self, n_layers: int, dim: int, num_classes: int, hidden: int = 256,
                 dropout: float = 0.1, pooling: str = "mean", layer_norm: bool = False) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise SerError(f"`model.pooling={pooling}` is not a pooling; use one of {', '.join(POOLINGS)}.")
        self.pooling, self.layer_norm, self.dim = pooling, bool(layer_norm), int(dim)
        self.layer_weights = nn.Parameter(torch.zeros(n_layers))
        self.attention = nn.Linear(dim, 1) if pooling == "attentive" else None
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, num_classes))

    @property
    def pooled_trunk(self) -> bool:
        """Whether the layers may be averaged over frames before the head (mean, no norm)."""
        return self.pooling == "mean" and not self.layer_norm

    def layer_shares(self) -> torch.Tensor:
        return torch.softmax(self.layer_weights.detach().float(), dim=0)

    def forward(self, layers: torch.Tensor) -> torch.Tensor:
        if self.layer_norm:
            layers = nn.functional.layer_norm(layers, (self.dim,))
        shares = torch.softmax(self.layer_weights, dim=0).to(layers.dtype)
        mixed = torch.einsum("l,bl...->b...", shares, layers)     # (B, D) or (B, F, D)
        if mixed.dim() == 3:
            if self.attention is not None:
                scores = torch.softmax(self.attention(mixed).squeeze(-1).float(), dim=1)
                mixed = torch.einsum("bf,bfd->bd", scores.to(mixed.dtype), mixed)
            else:
                mixed = mixed.mean(dim=1)
        return self.mlp(mixed)


class SpeechEncoderNet(nn.Module):
    """(B, T) normalised 16 kHz blocks -> (B, classes) logits through a speech encoder."""

    def __init__(self, encoder: nn.Module, head: LayerPoolHead, trainable_from: str = "head",
                 encoder_lr: float | None = None, trunk_chunk: int = 32) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head
        self.trunk_chunk, self.finetune_lr = int(trunk_chunk), encoder_lr
        self.frozen_encoder = trainable_from == "head"
        fe = encoder.feature_extractor
        fe.forward = types.MethodType(_encoded_or_wave, fe)
        first_layer = 0
        if trainable_from.startswith("encoder.layers."):
            first_layer = int(trainable_from.rsplit(".", 1)[1])
        self._frozen_modules: list[nn.Module] = [encoder] if self.frozen_encoder else [fe]
        if not self.frozen_encoder and first_layer > 0:
            self._frozen_modules += [encoder.feature_projection, *self._encoder_input(),
                                     *encoder.encoder.layers[:first_layer]]
        for module in self._frozen_modules:
            for p in module.parameters():
                p.requires_grad_(False)
        masks = float(getattr(encoder.config, "mask_time_prob", 0) or 0) > 0
        if hasattr(encoder, "masked_spec_embed") and (first_layer > 0 or not masks):
            # the mask vector enters below the first trained layer, or never without time masks
            encoder.masked_spec_embed.requires_grad_(False)
        self.first_layer = first_layer
        self.has_frozen = True
        # from_pretrained returns the model in eval mode, and Lightning keeps the modes it finds:
        # without this the fine-tuned layers would train with no dropout and no masks
        self.train()

    def _encoder_input(self) -> list[nn.Module]:
        """The encoder's modules before its first layer: the positional convolution, and the
        layer norm unless the checkpoint applies it after the last layer (``do_stable_layer_norm``,
        the Large models), where it trains with the top layers."""
        enc = self.encoder.encoder
        after = {"layers"} | ({"layer_norm"} if getattr(self.encoder.config, "do_stable_layer_norm", False) else set())
        return [m for name, m in enc.named_children() if name not in after]

    def finetune_stages(self) -> list[tuple[str, nn.Module]]:
        """The trained encoder parts, lowest first: one stage each for the optimiser's
        ``layer_decay`` (the projection and positional convolution with the lowest layer)."""
        if self.frozen_encoder:
            return []
        enc = self.encoder
        first = nn.ModuleList([enc.feature_projection, *self._encoder_input()])
        if hasattr(enc, "masked_spec_embed"):
            first.append(nn.ParameterList([enc.masked_spec_embed]))
        layers: list[nn.Module] = list(enc.encoder.layers)
        if getattr(enc.config, "do_stable_layer_norm", False):  # its layer norm follows the top layer
            layers[-1] = nn.ModuleList([layers[-1], enc.encoder.layer_norm])
        stages: list[tuple[str, nn.Module]] = []
        for i, layer in enumerate(layers):
            if i < self.first_layer:
                continue
            if i == self.first_layer:
                layer = nn.ModuleList([first, layer])
            stages.append((f"layers.{i}", layer))
        return stages

    def train(self, mode: bool = True) -> "SpeechEncoderNet":
        super().train(mode)
        for module in self._frozen_modules:
            module.eval()  # frozen dropout behaves as in inference; no masking in a frozen encoder
        return self

    def layer_states(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, T) blocks or (B, C, F) feature-encoder frames -> (B, L + 1, F, D) hidden states,
        the ``output_hidden_states`` of the ``transformers`` model, stacked."""
        out = self.encoder(inputs, output_hidden_states=True)
        return torch.stack(tuple(out.hidden_states), dim=1)

    def _trunk_part(self, blocks: torch.Tensor) -> torch.Tensor:
        if not self.frozen_encoder:
            return self.encoder.feature_extractor(blocks)
        states = self.layer_states(blocks)
        return states.mean(dim=2) if self.head.pooled_trunk else states

    def trunk(self, blocks: torch.Tensor) -> torch.Tensor:
        """The frozen part's output (what the trunk cache keeps), in chunks on the CPU:
        (B, L + 1, D) layer means or (B, L + 1, F, D) states (frozen encoder), or the
        (B, C, F) feature-encoder frames (fine-tuning)."""
        return frozen_in_chunks(self._trunk_part, blocks, self.trunk_chunk)

    def tail(self, features: torch.Tensor) -> torch.Tensor:
        if self.frozen_encoder:
            return self.head(features)
        return self.head(self.layer_states(features))

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        return self.tail(self.trunk(blocks))


def build_speech_encoder_net(num_classes: int, family: str, pretrained: Any = True,
                             trainable_from: str = "head", pooling: str = "mean",
                             head_hidden: int = 256, head_dropout: float = 0.1,
                             layer_norm: bool = False, encoder_lr: float | None = None,
                             mask_time_prob: float | None = None,
                             mask_feature_prob: float | None = None, trunk_chunk: int = 32,
                             gradient_checkpointing: bool = False,
                             encoder_config: dict | None = None, **ignored: Any
                             ) -> SpeechEncoderNet:
    """``conf/model/{wavlm,hubert,wav2vec2}.yaml`` -> the network (``_target_`` of those files).

    ``mask_time_prob``/``mask_feature_prob`` override the checkpoint's config (null keeps it):
    the encoder's own SpecAugment, applied only while fine-tuning. LayerDrop is always off
    (the checkpoints' 0.1 included): a skipped layer hands the weighted sum no hidden state, so
    the head would see fewer layers than it weighs, and under DDP its parameters would get no
    gradient. ``encoder_config`` (the architecture, saved in every checkpoint) rebuilds the
    network without its weights' source. ``ignored`` takes the keys meant for the
    LightningModule (``name``, ``channels_last``, ``compile``) and the ``layerdrop`` of older
    configs (0 there unless set by hand).
    ``gradient_checkpointing`` recomputes the fine-tuned layers' activations in the backward
    pass instead of keeping them: about a third more compute for a fraction of the activation
    memory (large models, long batches on a GPU).
    """
    valid = ("head", "encoder")
    if trainable_from not in valid and not (trainable_from.startswith("encoder.layers.")
                                            and trainable_from.rsplit(".", 1)[1].isdigit()):
        raise SerError(f"`model.trainable_from={trainable_from}` is not a part of a speech "
                       "encoder: use head (frozen encoder, the SUPERB protocol), encoder "
                       "(transformer fine-tuned, convolutional feature encoder frozen) or "
                       "encoder.layers.N (layers below N frozen too).")
    overrides = {"layerdrop": 0.0, "mask_time_prob": mask_time_prob,
                 "mask_feature_prob": mask_feature_prob}
    encoder = load_encoder(family, pretrained, encoder_config, overrides)
    if float(getattr(encoder.config, "mask_feature_prob", 0) or 0) > 0 \
            and not hasattr(encoder.config, "mask_feature_min_masks"):
        encoder.config.mask_feature_min_masks = 0  # WavLM's config lacks what its channel masking reads
    n_hidden = int(encoder.config.num_hidden_layers)
    if trainable_from.startswith("encoder.layers.") and int(trainable_from.rsplit(".", 1)[1]) >= n_hidden:
        raise SerError(f"`model.trainable_from={trainable_from}`: this encoder has layers "
                       f"0-{n_hidden - 1}.")
    head = LayerPoolHead(n_hidden + 1, int(encoder.config.hidden_size), num_classes,
                         int(head_hidden), float(head_dropout), pooling, bool(layer_norm))
    if gradient_checkpointing and trainable_from != "head":
        encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return SpeechEncoderNet(encoder, head, trainable_from, encoder_lr, trunk_chunk)
