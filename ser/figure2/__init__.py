"""The paper's Figure 2, clean vs noisy, as ``ser-figure2 input=IN.wav output=OUT.png [snr=15]``
(``python -m ser.figure2``, :mod:`ser.commands.figure2`) draws it.

Draws one second of ``IN.wav`` (from ``offset`` seconds) as the dB spectrogram the models
see, next to the same second mixed with noise at ``snr`` dB: frequency in Hz
up the side, time in seconds along the bottom, the paper's jet colours, dB relative to the
block's maximum down to its floor. The noise is ``noise=N.wav`` (a random 1-s segment, the
same for the same ``seed``), or the package's synthetic noisy room when none is given. The
spectrogram itself is :mod:`ser.features.stft`'s, the one the training pipeline uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ser.errors import SerError


def speech_block(path: str | Path, sample_rate: int, offset: float, seconds: float) -> np.ndarray:
    """The ``seconds``-long block of ``path`` from ``offset`` s, float32 at ``sample_rate`` Hz."""
    from ser.audio.io import load_audio

    audio = load_audio(path, sample_rate)
    start, length = int(round(offset * sample_rate)), int(round(seconds * sample_rate))
    if offset < 0 or start + length > audio.size:
        raise SerError(f"{path} holds {audio.size / sample_rate:.2f} s of audio, so there is no "
                       f"{seconds:g}-s block starting at {offset:g} s. Pick offset= between 0 "
                       f"and {max(audio.size / sample_rate - seconds, 0):.2f}, or a longer file.")
    return audio[start:start + length]


def noise_segment(path: str | Path | None, sample_rate: int, length: int, seed: int
                  ) -> tuple[np.ndarray, str]:
    """A ``length``-sample noise segment (tiled if the recording is shorter) and its name."""
    from ser.audio.io import load_audio
    from ser.audio.noise import NoiseBank

    rng = np.random.default_rng(seed)
    if path is None:
        bank, _ = NoiseBank.demo(sample_rate, seconds=max(4.0, 3 * length / sample_rate), seed=seed)
        return bank.segment(rng, length), "synthetic noisy room"
    bank = NoiseBank([load_audio(path, sample_rate)], [Path(path).name], sample_rate)
    return bank.segment(rng, length), Path(path).name


def draw_figure(clean: np.ndarray, noisy: np.ndarray, output: str | Path, sample_rate: int,
                snr_db: float, noise_name: str, title: str = "") -> None:
    """Render both blocks through the training pipeline's STFT and dB floor and save the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ser.features.stft import StftDb

    stft = StftDb()
    db = stft.decibels(torch.from_numpy(np.stack([clean, noisy]).astype(np.float32)))
    db = db.flip(1).numpy()  # decibels() is in image rows (top = Nyquist); imshow flips back
    seconds = clean.size / sample_rate
    extent = (0.0, seconds, 0.0, sample_rate / 2)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True, constrained_layout=True)
    titles = ("Clean", f"Noisy: {noise_name} at SNR {snr_db:g} dB")
    for ax, image, name in zip(axes, db, titles):
        shown = ax.imshow(image, origin="lower", aspect="auto", cmap="jet", extent=extent,
                          vmin=-stft.top_db, vmax=0.0)
        ax.set_title(name)
        ax.set_xlabel("Time (s)")
    axes[0].set_ylabel("Frequency (Hz)")
    fig.colorbar(shown, ax=axes, label="dB relative to the block's maximum")
    if title:
        fig.suptitle(title)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=150)
    plt.close(fig)


def write_figure2(input: str | Path, output: str | Path, noise: str | Path | None = None,
                  snr: float = 15.0, offset: float = 0.0, seed: int = 0, sample_rate: int = 16000,
                  block_seconds: float = 1.0) -> None:
    """The figure of ``input``'s block at ``offset`` s, clean and with ``noise`` at ``snr`` dB,
    written to ``output``."""
    from ser.audio.mixing import mix_at_snr

    length = int(round(block_seconds * sample_rate))
    clean = speech_block(input, sample_rate, offset, block_seconds)
    noise_block, noise_name = noise_segment(noise, sample_rate, length, seed)
    noisy = mix_at_snr(torch.from_numpy(clean)[None], torch.from_numpy(noise_block)[None],
                       torch.tensor([snr]))[0].numpy()
    draw_figure(clean, noisy, output, sample_rate, snr, noise_name,
                title=f"{Path(input).name}, {offset:g}–{offset + block_seconds:g} s")
