"""A small emotional-speech corpus the package synthesises itself (no download, no licence).

It lets ``python train.py`` run end to end on a fresh machine. It is a smoke test of the
pipeline, never a claim about real speech. A source-filter synthesiser writes "utterances" of
voiced syllables separated by consonant noise and pauses:

* source: a glottal pulse train following a syllable-wise F0 contour, with per-cycle jitter and
  shimmer, shaped by a two-pole glottal low-pass (its pole sets the spectral tilt: pressed
  voice is bright, breathy voice is steep) plus aspiration noise;
* filter: four formant resonators per syllable (one vowel per syllable), scaled per speaker.

The four classes differ the way acted emotions roughly do (see ``DEMO_PROFILES``): pitch
level and range, contour shape, speaking rate, loudness and voice quality. Each utterance draws
its own parameters around its class's, and speakers have their own pitch and vocal-tract
length, so a classifier must use several cues (F0 alone overlaps between a high-pitched sad
speaker and a low-pitched angry one). After infinity-norm normalisation loudness itself is gone;
harmonic spacing, contour shape, rate, tilt and breathiness remain visible in spectrograms.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter, sosfilt

from ser.atomic import write_bytes_atomic, write_text_atomic
from ser.cache_files import bytes_record, cache_lock, damage, warn_damaged
from ser.data.manifest import read_manifest
from ser.data.utterances import UtteranceTable

DEMO_CLASSES = ["anger", "happy", "sad", "neutral"]
_FORMAT_VERSION = 1  # bump when the synthesiser changes, so cached corpora are rebuilt
# Male formant frequencies (Hz) of five vowels: F1, F2, F3, F4.
_VOWELS = np.array([[730, 1090, 2440, 3400], [270, 2290, 3010, 3600], [300, 870, 2240, 3300],
                    [530, 1840, 2480, 3500], [570, 840, 2410, 3400]], dtype=float)
_BANDWIDTHS = np.array([80.0, 100.0, 140.0, 200.0])  # Hz, per formant


@dataclass(frozen=True)
class ProsodyProfile:
    """Mean prosody of one class; each utterance varies around it.

    f0_factor: pitch level relative to the speaker's base; range_st: accent size (semitones);
    accent: "risefall" | "rise" | "fall" (shape within a syllable); declination_st: fall of
    the baseline over the utterance (negative = final rise); rate: syllables per second;
    loudness: peak amplitude (full scale); tilt: glottal pole in (0, 1), higher = steeper,
    darker spectrum; breathiness: aspiration-to-voice ratio; jitter: cycle-to-cycle period
    perturbation (fraction); pause_prob: chance of a pause before a syllable; formant_shift:
    formant scaling (a smile shortens the vocal tract and raises formants).
    """

    f0_factor: float
    range_st: float
    accent: str
    declination_st: float
    rate: float
    loudness: float
    tilt: float
    breathiness: float
    jitter: float
    pause_prob: float
    formant_shift: float


DEMO_PROFILES = {
    "anger": ProsodyProfile(1.50, 7.0, "risefall", 3.0, 6.2, 0.9, 0.45, 0.02, 0.012, 0.06, 1.02),
    "happy": ProsodyProfile(1.40, 9.0, "rise", -3.0, 5.2, 0.7, 0.65, 0.03, 0.006, 0.08, 1.08),
    "sad": ProsodyProfile(0.85, 1.2, "fall", 1.0, 2.8, 0.3, 0.92, 0.35, 0.015, 0.25, 0.97),
    "neutral": ProsodyProfile(1.00, 2.0, "fall", 2.0, 4.0, 0.5, 0.85, 0.06, 0.005, 0.10, 1.00),
}


@dataclass(frozen=True)
class _Speaker:
    name: str
    session: str
    base_f0: float        # Hz
    formant_scale: float  # vocal-tract length: female tracts are shorter, formants higher


def build_demo_corpus(out_dir: str | Path, seed: int = 0, n_speakers: int = 10,
                      utterances_per_class: int = 7, sample_rate: int = 16000,
                      min_seconds: float = 1.5, max_seconds: float = 4.0) -> UtteranceTable:
    """Write (once) and read the demo corpus: ``n_speakers × 4 × utterances_per_class`` wavs.

    ``out_dir`` receives ``wav/<speaker>/<class>_<speaker>_<nn>.wav`` (16-bit PCM at
    ``sample_rate`` Hz, ``min_seconds``–``max_seconds`` long), ``manifest.csv``
    (path,label,speaker,session) and ``demo_corpus.json`` with the parameters and every file's
    size and checksum, written last; a later call with the same parameters reuses the files
    once they match their checksums (a damaged corpus is rebuilt with one warning), and
    concurrent calls build it once (:func:`ser.cache_files.cache_lock`). Same seed →
    byte-identical audio. Speakers alternate female/male; consecutive pairs share a session, like IEMOCAP's actor pairs, so
    the default 10 speakers give 5 sessions and ``split=loso`` has its 5 folds.
    """
    out_dir = Path(out_dir)
    params = {"format_version": _FORMAT_VERSION, "seed": seed, "n_speakers": n_speakers,
              "utterances_per_class": utterances_per_class, "sample_rate": sample_rate,
              "min_seconds": min_seconds, "max_seconds": max_seconds,
              "profiles": {k: asdict(v) for k, v in DEMO_PROFILES.items()}}
    manifest, params_file = out_dir / "manifest.csv", out_dir / "demo_corpus.json"
    with cache_lock(params_file):
        if not _intact(out_dir, params_file, params):
            _synthesize_corpus(out_dir, params)
        return read_manifest(manifest, classes=DEMO_CLASSES, name="demo")


def _intact(out_dir: Path, params_file: Path, params: dict) -> bool:
    """Whether ``out_dir`` holds the corpus of ``params``, every file matching its checksum."""
    try:
        written = json.loads(params_file.read_text())
    except (OSError, ValueError):
        return False
    files = written.pop("files", None) if isinstance(written, dict) else None
    if written != json.loads(json.dumps(params)) or not isinstance(files, dict):
        return False  # other parameters, or written before checksums were recorded
    for relative, record in files.items():
        why = damage(out_dir / relative, record)
        if why is not None:
            warn_damaged(out_dir / relative, why)
            return False
    return True


def _synthesize_corpus(out_dir: Path, params: dict) -> None:
    seed, n_speakers, sample_rate = params["seed"], params["n_speakers"], params["sample_rate"]
    utterances_per_class = params["utterances_per_class"]
    min_seconds, max_seconds = params["min_seconds"], params["max_seconds"]
    rows, files = [], {}
    (out_dir / "demo_corpus.json").unlink(missing_ok=True)  # a rebuild killed half-way is no corpus
    for index in range(n_speakers):
        speaker = _make_speaker(seed, index)
        for class_id, label in enumerate(DEMO_CLASSES):
            for k in range(utterances_per_class):
                rng = np.random.default_rng([seed, 1, index, class_id, k])
                seconds = rng.uniform(min_seconds, max_seconds)
                audio = _synthesize_utterance(rng, DEMO_PROFILES[label], speaker, seconds,
                                              sample_rate)
                relative = f"wav/{speaker.name}/{label}_{speaker.name}_{k:02d}.wav"
                wav = io.BytesIO()
                sf.write(wav, audio, sample_rate, subtype="PCM_16", format="WAV")
                files[relative] = _write_file(out_dir / relative, wav.getvalue())
                rows.append((relative, label, speaker.name, speaker.session))
    text = io.StringIO()
    csv.writer(text).writerows([("path", "label", "speaker", "session"), *rows])
    files["manifest.csv"] = _write_file(out_dir / "manifest.csv", text.getvalue().encode())
    write_text_atomic(out_dir / "demo_corpus.json", json.dumps({**params, "files": files}, indent=1))


def _write_file(path: Path, data: bytes) -> dict:
    write_bytes_atomic(path, data)
    return bytes_record(data)


def _make_speaker(seed: int, index: int) -> _Speaker:
    rng = np.random.default_rng([seed, 0, index])
    female = index % 2 == 0
    base_f0 = rng.uniform(180.0, 230.0) if female else rng.uniform(95.0, 130.0)
    scale = (1.17 if female else 1.0) * rng.uniform(0.95, 1.05)
    return _Speaker(name=f"S{index + 1:02d}{'F' if female else 'M'}", session=str(index // 2 + 1),
                    base_f0=base_f0, formant_scale=scale)


def _synthesize_utterance(rng: np.random.Generator, profile: ProsodyProfile, speaker: _Speaker,
                         seconds: float, sample_rate: int) -> np.ndarray:
    """One utterance, float32 (round(seconds * sample_rate),), peak = drawn loudness."""
    def vary(value: float, spread: float) -> float:  # multiplicative per-utterance variation
        return value * float(np.exp(rng.normal(0.0, spread)))

    f0 = speaker.base_f0 * vary(profile.f0_factor, 0.08)
    range_st, rate = vary(profile.range_st, 0.25), vary(profile.rate, 0.12)
    tilt = float(np.clip(profile.tilt + rng.normal(0.0, 0.03), 0.3, 0.97))
    breath, jitter = vary(profile.breathiness, 0.3), vary(profile.jitter, 0.3)
    total = int(round(seconds * sample_rate))
    out = np.zeros(total)
    position = int(rng.uniform(0.05, 0.15) * sample_rate)
    end = total - int(rng.uniform(0.05, 0.15) * sample_rate)
    while True:
        period = rng.uniform(0.8, 1.2) / rate
        if rng.random() < profile.pause_prob:
            position += int(rng.uniform(0.12, 0.3) * sample_rate)
        voiced = int(period * rng.uniform(0.55, 0.8) * sample_rate)
        gap = int(period * sample_rate) - voiced
        if position + gap + voiced > end:
            break
        if rng.random() < 0.5:  # a fricative consonant fills the gap
            out[position:position + gap] += _fricative(rng, gap, sample_rate)
        start = position + gap
        progress = start / max(end, 1)
        baseline = f0 * 2.0 ** (-profile.declination_st * progress / 12.0)
        formant_scale = speaker.formant_scale * profile.formant_shift
        out[start:start + voiced] += _syllable(rng, profile.accent, baseline, range_st, tilt,
                                               breath, jitter, formant_scale, voiced, sample_rate)
        position = start + voiced
    peak = np.max(np.abs(out))
    if peak > 0:
        out *= vary(profile.loudness, 0.15) / peak
    out += rng.normal(0.0, 3e-4, total)  # recording noise floor, about -70 dBFS
    return np.clip(out, -0.99, 0.99).astype(np.float32)


def _syllable(rng: np.random.Generator, accent: str, baseline: float, range_st: float,
              tilt: float, breath: float, jitter: float, formant_scale: float, length: int,
              sample_rate: int) -> np.ndarray:
    """One voiced syllable of ``length`` samples: shaped pulse train through a vowel."""
    u = np.linspace(0.0, 1.0, length)
    size = range_st * rng.uniform(0.6, 1.0)
    shape = {"risefall": np.sin(np.pi * u ** 0.6), "rise": u ** 1.5, "fall": 0.5 - u}[accent]
    f0 = baseline * 2.0 ** (size * shape / 12.0)
    phase = np.cumsum(f0) / sample_rate
    cycles = np.flatnonzero(np.diff(np.floor(phase)) > 0) + 1
    # Per-cycle jitter moves each pulse; pulses land between samples (linear interpolation).
    where = cycles + jitter * rng.standard_normal(cycles.size) * sample_rate / f0[cycles]
    where = np.clip(where, 0, length - 2)
    amplitude = 1.0 + 3.0 * jitter * rng.standard_normal(cycles.size)  # shimmer follows jitter
    source = np.zeros(length)
    low = np.floor(where).astype(int)
    frac = where - low
    np.add.at(source, low, amplitude * (1 - frac))
    np.add.at(source, low + 1, amplitude * frac)
    # Glottal flow: two real poles at ``tilt`` (low-pass), then lip radiation (+6 dB/oct).
    source = lfilter([1.0], [1.0, -2 * tilt, tilt * tilt], source)
    source = np.diff(source, prepend=0.0)
    rms = np.sqrt(np.mean(source ** 2)) + 1e-12
    source += breath * rms * np.diff(rng.standard_normal(length), prepend=0.0)
    formants = _VOWELS[rng.integers(len(_VOWELS))] * formant_scale * rng.uniform(0.95, 1.05, 4)
    voiced = sosfilt(_resonators(formants, _BANDWIDTHS, sample_rate), source)
    attack, release = rng.uniform(0.1, 0.25), rng.uniform(0.2, 0.4)
    envelope = np.minimum(1.0, np.minimum(u / attack, (1.0 - u) / release))
    envelope = np.sin(0.5 * np.pi * np.clip(envelope, 0.0, 1.0)) ** 2
    return voiced * envelope * rng.uniform(0.5, 1.0) / (np.max(np.abs(voiced)) + 1e-12)


def _fricative(rng: np.random.Generator, length: int, sample_rate: int) -> np.ndarray:
    """A consonant: noise through one broad high resonance (3.5–6.5 kHz), faded in and out."""
    centre = min(rng.uniform(3500.0, 6500.0), 0.4 * sample_rate)
    noise = sosfilt(_resonators(np.array([centre]), np.array([1500.0]), sample_rate),
                    rng.standard_normal(length))
    fade = np.sin(np.pi * np.linspace(0.0, 1.0, length)) ** 2
    return noise * fade * rng.uniform(0.02, 0.08) / (np.max(np.abs(noise)) + 1e-12)


def _resonators(frequencies: np.ndarray, bandwidths: np.ndarray, sample_rate: int) -> np.ndarray:
    """Second-order sections of cascaded resonators (Hz), unit gain at 0 Hz."""
    radius = np.exp(-np.pi * bandwidths / sample_rate)
    cosine = np.cos(2 * np.pi * frequencies / sample_rate)
    a1, a2 = -2 * radius * cosine, radius ** 2
    gain = 1 + a1 + a2
    zeros = np.zeros_like(gain)
    return np.stack([gain, zeros, zeros, np.ones_like(gain), a1, a2], axis=1)


