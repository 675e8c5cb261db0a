"""The noise bank: disjoint train/test noise, segment drawing, decoding, caching, errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import ser.audio.noise as noise_module
from ser.audio.noise import NoiseBank
from ser.errors import SerError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RATE = 16000


def write_tones(folder: Path, seconds: list[float], rate: int = RATE) -> list[np.ndarray]:
    """One file per duration, each a different random noise, so content identifies its file."""
    folder.mkdir(parents=True, exist_ok=True)
    signals = []
    for index, duration in enumerate(seconds):
        signal = np.random.default_rng(index).uniform(-0.5, 0.5, int(duration * rate))
        sf.write(folder / f"noise{index:02d}.wav", signal, rate, subtype="FLOAT")
        signals.append(signal.astype(np.float32))
    return signals


def assert_disjoint(train: NoiseBank, test: NoiseBank) -> None:
    """No sample range of a source recording is in both banks."""
    for source, start, stop in test.spans:
        for other, a, b in train.spans:
            assert source != other or stop <= a or b <= start, (source, start, stop, a, b)


# ---------------------------------------------------------------------- splitting
def test_several_files_split_by_file_close_to_the_test_fraction(tmp_path):
    durations = [1.0, 2.5, 0.7, 3.0, 1.2, 2.0, 0.9, 1.8, 2.2, 1.5, 0.8, 2.7]
    signals = write_tones(tmp_path / "noise", durations)
    train, test = NoiseBank.from_folder(tmp_path / "noise", RATE, test_fraction=0.25, seed=3)
    assert train.split == test.split == "file"
    assert set(train.names).isdisjoint(test.names)
    assert sorted(train.names + test.names) == [f"noise{i:02d}.wav" for i in range(len(durations))]
    assert_disjoint(train, test)
    share = test.total_seconds / (train.total_seconds + test.total_seconds)
    assert abs(share - 0.25) < 0.05, share
    for name, recording in zip(test.names, test.recordings):  # content came from that file only
        np.testing.assert_allclose(recording, signals[int(name[5:7])], atol=1e-6)
        assert not any(len(r) == len(recording) and np.allclose(r, recording)
                       for r in train.recordings)
    assert re.fullmatch(r"\d+ files, [\d.]+ s train / \d+ files?, [\d.]+ s test",
                        train.describe(test))


def test_validation_noise_is_held_out_of_the_training_bank(tmp_path):
    write_tones(tmp_path / "noise", [1.0, 2.5, 0.7, 3.0, 1.2, 2.0, 0.9, 1.8, 2.2, 1.5])
    train, test = NoiseBank.from_folder(tmp_path / "noise", RATE, test_fraction=0.2, seed=3)
    kept, held = train.hold_out(0.25, seed=3)
    assert set(kept.names).isdisjoint(held.names) and sorted(kept.names + held.names) == sorted(train.names)
    assert set(held.names).isdisjoint(test.names)
    share = held.total_seconds / train.total_seconds
    assert abs(share - 0.25) < 0.1, share
    assert kept.hold_out(0.25, seed=3)[1].names == kept.hold_out(0.25, seed=3)[1].names
    one, other = NoiseBank([np.ones(1000, np.float32)], ["room"], RATE).hold_out(0.2, seed=0)
    assert one.split == other.split == "time" and len(one.recordings[0]) == 800
    for bad in (1.0, -0.1):
        with pytest.raises(SerError, match="noise.validation_fraction"):
            train.hold_out(bad, seed=0)


def test_split_is_deterministic_per_seed_and_varies_with_it(tmp_path):
    write_tones(tmp_path / "noise", [1.0] * 10)
    first = NoiseBank.from_folder(tmp_path / "noise", RATE, seed=1)[1].names
    again = NoiseBank.from_folder(tmp_path / "noise", RATE, seed=1)[1].names
    others = {tuple(NoiseBank.from_folder(tmp_path / "noise", RATE, seed=s)[1].names)
              for s in range(2, 6)}
    assert first == again and len(first) == 2
    assert len(others | {tuple(first)}) > 1


@pytest.mark.parametrize("fraction", [0.05, 0.95])
def test_two_files_keep_one_on_each_side(tmp_path, fraction):
    write_tones(tmp_path / "noise", [1.0, 4.0])
    train, test = NoiseBank.from_folder(tmp_path / "noise", RATE, test_fraction=fraction)
    assert len(train) == len(test) == 1 and train.names != test.names


def test_single_file_split_by_time_range(tmp_path):
    (signal,) = write_tones(tmp_path / "one", [5.0])
    train, test = NoiseBank.from_folder(tmp_path / "one", RATE, test_fraction=0.2)
    assert train.split == test.split == "time"
    cut = int(round(len(signal) * 0.8))
    np.testing.assert_array_equal(train.recordings[0], signal[:cut])
    np.testing.assert_array_equal(test.recordings[0], signal[cut:])
    assert train.spans == [("noise00.wav", 0, cut)]
    assert test.spans == [("noise00.wav", cut, len(signal))]
    assert_disjoint(train, test)
    assert "split by time" in train.describe(test)


def test_separate_test_folder_is_used_whole(tmp_path):
    write_tones(tmp_path / "train", [1.0, 2.0, 1.5])
    write_tones(tmp_path / "test" / "sub", [0.5])
    train, test = NoiseBank.from_folder(tmp_path / "train", RATE, test_root=tmp_path / "test")
    assert len(train) == 3 and test.names == ["sub/noise00.wav"]
    assert train.split == test.split == "folders"


# ---------------------------------------------------------------------- decoding and errors
def test_stereo_44k_ogg_and_22k_flac_decode_to_mono(tmp_path):
    t = np.arange(int(1.5 * 44100)) / 44100
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)], 1)
    (tmp_path / "amb").mkdir()
    sf.write(tmp_path / "amb" / "room.ogg", stereo, 44100, format="OGG", subtype="VORBIS")
    sf.write(tmp_path / "amb" / "hall.flac", stereo[:, 0], 22050)
    train, test = NoiseBank.from_folder(tmp_path / "amb", RATE)
    for bank in (train, test):
        assert bank.recordings[0].dtype == np.float32 and bank.recordings[0].ndim == 1
    seconds = dict(zip(train.names + test.names, train.durations + test.durations))
    assert seconds["room.ogg"] == pytest.approx(1.5, abs=0.01)
    assert seconds["hall.flac"] == pytest.approx(3.0, abs=0.01)


@pytest.mark.skipif(not (DATA / "noise").is_dir(), reason="no real noise recordings")
def test_real_noise_folder_builds_and_caches(tmp_path):
    train, test = NoiseBank.from_folder(DATA / "noise", RATE, cache_dir=tmp_path)
    assert len(train) + len(test) == 102 and not train.skipped
    assert set(train.names).isdisjoint(test.names)
    assert 300 < train.total_seconds + test.total_seconds < 360
    again = NoiseBank.from_folder(DATA / "noise", RATE, cache_dir=tmp_path)
    assert again[1].names == test.names
    ambience = NoiseBank.from_folder(DATA / "noise" / "ambience", RATE)  # 44.1 kHz stereo ogg
    assert sorted(ambience[0].names + ambience[1].names) == ["city.ogg", "coffee-shop.ogg"]
    assert sum(ambience[0].durations + ambience[1].durations) == pytest.approx(41.3, abs=0.1)


def test_undecodable_files_are_skipped_and_listed(tmp_path):
    write_tones(tmp_path / "noise", [1.0, 1.0, 1.0])
    (tmp_path / "noise" / "broken.wav").write_bytes(b"not audio at all")
    train, test = NoiseBank.from_folder(tmp_path / "noise", RATE)
    assert len(train) + len(test) == 3
    assert [Path(path).name for path, _ in train.skipped] == ["broken.wav"]


def test_recordings_with_nan_samples_are_skipped_and_named(tmp_path):
    """A float wav holding NaN would turn every mix it is drawn into into NaN images."""
    from ser.audio.io import load_audio
    from ser.errors import AudioDecodeError

    write_tones(tmp_path / "noise", [1.0, 1.0])
    poisoned = np.random.default_rng(9).uniform(-0.5, 0.5, RATE)
    poisoned[[10, 500]] = np.nan
    sf.write(tmp_path / "noise" / "poisoned.wav", poisoned, RATE, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match=r"poisoned\.wav holds 2 non-finite samples"):
        load_audio(tmp_path / "noise" / "poisoned.wav", RATE)
    train, test = NoiseBank.from_folder(tmp_path / "noise", RATE)
    assert len(train) + len(test) == 2
    assert [Path(path).name for path, _ in train.skipped] == ["poisoned.wav"]


def test_error_paragraphs_for_missing_empty_and_undecodable_folders(tmp_path):
    with pytest.raises(SerError, match=r"does not exist.*noise\.root=FOLDER.*wav/flac/ogg"):
        NoiseBank.from_folder(tmp_path / "nowhere", RATE)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no audio here")
    with pytest.raises(SerError, match=r"empty.*no audio files.*noise\.root=FOLDER"):
        NoiseBank.from_folder(tmp_path / "empty", RATE)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.wav").write_bytes(b"garbage")
    with pytest.raises(SerError, match=r"bad.*could be decoded.*noise\.root=FOLDER"):
        NoiseBank.from_folder(tmp_path / "bad", RATE)
    write_tones(tmp_path / "ok", [1.0])
    with pytest.raises(SerError, match=r"noise\.test_root=FOLDER"):
        NoiseBank.from_folder(tmp_path / "ok", RATE, test_root=tmp_path / "empty")
    with pytest.raises(SerError, match="test_fraction"):
        NoiseBank.from_folder(tmp_path / "ok", RATE, test_fraction=1.0)


def test_cache_hit_gives_identical_arrays_without_decoding(tmp_path, monkeypatch):
    write_tones(tmp_path / "noise", [1.0, 0.5, 2.0, 1.5])
    (tmp_path / "noise" / "broken.wav").write_bytes(b"junk")
    first = NoiseBank.from_folder(tmp_path / "noise", RATE, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(noise_module, "load_audio", no_decoding)
    second = NoiseBank.from_folder(tmp_path / "noise", RATE, cache_dir=tmp_path / "cache")
    for before, after in zip(first, second):
        assert before.names == after.names and before.spans == after.spans
        assert before.skipped == after.skipped and before.split == after.split
        for a, b in zip(before.recordings, after.recordings):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    monkeypatch.undo()
    NoiseBank.from_folder(tmp_path / "noise", RATE, seed=7, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2  # split parameters are in the key


# ---------------------------------------------------------------------- drawing segments
def test_segments_are_deterministic_per_seed():
    bank = NoiseBank([np.random.default_rng(0).standard_normal(5000)], ["a"], RATE)
    first = bank.segments(np.random.default_rng(4), 6, 800)
    assert first.shape == (6, 800) and first.dtype == np.float32
    np.testing.assert_array_equal(first, bank.segments(np.random.default_rng(4), 6, 800))
    assert not np.array_equal(first, bank.segments(np.random.default_rng(5), 6, 800))


def test_short_recording_is_tiled():
    short = np.arange(1, 101, dtype=np.float32) / 100.0
    piece = NoiseBank([short], ["short"], RATE).segment(np.random.default_rng(0), 250)
    assert piece.shape == (250,)
    np.testing.assert_array_equal(piece[:150], piece[100:])
    assert set(np.round(piece * 100).astype(int)) == set(range(1, 101))


def test_silent_segments_are_redrawn():
    half_silent = np.concatenate([np.zeros(4000), np.full(4000, 0.1)])
    bank = NoiseBank([np.zeros(20000), half_silent], ["silent", "half"], RATE)
    pieces = bank.segments(np.random.default_rng(0), 50, 1000)
    assert (np.mean(pieces.astype(np.float64) ** 2, axis=1) > 1e-10).all()
    with pytest.raises(SerError, match="silent"):
        NoiseBank([np.zeros(3000)], ["quiet"], RATE).segment(np.random.default_rng(0), 100)


def test_recordings_are_chosen_in_proportion_to_duration():
    bank = NoiseBank([np.full(1000, 0.1), np.full(9000, 0.2)], ["short", "long"], RATE)
    draws = bank.segments(np.random.default_rng(0), 2000, 10)[:, 0]
    assert np.mean(draws > 0.15) == pytest.approx(0.9, abs=0.03)
    assert bank.durations == [1000 / RATE, 9000 / RATE] and len(bank) == 2


# ---------------------------------------------------------------------- synthetic room
def test_demo_noise_is_deterministic_disjoint_and_audible():
    train, test = NoiseBank.demo(RATE, seconds=8.0, seed=0)
    again = NoiseBank.demo(RATE, seconds=8.0, seed=0)
    other = NoiseBank.demo(RATE, seconds=8.0, seed=1)
    np.testing.assert_array_equal(train.recordings[0], again[0].recordings[0])
    np.testing.assert_array_equal(test.recordings[0], again[1].recordings[0])
    assert not np.array_equal(train.recordings[0], other[0].recordings[0])
    assert train.total_seconds == pytest.approx(6.4) and test.total_seconds == pytest.approx(1.6)
    assert_disjoint(train, test)
    for bank in (train, test):
        audio = bank.recordings[0]
        assert audio.dtype == np.float32 and np.isfinite(audio).all()
        assert 0.0 < np.max(np.abs(audio)) <= 1.0
        pieces = bank.segments(np.random.default_rng(0), 8, RATE)  # every second is audible
        assert (np.sqrt(np.mean(pieces ** 2, axis=1)) > 0.01).all()


def test_synthetic_room_of_no_duration_is_a_clear_error():
    from ser.audio.room_noise import synthetic_room
    from ser.errors import SerError

    with pytest.raises(SerError, match="positive duration"):
        synthetic_room(16000, 0.0, seed=0, voices=2)
