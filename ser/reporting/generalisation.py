"""How far a run's validation score is from its score on the test speakers.

Every choice a run makes (its checkpoint, when it stops, the SVM's C) is made on the validation
UA, so that score is only a good guide when it predicts the test UA. A large positive gap
(validation well above test) says the validation part shares what the model learned besides
emotion: the training speakers' voices, or a scripted corpus's sentences.
"""

from __future__ import annotations

from typing import Any, Mapping

# the test set a validation part is compared with: validation holds clean and training-SNR
# copies, so the clean test set is its closest counterpart
GAP_TEST_SET = "clean"


def validation_gap(validation_ua: float | None, metrics: Mapping[str, Mapping[str, Any]],
                   validation: str | None = None) -> dict[str, Any] | None:
    """``{"validation_ua", "test_set", "test_ua", "gap", "validation"}`` (UA as fractions; gap =
    validation - test), or None without a validation score or a clean test set.
    ``validation`` says what the validation part held (``speakers`` or ``utterances``)."""
    test = metrics.get(GAP_TEST_SET)
    if validation_ua is None or not test or test.get("ua") is None:
        return None
    return {"validation_ua": float(validation_ua), "test_set": GAP_TEST_SET,
            "test_ua": float(test["ua"]), "gap": float(validation_ua) - float(test["ua"]),
            "validation": validation}


def gap_words(gap: Mapping[str, Any] | None) -> str:
    """One line for the end of a run: the two scores and their difference, in points."""
    if not gap:
        return "Validation vs test: no validation score or no clean test set to compare."
    held = {"speakers": "speakers held out from training",
            "utterances": "utterances of the training speakers"}.get(gap.get("validation") or "", "")
    return (f"Validation UA {100 * gap['validation_ua']:.1f}"
            f"{f' ({held})' if held else ''} vs {gap['test_set']} test UA "
            f"{100 * gap['test_ua']:.1f}: gap {100 * gap['gap']:+.1f} points.")
