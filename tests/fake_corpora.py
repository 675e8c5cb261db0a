"""Small fake corpora in the real layouts, for tests that need a corpus on disk.

``make_fake_iemocap`` writes an ``IEMOCAP_full_release`` tree whose label files follow the
release's format (``%`` header, blank lines, annotator lines, a ``Categorical/`` sub-folder and
a macOS ``._`` resource fork that readers must ignore) with short tone wavs; ``make_fake_manifest``
writes 44.1 kHz stereo wavs and a manifest with relative paths. Both return records so tests can
compute the expected counts themselves.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

IEMOCAP_LABELS = ("ang", "hap", "exc", "sad", "neu", "fru", "xxx")
# What each variant keeps: raw label → class, and whether only improvised dialogs count.
EXPECTED_MAPS = {
    "ahsn": ({"ang": "anger", "hap": "happy", "sad": "sad", "neu": "neutral"}, True),
    "aesn": ({"ang": "anger", "exc": "excitement", "sad": "sad", "neu": "neutral"}, True),
    "iemocap4": ({"ang": "anger", "hap": "happy", "exc": "happy", "sad": "sad", "neu": "neutral"},
                 False),
}


@dataclass
class FakeUtterance:
    id: str
    raw_label: str
    session: str
    speaker: str
    improvised: bool
    duration: float      # seconds, as written in the label line and in the wav
    wav: Path
    state: str = "ok"    # "ok" | "missing" (no wav written) | "undecodable" (garbage bytes)


@dataclass
class FakeIemocap:
    root: Path                                   # the IEMOCAP_full_release folder
    utterances: list[FakeUtterance] = field(default_factory=list)
    label_files: list[Path] = field(default_factory=list)

    def expected(self, variant: str, states: tuple[str, ...] = ("ok", "undecodable")
                 ) -> list[tuple[FakeUtterance, str]]:
        """``(utterance, class)`` pairs ``read_iemocap(root, variant)`` should return, in order."""
        label_map, improvised_only = EXPECTED_MAPS[variant]
        return [(u, label_map[u.raw_label]) for u in self.utterances
                if u.raw_label in label_map and (u.improvised or not improvised_only)
                and u.state in states]


def _tone(seconds: float, sample_rate: int, frequency: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    mono = 0.3 * np.sin(2 * np.pi * frequency * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono


def make_fake_iemocap(root: str | Path, sessions: tuple[int, ...] = (1, 2, 3, 4, 5),
                      missing: int = 0, undecodable: int = 0, sample_rate: int = 16000,
                      ) -> FakeIemocap:
    """Write a fake release under ``root/IEMOCAP_full_release``.

    Each session gets three dialogs (``Ses0nF_impro01``, ``Ses0nM_impro02`` opened by the male
    actor, ``Ses0nF_script01_1``) with one turn per label of ``IEMOCAP_LABELS``, alternating
    speakers, 1.1–3.7 s long. The first ``missing`` improvised ang/sad/neu turns (labels every
    variant keeps) get no wav, the next ``undecodable`` ones a wav of garbage bytes.
    """
    release = Path(root) / "IEMOCAP_full_release"
    fake = FakeIemocap(root=release)
    counter = 0
    for n in sessions:
        emo_dir = release / f"Session{n}" / "dialog" / "EmoEvaluation"
        (emo_dir / "Categorical").mkdir(parents=True, exist_ok=True)
        for opener, dialog_kind in (("F", "impro01"), ("M", "impro02"), ("F", "script01_1")):
            dialog = f"Ses{n:02d}{opener}_{dialog_kind}"
            lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            start = 2.0
            for turn, label in enumerate(IEMOCAP_LABELS):
                gender = opener if turn % 2 == 0 else ("M" if opener == "F" else "F")
                utt_id = f"{dialog}_{gender}{turn:03d}"
                duration = round(1.1 + (counter * 0.37) % 2.6, 4)
                counter += 1
                wav = release / f"Session{n}" / "sentences" / "wav" / dialog / f"{utt_id}.wav"
                fake.utterances.append(FakeUtterance(
                    id=utt_id, raw_label=label, session=str(n), speaker=f"{n}{gender}",
                    improvised="impro" in dialog, duration=duration, wav=wav))
                lines += [f"[{start:.4f} - {start + duration:.4f}]\t{utt_id}\t{label}\t"
                          "[2.5000, 3.0000, 2.5000]",
                          "C-E1:\tNeutral;\t()", "C-E3:\tFrustration; Anger;\t(annoyed)",
                          f"C-{gender}1:\tNeutral;\t()",
                          "A-E3:\tval 3; act 2; dom  2;\t()", "A-F1:\tval 2; act 3; dom  3;\t()",
                          ""]
                start += duration + 0.5
            label_file = emo_dir / f"{dialog}.txt"
            label_file.write_text("\n".join(lines) + "\n")
            fake.label_files.append(label_file)
            (emo_dir / "Categorical" / f"{dialog}_e1_cat.txt").write_text(
                f"{dialog}_F000 :Neutral state; ()\n")
            (emo_dir / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07Mac OS X        \x00\x02")
    relevant = [u for u in fake.utterances
                if u.improvised and u.raw_label in ("ang", "sad", "neu")]
    for u in relevant[:missing]:
        u.state = "missing"
    for u in relevant[missing:missing + undecodable]:
        u.state = "undecodable"
    for index, u in enumerate(fake.utterances):
        if u.state == "missing":
            continue
        u.wav.parent.mkdir(parents=True, exist_ok=True)
        if u.state == "undecodable":
            u.wav.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(64)))
        else:
            sf.write(u.wav, _tone(u.duration, sample_rate, 150.0 + 10 * (index % 20)),
                     sample_rate, subtype="PCM_16")
    return fake


@dataclass
class FakeManifest:
    csv_path: Path
    rows: list[dict[str, object]]  # path (absolute Path), label (canonical), speaker, duration


def make_fake_manifest(root: str | Path, labels: tuple[str, ...] = ("Angry", "happy", "Sad ",
                                                                      "NEUTRAL"),
                       per_class: int = 3, sample_rate: int = 44100, channels: int = 2,
                       with_speaker: bool = True) -> FakeManifest:
    """Write ``per_class`` stereo wavs per label into ``root/<label>/`` and ``root/manifest.csv``.

    Labels are written as given (mixed case, stray spaces) to exercise canonicalisation; paths
    are relative to the manifest; durations are 1.3–2.9 s; speakers ``spk0``/``spk1``.
    """
    root = Path(root)
    rows, lines = [], []
    for class_id, label in enumerate(labels):
        folder = root / label.strip()
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            duration = round(1.3 + 0.4 * ((class_id + 2 * k) % 5), 2)
            wav = folder / f"{label.strip().lower()}_{k}.wav"
            sf.write(wav, _tone(duration, sample_rate, 220.0 + 40 * class_id, channels),
                     sample_rate, subtype="PCM_16")
            speaker = f"spk{k % 2}"
            rows.append({"path": wav.resolve(), "label": label.strip().lower(),
                         "speaker": speaker, "duration": duration})
            relative = wav.relative_to(root).as_posix()
            lines.append([relative, label, speaker] if with_speaker else [relative, label])
    csv_path = root / "manifest.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "speaker"] if with_speaker else ["path", "label"])
        writer.writerows(lines)
    return FakeManifest(csv_path=csv_path, rows=rows)
