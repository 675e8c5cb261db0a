"""Where speech is: a detector's frame decisions as sample masks, fractions of blocks and
windows, live streams, and the active-speech level that SNR can be measured against.

A detector (:mod:`ser.audio.speech_detectors`) decides per frame from the first sample of a
recording on; everything here turns those frames into what the rest of ser asks: how much of a
1-s block or window is speech (the gate of training, testing and inference) and which samples
to measure the speech level over (``noise.snr_reference=active``, as ITU-T P.56 measures the
active speech level rather than the mean over pauses).
"""

from __future__ import annotations

from collections import deque

import numpy as np

MAX_FRAMES_PER_CALL = 512  # frames per detector call on a whole recording: bounded memory


def speech_frames(detector, audio: np.ndarray) -> np.ndarray:
    """(T,) float32 waveform at ``detector.sample_rate`` -> (ceil(T / frame),) bool decisions;
    the last partial frame is zero-padded (a frame of silence after the end)."""
    frame = int(detector.frame_samples)
    audio = np.asarray(audio, np.float32).reshape(-1)
    n = -(-audio.shape[0] // frame)
    padded = np.zeros(n * frame, np.float32)
    padded[: audio.shape[0]] = audio
    frames = padded.reshape(n, frame)
    state, out = detector.start(), []
    for i in range(0, n, MAX_FRAMES_PER_CALL):
        speech, state = detector.step(frames[i: i + MAX_FRAMES_PER_CALL], state)
        out.append(np.asarray(speech, bool))
    return np.concatenate(out) if out else np.zeros(0, bool)


def sample_mask(frames: np.ndarray, frame_samples: int, length: int) -> np.ndarray:
    """(F,) frame decisions -> (length,) bool, one per sample (samples past the frames: False)."""
    mask = np.zeros(length, bool)
    expanded = np.repeat(np.asarray(frames, bool), int(frame_samples))[:length]
    mask[: expanded.shape[0]] = expanded
    return mask


def speech_mask(detector, audio: np.ndarray) -> np.ndarray:
    """(T,) waveform -> (T,) bool: which samples the detector calls speech."""
    return sample_mask(speech_frames(detector, audio), detector.frame_samples, np.shape(audio)[-1])


def window_fractions(mask: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """(T,) bool sample mask, (n,) window starts and window length in samples -> (n,) share of
    each window's samples that are speech (0-1); samples past the end count as silence."""
    csum = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    starts = np.asarray(starts, np.int64)
    ends = np.minimum(starts + int(window), mask.shape[0])
    lo = np.minimum(starts, mask.shape[0])
    return (csum[ends] - csum[lo]) / float(window)


def active_level_offset_db(block: np.ndarray, mask: np.ndarray) -> float:
    """10·log10(P_active / P_block) in dB for a (T,) block and its (T,) speech mask: how much
    louder the speech is than the block's mean power over speech and pauses. 0 dB where the
    detector found no speech (or the block is silent): then the block's power is all there is.

    Mixing at SNR ``s`` against active speech is mixing at block SNR ``s - offset``: a
    half-silent block (offset about 3 dB) gets noise 3 dB louder than at ``s`` against the
    block, the same noise level relative to the speech as a block full of speech."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return 0.0
    x = np.asarray(block, np.float64)
    p_block = float(np.mean(x * x))
    p_active = float(np.mean(x[mask] ** 2))
    if p_block <= 0.0 or p_active <= 0.0:
        return 0.0
    return 10.0 * float(np.log10(p_active / p_block))


class ActivityStream:
    """A detector on a live stream: :meth:`push` each hop's samples; :meth:`fraction` is the
    share of speech in the last ``window`` decided samples.

    Frames are cut from the stream's first sample, as :func:`speech_frames` cuts a recording,
    so a stream gets a recording's decisions. The samples of a frame still incomplete at the
    end of a hop (less than one frame, 32 ms for Silero) are decided with the next hop, so the
    window whose fraction is given ends up to one frame before the audio does. Memory is the
    last window's frame decisions, however long the stream runs.
    """

    def __init__(self, detector, window: int):
        self.detector, self.window = detector, int(window)
        self.frame = int(detector.frame_samples)
        self.state = detector.start()
        self.whole, self.part = divmod(self.window, self.frame)  # frames a window spans
        self.decisions: deque[bool] = deque(maxlen=self.whole + 1)
        self._pending = np.zeros(0, np.float32)  # samples short of a whole frame

    def push(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, np.float32).reshape(-1)
        pending = np.concatenate([self._pending, x]) if self._pending.size else x
        whole = pending.shape[0] // self.frame * self.frame
        if whole:
            speech, self.state = self.detector.step(pending[:whole].reshape(-1, self.frame), self.state)
            self.decisions.extend(bool(v) for v in speech)
        self._pending = np.array(pending[whole:], np.float32)

    def fraction(self) -> float:
        """Share of speech in the last ``window`` decided samples (of fewer at the start; 0
        before the first frame is decided)."""
        if not self.decisions:
            return 0.0
        frames = list(self.decisions)
        full = frames[-self.whole:] if self.whole else []
        older = frames[-self.whole - 1] if len(frames) > self.whole else None
        speech = sum(full) * self.frame + (self.part * older if older is not None else 0)
        return float(speech) / (len(full) * self.frame + (self.part if older is not None else 0))
