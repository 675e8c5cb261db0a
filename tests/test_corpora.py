"""Corpus readers: IEMOCAP variants, CSV manifests and the generated demo corpus."""

from __future__ import annotations

import math
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.data.demo import DEMO_CLASSES, build_demo_corpus
from ser.data.iemocap import read_iemocap
from ser.data.manifest import read_manifest
from ser.data.utterances import UtteranceTable
from ser.errors import SerError
from tests.fake_corpora import make_fake_iemocap, make_fake_manifest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def fake_iemocap(tmp_path_factory):
    return make_fake_iemocap(tmp_path_factory.mktemp("iemocap"), missing=2)


@pytest.mark.parametrize("variant, classes", [
    ("ahsn", ["anger", "happy", "sad", "neutral"]),
    ("aesn", ["anger", "excitement", "sad", "neutral"]),
    ("iemocap4", ["anger", "happy", "sad", "neutral"]),
])
def test_iemocap_variants_map_labels_and_filter(fake_iemocap, variant, classes):
    table = read_iemocap(fake_iemocap.root, variant)
    expected = fake_iemocap.expected(variant)
    assert table.classes == classes
    assert sorted((u.id, u.label) for u in table.utterances) == sorted(
        (f.id, c) for f, c in expected)
    counts = Counter(c for _, c in expected)
    assert table.label_counts() == {c: counts[c] for c in classes}
    if variant != "iemocap4":
        assert all("impro" in u.id for u in table.utterances)
    else:
        assert any("script" in u.id for u in table.utterances)
        assert table.label_counts()["happy"] == sum(
            f.raw_label in ("hap", "exc") for f, _ in expected)
    # Missing wavs are skipped and reported, never fatal.
    assert len(table.missing) == len(fake_iemocap.expected(variant, states=("missing",))) == 2


def test_iemocap_speaker_session_duration_and_path(fake_iemocap):
    table = read_iemocap(fake_iemocap.root.parent, "iemocap4")  # the release's parent works too
    by_id = {u.id: u for u in table.utterances}
    # The turn's own gender letter names the speaker, not the dialog prefix.
    opened_by_m = by_id["Ses02M_impro02_F001"]
    assert (opened_by_m.session, opened_by_m.speaker) == ("2", "2F")
    for fake, _ in fake_iemocap.expected("iemocap4"):
        u = by_id[fake.id]
        assert (u.session, u.speaker) == (fake.session, fake.speaker)
        assert u.duration == pytest.approx(fake.duration, abs=1e-6)
        assert Path(u.path) == fake.wav.resolve() and Path(u.path).is_absolute()
    assert set(table.speakers()) == {f"{n}{g}" for n in range(1, 6) for g in "FM"}


def test_iemocap_missing_root_names_layout_and_override(tmp_path):
    for root in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(SerError) as info:
            read_iemocap(root, "ahsn")
        message = str(info.value)
        assert str(root) in message
        assert "Session1/dialog/EmoEvaluation" in message and "dataset.root=" in message


def test_iemocap_unparsable_label_line_gives_file_and_line(tmp_path):
    fake = make_fake_iemocap(tmp_path, sessions=(1,))
    label_file = fake.label_files[0]
    lines = label_file.read_text().splitlines()
    lines[4] = "[6.2901 - ]\tSes01F_impro01_F000\tneu"
    label_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(SerError, match=f"{label_file}:5"):
        read_iemocap(fake.root, "ahsn")


def test_iemocap_all_wavs_missing_is_an_error(tmp_path):
    fake = make_fake_iemocap(tmp_path, sessions=(1,))
    shutil.rmtree(fake.root / "Session1" / "sentences")
    with pytest.raises(SerError, match="none of the"):
        read_iemocap(fake.root, "ahsn")


def test_iemocap_unknown_variant(fake_iemocap):
    with pytest.raises(SerError, match="ahsn"):
        read_iemocap(fake_iemocap.root, "sixclass")


def test_manifest_relative_paths_canonical_labels_and_resampling(tmp_path):
    fake = make_fake_manifest(tmp_path / "corpus")
    table = read_manifest(fake.csv_path)
    assert table.classes == ["angry", "happy", "neutral", "sad"]
    assert table.label_counts() == {c: 3 for c in table.classes}
    assert [Path(u.path) for u in table.utterances] == [r["path"] for r in fake.rows]
    assert [u.speaker for u in table.utterances] == [r["speaker"] for r in fake.rows]
    assert [u.duration for u in table.utterances] == pytest.approx(
        [r["duration"] for r in fake.rows], abs=1e-3)
    info = sf.info(table.utterances[0].path)
    assert (info.samplerate, info.channels) == (44100, 2)
    from ser.audio.io import load_audio

    audio = load_audio(table.utterances[0].path, 16000)
    assert audio.ndim == 1 and len(audio) == pytest.approx(16000 * fake.rows[0]["duration"], abs=2)
    # A given class order wins and filters other labels out.
    ordered = read_manifest(fake.csv_path, classes=["Sad", "angry"])
    assert ordered.classes == ["sad", "angry"] and len(ordered) == 6


