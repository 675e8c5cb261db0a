"""The paper's way of making a spectrogram image, kept as the yardstick.

One block at a time: ``librosa.stft`` magnitudes, ``librosa.amplitude_to_db(ref=np.max)``,
``matplotlib.pyplot.imsave(cmap="jet", origin="lower")`` to a PNG (in memory), read back with
PIL as RGB, ``torchvision.transforms.Resize((256, 256))`` and ``ToTensor``. It is slow (a PNG
encode and decode per block) and is never used for training: tests and ``python -m ser.bench``
compare :class:`ser.features.SpectrogramImage` against it.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import torch


def reference_db(block: np.ndarray, n_fft: int = 512, win_length: int = 256, hop_length: int = 62,
                 top_db: float = 80.0, amin: float = 1e-5) -> np.ndarray:
    """dB spectrogram of one block the paper's way: (T,) samples -> (n_fft // 2 + 1, frames) dB.

    The block is first divided by its infinity norm (a silent block stays silent), then
    ``librosa.stft`` with a (periodic) Hamming window, centred with zero padding, and
    ``amplitude_to_db`` relative to the block's maximum, floored ``top_db`` below it.
    """
    import librosa

    y = np.asarray(block, dtype=np.float32)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0:
        y = y / peak
    spec = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                               window="hamming", center=True, pad_mode="constant"))
    return librosa.amplitude_to_db(spec, ref=np.max, amin=amin, top_db=top_db)


def reference_png(block: np.ndarray, colormap: str = "jet", **stft_args) -> bytes:
    """PNG bytes of one block's dB image, as ``plt.imsave(cmap=..., origin="lower")`` writes it."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    plt.imsave(buffer, reference_db(block, **stft_args), cmap=colormap, origin="lower",
               format="png")
    return buffer.getvalue()


def reference_image(block: np.ndarray, image_size: Sequence[int] = (256, 256),
                    colormap: str = "jet", **stft_args) -> torch.Tensor:
    """One block -> (3, H, W) float image in [0, 1] (before ImageNet normalisation)."""
    from PIL import Image
    from torchvision import transforms

    png = reference_png(block, colormap=colormap, **stft_args)
    with Image.open(io.BytesIO(png)) as image:
        rgb = image.convert("RGB")
    resized = transforms.Resize(tuple(image_size))(rgb)
    return transforms.ToTensor()(resized)


def reference_images(blocks: np.ndarray, image_size: Sequence[int] = (256, 256),
                     colormap: str = "jet", normalise: bool = False,
                     mean: Sequence[float] = (0.485, 0.456, 0.406),
                     std: Sequence[float] = (0.229, 0.224, 0.225), **stft_args) -> torch.Tensor:
    """Blocks (n, T) -> images (n, 3, H, W): in [0, 1], or ImageNet-normalised with ``normalise``.

    ``stft_args`` are passed to :func:`reference_db` (n_fft, win_length, hop_length, top_db,
    amin), so the reference follows the same configuration as the pipeline it checks.
    """
    from torchvision import transforms

    blocks = np.atleast_2d(np.asarray(blocks, dtype=np.float32))
    images = torch.stack([reference_image(b, image_size, colormap, **stft_args) for b in blocks])
    if normalise:
        images = transforms.Normalize(mean, std)(images)
    return images
