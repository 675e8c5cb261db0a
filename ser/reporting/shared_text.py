"""What is said against how it is said: the test items whose text cannot give the label away.

Acted corpora are often scripted, and some give each emotion its own sentences (ASED's
sentences 03-07 use different words for each emotion; 01-02 are spoken in every emotion). A
model tested on new speakers reading the same sentences can then score by recognising the words,
and a score that rewards it says little about a corpus with other texts. Where a corpus names
each utterance's text (a manifest's ``text`` column), the items whose text is spoken in more
than one class of the pooled test set are scored apart: there only the voice tells the classes
apart.
"""

from __future__ import annotations

import numpy as np

from ser.data.texts import shared_texts
from ser.reporting.predictions import Predictions
from ser.reporting.statistics import scores
from ser.reporting.tables import test_set_label

LEVEL = "shared_text"
SUBSET_NAME = "only texts spoken in more than one class"
LEVEL_NAME = f"block level, {SUBSET_NAME}"


def shared_text_mask(pred: Predictions) -> np.ndarray | None:
    """(N,) bool: items whose non-empty text occurs with at least two true classes in ``pred``
    (one test set's items, pooled over folds); None when ``pred`` names no texts or no text is
    shared, so that the level is left out rather than scored on nothing."""
    if not pred.has_text:
        return None
    text = np.asarray(pred.text).astype(str)
    shared = shared_texts(np.asarray(pred.label).tolist(), text.tolist())
    mask = np.isin(text, sorted(shared))   # shared texts are never empty
    return mask if mask.any() else None


def shared_text_items(pred: Predictions) -> Predictions | None:
    """The items of :func:`shared_text_mask`, or None."""
    mask = shared_text_mask(pred)
    return None if mask is None else pred.select(mask)


def shared_text_ua(pred: Predictions) -> dict[str, float]:
    """Test set -> UA (fraction) of its blocks whose text several classes speak; sets without
    such blocks are left out. One run's figure, beside its UA on every block."""
    out = {}
    for name in dict.fromkeys(pred.test_set.tolist()):
        part = shared_text_items(pred.select(pred.test_set == name).grid())
        if part is not None:
            out[str(name)] = scores(part.label, part.predicted, len(pred.classes))["ua"]
    return out


def shared_text_words(metrics: dict) -> str | None:
    """The end-of-run line on the shared texts' UA per test set (``ua_shared_text`` in
    metrics.json), or None when the corpus names no shared text."""
    found = {name: m["ua_shared_text"] for name, m in metrics.items()
             if isinstance(m, dict) and m.get("ua_shared_text") is not None}
    if not found:
        return None
    return ("UA on the texts spoken in more than one class (where the words cannot give the label "
            "away): " + ", ".join(f"{test_set_label(n)} {100 * v:.1f}" for n, v in found.items()) + ".")
