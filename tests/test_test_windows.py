"""data.test_hop: overlapping test windows between the blocks of an utterance, for its vote.

The grid blocks, their noise and their order stay exactly those of the set without windows (so
block metrics and cached baseline features do not change); each window is the stretch of the
utterance between two consecutive blocks; block statistics keep to the grid, utterance votes
count every window; predictions.csv carries the windows' offsets and reads back."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ser.audio.noise import NoiseBank
from ser.data.block_dataset import BlockNoiseDataset, window_units
from ser.errors import SerError
from ser.models.metrics import score_test_set
from ser.reporting.pooled import pooled_group
from ser.reporting.predictions import Predictions, predictions_csv, read_predictions
from ser.reporting.statistics import utterance_level

UTTERANCE = np.array([0, 0, 0, 1, 2, 2])  # blocks 0-2: one utterance, 3 alone, 4-5 another


def dataset(hop, blocks=np.arange(6), snr=20.0) -> BlockNoiseDataset:
    audio = np.arange(6 * 100, dtype=np.int16).reshape(6, 100)  # sample value = position
    rng = np.random.default_rng(0)
    bank = NoiseBank([rng.standard_normal(4000).astype(np.float32)], ["n"], 100)
    return BlockNoiseDataset(audio, np.array([0, 0, 0, 1, 2, 2]), UTTERANCE, blocks, [snr], bank,
                             seed=0, stream=3, fixed=True, same_noise_across_snrs=True,
                             window_hop=hop)


def samples(item) -> np.ndarray:
    return (item["clean"].numpy() * 32768).round().astype(int)


def test_windows_lie_between_consecutive_blocks_of_one_utterance_after_the_grid():
    plain, windowed = dataset(None), dataset(0.5)
    assert len(plain) == 6 and len(windowed) == 6 + 3  # pairs (0,1), (1,2), (4,5)
    for i in range(6):  # the grid: same audio, noise and SNR as without windows
        a, b = plain[i], windowed[i]
        assert np.array_equal(samples(a), samples(b)) and b["offset"] == 0
        assert torch.equal(a["noise"], b["noise"]) and a["snr"] == b["snr"]
    starts = [(windowed[i]["block"], windowed[i]["offset"], samples(windowed[i])[0]) for i in range(6, 9)]
    assert starts == [(0, 50, 50), (1, 50, 150), (4, 50, 450)]
    for i in range(6, 9):
        item = windowed[i]
        assert (np.diff(samples(item)) == 1).all()  # one stretch of the utterance
        assert item["label"] == windowed[item["block"]]["label"]
        assert not torch.equal(item["noise"], windowed[item["block"]]["noise"])  # its own draw
    quarter = dataset(0.25)
    assert len(quarter) == 6 + 3 * 3
    assert sorted({quarter[i]["offset"] for i in range(6, 15)}) == [25, 50, 75]


def test_windows_need_both_blocks_in_the_set_and_a_hop_inside_a_block():
    units, shifts = window_units(np.array([0, 2, 4, 5]), np.array([1, 2, -1, -1, 5, -1]), 100, 0.5)
    assert units.tolist() == [4] and shifts.tolist() == [50]  # 0 -> 1 is not in the set
    for bad in (0.0, 1.0, 1.5, -0.5):
        with pytest.raises(SerError, match="data.test_hop"):
            dataset(bad)


def _windowed_predictions() -> Predictions:
    """Two utterances of two blocks + one window each; the windows tip the first one's vote."""
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7],   # utterance u0 (label 1): grid 0, 1
                      [0.1, 0.9], [0.2, 0.8], [0.4, 0.6]])  # utterance u1 (label 1)
    offset = np.array([0.0, 0.0, 0.5, 0.0, 0.0, 0.5])
    return Predictions(["a", "b"], np.full(6, "clean", dtype=object), np.zeros(6, dtype=np.int64),
                       np.array(["u0", "u0", "u0", "u1", "u1", "u1"], dtype=object),
                       np.array([0, 1, 0, 0, 1, 0]), np.array(["s0", "s0", "s0", "s1", "s1", "s1"],
                                                             dtype=object),
                       np.ones(6, dtype=np.int64), probs, offset)


def test_block_statistics_keep_to_the_grid_and_votes_count_the_windows(tmp_path):
    pred = _windowed_predictions()
    path = tmp_path / "predictions.csv"
    path.write_text(predictions_csv(pred))
    back = read_predictions(path)
    assert back.offset.tolist() == pred.offset.tolist() and np.allclose(back.probs, pred.probs)
    assert path.read_text().splitlines()[0].split(",")[7] == "offset"
    grid = pred.select(pred.offset == 0)
    assert "offset" not in predictions_csv(grid).splitlines()[0]  # files without windows: unchanged
    assert read_predictions_text(tmp_path, grid).offset.tolist() == [0.0] * 4
    # u0: one vote each way on the grid (the tie goes to the larger mass: a, 1.1 against 0.9);
    # the window's vote for b decides it
    assert utterance_level(grid).predicted.tolist() == [0, 1]
    assert utterance_level(pred).predicted.tolist() == [1, 1]
    stats = pooled_group(pred, n_boot=10, seed=0)
    assert stats["block"]["clean"]["n_items"] == 4 and stats["utterance"]["clean"]["n_items"] == 2
    assert stats["block"]["clean"]["accuracy"]["value"] == pytest.approx(0.75)
    assert stats["utterance"]["clean"]["accuracy"]["value"] == pytest.approx(1.0)
    metrics = score_test_set(torch.tensor(pred.probs), torch.tensor(pred.label),
                             torch.tensor([0, 0, 0, 1, 1, 1]), torch.tensor([0, 0, 50, 0, 0, 50]))
    assert metrics["n_blocks"] == 4 and metrics["n_windows"] == 2
    assert metrics["accuracy"] == pytest.approx(0.75) and metrics["utterance_accuracy"] == 1.0


def read_predictions_text(tmp_path, pred: Predictions) -> Predictions:
    path = tmp_path / "grid.csv"
    path.write_text(predictions_csv(pred))
    return read_predictions(path)


def test_windowed_and_plain_tests_of_a_group_pair_by_block_and_by_utterance():
    from ser.reporting.statistics import align

    pred = _windowed_predictions()
    grid = pred.select(pred.offset == 0)
    ia, ib = align(pred.grid(), grid)
    assert len(ia) == 4
    ua, ub = align(utterance_level(pred), utterance_level(grid))
    assert len(ua) == 2
    assert math.isclose(float(pred.offset.max()), 0.5)
