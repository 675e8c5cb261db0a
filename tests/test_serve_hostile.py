"""``ser.serve`` under careless and hostile clients: each request that used to cost it minutes,
gigabytes or a 500 (``test_row1_...`` to ``test_row13_...``), the other limits, the access
rules, and property-based tests (random bytes, WAV headers and frame sequences: a 4xx or a
result, never a 5xx or a hang).

In-process through Starlette's TestClient with :class:`Tiny`, a model that answers in
microseconds and counts the blocks it is given; the commands run in-process with their
SystemExit caught. The server as a real process under the same load is
tests/test_serve_load.py's."""

from __future__ import annotations

import concurrent.futures
import io
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
pytest.importorskip("multipart")  # python-multipart: FastAPI's form parser
pytest.importorskip("fastapi_offline")

from fastapi.testclient import TestClient  # noqa: E402
from starlette.testclient import WebSocketDenialResponse  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from tests.conftest import REPO  # noqa: E402

RATE = 16000


class Tiny:
    """A model in microseconds: louder blocks lean to ``sad``; counts the blocks it classifies."""

    classes, sample_rate, block_seconds, pad_min_fraction = ["anger", "sad"], RATE, 1.0, None

    def __init__(self, delay_s: float = 0.0):
        self.blocks, self.delay_s, self.lock = 0, delay_s, threading.Lock()

    def predict_blocks(self, blocks):
        blocks = np.asarray(blocks, np.float32)
        assert blocks.ndim == 2 and blocks.shape[1] == RATE
        with self.lock:
            self.blocks += len(blocks)
        if self.delay_s:
            time.sleep(self.delay_s)
        p = np.clip(5 * np.sqrt(np.mean(np.square(blocks), axis=1)), 0.05, 0.95)
        return np.stack([1 - p, p], axis=1).astype(np.float32)


def client(predictor=None, **options) -> TestClient:
    from ser.serve.app import create_app

    return TestClient(create_app(predictor or Tiny(), **options))


