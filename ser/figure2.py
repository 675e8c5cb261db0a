"""``ser-figure2 input=IN.wav output=OUT.png [snr=15]`` (or ``python -m ser.figure2``): the
paper's Figure 2, clean vs noisy.

Draws one second of ``IN.wav`` (from ``offset`` seconds) as the dB spectrogram the models
see, next to the same second mixed with noise at ``snr`` dB: frequency in Hz
up the side, time in seconds along the bottom, the paper's jet colours, dB relative to the
block's maximum down to its floor. The noise is ``noise=N.wav`` (a random 1-s segment, the
same for the same ``seed``), or the package's synthetic noisy room when none is given. The
older ``IN.wav OUT.png --snr 15`` form works too.

Exit status: 0 written, 2 bad input (the reason is printed as one paragraph by
:func:`ser.cli.report_errors`, as by every entry point). The spectrogram itself is
:mod:`ser.features.stft`'s, the one the training pipeline uses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from ser.cli import key_values, report_errors
from ser.errors import SerError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ser-figure2",
        epilog="Arguments are key=value like every ser command (input=IN.wav output=OUT.png snr=15); "
               "the positional and --flag forms below work too.",
        description="Write a clean and a noisy 1-s spectrogram side by side (the paper's "
                    "Figure 2).")
    parser.add_argument("input", metavar="IN.wav",
                        help="speech recording (any rate, mono or stereo)")
    parser.add_argument("output", metavar="OUT.png", help="figure to write (PNG, PDF or SVG)")
    parser.add_argument("--noise", metavar="N.wav", default=None,
                        help="noise recording; default: the package's synthetic noisy room")
    parser.add_argument("--snr", type=float, default=15.0,
                        help="SNR of the noisy panel in dB (default 15)")
    parser.add_argument("--offset", type=float, default=0.0,
                        help="start of the 1-s block in IN.wav, in seconds (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="picks the noise segment (default 0)")
    parser.add_argument("--sample-rate", type=int, default=16000,
                        help="analysis rate in Hz (default 16000)")
    parser.add_argument("--block-seconds", type=float, default=1.0,
                        help="block length in s (default 1)")
    return parser


def speech_block(path: str | Path, sample_rate: int, offset: float, seconds: float) -> np.ndarray:
    """The ``seconds``-long block of ``path`` from ``offset`` s, float32 at ``sample_rate`` Hz."""
    from ser.audio.io import load_audio

    audio = load_audio(path, sample_rate)
    start, length = int(round(offset * sample_rate)), int(round(seconds * sample_rate))
    if offset < 0 or start + length > audio.size:
        raise SerError(f"{path} holds {audio.size / sample_rate:.2f} s of audio, so there is no "
                       f"{seconds:g}-s block starting at {offset:g} s. Pick --offset between 0 "
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


@report_errors
def main(argv: list[str] | None = None) -> int:
    from ser.audio.mixing import mix_at_snr

    parser = _parser()
    args = parser.parse_args(key_values(sys.argv[1:] if argv is None else argv, parser))
    length = int(round(args.block_seconds * args.sample_rate))
    clean = speech_block(args.input, args.sample_rate, args.offset, args.block_seconds)
    noise, noise_name = noise_segment(args.noise, args.sample_rate, length, args.seed)
    noisy = mix_at_snr(torch.from_numpy(clean)[None], torch.from_numpy(noise)[None],
                       torch.tensor([args.snr]))[0].numpy()
    draw_figure(clean, noisy, args.output, args.sample_rate, args.snr, noise_name,
                title=f"{Path(args.input).name}, {args.offset:g}–{args.offset + args.block_seconds:g} s")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
