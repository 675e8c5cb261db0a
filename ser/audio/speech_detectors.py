"""Speech-activity detectors a config names by ``_target_`` (conf/vad/<name>.yaml).

Every detector decides, frame by frame, whether someone speaks: ``step(frames, state)`` takes
(k, frame_samples) float32 waveform frames in time order and the state the previous call left,
and returns (k,) booleans and the new state. The state is what lets one detector serve a whole
recording (:func:`ser.audio.speech_activity.speech_frames`) and a live stream a hop at a time
(:class:`ser.audio.speech_activity.ActivityStream`) with the same decisions: the stream is cut
into the same frames from its first sample, and the state carries what the detector knows
(Silero's LSTM memory, WebRTC's noise estimate, the energy detector's loudest frame so far).

- ``vad=silero``: Silero VAD's ONNX graph (MIT, shipped inside the ``silero-vad`` wheel, so it
  runs offline) through onnxruntime, the "sequence" export that takes every frame of a stretch
  in one call. The package's Python modules are never imported: they pull in torch and set
  torch's thread count when imported, and importing ser must change nothing global.
- ``vad=webrtc``: the WebRTC Gaussian-mixture detector (``webrtcvad-wheels``, a C extension).
- ``vad=energy``: frame RMS level against a floor and against the loudest frame so far
  (numpy only). It cannot tell speech from noise as loud as speech; it only finds silence.
- ``vad=none``: no detector (``None``); every block counts as speech, as before the gate.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ser.errors import SerError

EXTRA_HINT = "pip install 'ser[vad]'"


@runtime_checkable
class SpeechDetector(Protocol):
    """Frame-by-frame speech decisions at one sample rate (see the module docstring)."""

    name: str
    sample_rate: int      # Hz of the frames it takes
    frame_samples: int    # samples per decision

    def start(self) -> Any:
        """The state before the first frame of a recording or stream."""
        ...

    def step(self, frames: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """(k, frame_samples) float32 frames -> ((k,) bool speech decisions, new state)."""
        ...


def missing_package(detector: str, package: str, exc: BaseException) -> SerError:
    return SerError(f"vad={detector} needs the {package} package, which cannot be loaded here "
                    f"({type(exc).__name__}: {exc}). Install it with {EXTRA_HINT} (the `vad` extra), "
                    "or choose another detector: vad=energy (numpy only, finds silence but not "
                    "noise) or vad=none (no speech gate).")


def _frame_samples(frame_ms: float, sample_rate: int) -> int:
    samples = int(round(frame_ms * sample_rate / 1000))
    if samples < 1:
        raise SerError(f"A {frame_ms:g}-ms frame at {sample_rate} Hz holds no sample; give "
                       "vad.frame_ms in milliseconds, e.g. vad.frame_ms=20.")
    return samples


# ------------------------------------------------------------------------------- energy
class EnergyDetector:
    """Speech where a frame's RMS level is at least ``floor_db`` dBFS and within ``range_db``
    of the loudest frame heard so far (the state): a quiet stretch between loud words is
    silence even in a loud recording, and a recording that is silent throughout stays below the
    floor. Causal, so a stream and the whole recording give the same decisions."""

    name = "energy"

    def __init__(self, sample_rate: int, frame_ms: float, floor_db: float, range_db: float):
        self.sample_rate = int(sample_rate)
        self.frame_samples = _frame_samples(frame_ms, self.sample_rate)
        self.floor_db, self.range_db = float(floor_db), float(range_db)

    def start(self) -> float:
        return -np.inf  # the loudest frame so far, dBFS

    def step(self, frames: np.ndarray, state: float) -> tuple[np.ndarray, float]:
        power = np.mean(np.square(frames, dtype=np.float64), axis=1)
        level = 10 * np.log10(np.maximum(power, 1e-12))
        loudest = np.maximum.accumulate(np.concatenate([[state], level]))[1:]
        speech = (level >= self.floor_db) & (level >= loudest - self.range_db)
        return speech, float(loudest[-1]) if len(level) else state


def energy(sample_rate: int, frame_ms: float, floor_db: float, range_db: float) -> EnergyDetector:
    """``vad=energy`` (conf/vad/energy.yaml)."""
    return EnergyDetector(sample_rate, frame_ms, floor_db, range_db)


# ------------------------------------------------------------------------------- webrtc
class WebRtcDetector:
    """WebRTC's detector on 10, 20 or 30-ms frames of 16-bit PCM; ``mode`` 0-3 is its
    aggressiveness (3 calls the fewest frames speech). The state is the ``Vad`` object, whose
    noise estimate adapts over a recording."""

    name = "webrtc"

    def __init__(self, sample_rate: int, frame_ms: int, mode: int):
        try:
            import webrtcvad
        except ImportError as exc:
            raise missing_package("webrtc", "webrtcvad-wheels", exc) from exc
        if int(sample_rate) not in (8000, 16000, 32000, 48000) or int(frame_ms) not in (10, 20, 30):
            raise SerError(f"vad=webrtc works at 8, 16, 32 or 48 kHz on 10, 20 or 30-ms frames; "
                           f"this model runs at {sample_rate} Hz with vad.frame_ms={frame_ms}. "
                           "Use vad=silero or vad=energy, or vad.frame_ms=10|20|30.")
        self._module = webrtcvad
        self.sample_rate, self.mode = int(sample_rate), int(mode)
        self.frame_samples = _frame_samples(frame_ms, self.sample_rate)

    def start(self):
        return self._module.Vad(self.mode)

    def step(self, frames: np.ndarray, state) -> tuple[np.ndarray, Any]:
        pcm = np.clip(np.round(frames * 32767.0), -32768, 32767).astype("<i2")
        speech = np.array([state.is_speech(f.tobytes(), self.sample_rate) for f in pcm], bool)
        return speech, state


def webrtc(sample_rate: int, frame_ms: int, mode: int) -> WebRtcDetector:
    """``vad=webrtc`` (conf/vad/webrtc.yaml); needs ``webrtcvad-wheels`` (the ``vad`` extra)."""
    return WebRtcDetector(sample_rate, frame_ms, mode)


# ------------------------------------------------------------------------------- silero
SILERO_GRAPH = "silero_vad_16k_sequence.onnx"
SILERO_RATE, SILERO_FRAME, SILERO_CONTEXT = 16000, 512, 64  # Hz, samples per frame, samples of context


def silero_graph_path() -> Path:
    """The ONNX graph inside the installed ``silero-vad`` wheel, found without importing the
    package (its ``__init__`` imports torch and sets torch's thread count)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("No module named 'silero_vad'")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / SILERO_GRAPH
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (silero-vad older than 6.2?)")
    return path


class SileroDetector:
    """Silero VAD v6: a speech probability per 32-ms frame (512 samples at 16 kHz), each frame
    seen with the 64 samples before it, an LSTM carrying memory from frame to frame. Speech where
    the probability is at least ``threshold``. The state is (h, c, last 64 samples)."""

    name = "silero"

    def __init__(self, sample_rate: int, threshold: float, threads: int = 1):
        try:
            import onnxruntime as ort

            path = silero_graph_path()
        except (ImportError, OSError) as exc:
            raise missing_package("silero", "silero-vad (and onnxruntime)", exc) from exc
        if int(sample_rate) != SILERO_RATE:
            raise SerError(f"vad=silero works at {SILERO_RATE} Hz and this model runs at "
                           f"{sample_rate} Hz; use vad=webrtc or vad=energy.")
        options = ort.SessionOptions()
        # one thread: a frame is tiny, and the detector must not take the model's cores
        options.intra_op_num_threads = options.inter_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(path), sess_options=options,
                                            providers=["CPUExecutionProvider"])
        self.sample_rate, self.frame_samples = SILERO_RATE, SILERO_FRAME
        self.threshold = float(threshold)

    def start(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        zeros = np.zeros((1, 1, 128), np.float32)
        return zeros, zeros.copy(), np.zeros(SILERO_CONTEXT, np.float32)

    def probabilities(self, frames: np.ndarray, state) -> tuple[np.ndarray, tuple]:
        """(k, 512) frames -> ((k,) speech probabilities, new state)."""
        h, c, context = state
        frames = np.ascontiguousarray(frames, np.float32)
        if len(frames) == 0:
            return np.zeros(0, np.float32), state
        before = np.concatenate([context[None], frames[:-1, -SILERO_CONTEXT:]])
        probs, h, c = self.session.run(["speech_probs", "hn", "cn"],
                                       {"input": np.concatenate([before, frames], axis=1),
                                        "h": h, "c": c})
        return np.asarray(probs).reshape(-1), (h, c, frames[-1, -SILERO_CONTEXT:].copy())

    def step(self, frames: np.ndarray, state) -> tuple[np.ndarray, tuple]:
        probs, state = self.probabilities(frames, state)
        return probs >= self.threshold, state


def silero(sample_rate: int, threshold: float, threads: int = 1) -> SileroDetector:
    """``vad=silero`` (conf/vad/silero.yaml); needs ``silero-vad`` (the ``vad`` extra)."""
    return SileroDetector(sample_rate, threshold, threads)


def no_detector(sample_rate: int) -> None:
    """``vad=none``: no speech gate; every block and window counts as speech."""
    return None
