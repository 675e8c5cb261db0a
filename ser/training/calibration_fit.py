"""Fitting a run's calibration layer (:mod:`ser.models.calibration`) on its validation part.

After training, the best checkpoint's logits on the validation part (speakers held out from
training, clean and at the training SNRs) are collected with one validation pass, the layer is
fitted to them by negative log-likelihood, and its fitted numbers are written into that
checkpoint (atomically), so the test sets, ``evaluate.py ckpt=``, ``ser-predict``, the server
and the ONNX export all read calibrated probabilities from it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ser.atomic import write_atomic
from ser.models.calibration_metrics import ece_equal_width, nll


def validation_logits(trainer, model, datamodule, ckpt_path: str | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C) raw logits and (N,) labels of every validation item, from one validation pass;
    under DDP every process's items, each once (a collective: every process calls it), so
    every process fits the same layer."""
    from ser.models.module import gather_items

    model.validation_logits = []
    try:
        trainer.validate(model, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
        batches = model.validation_logits
    finally:
        model.validation_logits = None
    logits, labels, _, _ = gather_items(batches, key=(2, 3))   # an item: its block at one SNR
    return logits, labels


def fit_calibration(trainer, model, datamodule, ckpt_path: str | None = None) -> dict | None:
    """Fit ``model.calibration`` on the validation part (the weights of ``ckpt_path`` if given)
    and store it in that checkpoint; returns run.json's ``calibration`` record (None: no layer)."""
    layer = getattr(model, "calibration", None)
    if layer is None:
        return None
    logits, labels = validation_logits(trainer, model, datamodule, ckpt_path)
    before = torch.softmax(logits, 1)
    layer.fit(logits, labels)
    with torch.no_grad():
        after = torch.softmax(layer(logits), 1)
    if ckpt_path:
        if trainer.is_global_zero:
            store_calibration(Path(ckpt_path), layer)
        trainer.strategy.barrier()   # the test loads the checkpoint only once it holds the layer
    return {"method": type(layer).__name__, "fitted": layer.describe(), "validation_items": int(len(labels)),
            "validation_nll": {"before": nll(before, labels), "after": nll(after, labels)},
            "validation_ece": {"before": ece_equal_width(before, labels),
                               "after": ece_equal_width(after, labels)}}


def store_calibration(path: Path, layer: torch.nn.Module) -> None:
    """Write ``layer``'s buffers into the checkpoint at ``path`` as ``calibration.<name>``."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    ckpt["state_dict"].update({f"calibration.{k}": v.detach().cpu().clone()
                               for k, v in layer.state_dict().items()})
    write_atomic(path, lambda f: torch.save(ckpt, f))
