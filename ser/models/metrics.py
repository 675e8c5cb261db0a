"""The paper's metrics and the field's: accuracy (WA), UA, weighted and macro scores, votes.

The paper's "UAcc" is plain accuracy (what the field calls weighted accuracy, WA); the field's
headline is UA, the unweighted mean of per-class recalls, which is what class imbalance hurts.
UA and macro F1 average over the classes present in the target: a class a speaker-independent
fold never tests has no recall, and predicting it is already paid for in the others' recalls
(averaging it in as 0 would punish a fold for its speakers, not the model).
"""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from ser.models.calibration_metrics import calibration_metrics


def block_metrics(preds: torch.Tensor, target: torch.Tensor, num_classes: int) -> dict:
    """Metrics of predicted class ids ``preds`` (N,) against ``target`` (N,), fractions in [0, 1]."""
    kw = dict(num_classes=num_classes)
    present = torch.bincount(target.long(), minlength=num_classes) > 0
    recall = multiclass_recall(preds, target, average="none", **kw)
    f1 = multiclass_f1_score(preds, target, average="none", **kw)
    return {
        "accuracy": float(multiclass_accuracy(preds, target, average="micro", **kw)),
        "ua": float(recall[present].mean()) if present.any() else 0.0,
        "weighted_precision": float(multiclass_precision(preds, target, average="weighted", **kw)),
        "weighted_recall": float(multiclass_recall(preds, target, average="weighted", **kw)),
        "weighted_f1": float(multiclass_f1_score(preds, target, average="weighted", **kw)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "confusion_matrix": multiclass_confusion_matrix(preds, target, **kw).tolist(),
        "n_blocks": int(target.numel()),
    }


def utterance_votes(probs: torch.Tensor, target: torch.Tensor,
                    utterance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted, true) class per utterance: its blocks vote, ties broken by summed probability.

    ``probs`` (N, C) per block; ``target`` and ``utterance`` (N,). Returns two (U,) tensors.
    """
    ids, inverse = torch.unique(utterance, return_inverse=True)
    num_classes = probs.shape[1]
    votes = torch.zeros(len(ids), num_classes, dtype=torch.float64)
    votes.index_add_(0, inverse, torch.nn.functional.one_hot(probs.argmax(1), num_classes).double())
    mass = torch.zeros(len(ids), num_classes, dtype=torch.float64).index_add_(0, inverse, probs.double())
    # a vote counts 1; summed probability (< number of blocks) only breaks ties
    score = votes * (probs.shape[0] + 1) + mass
    true = torch.zeros(len(ids), dtype=torch.long).scatter_(0, inverse, target.long())
    return score.argmax(1), true


def score_test_set(probs: torch.Tensor, target: torch.Tensor, utterance: torch.Tensor,
                   offset: torch.Tensor | None = None) -> dict:
    """Every reported metric of one test set from per-item class probabilities (N, C): the
    classification metrics and the calibration ones (:mod:`ser.models.calibration_metrics`).

    ``offset`` (N,), samples each item's window starts after its block's start
    (``data.test_hop``): block metrics are of the grid blocks (offset 0) alone, so they do not
    change with the windows; utterance votes count every item."""
    num_classes = probs.shape[1]
    grid = None if offset is None else torch.as_tensor(offset) == 0
    if grid is None or bool(grid.all()):
        result = block_metrics(probs.argmax(1), target, num_classes)
    else:
        result = block_metrics(probs[grid].argmax(1), target[grid], num_classes)
    result["n_windows"] = 0 if grid is None else int((~grid).sum())
    # how far the stated confidence is from the accuracy, and what abstaining buys (grid blocks)
    on_grid = (probs, target) if grid is None or bool(grid.all()) else (probs[grid], target[grid])
    result.update(calibration_metrics(*on_grid))
    utt_pred, utt_true = utterance_votes(probs, target, utterance)
    result["utterance_accuracy"] = float((utt_pred == utt_true).double().mean())
    result["n_utterances"] = int(utt_true.numel())
    return result
