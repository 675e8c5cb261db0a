"""``python -m ser.serve``: the HTTP and WebSocket routes through Starlette's TestClient, on an
ONNX export of the tiny run test_timeline.py trains (no port is opened here)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import soundfile as sf

from tests.test_predict import onnx_model, recordings  # noqa: F401  (module fixtures)
from tests.test_timeline import run, voice  # noqa: F401

pytest.importorskip("fastapi")
pytest.importorskip("multipart")  # python-multipart: FastAPI's form parser


@pytest.fixture(scope="module")
def predictor(onnx_model):  # noqa: F811
    from ser.inference.onnx_predictor import OnnxPredictor

    return OnnxPredictor(onnx_model)


def client(predictor, **options):
    from fastapi.testclient import TestClient

    from ser.serve.app import create_app

    return TestClient(create_app(predictor, **options))


def pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def test_health_model_docs_and_page(predictor):
    c = client(predictor)
    assert c.get("/health").json() == {"status": "ok"}
    info = c.get("/model").json()
    assert info["classes"] == predictor.classes and info["sample_rate"] == 16000
    assert info["window_s"] == 1.0 and info["hop_s"] == 0.25 and info["model_file"] == "model.onnx"
    assert "/predict" in c.get("/openapi.json").json()["paths"] and c.get("/docs").status_code == 200
    assert info["limits"]["max_seconds"] == 600 and info["limits"]["max_upload_mb"] == 20
    assert info["min_confidence"] is None  # no abstention unless the server or a request sets it
    page = c.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_an_upload_gives_what_ser_predict_gives(predictor, recordings):  # noqa: F811
    from ser.inference.recordings import predict_recordings

    path = recordings / "talk.wav"
    got = client(predictor).post("/predict", files={"file": ("talk.wav", path.read_bytes(), "audio/wav")})
    assert got.status_code == 200, got.text
    body, want = got.json(), predict_recordings(predictor, path)
    rec, ref = body["recordings"][0], want["recordings"][0]
    assert rec["path"] == "talk.wav" and rec["recording"] == ref["recording"]
    assert rec["timeline"] == json.loads(json.dumps(ref["timeline"])) and body["errors"] == []


@pytest.mark.parametrize("case", ["corrupt", "empty", "oversize", "no file field"])
def test_bad_uploads_get_a_4xx_json_error_naming_the_problem(case, predictor):
    c = client(predictor, max_upload_mb=0.25)
    files = {"corrupt": {"file": ("talk.wav", b"RIFF not really a wave file" * 50, "audio/wav")},
             "empty": {"file": ("talk.wav", b"", "audio/wav")},
             "oversize": {"file": ("long.wav", b"\0" * 300_000, "audio/wav")},
             "no file field": {"recording": ("talk.wav", b"x", "audio/wav")}}[case]
    got = c.post("/predict", files=files)
    status, words = {"corrupt": (422, "Cannot decode audio file talk.wav"),
                     "empty": (400, "is empty"), "oversize": (413, "larger than this server accepts"),
                     "no file field": (400, "multipart form field 'file'")}[case]
    assert got.status_code == status and words in got.json()["error"], got.text
    assert "/tmp" not in got.json()["error"]  # the server's own paths stay private
    assert c.get("/health").status_code == 200  # and it still answers


def test_a_token_guards_every_api_route(predictor):
    c = client(predictor, token="s3cret")
    assert c.get("/model").status_code == 401 and "Bearer" in c.get("/model").json()["error"]
    assert c.get("/model", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert c.get("/model", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/").status_code == 200  # the page itself holds no data
    from starlette.testclient import WebSocketDenialResponse

    with pytest.raises(WebSocketDenialResponse) as denied:  # refused at the handshake
        with c.websocket_connect("/stream") as ws:
            ws.receive_json()
    assert denied.value.status_code == 403 and "bearer.<token>" in denied.value.json()["error"]
    for kwargs in ({"subprotocols": ["ser", "bearer.s3cret"]}, {}):  # as the page sends it, or in the URL
        with c.websocket_connect("/stream" if kwargs else "/stream?token=s3cret", **kwargs) as ws:
            ws.send_bytes(pcm16(voice(16000, 1.0)))
            assert ws.receive_json()["time_s"] == 1.0


def test_a_stream_gives_ser_listens_hops_from_frames_of_any_size(predictor):
    from ser.inference.live import stream

    audio = voice(16000, 2.3)
    quantised = np.frombuffer(pcm16(audio), "<i2").astype(np.float32) / 32768.0
    want: list[dict] = []
    stream(predictor, [quantised], 16000, 4000, want.append)
    data, got = pcm16(audio), []
    with client(predictor).websocket_connect("/stream?rate=16000&format=s16le") as ws:
        for start in range(0, len(data), 1001):  # odd sizes: samples split across frames
            ws.send_bytes(data[start: start + 1001])
        while len(got) < len(want):
            got.append(ws.receive_json())
    assert [g["time_s"] for g in got] == [w["time_s"] for w in want] == [1.0, 1.25, 1.5, 1.75, 2.0, 2.25]
    assert [g["label"] for g in got] == [w["label"] for w in want]
    for g, w in zip(got, want):
        assert max(abs(g["probabilities"][c] - w["probabilities"][c]) for c in predictor.classes) < 1e-4
        assert -40 < g["level_db"] < 0


def test_float_frames_at_another_rate_and_bad_settings(predictor):
    c = client(predictor)
    x = voice(48000, 1.7)  # the resampler holds back a few ms until more comes
    with c.websocket_connect("/stream?rate=48000&format=f32le") as ws:
        ws.send_bytes(x.astype("<f4").tobytes())
        assert [ws.receive_json()["time_s"] for _ in range(3)] == [1.0, 1.25, 1.5]
    for query, words in [("format=mp3", "format='mp3'"), ("rate=5", "rate=5")]:
        with c.websocket_connect(f"/stream?{query}") as ws:
            assert words in ws.receive_json()["error"]
    with c.websocket_connect("/stream?format=f32le") as ws:
        ws.send_bytes(np.full(16000, np.nan, "<f4").tobytes())
        assert "non-finite" in ws.receive_json()["error"]


def test_streams_at_once_each_get_their_own_results(predictor):
    """Three streams of different loudness in threads: every message's level is its own."""
    c = client(predictor)
    levels: dict[int, list[float]] = {}

    def one(i: int) -> None:
        x = voice(16000, 2.0, seed=i) * (0.1 * 4 ** i)
        with c.websocket_connect("/stream") as ws:
            data = pcm16(x)
            for start in range(0, len(data), 4000):
                ws.send_bytes(data[start: start + 4000])
            levels[i] = [ws.receive_json()["level_db"] for _ in range(5)]
    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    [t.start() for t in threads]
    [t.join(120) for t in threads]
    assert sorted(levels) == [0, 1, 2]
    ranges = [(min(v), max(v)) for _, v in sorted(levels.items())]
    assert ranges[0][1] < ranges[1][0] and ranges[1][1] < ranges[2][0], ranges  # 12 dB apart


