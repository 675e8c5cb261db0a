"""Live listening: the ring buffer, the hop loop (same numbers as the offline timeline), raw PCM
on stdin through ``python -m ser.listen`` in a subprocess, streams that stop mid-hop, silence,
another input rate, a fake microphone, and the one-paragraph errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import tracemalloc
import types

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import REPO
from tests.test_timeline import predictor, run, voice  # noqa: F401  (module fixtures: one tiny run)


def pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def test_the_ring_keeps_the_last_window_in_time_order():
    from ser.inference.ring import Ring

    ring = Ring(5)
    ring.push(np.array([1, 2, 3]))
    assert ring.read().tolist() == [0, 0, 1, 2, 3] and len(ring) == 3 and ring.latest(2).tolist() == [2, 3]
    ring.push(np.array([4, 5, 6, 7]))  # wraps around
    assert ring.read().tolist() == [3, 4, 5, 6, 7] and len(ring) == 5 and ring.total == 7
    ring.push(np.arange(10, 22))  # more than the ring holds: only the last five stay
    assert ring.read().tolist() == [17, 18, 19, 20, 21] and ring.total == 19
    history = list(range(10, 22))
    for k in range(1, 12):  # every chunk size and offset gives the same window as slicing
        ring.push(np.arange(100 * k, 100 * k + k))
        history += range(100 * k, 100 * k + k)
        assert ring.read().tolist() == history[-5:] and ring.latest(3).tolist() == history[-3:]


def test_the_ring_stays_the_same_size_over_hours_of_pushes():
    from ser.inference.ring import Ring

    ring, out = Ring(16000), np.empty(16000, np.float32)
    chunk = np.ones(4000, np.float32)
    buffer = ring._buf
    tracemalloc.start()
    for _ in range(200):
        ring.push(chunk)
        ring.read(out=out)
    before, _ = tracemalloc.get_traced_memory()
    for _ in range(20000):  # 80 M samples: 83 minutes at 16 kHz, 0.25-s hops
        ring.push(chunk)
        ring.read(out=out)
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert after - before < 16_000 and ring._buf is buffer and ring._buf.nbytes == 64000
    assert ring.total == 20200 * 4000 and len(ring) == 16000


def test_the_hop_loop_gives_the_offline_timelines_numbers(predictor):
    from ser.inference.windows import predict_windows, sliding_windows
    from ser.inference.live import stream

    audio = voice(16000, 2.3)
    lines: list[dict] = []
    chunks = (audio[i: i + 1000] for i in range(0, audio.size, 1000))  # any chunking
    summary = stream(predictor, chunks, 16000, 4000, lines.append)
    assert [d["time_s"] for d in lines] == [1.0, 1.25, 1.5, 1.75, 2.0, 2.25]
    assert summary["dropped_s"] == pytest.approx(0.05) and not summary["padded"]
    offline = predict_windows(predictor, sliding_windows(audio, 16000, 1.0, 0.25))
    live = np.array([[d["probabilities"][c] for c in predictor.classes] for d in lines])
    assert np.allclose(live, offline, atol=1e-4)
    assert all(d["label"] == predictor.classes[int(p.argmax())] for d, p in zip(lines, offline))
    assert len(summary["latencies_ms"]) == 6 and all(ms > 0 for ms in summary["latencies_ms"])


def test_silence_and_a_stream_shorter_than_a_window(predictor):
    from ser.inference.live import stream

    lines: list[dict] = []
    stream(predictor, [np.zeros(40000, np.float32)], 16000, 4000, lines.append)
    assert len(lines) == 7 and all(np.isfinite(list(d["probabilities"].values())).all() for d in lines)
    short: list[dict] = []
    summary = stream(predictor, [voice(16000, 0.4)], 16000, 4000, short.append)
    assert summary["padded"] and [d["time_s"] for d in short] == [0.4]


def test_pcm_on_stdin_through_the_command(run, tmp_path):
    """2.3 s plus a dangling odd byte: six hops, the 0.05-s tail dropped, exit 0."""
    jsonl = tmp_path / "hops.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "ser.listen", f"ckpt={run}", "source=-", "vad=none",
                           f"jsonl={jsonl}"], input=pcm(voice(16000, 2.3)) + b"\x01",
                          capture_output=True, env=env, cwd=tmp_path, timeout=300)
    err = done.stderr.decode()
    assert done.returncode == 0, err
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 6 and lines[0].split()[:2] == ["1.00", "s"] and lines[0].endswith("ms")
    records = [json.loads(r) for r in jsonl.read_text().splitlines()]
    assert [r["time_s"] for r in records] == [1.0, 1.25, 1.5, 1.75, 2.0, 2.25]
    assert set(records[0]) == {"time_s", "label", "probabilities", "latency_ms"}
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-3 for r in records)
    assert "the last 0.050 s (less than one hop) was dropped" in err and "latency median" in err


def test_another_input_rate_and_a_file_played_in_real_time(run, tmp_path, capsys):
    from ser.commands.listen import listen

    summary = listen([f"ckpt={run}", "source=-", "rate=8000", "vad=none"], stdin=io.BytesIO(pcm(voice(8000, 2.1))))
    assert summary["windows"] == 5 and summary["dropped_s"] == pytest.approx(0.1, abs=1e-3)
    wav = tmp_path / "voice44k.wav"
    sf.write(wav, voice(44100, 1.5), 44100)
    start = time.perf_counter()
    summary = listen([f"ckpt={run}", f"source={wav}", "hop=0.5", "vad=none"])
    assert time.perf_counter() - start >= 1.4 and summary["windows"] == 2  # at 1.0 and 1.5 s
    fast = listen([f"ckpt={run}", f"source={wav}", "realtime=false", "window=0.5", "vad=none"])
    assert fast["windows"] == 5
    assert len(capsys.readouterr().out.splitlines()) == 5 + 2 + 5


def fake_sounddevice(samples: np.ndarray | None) -> types.ModuleType:
    """A sounddevice stand-in: no input device (None), or one that plays ``samples`` then Ctrl-C."""
    sd = types.ModuleType("sounddevice")

    def query_devices(kind=None):
        if samples is None:
            raise RuntimeError("Error querying device -1")
        return {"name": "fake mic"}

    class InputStream:
        def __init__(self, samplerate, channels, dtype, blocksize):
            self.pos = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, n):
            if self.pos >= samples.size:
                raise KeyboardInterrupt
            self.pos += n
            return samples[self.pos - n: self.pos, None], False

    sd.query_devices, sd.InputStream = query_devices, InputStream
    return sd


def test_a_microphone_until_ctrl_c(run, monkeypatch, capsys):
    from ser.commands.listen import main

    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(voice(16000, 1.5)))
    main([f"ckpt={run}"])  # returns: Ctrl-C ends a live stream without an error
    assert len(capsys.readouterr().out.splitlines()) == 3


@pytest.mark.parametrize("case", ["no library", "no device", "no model", "bad argument"])
def test_errors_are_one_paragraph_and_exit_2(case, run, tmp_path, monkeypatch, capsys):
    from ser.commands.listen import main

    argv, expected = [f"ckpt={run}"], {
        "no library": "source=mic needs the sounddevice package", "no device": "No audio input device",
        "no model": "Model not found", "bad argument": "Unknown argument 'speed=2'"}[case]
    if case == "no library":
        monkeypatch.setitem(sys.modules, "sounddevice", None)  # import raises ImportError
    elif case == "no device":
        monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(None))
    elif case == "no model":
        argv = [f"ckpt={tmp_path / 'missing'}", "source=-"]
    else:
        argv.append("speed=2")
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "Traceback" not in err
    assert expected in " ".join(err.split()) and err.strip().startswith("error:")
    assert "\n\n" not in err.strip()  # one paragraph
