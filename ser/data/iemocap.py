"""IEMOCAP release layout → :class:`UtteranceTable`.

Labels come from ``Session{1..5}/dialog/EmoEvaluation/*.txt``, whose label lines read
``[start - end]<TAB>utt_id<TAB>label<TAB>[v, a, d]``; the same files hold a ``%`` header, blank
lines and one line per annotator (``C-E1:``, ``A-F1:`` ...), which are skipped. Audio lives at
``Session{n}/sentences/wav/<dialog>/<utt_id>.wav`` with ``dialog`` = ``utt_id`` minus its last
turn part (``_F000``, ``_M013``).

Speakers: in ``Ses01F_impro01_M013`` the prefix ``Ses01F`` names the session (1) and the
speaker who *opened the dialog*; the speaker of this turn is the gender letter of the last part
(``M013`` → M). Each session has one female and one male actor, so the utterance's speaker is
session + that letter: "1M".
"""

from __future__ import annotations

import re
from pathlib import Path

from ser.data.utterances import Utterance, UtteranceTable
from ser.errors import SerError

# Label map and whether only improvised dialogs count, per variant.
VARIANTS: dict[str, tuple[dict[str, str], bool]] = {
    "ahsn": ({"ang": "anger", "hap": "happy", "sad": "sad", "neu": "neutral"}, True),
    "aesn": ({"ang": "anger", "exc": "excitement", "sad": "sad", "neu": "neutral"}, True),
    # The community's 4-class benchmark: scripted + improvised, excitement merged into happy.
    "iemocap4": ({"ang": "anger", "hap": "happy", "exc": "happy", "sad": "sad",
                  "neu": "neutral"}, False),
}
VARIANT_CLASSES = {
    "ahsn": ["anger", "happy", "sad", "neutral"],
    "aesn": ["anger", "excitement", "sad", "neutral"],
    "iemocap4": ["anger", "happy", "sad", "neutral"],
}

_NUMBER = r"(\d+(?:\.\d*)?)"
_LABEL_LINE = re.compile(rf"^\[\s*{_NUMBER}\s*-\s*{_NUMBER}\s*\]\s+(\S+)\s+(\S+)\s+\[.*\]$")
_ANNOTATOR_LINE = re.compile(r"^[A-Z]+-[A-Z]+\d*\s*:")
_UTTERANCE_ID = re.compile(r"^Ses(\d\d)[FM]_\S+_([FM])\d+$")
_EXPECTED_LAYOUT = ("IEMOCAP_full_release/Session1/dialog/EmoEvaluation/*.txt ... Session5/... "
                    "with audio in "
                    "IEMOCAP_full_release/Session1/sentences/wav/<dialog>/<utt_id>.wav")


def read_iemocap(root: str | Path, variant: str = "ahsn") -> UtteranceTable:
    """Read an ``IEMOCAP_full_release`` folder as the ``variant`` class set.

    ``root`` is the release folder (the one holding ``Session1`` ...) or its parent. Utterances
    whose label is outside the variant are left out; those whose wav is missing are left out and
    listed in ``table.missing`` (a :class:`SerError` only when every wav is missing).
    """
    if variant not in VARIANTS:
        raise SerError(f"Unknown IEMOCAP variant {variant!r}; choose one of {sorted(VARIANTS)} "
                       "(e.g. dataset.variant=ahsn, or pick dataset=ahsn|aesn|iemocap4).")
    label_map, improvised_only = VARIANTS[variant]
    release = _find_release(Path(root))
    utterances: list[Utterance] = []
    missing: list[str] = []
    for session_dir in sorted(release.glob("Session[1-5]")):
        for label_file in _label_files(session_dir):
            for number, utt_id, raw_label, duration in _parse_label_file(label_file):
                if (improvised_only and "impro" not in utt_id) or raw_label not in label_map:
                    continue
                session, speaker = _session_and_speaker(utt_id, f"{label_file}:{number}")
                dialog = utt_id.rsplit("_", 1)[0]
                wav = session_dir / "sentences" / "wav" / dialog / f"{utt_id}.wav"
                if not wav.is_file():
                    missing.append(str(wav))
                    continue
                utterances.append(Utterance(id=utt_id, path=str(wav.resolve()),
                                            label=label_map[raw_label], speaker=speaker,
                                            session=session, duration=duration))
    if not utterances and missing:
        raise SerError(f"IEMOCAP at {release}: none of the {len(missing)} {variant} utterances' "
                       f"audio was found (e.g. {missing[0]}). Expected {_EXPECTED_LAYOUT}; set "
                       "dataset.root=PATH to a complete copy of the release.")
    if not utterances:
        raise SerError(f"IEMOCAP at {release} has no utterance labelled {sorted(label_map)} "
                       f"{'in improvised dialogs ' if improvised_only else ''}for the {variant} "
                       f"variant. Expected {_EXPECTED_LAYOUT}; check dataset.root=PATH.")
    return UtteranceTable(name=f"iemocap-{variant}", classes=list(VARIANT_CLASSES[variant]),
                          utterances=utterances, missing=missing)


def _find_release(root: Path) -> Path:
    """The folder holding ``Session*/dialog/EmoEvaluation/*.txt`` (``root`` or a child of it)."""
    for candidate in (root, root / "IEMOCAP_full_release"):
        if any(_label_files(s) for s in candidate.glob("Session[1-5]")):
            return candidate
    state = "does not exist" if not root.exists() else "does not hold the IEMOCAP layout"
    raise SerError(f"IEMOCAP root {root} {state}. Expected {_EXPECTED_LAYOUT}. Point the reader "
                   "at your copy of the release with dataset.root=PATH (the IEMOCAP_full_release "
                   "folder or its parent).")


def _label_files(session_dir: Path) -> list[Path]:
    # Only the top level: Categorical/, Attribute/ and Self-evaluation/ hold per-annotator
    # files; "._*" files are macOS resource forks shipped in some copies of the release.
    folder = session_dir / "dialog" / "EmoEvaluation"
    return sorted(p for p in folder.glob("*.txt") if p.is_file() and not p.name.startswith("._"))


def _parse_label_file(path: Path) -> list[tuple[int, str, str, float]]:
    """``(line_number, utt_id, raw_label, duration_s)`` per label line of an EmoEvaluation file."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text or text.startswith("%") or _ANNOTATOR_LINE.match(text):
                continue
            match = _LABEL_LINE.match(text)
            if match is None:
                raise SerError(f"{path}:{number}: cannot parse the IEMOCAP label line {text!r}. "
                               "Expected '[start - end]<TAB>utt_id<TAB>label<TAB>[v, a, d]' "
                               "(e.g. '[6.2901 - 8.2357]\\tSes01F_impro01_F000\\tneu\\t[2.5, 2.5,"
                               " 2.5]'); restore the file from the original release.")
            start, end, utt_id, label = match.groups()
            rows.append((number, utt_id, label.lower(), float(end) - float(start)))
    return rows


def _session_and_speaker(utt_id: str, where: str) -> tuple[str, str]:
    """``("1", "1M")`` for ``Ses01F_impro01_M013``: session, then session + turn gender."""
    match = _UTTERANCE_ID.match(utt_id)
    if match is None:
        raise SerError(f"{where}: utterance id {utt_id!r} does not follow the IEMOCAP "
                       "pattern Ses<NN><F|M>_<dialog>_<F|M><NNN>; restore the file from the "
                       "original release.")
    session = str(int(match.group(1)))
    return session, session + match.group(2)
