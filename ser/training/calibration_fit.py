"""Fitting a run's calibration layer (:mod:`ser.models.calibration`) on its validation part.

After training, the best checkpoint's logits on the validation part (speakers held out from
training, clean and at the training SNRs, plus copies at the layer's ``fit_snrs`` mixed with
the validation noise, held out from training) are collected with one validation pass, the layer is fitted to them by
negative log-likelihood, and its fitted numbers are written into that checkpoint
(atomically), so the test sets, ``evaluate.py ckpt=``, ``ser-predict``, the server and the ONNX
export all read calibrated probabilities from it. A layer that reads the network's input
(``uses_images``) gets its context column from the same pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from ser.atomic import write_atomic
from ser.models.calibration_metrics import ece_equal_width, nll, threshold_for_accuracy
from ser.models.gathering import gather_items


def validation_logits(trainer, model, datamodule, ckpt_path: str | None = None,
                      extra_snrs: Sequence[float] = ()) -> list[torch.Tensor]:
    """Columns of every validation item from one validation pass: (N, C) raw logits, (N,)
    labels, block ids, SNRs (dB, inf: clean) and, where the model's calibration layer reads its
    input, (N,) context. ``extra_snrs``: noisy copies (validation noise) added to the part for this
    pass. Under DDP every process's items, each once (a collective: every process calls it), so
    every process fits the same layer."""
    model.validation_logits = []
    datamodule.calibration_snrs = tuple(float(s) for s in extra_snrs)
    try:
        trainer.validate(model, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
        batches = model.validation_logits
    finally:
        model.validation_logits = None
        datamodule.calibration_snrs = ()
    return gather_items(batches, key=(2, 3))   # an item: its block at one SNR


def by_condition(probs: torch.Tensor, labels: torch.Tensor, snrs: torch.Tensor) -> dict[str, float]:
    """NLL of ``probs`` per validation condition ("clean", "15dB", ...)."""
    out = {}
    for snr in sorted(set(snrs.tolist()), reverse=True):
        rows = snrs == snr
        out["clean" if snr == float("inf") else f"{snr:g}dB"] = nll(probs[rows], labels[rows])
    return out


def fit_calibration(trainer, model, datamodule, ckpt_path: str | None = None,
                    selective_accuracy: float | None = None) -> dict | None:
    """Fit ``model.calibration`` on the validation part (the weights of ``ckpt_path`` if given)
    and store it in that checkpoint; returns run.json's ``calibration`` record (None: no layer).

    With ``selective_accuracy`` (e.g. 0.9), the model's own abstention threshold is read off the
    calibrated validation items' risk-coverage curve: the lowest top probability above which
    they were right that often. It is stored as the checkpoint's ``min_confidence``, which
    ``ser-predict``, ``ser-listen``, timelines and the server use unless told otherwise."""
    layer = getattr(model, "calibration", None)
    if layer is None:
        return None
    columns = validation_logits(trainer, model, datamodule, ckpt_path, getattr(layer, "fit_snrs", ()))
    logits, labels, snrs = columns[0], columns[1], columns[3]
    context = columns[4:5] if getattr(layer, "uses_images", False) else []
    before = torch.softmax(logits, 1)
    layer.fit(logits, labels, *context)
    with torch.no_grad():
        after = torch.softmax(layer(logits, *context), 1)
    abstain = None
    if selective_accuracy is not None:
        threshold = threshold_for_accuracy(after, labels, float(selective_accuracy))
        kept = torch.ones(len(labels), dtype=torch.bool) if threshold is None else after.max(1).values >= threshold
        abstain = {"selective_accuracy": float(selective_accuracy), "min_confidence": threshold,
                   "validation_coverage": float(kept.double().mean())}
    if ckpt_path:
        if trainer.is_global_zero:
            store_calibration(Path(ckpt_path), layer, abstain)
        trainer.strategy.barrier()   # the test loads the checkpoint only once it holds the layer
    return {"method": type(layer).__name__, "abstain": abstain, "fitted": layer.describe(), "validation_items": int(len(labels)),
            "validation_nll": {"before": nll(before, labels), "after": nll(after, labels)},
            "validation_ece": {"before": ece_equal_width(before, labels),
                               "after": ece_equal_width(after, labels)},
            "validation_nll_by_condition": {"before": by_condition(before, labels, snrs),
                                            "after": by_condition(after, labels, snrs)}}


def calibration_words(record: dict | None) -> str | None:
    """One line for the end of a run: what the calibration fit did on the validation part and
    the run's own ``unsure`` threshold (None: no layer)."""
    if not record:
        return None
    nll, ece = record["validation_nll"], record["validation_ece"]
    text = (f"Calibration ({record['method']}, fitted on {record['validation_items']} validation items): "
            f"NLL {nll['before']:.3f} -> {nll['after']:.3f}, ECE {ece['before']:.3f} -> {ece['after']:.3f}.")
    abstain = record.get("abstain")
    if abstain:
        level = f"{100 * abstain['selective_accuracy']:g} %"
        text += (" Never unsure: the validation blocks, all of them, were right " + level + " of the time."
                 if abstain["min_confidence"] is None else
                 f" Unsure below a top probability of {abstain['min_confidence']:.2f} (min_confidence=model): "
                 f"the {100 * abstain['validation_coverage']:.0f} % of validation blocks above it were "
                 f"right {level} of the time.")
    return text


def store_calibration(path: Path, layer: torch.nn.Module, abstain: dict | None = None) -> None:
    """Write ``layer``'s buffers into the checkpoint at ``path`` as ``calibration.<name>`` and
    the abstention threshold ``abstain`` chose as its hyper-parameter ``min_confidence``."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    ckpt["state_dict"].update({f"calibration.{k}": v.detach().cpu().clone()
                               for k, v in layer.state_dict().items()})
    if abstain is not None:
        ckpt["hyper_parameters"]["min_confidence"] = abstain["min_confidence"]
    write_atomic(path, lambda f: torch.save(ckpt, f))
