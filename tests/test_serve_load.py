"""``ser.serve`` as a real process under a bounded load (the short form of ``python -m ser.bench
--parts i``): 8 real-time streams for 10 s plus 40 uploads; every stream must get exactly its
own hops, no request may fail, and the server's memory must stay flat. Then the same honest
clients beside hostile ones (:class:`ser.bench.serve_load.Hostile`): the honest ones still get
everything, ``/health`` answers at once, every hostile request gets an answer or a close code
(never a 5xx), and the server's memory settles within 100 MB of where it started."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_predict import onnx_model  # noqa: F401  (module fixture)
from tests.test_timeline import run, voice  # noqa: F401

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("websockets")


def speech(rate: int = 16000) -> np.ndarray:
    return np.concatenate([voice(rate, 1.3, seed=s) * (0.5 + s % 3) for s in range(6)])


def test_eight_streams_and_uploads_at_once(onnx_model):  # noqa: F811
    from ser.bench.serve_load import serve_load

    report = serve_load(onnx_model, speech(), 16000, streams=8, seconds=10, uploads=40,
                        rss_growth_mib=48, hostile=None)
    print(report.line(8, 10))
    assert not report.problems, report.problems
    assert len(report.hop_ms) == 8 * 37 and len(report.upload_ms) == 40  # 10 s: hops at 1.0..10.0 s


def test_hostile_clients_beside_honest_ones(onnx_model):  # noqa: F811
    from ser.bench.hostile_clients import Hostile
    from ser.bench.serve_load import serve_load

    plan = Hostile(tiny_files=12, long_files=2, big_frames=2, one_sample_hops=2, idle_sockets=3,
                   crowd=40, full_files=3, idle_s=2.0)
    report = serve_load(onnx_model, speech(), 16000, streams=2, seconds=8, uploads=8,
                        rss_growth_mib=100, hostile=plan,
                        server_args=("idle_s=2", "max_streams=16", "max_seconds=20"))
    print(report.line(2, 8))
    assert not report.problems, report.problems
    assert len(report.hop_ms) == 2 * 29 and len(report.upload_ms) == 8
    got = report.hostile
    assert got["1-MB frames close 1009"] == 2 and got["one-sample hop close 1008"] == 2
    assert got["crowd stream close 1013"] >= 10  # beyond the cap of 16 streams
    assert got["crowd stream close 1013"] + got["crowd stream close 1008"] == 40  # the rest idle out
    assert got["idle socket close 1008"] + got["idle socket close 1013"] == 3
    assert sum(n for k, n in got.items() if k.startswith("1-Hz WAV")) == 12
    assert set(k for k in got if k.startswith(("1-Hz WAV", "hour FLAC"))) <= {
        "1-Hz WAV 422", "1-Hz WAV 503", "hour FLAC 413", "hour FLAC 503"}
    assert got["longest allowed 200"] + got["longest allowed 503"] == 3 and got["longest allowed 200"] >= 1
    assert max(report.health_ms) < 1000 and report.rss_mib[1] - report.rss_mib[0] < 100


def test_the_check_catches_a_stream_given_anothers_results(onnx_model):  # noqa: F811
    from ser.bench.serve_load import check_streams, stream_audio
    from ser.inference.onnx_predictor import OnnxPredictor
    from ser.inference.live import stream

    predictor, audio = OnnxPredictor(onnx_model), speech()
    own: dict[int, list[dict]] = {}
    for i in (0, 1):
        hops: list[dict] = []
        x = stream_audio(audio, i, 16000).astype(np.float32) / 32768.0
        stream(predictor, [x[: 16000 + 7 * 4000]], 16000, 4000, hops.append)
        own[i] = [h["probabilities"] for h in hops]
    assert check_streams(onnx_model, audio, 16000, 4000, 16000, own) == []
    swapped = {0: own[1], 1: own[0]}
    assert len(check_streams(onnx_model, audio, 16000, 4000, 16000, swapped)) == 2



def test_cold_start_runs_fresh_processes(onnx_model, tmp_path):  # noqa: F811
    """Part (h)'s measurement (python -m ser.bench --parts h times 5 of these per model)."""
    import soundfile as sf

    from ser.bench.cold_start import cold_start_seconds

    wav = tmp_path / "two_seconds.wav"
    sf.write(wav, speech()[:32000], 16000, subtype="PCM_16")
    times = cold_start_seconds(onnx_model, wav, runs=1)
    assert len(times) == 1 and times[0] > 0
