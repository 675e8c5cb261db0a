"""Names of test sets, shared by the data module that makes them and the reports that read them.

A run's own corpus gives ``clean``, ``0dB`` ... ; another corpus tested whole
(``+data.test_corpora``) gives ``<corpus>/clean``, ``<corpus>/0dB`` ... . The slash is the one
mark of another corpus's test set: pooling counts such an utterance once per fold model, and the
robustness summary and headline figures keep to the run's own corpus.
"""

from __future__ import annotations

SEPARATOR = "/"


def corpus_set_name(corpus: str, own_name: str) -> str:
    """``("urdu", "0dB")`` -> ``urdu/0dB``: another corpus's copy of an own test set."""
    return f"{corpus}{SEPARATOR}{own_name}"


def other_corpus(name: str) -> str | None:
    """The other corpus a test set belongs to (``urdu/0dB`` -> ``urdu``), None for the run's own."""
    corpus, sep, _ = str(name).partition(SEPARATOR)
    return corpus if sep else None


def is_own_set(name: str) -> bool:
    """True for the run's own corpus's test sets (``clean``, ``0dB``), False for ``urdu/0dB``."""
    return other_corpus(name) is None