def test_a_client_that_leaves_mid_stream_frees_its_session(predictor, monkeypatch):
    import gc
    import weakref

    from ser.serve import streaming

    made = []
    original = streaming.StreamSession.__init__

    def tracked(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(weakref.ref(self))
    monkeypatch.setattr(streaming.StreamSession, "__init__", tracked)
    c = client(predictor)
    with c.websocket_connect("/stream") as ws:
        ws.send_bytes(pcm16(voice(16000, 1.1)))
        ws.receive_json()
        ws.send_bytes(pcm16(voice(16000, 0.1))[:301])  # half a hop and a split sample
    assert c.get("/health").status_code == 200
    gc.collect()
    assert len(made) == 1 and made[0]() is None


def test_the_command_line(tmp_path, capsys):
    from ser.cli import parse
    from ser.commands.serve import SPEC, exposure_warning, main

    assert parse(["ckpt=m.onnx"], SPEC, "ser.serve")["host"] == "127.0.0.1"
    assert exposure_warning("127.0.0.1", None) is None
    assert "every network interface" in exposure_warning("0.0.0.0", None)
    for argv, words in [(["port=80x", "ckpt=m.onnx"], "port= takes an integer"),
                        (["root=/"], "Unknown argument 'root=/'"), ([], "needs the model"),
                        ([f"ckpt={tmp_path / 'none.onnx'}"], "Model not found")]:
        with pytest.raises(SystemExit) as stopped:
            main(argv)
        err = " ".join(capsys.readouterr().err.split())
        assert stopped.value.code == 2 and words in err and "Traceback" not in err
