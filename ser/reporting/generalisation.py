"""How far a run's validation score is from its score on the test speakers.

Every choice a run makes (its checkpoint, when it stops, the SVM's C) is made on the validation
UA, so that score is only a good guide when it predicts the test UA on the same conditions
(the clean blocks and the training SNRs' copies, :func:`matching_test_sets`). A large positive gap
(validation well above test) says the validation part shares what the model learned besides
emotion: the training speakers' voices, or a scripted corpus's sentences.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ser.data.snr_levels import snr_name, training_snrs


def matching_test_sets(snr: Any = "clean", all_snrs: Sequence[float] = (15, 20, 40)) -> list[str]:
    """The test sets in the validation part's conditions: it holds the clean blocks and a copy
    at each training SNR (``snr=all``: clean, 15, 20 and 40 dB), so its UA is compared with the
    mean of the same test sets on the test speakers."""
    try:
        return ["clean", *[snr_name(s) for s in training_snrs(snr, list(all_snrs))]]
    except Exception:  # an unreadable setting of an old run: the clean set alone
        return ["clean"]


def validation_gap(validation_ua: float | None, metrics: Mapping[str, Mapping[str, Any]],
                   validation: str | None = None,
                   test_sets: Sequence[str] = ("clean",)) -> dict[str, Any] | None:
    """``{"validation_ua", "test_sets", "test_ua", "gap", "validation"}`` (UA as fractions; test_ua
    the mean over ``test_sets`` that the run has; gap = validation - test), or None without a
    validation score or any of those test sets. ``validation`` says what the validation part
    held (``speakers`` or ``utterances``)."""
    present = [t for t in test_sets if (metrics.get(t) or {}).get("ua") is not None]
    if validation_ua is None or not present:
        return None
    test_ua = sum(float(metrics[t]["ua"]) for t in present) / len(present)
    return {"validation_ua": float(validation_ua), "test_sets": present, "test_ua": test_ua,
            "gap": float(validation_ua) - test_ua, "validation": validation}


def gap_words(gap: Mapping[str, Any] | None) -> str:
    """One line for the end of a run: the two scores and their difference, in points."""
    if not gap:
        return "Validation vs test: no validation score or no clean test set to compare."
    held = {"speakers": "speakers held out from training",
            "utterances": "utterances of the training speakers"}.get(gap.get("validation") or "", "")
    sets = gap.get("test_sets") or [gap.get("test_set", "clean")]
    where = sets[0] if len(sets) == 1 else "mean " + "/".join(sets)
    return (f"Validation UA {100 * gap['validation_ua']:.1f}"
            f"{f' ({held})' if held else ''} vs test UA {100 * gap['test_ua']:.1f} "
            f"({where}, the validation part's conditions): gap {100 * gap['gap']:+.1f} points.")