def test_manifest_round_trips_through_csv(tmp_path):
    table = read_manifest(make_fake_manifest(tmp_path / "corpus", per_class=1).csv_path)
    table.to_csv(tmp_path / "table.csv")
    again = UtteranceTable.from_csv(tmp_path / "table.csv", table.name, table.classes)
    assert again.utterances == table.utterances and again.fingerprint() == table.fingerprint()


def test_manifest_without_speakers_and_with_missing_files(tmp_path):
    fake = make_fake_manifest(tmp_path / "corpus", with_speaker=False, per_class=2)
    Path(fake.rows[0]["path"]).unlink()
    table = read_manifest(fake.csv_path)
    assert len(table) == 7 and table.missing == [str(fake.rows[0]["path"])]
    assert {u.speaker for u in table.utterances} == {""}


@pytest.mark.parametrize("content, needle", [
    (None, "does not exist"),
    ("file,emotion\na.wav,sad\n", "lacks the column"),
    ("path,label\n", "no rows"),
    ("path,label\nnot_there.wav,sad\n", "none of its 1 audio files"),
])
def test_manifest_errors_name_file_and_fix(tmp_path, content, needle):
    csv_path = tmp_path / "manifest.csv"
    if content is not None:
        csv_path.write_text(content)
    with pytest.raises(SerError, match=needle) as info:
        read_manifest(csv_path)
    assert str(csv_path) in str(info.value)


@pytest.mark.skipif(not (SHARED_DATA / "urdu" / "manifest.csv").is_file(),
                    reason=f"URDU corpus not found at {SHARED_DATA / 'urdu'} (optional real data)")
def test_urdu_manifest_reads_400_utterances_in_4_classes():
    table = read_manifest(SHARED_DATA / "urdu" / "manifest.csv")
    assert len(table) == 400 and not table.missing
    assert table.label_counts() == {"angry": 100, "happy": 100, "neutral": 100, "sad": 100}
    assert all(0.5 <= u.duration <= 4.0 for u in table.utterances)
    assert len(table.speakers()) > 4


def test_demo_corpus_is_deterministic_per_seed_and_reused(tmp_path):
    small = dict(n_speakers=2, utterances_per_class=2)
    first = build_demo_corpus(tmp_path / "a", seed=3, **small)
    second = build_demo_corpus(tmp_path / "b", seed=3, **small)
    other = build_demo_corpus(tmp_path / "c", seed=4, **small)
    read = lambda t: [Path(u.path).read_bytes() for u in t.utterances]  # noqa: E731
    assert read(first) == read(second)
    assert all(x != y for x, y in zip(read(first), read(other)))
    # Same parameters: the files are reused, not rewritten.
    stamp = Path(first.utterances[0].path).stat().st_mtime_ns
    assert build_demo_corpus(tmp_path / "a", seed=3, **small).utterances == first.utterances
    assert Path(first.utterances[0].path).stat().st_mtime_ns == stamp
    # Other parameters: rebuilt.
    assert len(build_demo_corpus(tmp_path / "a", seed=3, n_speakers=2,
                                 utterances_per_class=3)) == 24


def test_demo_corpus_shape_and_classes(tmp_path):
    table = build_demo_corpus(tmp_path, seed=0, n_speakers=4, utterances_per_class=3)
    assert table.name == "demo" and table.classes == DEMO_CLASSES
    assert table.label_counts() == {c: 12 for c in DEMO_CLASSES}
    assert table.speakers() == ["S01F", "S02M", "S03F", "S04M"]
    assert {u.session for u in table.utterances} == {"1", "2"}
    assert all(1.5 <= u.duration <= 4.0 for u in table.utterances)
    audio, rate = sf.read(table.utterances[0].path, dtype="int16")
    assert rate == 16000 and audio.ndim == 1 and np.abs(audio).max() > 1000
    assert not math.isnan(table.utterances[0].duration)


def test_demo_classes_differ_in_pitch_and_spectral_tilt(tmp_path):
    """Anger is higher and brighter (pressed voice) than sad for the same speaker."""
    import librosa

    table = build_demo_corpus(tmp_path, seed=0, n_speakers=2, utterances_per_class=4)

    def cues(label, speaker):
        f0s, tilts = [], []
        for u in table.utterances:
            if u.label == label and u.speaker == speaker:
                y, _ = sf.read(u.path, dtype="float32")
                f0 = librosa.yin(y, fmin=60, fmax=600, sr=16000, frame_length=1024, hop_length=256)
                power = np.abs(librosa.stft(y, n_fft=1024, hop_length=256)) ** 2
                loud = power.sum(axis=0)
                voiced = loud > 0.1 * loud.max()
                f0s.append(np.median(f0[voiced]))
                # Energy above 2 kHz relative to below 1 kHz, dB (bins are 15.6 Hz wide).
                ratio = power[128:].sum(axis=0) / power[:64].sum(axis=0)
                tilts.append(np.median(10 * np.log10(ratio[voiced])))
        return np.mean(f0s), np.mean(tilts)

    for speaker in ("S01F", "S02M"):
        anger_f0, anger_tilt = cues("anger", speaker)
        sad_f0, sad_tilt = cues("sad", speaker)
        assert anger_f0 > 1.3 * sad_f0
        assert anger_tilt > sad_tilt + 5.0
