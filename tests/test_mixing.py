"""Mixing at a target SNR: the measured block SNR must equal the target."""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np
import pytest
import torch

from ser.audio.io import load_audio
from ser.audio.mixing import MixAtSNR, measured_snr_db, mix_at_snr
from ser.audio.noise import NoiseBank

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SAMPLE_RATE = 16000
TARGETS = (0.0, 15.0, 20.0, 40.0)


def speech_like_blocks(n: int, seed: int = 0) -> np.ndarray:
    """Generated (n, 16000) blocks: voiced harmonic bursts with pauses of digital silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    blocks = np.zeros((n, SAMPLE_RATE), dtype=np.float32)
    for row in range(n):
        f0 = rng.uniform(90, 250) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(1, 4) * t))
        phase = np.cumsum(f0) / SAMPLE_RATE
        voice = sum(np.sin(2 * np.pi * k * phase) / k for k in range(1, 12))
        envelope = (np.sin(2 * np.pi * rng.uniform(2, 5) * t) > 0) * rng.uniform(0.05, 0.8)
        blocks[row] = voice * envelope
    return blocks


@functools.lru_cache(maxsize=1)
def demo_bank() -> NoiseBank:
    return NoiseBank.demo(SAMPLE_RATE, seconds=6.0, seed=1)[0]


def generated_noise(n: int, seed: int = 1) -> np.ndarray:
    return demo_bank().segments(np.random.default_rng(seed), n, SAMPLE_RATE)


def batch_for(targets: tuple[float, ...], clean: np.ndarray, noise: np.ndarray):
    reps = len(clean) // len(targets)
    snr = torch.tensor(np.repeat(targets, reps), dtype=torch.float32)
    count = len(snr)
    return torch.from_numpy(clean[:count]), torch.from_numpy(noise[:count]), snr


def max_snr_error(clean: torch.Tensor, noise: torch.Tensor, snr: torch.Tensor) -> float:
    mixed = mix_at_snr(clean, noise, snr)
    assert mixed.shape == clean.shape and mixed.dtype == clean.dtype
    assert torch.isfinite(mixed).all()
    return float((measured_snr_db(clean, mixed) - snr.double()).abs().max())


def test_snr_matches_target_on_generated_audio():
    clean, noise, snr = batch_for(TARGETS, speech_like_blocks(32), generated_noise(32))
    assert max_snr_error(clean, noise, snr) < 0.05


@pytest.mark.skipif(not (DATA / "urdu" / "manifest.csv").is_file(), reason="no real data")
def test_snr_matches_target_on_real_speech_and_noise(tmp_path):
    with open(DATA / "urdu" / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[::25]  # 16 utterances across the four classes
    blocks = []
    for row in rows:
        audio = load_audio(DATA / "urdu" / row["path"], SAMPLE_RATE)
        blocks += [audio[i:i + SAMPLE_RATE] for i in range(0, len(audio) - SAMPLE_RATE + 1,
                                                             SAMPLE_RATE)]
    train, test = NoiseBank.from_folder(DATA / "noise", SAMPLE_RATE, cache_dir=tmp_path)
    rng = np.random.default_rng(0)
    for bank in (train, test):
        noise = bank.segments(rng, len(blocks), SAMPLE_RATE)
        reps = int(np.ceil(len(blocks) / len(TARGETS)))
        snr = torch.tensor(np.tile(TARGETS, reps)[:len(blocks)], dtype=torch.float32)
        error = max_snr_error(torch.from_numpy(np.stack(blocks)), torch.from_numpy(noise), snr)
        assert error < 0.05


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_snr_is_exact_in_full_precision_dtypes(dtype):
    clean, noise, snr = batch_for(TARGETS, speech_like_blocks(8), generated_noise(8))
    assert max_snr_error(clean.to(dtype), noise.to(dtype), snr) < 1e-3


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_keeps_dtype_and_stays_finite(dtype):
    clean, noise, snr = batch_for((0.0, 15.0), speech_like_blocks(4), generated_noise(4))
    mixed = mix_at_snr(clean.to(dtype), noise.to(dtype), snr)
    assert mixed.dtype == dtype and torch.isfinite(mixed).all()
    assert float((measured_snr_db(clean, mixed.float()) - snr.double()).abs()[:2].max()) < 0.5


def test_infinite_snr_passes_clean_through():
    clean, noise, _ = batch_for((0.0,), speech_like_blocks(4), generated_noise(4))
    snr = torch.tensor([float("inf"), 15.0, float("inf"), 40.0])
    mixed = mix_at_snr(clean, noise, snr)
    assert torch.equal(mixed[0], clean[0]) and torch.equal(mixed[2], clean[2])
    assert torch.isposinf(measured_snr_db(clean, mixed)[[0, 2]]).all()
    assert not torch.equal(mixed[1], clean[1])


def test_silent_clean_block_stays_zero():
    clean = torch.zeros(3, SAMPLE_RATE)
    noise = torch.from_numpy(generated_noise(3))
    mixed = mix_at_snr(clean, noise, torch.tensor([0.0, 20.0, float("inf")]))
    assert torch.equal(mixed, clean)


def test_silent_noise_gives_no_nan():
    clean = torch.from_numpy(speech_like_blocks(2))
    noise = torch.zeros(2, SAMPLE_RATE)
    mixed = mix_at_snr(clean, noise, torch.tensor([15.0, 40.0]))
    assert torch.equal(mixed, clean)
    silence = torch.zeros(2, 8)
    both_silent = mix_at_snr(silence, silence, torch.tensor([0.0, float("inf")]))
    assert torch.equal(both_silent, torch.zeros(2, 8))


def test_gradients_stay_finite_with_silent_rows():
    clean = torch.from_numpy(speech_like_blocks(3)).requires_grad_()
    noise = torch.from_numpy(generated_noise(3))
    with torch.no_grad():
        noise[1] = 0.0
    mixed = mix_at_snr(clean, noise, torch.tensor([10.0, 10.0, float("inf")]))
    mixed.square().sum().backward()
    assert torch.isfinite(clean.grad).all()


def test_scalar_snr_and_module_match_the_function():
    clean, noise, _ = batch_for((0.0,), speech_like_blocks(4), generated_noise(4))
    by_scalar = mix_at_snr(clean, noise, 20.0)
    by_vector = mix_at_snr(clean, noise, torch.full((4,), 20.0))
    assert torch.allclose(by_scalar, by_vector)
    assert torch.equal(MixAtSNR()(clean, noise, torch.full((4,), 20.0)), by_vector)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError):
        mix_at_snr(torch.zeros(2, 10), torch.zeros(2, 11), torch.zeros(2))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_mixing_on_cuda_matches_cpu(dtype):
    clean, noise, snr = batch_for(TARGETS, speech_like_blocks(8), generated_noise(8))
    snr[0] = float("inf")
    on_gpu = MixAtSNR().cuda()(clean.cuda().to(dtype), noise.cuda().to(dtype), snr.cuda())
    on_cpu = mix_at_snr(clean.to(dtype), noise.to(dtype), snr)
    assert on_gpu.dtype == dtype and on_gpu.device.type == "cuda"
    assert torch.allclose(on_gpu.cpu().float(), on_cpu.float(), atol=1e-2 if dtype != torch.float32
                          else 1e-6)
    if dtype == torch.float32:
        error = (measured_snr_db(clean.cuda(), on_gpu) - snr.cuda().double())[1:].abs().max()
        assert float(error) < 0.05
