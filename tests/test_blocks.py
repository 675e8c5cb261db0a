"""Cutting utterances into 1-s int16 blocks, skipping bad files and caching the result."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.audio.io import load_audio
from ser.data.blocks import build_blocks
from ser.data.iemocap import read_iemocap
from ser.data.manifest import read_manifest
from ser.data.utterances import UtteranceTable
from ser.errors import SerError
from tests.fake_corpora import make_fake_iemocap, make_fake_manifest

RATE = 16000


@pytest.fixture(scope="module")
def iemocap_table(tmp_path_factory):
    fake = make_fake_iemocap(tmp_path_factory.mktemp("iemocap"), sessions=(1, 2), undecodable=1)
    return fake, read_iemocap(fake.root, "iemocap4")


def _expected_blocks(fake, pad_fraction=None):
    """Blocks per decodable utterance, from the number of samples written."""
    counts = {}
    for u, _ in fake.expected("iemocap4", states=("ok",)):
        whole, rest = divmod(int(round(u.duration * RATE)), RATE)
        counts[u.id] = whole + int(pad_fraction is not None and rest >= pad_fraction * RATE)
    return counts


def test_block_counts_are_floor_of_durations_and_bad_files_are_skipped(iemocap_table):
    fake, table = iemocap_table
    blocks = build_blocks(table, sample_rate=RATE, progress=False)
    expected = _expected_blocks(fake)
    assert len(blocks) == sum(expected.values())
    per_utterance = np.bincount(blocks.utterance, minlength=len(table))
    assert {u.id: int(n) for u, n in zip(table.utterances, per_utterance) if n} == \
        {k: v for k, v in expected.items() if v}
    assert blocks.audio.dtype == np.int16 and blocks.audio.shape[1] == RATE
    assert blocks.labels.dtype == np.int64 and blocks.utterance.dtype == np.int64
    assert all(blocks.labels == [table.class_index(table.utterances[i].label)
                                 for i in blocks.utterance])
    bad = [u for u in fake.utterances if u.state == "undecodable"]
    assert [(p, r.split(":")[0]) for p, r in blocks.skipped if "decode" in r] == \
        [(str(bad[0].wav.resolve()), "cannot decode")]
    assert sum("shorter than one block" in r for _, r in blocks.skipped) == \
        sum(1 for n in expected.values() if n == 0)


def test_blocks_hold_the_utterance_audio(iemocap_table):
    _, table = iemocap_table
    blocks = build_blocks(table, sample_rate=RATE, progress=False)
    index = int(blocks.utterance[0])
    audio = load_audio(table.utterances[index].path, RATE)
    mine = np.flatnonzero(blocks.utterance == index)
    assert np.allclose(blocks.as_float(mine).ravel(), audio[: len(mine) * RATE], atol=1 / 32767)
    assert blocks.as_float(mine).dtype == np.float32


def test_remainder_padding(iemocap_table):
    fake, table = iemocap_table
    blocks = build_blocks(table, sample_rate=RATE, pad_min_fraction=0.5, progress=False)
    assert len(blocks) == sum(_expected_blocks(fake, 0.5).values())
    # The last block of a padded utterance ends in zeros.
    u = next(u for u, _ in fake.expected("iemocap4", states=("ok",))
             if round(u.duration * RATE) % RATE >= RATE // 2)
    index = [x.id for x in table.utterances].index(u.id)
    last = blocks.audio[np.flatnonzero(blocks.utterance == index)[-1]]
    filled = int(round(u.duration * RATE)) % RATE
    assert np.all(last[filled + 2:] == 0) and np.any(last[:filled] != 0)


def test_cache_hit_is_fast_and_identical_and_invalidated_by_new_files(iemocap_table, tmp_path):
    _, table = iemocap_table
    first = build_blocks(table, sample_rate=RATE, cache_dir=tmp_path, progress=False)
    start = time.perf_counter()
    second = build_blocks(table, sample_rate=RATE, cache_dir=tmp_path, progress=False)
    assert time.perf_counter() - start < 1.0
    for name in ("audio", "labels", "utterance"):
        assert np.array_equal(getattr(first, name), getattr(second, name))
    assert second.skipped == first.skipped and len(list(tmp_path.glob("*.npz"))) == 1
    # A different file list is a different corpus: a new cache entry, not the old arrays.
    fewer = UtteranceTable(table.name, table.classes, table.utterances[:-3])
    third = build_blocks(fewer, sample_rate=RATE, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert len(third) == int((first.utterance < len(fewer)).sum())
    # So are other block settings.
    build_blocks(table, sample_rate=RATE, pad_min_fraction=0.5, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_manifest_at_44k_stereo_is_resampled_into_blocks(tmp_path):
    fake = make_fake_manifest(tmp_path / "corpus", per_class=2)
    blocks = build_blocks(read_manifest(fake.csv_path), sample_rate=RATE, progress=False)
    assert len(blocks) == sum(int(r["duration"]) for r in fake.rows)
    assert blocks.block_counts() == {
        c: sum(int(r["duration"]) for r in fake.rows if r["label"] == c) for c in blocks.classes}


def test_class_without_blocks_is_an_error_naming_class_and_corpus(tmp_path):
    fake = make_fake_manifest(tmp_path / "corpus", labels=("anger", "sad"), per_class=1)
    short = tmp_path / "corpus" / "sad" / "sad_0.wav"
    sf.write(short, np.zeros((int(0.4 * 44100), 2)) + 0.1, 44100)
    table = read_manifest(fake.csv_path, name="tiny")
    with pytest.raises(SerError, match=r"tiny.*'sad'"):
        build_blocks(table, sample_rate=RATE, progress=False)
    # Padding a 0.4 s file is allowed when the fraction says so.
    assert build_blocks(table, sample_rate=RATE, pad_min_fraction=0.3,
                        progress=False).block_counts()["sad"] == 1


def test_no_block_at_all_is_an_error(tmp_path):
    fake = make_fake_manifest(tmp_path / "corpus", labels=("anger",), per_class=1)
    Path(fake.rows[0]["path"]).write_bytes(b"not audio at all")
    with pytest.raises(SerError, match="no 1 s block"):
        build_blocks(read_manifest(fake.csv_path), sample_rate=RATE, progress=False)
