"""The utterance table: the one plain format every corpus reader produces.

Readers (IEMOCAP, a CSV manifest, the generated demo corpus) turn a release layout into an
:class:`UtteranceTable` once; everything downstream (blocks, folds, reports) reads only that
table, so adding a corpus never touches training code.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ser.errors import SerError

CSV_COLUMNS = ("id", "path", "label", "speaker", "session", "duration", "split", "text")


@dataclass(frozen=True)
class Utterance:
    """One recording with its emotion label.

    ``path`` is absolute; ``label`` is the canonical class name (one of the table's classes);
    ``speaker`` and ``session`` are "" when the corpus does not say (speaker-independent folds
    then refuse the table); ``duration`` is in seconds, NaN when unknown; ``split`` is a
    corpus-defined split name ("" when the corpus defines none); ``text`` names what was said
    (a transcript or a sentence id; "" when unknown): a text spoken in more than one class cannot
    give the label away, so reports score those items apart (:mod:`ser.reporting.shared_text`).
    """

    id: str
    path: str
    label: str
    speaker: str
    session: str
    duration: float
    split: str = ""
    text: str = ""


@dataclass
class UtteranceTable:
    """An ordered list of utterances plus the class order (list index = class id).

    ``missing`` holds the audio paths a reader expected but did not find; they are left out of
    ``utterances`` and reported, rather than stopping the run.
    """

    name: str
    classes: list[str]
    utterances: list[Utterance]
    missing: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.utterances)

    def class_index(self, label: str) -> int:
        """Class id of ``label`` (its position in :attr:`classes`)."""
        return self.classes.index(label)

    def label_counts(self) -> dict[str, int]:
        """Utterances per class, in class order (classes without utterances count 0)."""
        counts = Counter(u.label for u in self.utterances)
        return {c: counts.get(c, 0) for c in self.classes}

    def speakers(self) -> list[str]:
        """Sorted distinct non-empty speaker names."""
        return sorted({u.speaker for u in self.utterances if u.speaker})

    def fingerprint(self) -> str:
        """SHA-1 over classes and each utterance's id, path, label, speaker, size and mtime.

        Caches of derived data (blocks) are keyed by it, so renaming, relabelling, adding or
        re-encoding a file invalidates them; a missing file hashes as size -1.
        """
        digest = hashlib.sha1()
        digest.update(("\x1f".join(self.classes) + "\x1e").encode())
        for u in self.utterances:
            try:
                stat = os.stat(u.path)
                size, mtime = stat.st_size, stat.st_mtime_ns
            except OSError:
                size, mtime = -1, -1
            digest.update(f"{u.id}\x1f{u.path}\x1f{u.label}\x1f{u.speaker}\x1f{size}\x1f{mtime}\x1e"
                          .encode())
        return digest.hexdigest()

    def to_csv(self, path: str | Path) -> None:
        """Write the table as CSV with columns ``id,path,label,speaker,session,duration,split,text``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for u in self.utterances:
                writer.writerow([u.id, u.path, u.label, u.speaker, u.session, repr(u.duration),
                                 u.split, u.text])

    @classmethod
    def from_csv(cls, path: str | Path, name: str,
                 classes: list[str] | None = None) -> "UtteranceTable":
        """Read a table written by :meth:`to_csv` (classes default to the sorted labels)."""
        path = Path(path)
        if not path.is_file():
            raise SerError(f"Utterance table {path} does not exist. Write it with "
                           "UtteranceTable.to_csv or point to an existing table.")
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            absent = [c for c in CSV_COLUMNS[:-2] if c not in (reader.fieldnames or [])]
            if absent:
                raise SerError(f"Utterance table {path} lacks the columns {absent}; expected the "
                               f"header {','.join(CSV_COLUMNS)} as written by "
                               "UtteranceTable.to_csv.")
            utterances = [Utterance(id=row["id"], path=row["path"], label=row["label"],
                                    speaker=row["speaker"], session=row["session"],
                                    duration=float(row["duration"] or "nan"),
                                    split=row.get("split") or "", text=row.get("text") or "")
                          for row in reader]
        labels = sorted({u.label for u in utterances})
        classes = list(classes) if classes is not None else labels
        unknown = sorted(set(labels) - set(classes))
        if unknown:
            raise SerError(f"Utterance table {path} holds labels {unknown} that are not among the "
                           f"classes {classes}; add them to the classes or drop those rows.")
        return cls(name=name, classes=classes, utterances=utterances)
