"""Each step of the spectrogram image against its reference: STFT, dB, colours, resize, norm."""

from __future__ import annotations

import numpy as np
import torch

from ser.features.colour import JetColour, colormap_bytes
from ser.features.reference import reference_db
from ser.features.resize import Resize
from ser.features.spectrogram import ImageNormalize
from ser.features.stft import InfinityNorm, StftDb
from tests.test_spectrogram import generated_speech  # noqa: F401  (module fixture)


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
