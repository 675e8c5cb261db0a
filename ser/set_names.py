"""Names of test sets, shared by the data module that makes them and the reports that read them.

A run's own corpus gives ``clean``, ``0dB`` ... ; another corpus tested whole
(``+data.test_corpora``) gives ``<corpus>/clean``, ``<corpus>/0dB`` ... . The slash is the one
mark of another corpus's test set: pooling counts such an utterance once per fold model, and the
robustness summary and headline figures keep to the run's own corpus.
"""

from __future__ import annotations

from typing import Iterable, Mapping

SEPARATOR = "/"


def corpus_set_name(corpus: str, own_name: str) -> str:
    """``("urdu", "0dB")`` -> ``urdu/0dB``: another corpus's copy of an own test set."""
    return f"{corpus}{SEPARATOR}{own_name}"


def other_corpus(name: str) -> str | None:
    """The other corpus a test set belongs to (``urdu/0dB`` -> ``urdu``), None for the run's own."""
    corpus, sep, _ = str(name).partition(SEPARATOR)
    return corpus if sep else None


def recorded_test_sets(records: Iterable[Mapping]) -> dict[str, dict]:
    """Test set name -> ``{"corpus", "condition"}`` as runs recorded them (run.json
    ``test_set_details``, written from :class:`ser.data.test_sets.TestSet`). Reports read a test
    set's corpus and condition here; a run from before it recorded them is read off the name,
    the form its sets had then (``urdu/0dB``: corpus urdu, condition 0dB)."""
    found: dict[str, dict] = {}
    for record in records:
        for name in record.get("test_sets") or []:
            corpus = other_corpus(name)
            found.setdefault(str(name), {"corpus": corpus,
                                         "condition": name[len(corpus) + 1:] if corpus else name})
        for detail in record.get("test_set_details") or []:
            found[str(detail["name"])] = {"corpus": detail.get("corpus"), "condition": detail.get("condition")}
    return found


def condition(name: str, recorded: Mapping[str, dict] | None = None) -> str:
    """A test set's condition (``clean``, ``0dB``; ``urdu/0dB`` -> ``0dB``): as ``recorded``
    (:func:`recorded_test_sets`) says, else read off the name."""
    if recorded is not None and name in recorded:
        return str(recorded[name]["condition"])
    corpus = other_corpus(name)
    return str(name)[len(corpus) + 1:] if corpus else str(name)


def is_own_set(name: str, recorded: Mapping[str, dict] | None = None) -> bool:
    """True for a test set of the run's own corpus (``clean``, ``0dB``), False for another
    corpus's (``urdu/0dB``): as ``recorded`` (:func:`recorded_test_sets`) says, else by name."""
    if recorded is not None and name in recorded:
        return recorded[name]["corpus"] is None
    return other_corpus(name) is None
