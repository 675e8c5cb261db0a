"""The recipe's switches beyond the paper: training SNRs drawn from a range, per-band
normalisation of the log-mel (also in the exported graph) and label smoothing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ser.audio.noise import NoiseBank
from ser.data.block_dataset import BlockNoiseDataset
from ser.data.datamodule import snr_range
from ser.errors import SerError
from ser.features.logmel import LogMel


def dataset(snr_range_db, fixed=False) -> BlockNoiseDataset:
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal((6, 1600)) * 3000).astype(np.int16)
    bank = NoiseBank([rng.standard_normal(8000).astype(np.float32)], ["n"], 1600)
    return BlockNoiseDataset(audio, np.arange(6) % 4, np.arange(6), np.arange(6),
                             [math.inf, 15.0, 20.0, 40.0], bank, seed=0, stream=1, fixed=fixed,
                             snr_range=snr_range_db)


def test_noisy_copies_draw_their_snr_from_the_range_afresh_each_epoch():
    ds = dataset((0.0, 30.0))
    first = [ds[i]["snr"] for i in range(len(ds))]
    assert all(math.isinf(s) for s in first[:6])  # the clean copy stays clean
    noisy = np.array(first[6:])
    assert ((noisy >= 0) & (noisy <= 30)).all() and len(np.unique(noisy)) == len(noisy)
    assert [ds[i]["snr"] for i in range(len(ds))] == first  # reproducible
    later = [ds[len(ds) + i]["snr"] for i in range(6, len(ds))]  # epoch 1
    assert later != first[6:]
    fixed = dataset((0.0, 30.0), fixed=True)
    assert [fixed[i]["snr"] for i in range(6, 12)] == [fixed[len(fixed) + i]["snr"] for i in range(6, 12)]
    assert [dataset(None)[i]["snr"] for i in (6, 12, 18)] == [15.0, 20.0, 40.0]


def test_a_bad_snr_range_is_one_clear_error():
    assert snr_range([0, 30]) == (0.0, 30.0) and snr_range(None) is None
    for bad in ([30, 0], [5], "loud"):
        with pytest.raises(SerError, match=r"train_snr_range.*\[low, high\]"):
            snr_range(bad)


def traced_form(frontend, blocks, monkeypatch):
    """What ONNX export traces: the front-end run with its steps in their exportable ops."""
    with monkeypatch.context() as patched:
        patched.setattr("ser.features.stft.exporting", lambda: True)
        return frontend(blocks)


def test_band_norm_removes_a_fixed_spectral_tilt_and_exports_the_same(monkeypatch):
    torch.manual_seed(0)
    blocks = torch.randn(3, 16000) * torch.linspace(0.2, 1.0, 16000)  # a level that changes in time
    frontend = LogMel(n_mels=64, band_norm=True)
    image = frontend(blocks)
    assert image.shape == (3, 3, 64, 101)
    assert image[:, 0].mean(dim=-1).abs().max() < 1e-4  # every band's mean over time is 0
    # a fixed filter (a microphone's tilt) shifts each band by a constant in dB: gone after it
    tilted = torch.from_numpy(np.convolve(blocks[0].numpy(), [1.0, -0.9])[:16000]).float()[None]
    plain = LogMel(n_mels=64)
    moved = (plain(tilted) - plain(blocks[:1])).abs().mean()
    kept = (frontend(tilted) - frontend(blocks[:1])).abs().mean()
    assert kept < 0.5 * moved
    assert torch.allclose(traced_form(frontend, blocks, monkeypatch), image, atol=1e-4)


def test_label_smoothing_reaches_the_training_loss():
    from tests.test_recipe import module_for

    module, _ = module_for(["+optim.label_smoothing=0.2"])
    plain, _ = module_for([])
    logits, labels = torch.randn(8, 4), torch.arange(8) % 4
    smoothed = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.2)
    assert torch.allclose(module.loss(logits, labels), smoothed)
    assert torch.allclose(plain.loss(logits, labels), torch.nn.functional.cross_entropy(logits, labels))


def test_random_offset_windows_slide_into_the_next_block_of_the_same_utterance():
    from ser.data.block_dataset import following_blocks

    utterance = np.array([0, 0, 0, 1, 2, 2])
    assert following_blocks(utterance).tolist() == [1, 2, -1, -1, 5, -1]
    audio = np.arange(6 * 100, dtype=np.int16).reshape(6, 100)  # sample value = position
    bank = NoiseBank([np.ones(1000, dtype=np.float32)], ["n"], 100)
    ds = BlockNoiseDataset(audio, np.zeros(6, dtype=np.int64), utterance, np.arange(6), [math.inf],
                           bank, seed=0, stream=1, fixed=False, random_offset=True)
    for epoch in range(3):
        for i in range(6):
            clean = (ds[epoch * 6 + i]["clean"].numpy() * 32768).round().astype(int)
            start = clean[0] - 100 * i
            assert (np.diff(clean) == 1).all()  # one contiguous stretch of the utterance
            assert 0 <= start < 100 and (start == 0 or i in (0, 1, 4))  # last blocks stay put
    shifts = {int(ds[e * 6]["clean"][0] * 32768) for e in range(8)}
    assert len(shifts) > 4  # a fresh offset each epoch
    same = BlockNoiseDataset(audio, np.zeros(6, dtype=np.int64), utterance, np.arange(6), [math.inf],
                             bank, seed=0, stream=1, fixed=False)
    assert (same[0]["clean"].numpy() * 32768).round()[0] == 0  # off: the grid


def test_a_moving_average_of_the_weights_is_what_the_run_and_a_re_test_score(tmp_path):
    from ser.reporting.predictions import read_predictions
    from ser.training.callbacks import weight_ema
    from tests.conftest import FAST, run_script
    from tests.test_evaluate import ok

    run = tmp_path / "ema"
    fast = [o for o in FAST if not o.startswith(("trainer.max_epochs", "trainer.limit_train"))]
    ok(run_script("train.py", [*fast, "trainer.max_epochs=2", "trainer.limit_train_batches=3",
                               "logger=none", "+optim.ema_decay=0.5", f"hydra.run.dir={run}"], cwd=tmp_path))
    [best] = (run / "checkpoints").glob("best-*.ckpt")
    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    average, trained = ckpt["state_dict"], ckpt["current_model_state"]
    assert max(float((average[k].float() - trained[k].float()).abs().max())
               for k in average if average[k].is_floating_point()) > 1e-4
    ok(run_script("evaluate.py", [f"ckpt={run}", f"out_dir={tmp_path / 'eval'}"], cwd=tmp_path))
    own, again = read_predictions(run / "predictions.csv"), read_predictions(tmp_path / "eval" / "predictions.csv")
    assert np.allclose(own.probs, again.probs, atol=1e-5)  # the run tested the average, as evaluate.py does
    assert weight_ema(None) is None
    with pytest.raises(SerError, match="optim.ema_decay"):
        weight_ema(1.5)


def test_pcen_is_librosas_from_the_block_mean_and_pulls_down_a_steady_band(monkeypatch):
    import librosa
    import scipy.signal

    from ser.features.pcen import SCALE, TIME_CONSTANT_S, pcen, smoother, smoothing_coefficient

    rng = np.random.default_rng(0)
    energy = rng.gamma(0.5, 1.0, size=(2, 8, 101)) * 1e-3
    b = smoothing_coefficient(TIME_CONSTANT_S, 100.0)
    ours = pcen(torch.from_numpy(energy * SCALE).float(), *smoother(101, b)).numpy()
    for i in range(2):
        zi = scipy.signal.lfilter_zi([b], [1, b - 1])[None, :] * (energy[i] * SCALE).mean(-1, keepdims=True)
        ref = librosa.pcen(energy[i] * SCALE, sr=16000, hop_length=160, zi=zi)
        assert np.allclose(ours[i], ref, rtol=1e-3, atol=1e-4)

    # a steady 440 Hz hum under a burst: the log-mel keeps the hum's band bright all block long,
    # PCEN pulls it towards its floor while the burst (what changes) stays near the top
    t = np.arange(16000) / 16000
    burst = np.where((t > 0.5) & (t < 0.7), rng.normal(0, 1.0, t.size), 0.0)
    block = torch.from_numpy(np.sin(2 * np.pi * 440 * t) + burst).float()[None]
    band = int(LogMel(n_mels=64).mel[:, 14].argmax())      # the band holding 440 Hz (bin 14)
    log_mel, normalised = LogMel(n_mels=64)(block)[0, 0], LogMel(n_mels=64, pcen=True)(block)[0, 0]
    assert normalised.shape == log_mel.shape and float(normalised.min()) >= -1 and float(normalised.max()) <= 1
    quiet = slice(10, 40)                                  # frames before the burst: hum alone
    assert float(log_mel[band, quiet].mean()) > 0.8
    assert float(normalised[band, quiet].mean()) < float(log_mel[band, quiet].mean()) - 0.5
    assert torch.allclose(traced_form(LogMel(n_mels=64, pcen=True), block, monkeypatch),
                          LogMel(n_mels=64, pcen=True)(block), atol=1e-4)
    with pytest.raises(ValueError, match="choose one"):
        LogMel(pcen=True, band_norm=True)