def tone(seconds: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amp * np.sin(2 * np.pi * 220 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def wav_bytes(x: np.ndarray, rate: int = RATE, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    out = io.BytesIO()
    sf.write(out, x, rate, format=fmt, subtype=subtype)
    return out.getvalue()


def forged_wav(rate: int, data: bytes, claimed: int | None = None, channels: int = 1, bits: int = 16,
               code: int = 1) -> bytes:
    """A RIFF/WAVE file whose header says what the arguments say, whatever ``data`` holds."""
    claimed = len(data) if claimed is None else claimed
    align = max(channels * bits // 8, 0) % 2**16
    fmt = struct.pack("<IHHIIHH", 16, code, channels % 2**16, rate % 2**32, rate * align % 2**32, align,
                      bits % 2**16)
    return (b"RIFF" + struct.pack("<I", (36 + claimed) % 2**32) + b"WAVE" + b"fmt " + fmt + b"data"
            + struct.pack("<I", claimed % 2**32) + data)


def post(c: TestClient, body: bytes, name: str = "talk.wav"):
    return c.post("/predict", files={"file": (name, body, "audio/wav")})


def pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def closed_with(ws) -> tuple[str | None, int]:
    """(the error message, the close code) of a stream the server ends."""
    message = ws.receive_json()
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    return message.get("error"), closed.value.code


def within(seconds: float, fn, *args):
    """``fn(*args)``, failing the test if it has not returned after ``seconds`` (a hang)."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return pool.submit(fn, *args).result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not return within {seconds} s")
    finally:
        pool.shutdown(wait=False)


@pytest.fixture(scope="module")
def hour_flac() -> bytes:
    from ser.bench.hostile_clients import silent_flac

    return silent_flac(3600.0, RATE)


def run_command(module: str, argv: list[str], capsys) -> tuple[int, str, str]:
    import importlib

    with pytest.raises(SystemExit) as stopped:
        importlib.import_module(module).main(argv)
    out, err = capsys.readouterr()
    return stopped.value.code, out, err


# ------------------------------------------------------------------------------ one request each
def test_row1_an_hour_of_compressed_silence_is_refused_by_its_header(hour_flac):
    tiny = Tiny()
    c = client(tiny)
    assert len(hour_flac) < 200_000  # 181 KB: far below the byte cap
    t0 = time.perf_counter()
    got = post(c, hour_flac, "hour.flac")
    assert got.status_code == 413 and "3600 s" in got.json()["error"] and "max_seconds" in got.json()["error"]
    assert time.perf_counter() - t0 < 5 and tiny.blocks == 0
    from ser.bench.hostile_clients import silent_flac

    twenty = silent_flac(20.0, RATE)
    assert post(client(tiny, max_seconds=10), twenty, "twenty.flac").status_code == 413
    assert post(client(tiny, max_seconds=30), twenty, "twenty.flac").status_code == 200  # the key lifts it


def test_row2_a_header_saying_1_hz_is_refused_before_decoding():
    tiny = Tiny()
    body = forged_wav(1, b"\0\1" * 600)  # 600 samples at "1 Hz": 600 s
    assert len(body) == 1244
    got = post(client(tiny), body)
    assert got.status_code == 422 and "1 Hz" in got.json()["error"] and "8000-192000" in got.json()["error"]
    assert tiny.blocks == 0
    assert post(client(tiny), forged_wav(400_000, b"\0\1" * 600)).status_code == 422


def test_row3_a_burst_gets_503_beyond_the_queue_and_health_never_waits():
    tiny = Tiny(delay_s=0.4)
    c = client(tiny, workers=1, queue=1)
    good = wav_bytes(tone(1.5))
    forged = forged_wav(1, b"\0\1" * 60)
    assert len(forged) == 164
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        slow = [pool.submit(post, c, good) for _ in range(4)]
        time.sleep(0.3)  # the worker and the queue are taken
        burst = [pool.submit(post, c, forged) for _ in range(8)]
        health = []
        for _ in range(5):
            t0 = time.perf_counter()
            assert c.get("/health").json() == {"status": "ok"}
            health.append(time.perf_counter() - t0)
        model = c.get("/model").json()
        answers = [f.result(timeout=60) for f in slow + burst]
    assert max(health) < 0.3, health  # answered on the event loop, not behind the worker
    assert model["busy"]["uploads"] >= 1 and model["limits"]["workers"] == 1
    codes = [a.status_code for a in answers]
    assert set(codes) <= {200, 422, 503} and codes.count(503) >= 5, codes
    busy = next(a for a in answers if a.status_code == 503)
    assert int(busy.headers["retry-after"]) >= 1 and "busy" in busy.json()["error"]
    assert all(a.status_code == 422 for a in answers[4:] if a.status_code != 503)  # refused by header
    assert post(c, good).status_code == 200  # the queue drains


def test_row4_a_frame_beyond_the_buffer_closes_1009_and_pending_stays_under_a_hop():
    from ser.serve.streaming import StreamSession

    c = client()
    with c.websocket_connect("/stream?hop=1e9") as ws:
        assert closed_with(ws)[1] == 1008
    with c.websocket_connect("/stream") as ws:
        ws.send_bytes(b"\0" * 2**20)  # 32 s of 16-bit audio at 16 kHz in one frame
        message, code = closed_with(ws)
    assert code == 1009 and "10 s a stream may send at once" in message
    session = StreamSession(Tiny(), RATE, "s16le", None, 5.0, None, max_buffer_s=10)
    frame = pcm16(tone(9.0))
    for _ in range(20):
        session.feed(frame)
        assert session._pending.size < session.hop and len(session._odd) < 2


def test_row5_a_one_sample_hop_is_refused_and_the_shortest_hop_bounds_the_work():
    tiny = Tiny()
    c = client(tiny)
    with c.websocket_connect("/stream?hop=0.0000625") as ws:
        message, code = closed_with(ws)
    assert code == 1008 and "0.05 to 5" in message and tiny.blocks == 0
    with c.websocket_connect("/stream?hop=0.05") as ws:
        ws.send_bytes(pcm16(tone(2.0)))
        got = [ws.receive_json() for _ in range(21)]
    assert got[-1]["time_s"] == 2.0 and tiny.blocks == 21  # 20 runs per second of audio at most


@pytest.mark.parametrize("hop", ["nan", "inf", "-inf", "1e400"])
def test_row6_non_finite_hops_get_an_error_message_and_1008(hop):
    with client().websocket_connect(f"/stream?hop={hop}") as ws:
        message, code = closed_with(ws)
    assert code == 1008 and f"hop={hop}" in message and "finite" in message


def test_row7_a_sample_rate_of_0_is_a_422_naming_it():
    got = post(client(), forged_wav(0, b"\0\1" * 16000))
    assert got.status_code == 422 and "0 Hz" in got.json()["error"]


@pytest.mark.parametrize("module, argv, words", [
    ("ser.commands.predict", ["ckpt=m.onnx", "audio=x.wav", "hop=nan"], "hop= takes a finite number"),
    ("ser.commands.predict", ["ckpt=m.onnx", "audio=x.wav", "window=1e9"], "window= takes"),
    ("ser.commands.serve", ["ckpt=m.onnx", "max_upload_mb=nan"], "max_upload_mb= takes"),
    ("ser.commands.serve", ["ckpt=m.onnx", "hop=nan"], "hop= takes a finite number from 0.05 to 5"),
    ("ser.commands.serve", ["ckpt=m.onnx", "hop=0.0000625"], "hop= takes"),
    ("ser.commands.serve", ["ckpt=m.onnx", "max_seconds=inf"], "max_seconds= takes"),
    ("ser.commands.serve", ["ckpt=m.onnx", "workers=0"], "workers= takes"),
])
def test_row8_bad_numbers_are_one_paragraph_and_exit_2(module, argv, words, capsys):
    code, _, err = run_command(module, argv, capsys)
    flat = " ".join(err.split())
    assert code == 2 and flat.startswith("error:") and words in flat and "Traceback" not in err


def test_row9_bad_stream_settings_are_refused_after_the_handshake_and_403_stays_for_the_token():
    c = client()
    for query, words in [("rate=abc", "rate=abc:"), ("rate=0", "rate=0:"), ("hop=0", "hop=0:"),
                         ("rate=16000.5", "rate=16000.5:"), ("format=mp3", "format='mp3'"),
                         ("min_confidence=0", "min_confidence=0:"), ("min_confidence=inf", "min_confidence=inf:")]:
        with c.websocket_connect(f"/stream?{query}") as ws:  # accepted: the error is a message
            message, code = closed_with(ws)
        assert code == 1008 and words in message, (query, message)
    guarded = client(token="s3cret")
    with pytest.raises(WebSocketDenialResponse) as denied:
        with guarded.websocket_connect("/stream?rate=abc"):
            pass
    assert denied.value.status_code == 403 and "bearer token" in denied.value.json()["error"]


def test_row10_a_port_in_use_or_a_bad_host_is_one_paragraph_before_serving(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, out, err = run_command("ser.commands.serve", ["ckpt=none.onnx", f"port={port}"], capsys)
    flat = " ".join(err.split())
    assert code == 2 and f"port {port} is in use" in flat and "serving" not in err + out
    code, out, err = run_command("ser.commands.serve", ["ckpt=none.onnx", "host=256.1.1.1", "port=0"],
                                 capsys)
    flat = " ".join(err.split())
    assert code == 2 and "host=256.1.1.1" in flat and "serving" not in err + out
    assert "Traceback" not in err and flat.count("error:") == 1


def test_row11_other_sites_and_other_host_names_are_refused():
    c = client()
    with pytest.raises(WebSocketDenialResponse) as denied:
        with c.websocket_connect("/stream", headers={"Origin": "http://evil.example"}):
            pass
    assert denied.value.status_code == 403 and "http://evil.example" in denied.value.json()["error"]
    assert post_with(c, {"Origin": "http://evil.example"}).status_code == 403
    for path in ("/model", "/predict", "/"):
        got = c.get(path, headers={"Host": "evil.example"})
        assert got.status_code == 403 and "allowed_hosts" in got.json()["error"], path
    with pytest.raises(WebSocketDenialResponse):
        with c.websocket_connect("/stream", headers={"Host": "evil.example:8000"}):
            pass
    # the server's own page (same origin), addresses, bare names and localhost pass
    with c.websocket_connect("/stream", headers={"Origin": "http://testserver"}) as ws:
        ws.send_bytes(pcm16(tone(1.0)))
        assert ws.receive_json()["time_s"] == 1.0
    for host in ("127.0.0.1:8000", "[::1]:8000", "192.168.1.5", "localhost:8000", "app.localhost",
                 socket.gethostname()):
        assert c.get("/health", headers={"Host": host}).status_code == 200, host
    same_origin = {"Origin": "http://127.0.0.1:8000", "Host": "127.0.0.1:8000"}
    assert c.get("/model", headers=same_origin).status_code == 200


def post_with(c: TestClient, headers: dict):
    return c.post("/predict", files={"file": ("talk.wav", wav_bytes(tone(1.2)), "audio/wav")},
                  headers=headers)


def test_row11_allowed_origins_and_hosts_pass_and_the_token_travels_as_a_header_or_sub_protocol():
    c = client(allowed_origins=["http://localhost:3000"], allowed_hosts=["ser.example"])
    got = post_with(c, {"Origin": "http://localhost:3000"})
    assert got.status_code == 200 and got.headers["access-control-allow-origin"] == "http://localhost:3000"
    preflight = c.options("/predict", headers={"Origin": "http://localhost:3000",
                                               "Access-Control-Request-Method": "POST",
                                               "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200
    assert post_with(c, {"Origin": "http://localhost:3001"}).status_code == 403
    assert c.get("/model", headers={"Host": "ser.example"}).status_code == 200
    assert c.get("/model", headers={"Host": "other.example"}).status_code == 403
    guarded = client(token="s3cret")
    for kwargs in ({"headers": {"Authorization": "Bearer s3cret"}},
                   {"subprotocols": ["ser", "bearer.s3cret"]}, {"subprotocols": ["bearer.s3cret"]}):
        with guarded.websocket_connect("/stream", **kwargs) as ws:
            ws.send_bytes(pcm16(tone(1.0)))
            assert ws.receive_json()["time_s"] == 1.0
            offered = kwargs.get("subprotocols")
            assert ws.accepted_subprotocol == (None if offered is None else offered[0])
    with guarded.websocket_connect("/stream?token=s3cret") as ws:  # the older way still works
        ws.send_bytes(pcm16(tone(1.0)))
        assert ws.receive_json()["time_s"] == 1.0
    for kwargs in ({"subprotocols": ["bearer.nope"]}, {"headers": {"Authorization": "Bearer nope"}}):
        with pytest.raises(WebSocketDenialResponse) as denied:
            with guarded.websocket_connect("/stream", **kwargs):
                pass
        assert denied.value.status_code == 403


def test_row12_docs_need_no_internet():
    import re

    c = client(token="s3cret")  # the page and its assets hold no data: open without the token
    page = c.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert urls and not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
    for url in urls:
        assert c.get(url).status_code == 200, url
    assert c.get("/redoc").status_code in (401, 404)  # not offered (its script is a CDN's)


@pytest.mark.parametrize("case, status, words", [
    ("header only", 422, "holds no samples"),
    ("zero length", 400, "is empty"),
    ("text named .wav", 422, "not a recording in a format ser reads"),
    ("truncated flac", 422, "Cannot decode audio file talk.wav"),
])
def test_row13_undecodable_uploads_get_messages_for_a_client(case, status, words):
    body = {"header only": forged_wav(16000, b""), "zero length": b"",
            "text named .wav": b"hello, this is not audio\n" * 20,
            "truncated flac": wav_bytes(tone(2.0), fmt="FLAC")[:300]}[case]
    got = post(client(), body)
    error = got.json()["error"]
    assert got.status_code == status and words in error, error
    assert "corpus" not in error and "/tmp" not in error and ": ." not in error and "EOFError" not in error


def test_row13_undecodable_uploads_load_no_second_decoder(tmp_path):
    """In a fresh process: refusing a text file or a forged header never imports librosa."""
    code = ("import sys, numpy as np\n"
            "from tests.test_serve_hostile import client, post, forged_wav\n"
            "c = client()\n"
            "codes = [post(c, b).status_code for b in (b'not audio' * 50, forged_wav(0, b'x' * 64),\n"
            "         b'\\xff\\xfb' + b'junk' * 100, b'ID3' + b'\\0' * 200)]\n"
            "print(codes, 'librosa' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[422, 422, 422, 422] False"


# ------------------------------------------------------------------------------ the other targets
def test_streams_beyond_the_cap_get_1013_and_a_silent_one_is_closed_when_idle():
    c = client(max_streams=2, idle_s=1.0)
    with c.websocket_connect("/stream") as first, c.websocket_connect("/stream") as second:
        with c.websocket_connect("/stream") as third:
            message, code = closed_with(third)
        assert code == 1013 and "max_streams" in message
        second.send_bytes(pcm16(tone(1.0)))
        assert second.receive_json()["time_s"] == 1.0
        t0 = time.perf_counter()
        message, code = closed_with(first)  # sent nothing
        assert code == 1008 and "No audio for 1 s" in message and time.perf_counter() - t0 < 3
    with c.websocket_connect("/stream") as again:  # the places are free again
        again.send_bytes(pcm16(tone(1.0)))
        assert again.receive_json()["time_s"] == 1.0


def test_float_samples_far_beyond_full_scale_are_refused_like_nan():
    loud = np.full(2 * RATE, 1e30, np.float32)
    got = post(client(), wav_bytes(loud, subtype="FLOAT"))
    assert got.status_code == 422 and "non-finite samples" in got.json()["error"]
    with client().websocket_connect("/stream?format=f32le") as ws:
        ws.send_bytes(loud.astype("<f4").tobytes())
        message, code = closed_with(ws)
    assert code == 1003 and "non-finite" in message


def test_exposure_warning_is_quiet_for_every_loopback_address():
    from ser.commands.serve import exposure_warning

    for host in ("127.0.0.1", "127.0.0.2", "127.255.0.1", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"):
        assert exposure_warning(host, None) is None, host
    for host in ("0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "example.org"):
        assert "other machines can reach" in exposure_warning(host, None), host


def test_each_upload_is_decoded_once_and_no_speech_windows_skip_the_network(monkeypatch):
    from ser.audio.speech_detectors import energy
    from ser.inference import recordings
    from ser.inference.speech_gate import NO_SPEECH, SpeechGate

    decoded = []
    real = recordings.decode_audio
    monkeypatch.setattr(recordings, "decode_audio", lambda *a, **k: decoded.append(a) or real(*a, **k))
    tiny = Tiny()
    gate = SpeechGate(energy(RATE, 20, -35, 30), 0.5)
    body = wav_bytes(np.concatenate([np.zeros(2 * RATE, np.float32), tone(2.0)]))
    got = post(client(tiny, gate=gate), body).json()
    rec = got["recordings"][0]
    spoken_blocks = sum(b["emotion"] != NO_SPEECH for b in rec["blocks"])
    spoken_windows = sum(label != NO_SPEECH for label in rec["timeline"]["labels"])
    assert len(decoded) == 1 and 0 < spoken_windows < len(rec["timeline"]["labels"])
    assert tiny.blocks == spoken_blocks + spoken_windows  # nothing for the windows called no speech
    assert all(b["probabilities"] is None for b in rec["blocks"] if b["emotion"] == NO_SPEECH)
    silent = [i for i, label in enumerate(rec["timeline"]["labels"]) if label == NO_SPEECH]
    assert all(rec["timeline"]["probabilities"]["sad"][i] is None for i in silent)


def test_a_folder_is_decoded_once_per_file_with_its_timelines(monkeypatch, tmp_path):
    from ser.inference import recordings

    for i in range(3):
        sf.write(tmp_path / f"r{i}.wav", tone(1.5 + i), RATE)
    (tmp_path / "bad.wav").write_bytes(forged_wav(0, b"\0" * 100))
    decoded = []
    real = recordings.decode_audio
    monkeypatch.setattr(recordings, "decode_audio", lambda *a, **k: decoded.append(a) or real(*a, **k))
    result = recordings.predict_recordings(Tiny(), tmp_path, out_dir=tmp_path / "out")
    assert len(decoded) == 4 and len(result["recordings"]) == 3 and len(result["timelines"]) == 3
    assert [e["path"].endswith("bad.wav") for e in result["errors"]] == [True]
    assert (tmp_path / "out" / "r2.timeline.png").stat().st_size > 0


def test_every_upload_gives_its_place_back_whatever_it_ended_with():
    c = client(Tiny(), workers=1, queue=0)
    for body in (wav_bytes(tone(1.5)), forged_wav(0, b"\0" * 64), b"", b"junk" * 100, wav_bytes(tone(0.3))):
        assert post(c, body).status_code in (200, 400, 422)
        assert c.app.state.uploads.admitted == 0
    assert post(c, wav_bytes(tone(1.5))).status_code == 200  # a queue of 0 still takes one at a time


# ------------------------------------------------------------------------------ property-based
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

# a fixed sequence of examples (the same in every run), no example database written
FAST = settings(max_examples=30, deadline=3000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
ANSWERS = {200, 400, 413, 422}


@pytest.fixture(scope="module")
def shared_client() -> TestClient:
    return client(max_seconds=30)


@FAST
@given(body=st.binary(min_size=0, max_size=3000))
def test_random_bytes_get_a_4xx_or_a_result(shared_client, body):
    got = within(10, post, shared_client, body)
    assert got.status_code in ANSWERS, got.text
    assert "recordings" in got.json() if got.status_code == 200 else "error" in got.json()


@FAST
@given(rate=st.one_of(st.sampled_from([0, 1, 7999, 8000, 16000, 44100, 192000, 192001]),
                      st.integers(0, 2**32 - 1)),
       channels=st.one_of(st.sampled_from([0, 1, 2, 8]), st.integers(0, 2**16 - 1)),
       bits=st.sampled_from([0, 7, 8, 16, 24, 32, 64]),
       code=st.sampled_from([0, 1, 2, 3, 6, 7, 0xFFFE]),
       claimed=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
       size=st.integers(0, 40_000), seed=st.integers(0, 2**16))
def test_random_wav_headers_get_a_4xx_or_a_result(shared_client, rate, channels, bits, code, claimed,
                                                   size, seed):
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    got = within(10, post, shared_client, forged_wav(rate, data, claimed, channels, bits, code))
    assert got.status_code in ANSWERS, got.text
    if got.status_code == 200:
        rec = got.json()["recordings"][0]
        assert rec["duration_s"] <= 30 and rec["blocks"]


@FAST
@given(rate=st.one_of(st.sampled_from(["", "8000", "16000", "48000", "0", "abc", "1e9", "-5"]),
                      st.text(max_size=8)),
       fmt=st.sampled_from(["", "s16le", "f32le", "mp3"]),
       hop=st.one_of(st.sampled_from(["", "0.05", "0.25", "5", "0", "nan", "inf", "1e9"]),
                     st.text(max_size=6)),
       frames=st.lists(st.one_of(st.binary(max_size=4000),
                                 st.integers(1, 400_000).map(lambda n: b"\x01" * n)), max_size=8))
def test_random_frame_sequences_get_hops_or_a_one_paragraph_error(rate, fmt, hop, frames):
    from ser.errors import SerError
    from ser.serve.streaming import StreamSession, stream_settings

    query = {k: v for k, v in (("rate", rate), ("format", fmt), ("hop", hop)) if v}
    try:
        session = StreamSession(Tiny(), *_settings(stream_settings, query), None, max_buffer_s=5)
    except SerError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    for frame in frames:
        try:
            items = within(10, session.feed, frame)
        except SerError as exc:  # a frame too large, or non-finite floats: the stream is closed
            assert str(exc)
            return
        for item in items:
            assert set(item) >= {"time_s", "label", "probabilities", "level_db"}
        assert session._pending.size < session.hop


def _settings(stream_settings, query):
    rate, fmt, hop = stream_settings(query, RATE, 0.25)
    return rate, fmt, None, hop


@settings(max_examples=8, deadline=5000, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(query=st.sampled_from(["", "hop=nan", "rate=abc", "rate=48000&format=f32le", "hop=0.05",
                              "format=x"]),
       frames=st.lists(st.binary(max_size=70_000), min_size=1, max_size=4))
def test_random_streams_over_the_websocket_end_with_hops_or_a_close_code(shared_client, query, frames):
    filler = b"\0" * (384_000 if "f32le" in query else 64_000)  # two seconds of the stream's audio

    def run():
        with shared_client.websocket_connect(f"/stream?{query}") as ws:
            for frame in frames:
                ws.send_bytes(frame)
            ws.send_bytes(filler)  # a hop, or the error, must come
            return ws.receive_json()
    try:
        message = within(20, run)
    except WebSocketDisconnect as exc:
        assert exc.code in (1003, 1008, 1009), exc.code
        return
    assert "error" in message or "label" in message
