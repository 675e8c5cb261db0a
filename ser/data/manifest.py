"""Any corpus described by a CSV manifest → :class:`UtteranceTable`.

The manifest has the columns ``path,label`` and optionally ``speaker,session,split,text``
(``text``: what was said, a transcript or a sentence id; reports score apart the items whose
text is spoken in more than one class). Relative
paths are resolved against the manifest's own folder, so a corpus folder can be moved as a
whole. Labels are canonicalised (stripped, lower-case) so "Angry " and "angry" are one class.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ser.audio.io import audio_duration
from ser.data.utterances import Utterance, UtteranceTable
from ser.errors import SerError

REQUIRED_COLUMNS = ("path", "label")
OPTIONAL_COLUMNS = ("speaker", "session", "split", "text")


def canonical_label(label: str) -> str:
    """The class name a raw label stands for: stripped and lower-cased."""
    return label.strip().lower()


def read_manifest(manifest: str | Path, classes: list[str] | None = None,
                  name: str | None = None) -> UtteranceTable:
    """Read the CSV file ``manifest`` into a table whose class order is ``classes`` (default: sorted labels).

    When ``classes`` is given, rows with other labels are left out (e.g. RAVDESS's "calm" for a
    four-class run). Rows whose audio file is missing are left out and listed in
    ``table.missing``. A missing speaker column gives speaker "" for every row: block and
    utterance splits work, speaker-independent folds refuse the table with their own message.
    Durations (seconds) come from the audio headers. ``conf/dataset/manifest.yaml`` names it
    (``dataset.manifest``, ``dataset.classes``); ``name`` defaults to the CSV's folder name.
    """
    csv_path = Path(manifest)
    if not csv_path.is_file():
        raise SerError(f"Manifest {csv_path} does not exist. Expected a CSV with columns "
                       "path,label (optional speaker,session,split,text); set dataset.manifest=PATH "
                       "to an existing file.")
    folder = csv_path.resolve().parent
    rows = _read_rows(csv_path)
    wanted = [canonical_label(c) for c in classes] if classes is not None else None
    utterances: list[Utterance] = []
    missing: list[str] = []
    for number, row in rows:
        label = canonical_label(row["label"])
        if wanted is not None and label not in wanted:
            continue
        relative = row["path"].strip()
        if not relative or not label:
            raise SerError(f"{csv_path}:{number}: empty path or label. Every row needs both; "
                           "fill them in or delete the row.")
        audio = Path(relative) if Path(relative).is_absolute() else folder / relative
        if not audio.is_file():
            missing.append(str(audio))
            continue
        utterances.append(Utterance(
            id=Path(relative).with_suffix("").as_posix(), path=str(audio.resolve()), label=label,
            speaker=(row.get("speaker") or "").strip(), session=(row.get("session") or "").strip(),
            duration=audio_duration(audio), split=(row.get("split") or "").strip(),
            text=(row.get("text") or "").strip()))
    if not utterances:
        found = (f"none of its {len(missing)} audio files exist (e.g. {missing[0]})" if missing
                 else f"no row has a label among {wanted}")
        raise SerError(f"Manifest {csv_path} yields no utterances: {found}. Paths are resolved "
                       f"against {folder}; fix the paths or labels, or the dataset.classes list.")
    labels_found = {u.label for u in utterances}
    order = wanted if wanted is not None else sorted(labels_found)
    empty = [c for c in order if c not in labels_found]
    if empty:
        raise SerError(f"Manifest {csv_path} has no usable row for the classes {empty} (found "
                       f"{sorted(labels_found)}). Fix the labels in the manifest or the "
                       "dataset.classes list.")
    return UtteranceTable(name=name or csv_path.parent.name, classes=order,
                          utterances=utterances, missing=missing)


def _read_rows(csv_path: Path) -> list[tuple[int, dict[str, str]]]:
    """``(line_number, row)`` pairs with lower-cased column names, checked for the required ones."""
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        absent = [c for c in REQUIRED_COLUMNS if c not in header]
        if absent:
            raise SerError(f"Manifest {csv_path} lacks the column(s) {absent} (header: {header}). "
                           "Expected a first line like 'path,label,speaker' naming at least "
                           "path and label.")
        reader.fieldnames = header
        rows = [(reader.line_num, {k: v or "" for k, v in row.items() if k is not None})
                for row in reader]
    if not rows:
        raise SerError(f"Manifest {csv_path} has a header but no rows; add one row per audio "
                       "file (path,label,...).")
    return rows
