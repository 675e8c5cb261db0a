"""Part (j) of ``python -m ser.bench``: what each speech-activity detector costs and how often
it is right about real speech padded with silence and with room noise.

Cost, on one CPU core (every detector runs single-threaded): milliseconds per 1-s block as a
corpus is analysed (a fresh state per block, the worst case: a corpus is analysed a whole
utterance at a time) and per 0.25-s hop of a live stream (:class:`ActivityStream`, the way
``ser.listen`` and ``ser.serve`` run it), the median of every call.

Agreement: each speech recording (2–4 s) gets 2 s of padding before and after: near-silence
(white noise at -60 and -40 dBFS) or room noise (the ambience recordings, or the built-in
synthetic room, at 10 dB below the speech's RMS). The padding should be no speech, the
recording speech (it holds short pauses and its own silent edges, so 100 % is not expected
there). Figures: the share of padding samples called speech, the share of speech samples
called speech, and of 1-s blocks cut from the padded recording as training cuts them, the
padding blocks passed by ``min_speech=0.5`` and the blocks inside the speech that are kept.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from ser.errors import SerError

DETECTORS = ("silero", "webrtc", "energy")
PAD_S = 2.0
HOP_S = 0.25
CONDITIONS = ("silence -60 dBFS", "near-silence -40 dBFS", "room noise at -10 dB")


def load_detector(name: str, sample_rate: int):
    """The detector conf/vad/<name>.yaml builds (SerError when its package is missing)."""
    from ser.inference.speech_gate import detector_from_name

    return detector_from_name(name, sample_rate)


def block_ms(detector, blocks: np.ndarray) -> float:
    """Median ms to decide every frame of one 1-s block, from a fresh state."""
    from ser.audio.speech_activity import speech_frames

    times = []
    for block in blocks:
        start = time.perf_counter()
        speech_frames(detector, block)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def hop_ms(detector, audio: np.ndarray, sample_rate: int) -> float:
    """Median ms per 0.25-s hop of a stream: push the hop, read the window's fraction."""
    from ser.audio.speech_activity import ActivityStream

    hop = int(HOP_S * sample_rate)
    stream, times = ActivityStream(detector, sample_rate), []
    for i in range(0, audio.shape[0] - hop + 1, hop):
        start = time.perf_counter()
        stream.push(audio[i: i + hop])
        stream.fraction()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def padded_recordings(speech: list[np.ndarray], noise: np.ndarray, sample_rate: int,
                      condition: str, seed: int = 0) -> list[tuple[np.ndarray, int, int]]:
    """(audio, speech start, speech end) per recording, padded with ``condition``'s 2 s."""
    rng = np.random.default_rng(seed)
    pad = int(PAD_S * sample_rate)
    out = []
    for x in speech:
        if condition.startswith("room"):
            start = int(rng.integers(0, max(1, noise.shape[0] - 2 * pad)))
            segment = np.resize(noise[start:], 2 * pad).astype(np.float64)
            rms = np.sqrt(np.mean(x.astype(np.float64) ** 2)) * 10 ** (-10 / 20)
            segment *= rms / max(np.sqrt(np.mean(segment ** 2)), 1e-12)
        else:
            level = -60.0 if "-60" in condition else -40.0
            segment = rng.standard_normal(2 * pad) * 10 ** (level / 20)
        segment = segment.astype(np.float32)
        out.append((np.concatenate([segment[:pad], x, segment[pad:]]), pad, pad + x.shape[0]))
    return out


