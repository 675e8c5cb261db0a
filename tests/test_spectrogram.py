"""Spectrogram images: each step against its reference, the whole against the paper's way."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from ser.features.reference import reference_images
from ser.features.resize import Resize
from ser.features.spectrogram import SpectrogramImage

SR = 16000
URDU = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "urdu"
TOLERANCE = 1.0 / 255.0  # mean absolute difference on the [0, 1] image


@pytest.fixture(scope="module")
def generated_speech(tmp_path_factory) -> np.ndarray:
    """Speech-like 1-s blocks from the package's synthesiser (no shared data needed): (n, T)."""
    from ser.audio.io import load_audio
    from ser.data.demo import build_demo_corpus

    table = build_demo_corpus(tmp_path_factory.mktemp("demo"), seed=3, n_speakers=2,
                              utterances_per_class=1, min_seconds=1.2, max_seconds=2.2)
    blocks = [load_audio(u.path, SR)[:SR] for u in table.utterances]
    return np.stack([b for b in blocks if b.size == SR])


@pytest.fixture(scope="module")
def urdu_speech() -> np.ndarray:
    """Real speech: the first 1-s blocks of two files per class, resampled to 16 kHz."""
    from ser.audio.io import list_audio_files, load_audio

    blocks = []
    for folder in ("Angry", "Happy", "Neutral", "Sad"):
        for path in list_audio_files(URDU / folder)[:2]:
            audio = load_audio(path, SR)
            blocks += [audio[i * SR:(i + 1) * SR] for i in range(min(2, audio.size // SR))]
    return np.stack(blocks)


def _noisy(blocks: np.ndarray, snr_db: float = 15.0) -> np.ndarray:
    from ser.audio.mixing import mix_at_snr
    from ser.audio.noise import NoiseBank

    bank, _ = NoiseBank.demo(SR, seconds=6.0, seed=1)
    rng = np.random.default_rng(0)
    noise = np.stack([bank.segment(rng, blocks.shape[1]) for _ in blocks])
    mixed = mix_at_snr(torch.from_numpy(blocks), torch.from_numpy(noise),
                       torch.full((len(blocks),), snr_db))
    return mixed.numpy()


def _unit_images(pipeline: SpectrogramImage, blocks: np.ndarray) -> torch.Tensor:
    """The pipeline's [0, 1] image before normalisation (what the reference gives)."""
    return pipeline.rgba(torch.from_numpy(blocks))[:, :3].float() / 255.0


def _check_equivalent(blocks: np.ndarray) -> None:
    pipeline = SpectrogramImage()
    ours, ref = _unit_images(pipeline, blocks), reference_images(blocks)
    assert ours.shape == ref.shape == (len(blocks), 3, 256, 256)
    per_block = (ours - ref).abs().mean(dim=(1, 2, 3))
    assert per_block.max().item() <= TOLERANCE, per_block
    # the normalised images agree too (the reference normalised by torchvision)
    from torchvision import transforms

    ref_normalised = transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))(ref)
    normalised = pipeline(torch.from_numpy(blocks))
    assert (normalised - ref_normalised).abs().mean().item() <= TOLERANCE / 0.224


# ------------------------------------------------------------------- the whole pipeline
def test_shapes_dtype_and_zero_block():
    blocks = torch.randn(3, SR)
    blocks[1] = 0.0
    images = SpectrogramImage()(blocks)
    assert images.shape == (3, 3, 256, 256) and images.dtype == torch.float32
    assert torch.isfinite(images).all()
    # a silent block is a valid image: imsave paints a constant image in the map's first colour
    ref = reference_images(np.zeros((1, SR), np.float32))
    assert torch.equal(_unit_images(SpectrogramImage(), np.zeros((1, SR), np.float32)), ref)
    assert SpectrogramImage()(torch.zeros(0, SR)).shape == (0, 3, 256, 256)


def test_matches_reference_on_generated_speech(generated_speech):
    blocks = np.concatenate([generated_speech, _noisy(generated_speech),
                             np.zeros((1, SR), np.float32)])
    _check_equivalent(blocks.astype(np.float32))


@pytest.mark.skipif(not (URDU / "manifest.csv").is_file(),
                    reason="real speech (../shared/data/urdu) not present; generated speech is tested")
def test_matches_reference_on_real_speech(urdu_speech):
    blocks = np.concatenate([urdu_speech, _noisy(urdu_speech[:4])]).astype(np.float32)
    _check_equivalent(blocks)


def test_batch_independent_and_chunking(generated_speech):
    blocks = torch.from_numpy(generated_speech)
    together = SpectrogramImage(chunk_size=3)(blocks)
    for i in (0, len(blocks) - 1):
        alone = SpectrogramImage()(blocks[i:i + 1])
        assert (alone[0] - together[i]).abs().max().item() < 1e-5


def test_autocast_does_not_lower_precision(generated_speech):
    blocks = torch.from_numpy(generated_speech[:2])
    pipeline = SpectrogramImage()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = pipeline(blocks)
    assert under_autocast.dtype == torch.float32
    assert torch.equal(under_autocast, pipeline(blocks))


def test_inference_mode_then_training_mode(generated_speech):
    """Lightning validates in inference mode, then trains: reused buffers must serve both."""
    blocks = torch.from_numpy(generated_speech)
    pipeline = SpectrogramImage(chunk_size=2)
    with torch.inference_mode():
        validating = pipeline(blocks)
    assert torch.equal(pipeline(blocks), validating)


def test_channels_last_output_is_the_same_image(generated_speech):
    blocks = torch.from_numpy(generated_speech[:2])
    images = SpectrogramImage(channels_last=True)(blocks)
    assert images.is_contiguous(memory_format=torch.channels_last)
    # (the planar path normalises with a fused multiply-add: float rounding may differ)
    assert torch.allclose(images, SpectrogramImage()(blocks), rtol=0, atol=1e-5)


@pytest.mark.slow
def test_compiled_pipeline_gives_the_same_images(generated_speech):
    blocks = torch.from_numpy(generated_speech[:4])
    eager = SpectrogramImage(chunk_size=2)(blocks)
    pipeline = SpectrogramImage(chunk_size=2, compile=True)
    assert (pipeline(blocks) - eager).abs().mean().item() < 1e-3
    # checkpoints and spawned workers pickle the module: the compiled code is not pickled
    assert torch.equal(pickle.loads(pickle.dumps(pipeline))(blocks), pipeline(blocks))


def test_gpu_code_path_on_the_cpu(generated_speech, monkeypatch):
    """What a GPU runs (fresh buffers, float two-pass resize), checked where there is none."""
    import ser.features.spectrogram as spectrogram

    blocks = torch.from_numpy(generated_speech[:3])
    usual = SpectrogramImage()(blocks)
    monkeypatch.setattr(spectrogram, "thread_scratch", lambda: None)
    monkeypatch.setattr(Resize, "forward", Resize.two_pass)
    pipeline = SpectrogramImage(fused=False)  # the numba kernels are for CPUs only
    images = pipeline._empty_images(len(blocks), blocks.device)
    pipeline._make(blocks, images)
    assert (images - usual).abs().mean().item() < 0.01 * TOLERANCE / 0.224


def test_numba_kernels_give_the_torch_pipelines_images(generated_speech):
    blocks = torch.from_numpy(generated_speech)
    blocks[1] = 0.0  # a silent block: the flat image both paths draw in the lowest colour
    fused, plain = SpectrogramImage(fused=True), SpectrogramImage(fused=False)
    assert fused.fused, "numba (a librosa dependency) should be importable"
    fused_rgba, plain_rgba = fused.rgba(blocks), plain.rgba(blocks)
    # the kernels' log differs from torch's by a few ulp: a pixel now and then lands on the
    # neighbouring colour-table row, nothing more
    assert (fused_rgba != plain_rgba).float().mean().item() < 1e-3
    assert (fused_rgba.int() - plain_rgba.int()).abs().float().mean().item() < 0.01
    assert torch.equal(fused_rgba[1], plain_rgba[1])
    assert torch.allclose(fused(blocks), plain(blocks), rtol=0, atol=0.1)
    assert (fused(blocks) - plain(blocks)).abs().mean().item() < 1e-3


def test_numba_failure_falls_back_to_torch_with_one_warning(generated_speech, monkeypatch):
    import ser.features.fused as fused_kernels

    def broken(*arrays):
        raise RuntimeError("no LLVM here")

    monkeypatch.setattr(fused_kernels, "spectrum_words", broken)
    blocks = torch.from_numpy(generated_speech[:3])
    pipeline = SpectrogramImage(chunk_size=1)
    with pytest.warns(UserWarning, match="numba image kernels could not run"):
        images = pipeline(blocks)
    assert not pipeline.fused
    assert torch.allclose(images, SpectrogramImage(fused=False)(blocks), rtol=0, atol=1e-5)


def test_compile_failure_falls_back_to_torch_with_one_warning(generated_speech, monkeypatch):
    def no_compiler(function):
        def compiled(*args):
            raise RuntimeError("no C++ compiler found")
        return compiled

    monkeypatch.setattr(torch, "compile", no_compiler)
    blocks = torch.from_numpy(generated_speech[:3])
    pipeline = SpectrogramImage(chunk_size=1, compile=True, fused=False)
    with pytest.warns(UserWarning, match="torch.compile of the normalisation could not run"):
        images = pipeline(blocks)
    assert not pipeline.compiled
    assert torch.equal(images, SpectrogramImage(fused=False)(blocks))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_gives_the_same_images(generated_speech):
    blocks = torch.from_numpy(generated_speech)
    cpu = SpectrogramImage()(blocks)
    gpu = SpectrogramImage().cuda()(blocks.cuda()).cpu()
    assert (gpu - cpu).abs().mean().item() < 0.2 * TOLERANCE / 0.224
