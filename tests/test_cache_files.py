"""Cache files damaged on disk (truncated, bytes flipped) are detected, rebuilt with one
warning and never read as garbage: decoded blocks, noise banks and the demo corpus."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from ser.audio.noise import NoiseBank
from ser.cache_files import CacheWarning
from ser.data.blocks import build_blocks
from ser.data.demo import build_demo_corpus
from ser.data.manifest import read_manifest
from tests.conftest import REPO
from tests.fake_corpora import make_fake_manifest

RATE = 16000
SMALL_DEMO = dict(n_speakers=2, utterances_per_class=1, max_seconds=2.0)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip(path: Path) -> None:
    """Invert a few bytes in the middle: same size, other content."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    path.write_bytes(bytes(data))


def no_warning(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        return call()


def one_warning(call):
    with pytest.warns(CacheWarning) as caught:
        result = call()
    assert len([w for w in caught if issubclass(w.category, CacheWarning)]) == 1
    return result


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    fake = make_fake_manifest(tmp_path_factory.mktemp("corpus"), per_class=2, channels=1)
    return read_manifest(fake.csv_path)


@pytest.mark.parametrize("damage", [truncate, flip])
def test_damaged_block_cache_is_rebuilt_once_with_one_warning(table, tmp_path, damage):
    build = lambda: build_blocks(table, sample_rate=RATE, cache_dir=tmp_path, progress=False)  # noqa: E731
    first = no_warning(build)
    [cache] = tmp_path.glob("blocks-*.npz")
    assert Path(f"{cache}.sum").is_file()
    damage(cache)
    rebuilt = one_warning(build)
    assert np.array_equal(rebuilt.audio, first.audio) and np.array_equal(rebuilt.labels, first.labels)
    again = no_warning(build)  # the rebuilt file is whole again
    assert np.array_equal(again.audio, first.audio)


@pytest.mark.parametrize("damage", [truncate, flip])
def test_damaged_noise_bank_cache_is_rebuilt(tmp_path, damage):
    build = lambda: NoiseBank.demo(RATE, seconds=5.0, cache_dir=tmp_path)  # noqa: E731
    train, test = no_warning(build)
    [cache] = tmp_path.glob("noise-room-*.npz")
    damage(cache)
    train2, test2 = one_warning(build)
    assert np.array_equal(train2.recordings[0], train.recordings[0])
    assert np.array_equal(test2.recordings[0], test.recordings[0])


def test_a_cache_without_its_record_is_rebuilt_quietly(table, tmp_path):
    """A cache written before sizes and checksums were recorded is not trusted, nor warned about."""
    first = no_warning(lambda: build_blocks(table, sample_rate=RATE, cache_dir=tmp_path, progress=False))
    [cache] = tmp_path.glob("blocks-*.npz")
    Path(f"{cache}.sum").unlink()
    flip(cache)
    again = no_warning(lambda: build_blocks(table, sample_rate=RATE, cache_dir=tmp_path, progress=False))
    assert np.array_equal(again.audio, first.audio)


@pytest.mark.parametrize("damage", [truncate, flip])
def test_damaged_demo_corpus_file_is_rebuilt(tmp_path, damage):
    first = no_warning(lambda: build_demo_corpus(tmp_path, **SMALL_DEMO))
    wav = Path(first.utterances[1].path)
    original = wav.read_bytes()
    damage(wav)
    again = one_warning(lambda: build_demo_corpus(tmp_path, **SMALL_DEMO))
    assert wav.read_bytes() == original and again.utterances == first.utterances


def test_train_py_runs_on_a_truncated_block_cache(tmp_path):
    """What used to make every later run exit 1 with a traceback from np.load: a truncated
    blocks-*.npz. The data module (what train.py builds first) rebuilds it with one warning."""
    script = f"""
import sys, warnings
sys.path.insert(0, {str(REPO)!r})
from pathlib import Path
from hydra.utils import instantiate
from tests.conftest import compose
cfg = compose(["paths.cache_dir={tmp_path}", "+dataset.n_speakers=2",
               "+dataset.utterances_per_class=3"])
instantiate(cfg.data, verbose=False).setup("fit")
[cache] = Path({str(tmp_path)!r}).glob("blocks-*.npz")
cache.write_bytes(cache.read_bytes()[:1000])
dm = instantiate(cfg.data, verbose=False)
dm.setup("fit")
print("blocks", len(dm.blocks))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "blocks" in result.stdout and result.stderr.count("CacheWarning") == 1
    assert "is damaged" in result.stderr and "Traceback" not in result.stderr