def agreement(detector, recordings: list[tuple[np.ndarray, int, int]], sample_rate: int) -> dict:
    """Shares (0-1) of padding and speech samples called speech; padding blocks passed and
    speech blocks kept at min_speech 0.5 (blocks cut from 0 s, as training cuts them)."""
    from ser.audio.speech_activity import speech_mask

    pad_hits = pad_n = speech_hits = speech_n = 0
    pad_blocks = pad_passed = speech_blocks = speech_kept = 0
    for audio, lo, hi in recordings:
        mask = speech_mask(detector, audio)
        pad_hits += int(mask[:lo].sum() + mask[hi:].sum())
        pad_n += lo + audio.shape[0] - hi
        speech_hits += int(mask[lo:hi].sum())
        speech_n += hi - lo
        for b in range(audio.shape[0] // sample_rate):
            a, z = b * sample_rate, (b + 1) * sample_rate
            fraction = mask[a:z].mean()
            if z <= lo or a >= hi:
                pad_blocks += 1
                pad_passed += fraction >= 0.5
            elif a >= lo and z <= hi:
                speech_blocks += 1
                speech_kept += fraction >= 0.5
    return {"padding": pad_hits / max(pad_n, 1), "speech": speech_hits / max(speech_n, 1),
            "padding_blocks": (int(pad_passed), pad_blocks),
            "speech_blocks": (int(speech_kept), speech_blocks)}


def speech_recordings(folder: Path | None, n: int, sample_rate: int) -> tuple[list[np.ndarray], str]:
    """Up to ``n`` whole recordings of ``folder`` (random order, seed 0), or the demo
    synthesiser's speech-like audio when there is no folder."""
    from ser.audio.io import list_audio_files, load_audio

    if folder is not None:
        files = list_audio_files(folder)
        order = np.random.default_rng(0).permutation(len(files))[:n]
        return [load_audio(files[i], sample_rate) for i in order], f"{min(n, len(files))} recordings of {folder}"
    import tempfile

    from ser.data.demo import build_demo_corpus

    with tempfile.TemporaryDirectory() as tmp:
        table = build_demo_corpus(tmp, seed=0, n_speakers=1, utterances_per_class=max(1, n // 8),
                                  sample_rate=sample_rate)
        audio = [load_audio(u.path, sample_rate) for u in table.utterances[:n]]
    return audio, f"{len(audio)} generated speech-like recordings (no speech= folder)"


def room_noise(folder: Path | None, sample_rate: int) -> tuple[np.ndarray, str]:
    """The recordings of ``folder`` end to end, or 20 s of the built-in synthetic room."""
    from ser.audio.io import list_audio_files, load_audio

    if folder is not None and folder.is_dir() and list_audio_files(folder):
        files = list_audio_files(folder)
        return np.concatenate([load_audio(f, sample_rate) for f in files]), f"{folder} ({len(files)} files)"
    from ser.audio.room_noise import synthetic_room

    return synthetic_room(sample_rate, 20.0, seed=0, voices=6), "the built-in synthetic room"


def vad_figures(speech: Path | None, noise: Path | None, sample_rate: int, n_recordings: int,
                blocks: np.ndarray, names: tuple[str, ...] = DETECTORS) -> list[str]:
    """The printed lines of part (j)."""
    recordings, where = speech_recordings(speech, n_recordings, sample_rate)
    noise_audio, noise_where = room_noise(noise, sample_rate)
    stream = np.concatenate(recordings)
    lines = [f"(j) speech detectors on one CPU core; agreement on {where}, each padded with "
             f"{PAD_S:g} s before and after (room noise: {noise_where})"]
    padded = {c: padded_recordings(recordings, noise_audio, sample_rate, c) for c in CONDITIONS}
    for name in names:
        try:
            detector = load_detector(name, sample_rate)
        except SerError as exc:
            lines.append(f"(j) {name}: not measured ({str(exc).split('. ')[0]})")
            continue
        per_block, per_hop = block_ms(detector, blocks), hop_ms(detector, stream, sample_rate)
        lines.append(f"(j) {name}: {per_block:.2f} ms per 1-s block, {per_hop:.3f} ms per "
                     f"{HOP_S:g}-s hop (median)")
        for condition in CONDITIONS:
            a = agreement(detector, padded[condition], sample_rate)
            (pp, pn), (sk, sn) = a["padding_blocks"], a["speech_blocks"]
            lines.append(f"    {condition:<22} padding called speech {100 * a['padding']:5.1f} %, "
                         f"speech called speech {100 * a['speech']:5.1f} %; 1-s blocks at "
                         f"min_speech 0.5: padding passed {pp}/{pn}, speech kept {sk}/{sn}")
    return lines
