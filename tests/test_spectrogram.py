"""Spectrogram images: each step against its reference, the whole against the paper's way."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from ser.features.colour import JetColour, colormap_bytes
from ser.features.reference import reference_db, reference_images
from ser.features.resize import Resize
from ser.features.spectrogram import ImageNormalize, SpectrogramImage
from ser.features.stft import InfinityNorm, StftDb

SR = 16000
URDU = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "urdu"
TOLERANCE = 1.0 / 255.0  # SPEC §2: mean absolute difference on the [0, 1] image


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


# --------------------------------------------------------------------- step by step
def test_infinity_norm():
    blocks = torch.tensor([[0.0, -0.5, 0.25], [0.0, 0.0, 0.0]])
    out = InfinityNorm()(blocks)
    assert torch.equal(out, torch.tensor([[0.0, -1.0, 0.5], [0.0, 0.0, 0.0]]))


def test_stft_power_matches_librosa(generated_speech):
    import librosa

    stft = StftDb()
    blocks = generated_speech[:3]
    ours = stft.power(torch.from_numpy(blocks)).flip(1).numpy()
    ref = np.abs(librosa.stft(blocks, n_fft=512, hop_length=62, win_length=256, window="hamming",
                              center=True, pad_mode="constant")) ** 2
    assert ours.shape == ref.shape == (3, 257, 259)
    scale = ref.max(axis=(1, 2), keepdims=True)
    assert np.abs(ours - ref).max() / scale.min() < 1e-4
    # relative agreement on the bins that make the image (above the -80 dB floor)
    visible = ref > scale * 1e-8
    assert np.all(np.abs(ours - ref)[visible] <= 1e-3 * ref[visible] + 1e-6 * scale.max())


def test_decibels_and_scaled_image_match_librosa(generated_speech):
    stft = StftDb()
    blocks = generated_speech[:2]
    ref_db = np.stack([reference_db(b)[::-1] for b in blocks])  # image rows: top = Nyquist
    assert np.abs(stft.decibels(torch.from_numpy(blocks)).numpy() - ref_db).max() < 1e-2
    lo, hi = ref_db.min(axis=(1, 2), keepdims=True), ref_db.max(axis=(1, 2), keepdims=True)
    ref_scaled = (ref_db - lo) / (hi - lo)
    assert np.abs(stft(torch.from_numpy(blocks)).numpy() - ref_scaled).max() < 1e-4


def test_fused_levels_equal_scale_then_colour_indices(generated_speech):
    stft, colour = StftDb(), JetColour()
    power = stft.power(torch.from_numpy(generated_speech))
    fused = stft.levels(power, colour.levels)  # the training path: one sweep to table rows
    stepwise = colour.indices(stft.scale(power))
    assert fused.shape == stepwise.shape == (len(generated_speech), 257, 259)
    differ = fused.long() != stepwise
    assert differ.float().mean().item() < 1e-4  # rounding at a bin edge, one level at most
    assert (fused.long() - stepwise).abs().max().item() <= 1


def test_jet_table_and_lookup_match_matplotlib():
    import matplotlib

    jet = matplotlib.colormaps["jet"]
    table = colormap_bytes("jet")
    assert table.shape == (256, 4) and table.dtype == torch.uint8
    assert np.array_equal(table.numpy(), jet(np.arange(256), bytes=True))
    # values on and around the bin edges, as imsave maps them (float32, floor(x * N))
    edges = np.arange(257, dtype=np.float32) / 256
    values = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, 1),
                             np.random.default_rng(0).random(1000, dtype=np.float32)])
    values = np.clip(values, 0, 1).astype(np.float32).reshape(1, 1, -1)
    ours = JetColour("jet")(torch.from_numpy(values)).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(ours, jet(values, bytes=True))


def test_resize_matches_pil():
    from PIL import Image

    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, size=(2, 257, 259, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    image = torch.from_numpy(rgba).permute(0, 3, 1, 2)  # channels-last view
    pil = np.stack([np.asarray(Image.fromarray(a[..., :3]).resize((256, 256), Image.BILINEAR))
                    for a in rgba])
    resize = Resize((256, 256))
    fast = resize(image).permute(0, 2, 3, 1)[..., :3].numpy().astype(int)
    two_pass = resize.two_pass(image).permute(0, 2, 3, 1)[..., :3].numpy().astype(int)
    # PIL's fixed point vs ours: at most 1 level, on well under 1 % of the values in this
    # worst case (white noise); on spectrogram images about 0.1 % differ
    for ours in (fast, two_pass):
        assert np.abs(ours - pil).max() <= 1
        assert (ours != pil).mean() < 1e-2


def test_normalise_matches_torchvision():
    from torchvision import transforms

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    rgba = torch.randint(0, 256, (2, 8, 8, 4), dtype=torch.uint8).permute(0, 3, 1, 2)
    ref = transforms.Normalize(mean, std)(rgba[:, :3].float() / 255)
    normalise = ImageNormalize(mean, std)
    assert torch.allclose(normalise(rgba), ref, atol=1e-5)
    assert torch.allclose(normalise(rgba[:, :3].float() / 255), ref, atol=1e-5)
    words = rgba.permute(0, 2, 3, 1).contiguous().view(torch.int32).squeeze(-1)
    assert torch.allclose(normalise.from_rgba_words(words), ref, atol=1e-5)


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
