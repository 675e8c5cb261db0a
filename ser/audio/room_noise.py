"""A synthetic noisy room: the default noise, so the demo needs no download.

It only stands in for real recordings; `noise=dir noise.root=FOLDER` is where real ones go.
"""

from __future__ import annotations

import numpy as np

from ser.errors import SerError


def synthetic_room(sample_rate: int, seconds: float, seed: int, voices: int) -> np.ndarray:
    """A noisy room, float32 (round(seconds * sample_rate),), peak 0.5, deterministic per seed.

    The recipe's levels and rates are those of a busy canteen or classroom; they only need to
    be plausible, since the demo stands in for real recordings.
    """
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    if n < 2:
        raise SerError(f"The synthetic noise needs a positive duration, got {seconds} s.")
    t = np.arange(n) / sample_rate
    babble = sum((_talker(rng, n, sample_rate) for _ in range(max(int(voices), 1))), np.zeros(n))
    hum = sum(amp * np.sin(2 * np.pi * hz * rng.uniform(0.998, 1.002) * t + rng.uniform(0, 6.3))
              for hz, amp in ((50.0, 1.0), (100.0, 0.5), (150.0, 0.3)))
    hum *= 1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t)  # slow fan wobble
    rumble = sosfilt(butter(2, min(150.0, 0.4 * sample_rate), fs=sample_rate, output="sos"),
                     rng.standard_normal(n))
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.fft.rfftfreq(n, 1.0 / sample_rate), 20.0))  # 1/f power
    room_tone = np.fft.irfft(spectrum, n)
    clatter = _clatter(rng, n, sample_rate)
    parts = [(babble, 1.0), (hum, 0.12), (rumble, 0.15), (room_tone, 0.2), (clatter, 0.3)]
    room = sum(level * part / max(np.sqrt(np.mean(part ** 2)), 1e-12) for part, level in parts)
    return (0.5 * room / np.max(np.abs(room))).astype(np.float32)


def _resonate(signal: np.ndarray, hz: float, bandwidth: float, sample_rate: int) -> np.ndarray:
    """Two-pole resonator (a formant or a ringing object) at ``hz`` with ``bandwidth`` Hz."""
    from scipy.signal import lfilter

    r = np.exp(-np.pi * bandwidth / sample_rate)
    theta = 2 * np.pi * min(hz, 0.45 * sample_rate) / sample_rate
    return lfilter([1.0 - r], [1.0, -2.0 * r * np.cos(theta), r * r], signal)


def _talker(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """One distant talker: syllables of a glottal sawtooth with a gliding F0 contour through
    three vowel formants, with a syllable envelope and pauses between phrases."""
    vowels = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480),
              (570, 840, 2410), (440, 1020, 2240), (660, 1720, 2410))
    f0_mean, tract = rng.uniform(95.0, 240.0), rng.uniform(0.9, 1.2)  # voice pitch, tract size
    out, position, phase = np.zeros(n), int(rng.uniform(0.0, 1.0) * sample_rate), 0.0
    while position < n:
        if rng.random() < 0.12:  # pause between phrases
            position += int(rng.uniform(0.2, 0.9) * sample_rate)
            continue
        length = min(int(rng.uniform(0.12, 0.32) * sample_rate), n - position)
        f0 = f0_mean * np.geomspace(rng.uniform(0.85, 1.2), rng.uniform(0.75, 1.15), length)
        cycles = phase + np.cumsum(f0 / sample_rate)
        phase = float(cycles[-1] % 1.0)
        source = 2.0 * (cycles % 1.0) - 1.0 + 0.05 * rng.standard_normal(length)
        formants = vowels[rng.integers(len(vowels))]
        voiced = sum(gain * _resonate(source, tract * hz, 60.0 + 0.06 * hz, sample_rate)
                     for hz, gain in zip(formants, (1.0, 0.6, 0.3)))
        envelope = np.sin(np.linspace(0.0, np.pi, length)) ** 0.7 * rng.uniform(0.4, 1.0)
        out[position:position + length] += voiced * envelope
        position += length + int(rng.uniform(0.0, 0.06) * sample_rate)
    return out


def _clatter(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Occasional cutlery and chair clatter: decaying noise bursts through a ringing resonance,
    about one every three seconds at random times."""
    out = np.zeros(n)
    for _ in range(rng.poisson(n / sample_rate / 3.0)):
        length = min(int(rng.uniform(0.03, 0.25) * sample_rate), n)
        start = int(rng.integers(0, n - length + 1))
        decay = np.exp(-np.arange(length) / (rng.uniform(0.005, 0.05) * sample_rate))
        burst = rng.standard_normal(length) * decay
        ring = _resonate(burst, rng.uniform(1500.0, 6000.0), rng.uniform(50.0, 300.0), sample_rate)
        ring *= np.abs(burst).max() / max(np.abs(ring).max(), 1e-12)
        out[start:start + length] += rng.uniform(0.3, 1.0) * (0.5 * burst + ring)
    return out
