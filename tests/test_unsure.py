"""Abstention: ``min_confidence`` makes a window, block or recording whose top probability is
below it ``unsure`` (its probabilities kept), in timelines (inline, CSV, PNG), ``ser.predict``
(JSON and table), ``ser.listen``, ``evaluate.py ckpt= audio=``, and the server's ``/predict``
and ``/stream``; and a bad threshold is refused everywhere with one message.

The tiny trained run of test_timeline.py gives real probabilities: a threshold halfway between
the highest top probability it gives and 1 is above every window's. A scripted model gives a
recording whose unsure and no-speech shares are known exactly."""

from __future__ import annotations

import csv
import importlib
import io
import json

import numpy as np
import pytest
import soundfile as sf

from tests.test_predict import recordings  # noqa: F401  (module fixture: a 2.3-s recording)
from tests.test_timeline import evaluate_in_process, predictor, run, valid_png, voice  # noqa: F401

RATE = 16000
BAD = ["0", "1.5", "nan", "abc"]


def above_every(tops) -> float:
    """A threshold above every top probability in ``tops`` and below 1."""
    top = float(np.max(tops))
    assert 0 < top < 1
    return (top + 1) / 2


def top_probabilities(line: dict, classes: list[str]) -> np.ndarray:
    """The top probability of every window of a timeline summary."""
    return np.array([line["probabilities"][c] for c in classes], float).max(axis=0)


def pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


class Scripted:
    """A block's top probability is its peak amplitude: ``anger`` leads above 0.5, ``sad``
    below (a tone of amplitude 0.2 is ``sad`` at 0.8)."""

    classes, sample_rate, block_seconds, pad_min_fraction = ["anger", "sad"], RATE, 1.0, None

    def predict_blocks(self, blocks):
        p = np.clip(np.abs(np.asarray(blocks, np.float32)).max(axis=1), 0.05, 0.95)
        return np.stack([p, 1 - p], axis=1).astype(np.float32)


def sine(amplitude: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


# ------------------------------------------------------------------------------ the threshold
def test_the_threshold_reads_a_probability_and_refuses_the_rest():
    from ser.errors import SerError
    from ser.inference.windows import UNSURE, parse_min_confidence, unsure_rows, window_label

    assert [parse_min_confidence(v) for v in (None, "", " none ", "0.6", 0.25)] == [None, None, None, 0.6, 0.25]
    for bad in [*BAD, "1", "-0.2", "inf", float("nan")]:
        with pytest.raises(SerError) as refused:
            parse_min_confidence(bad)
        message = str(refused.value)
        assert message.startswith(f"min_confidence={bad}:") and "above 0 and below 1" in message
        assert "\n" not in message
    probs = np.array([[0.55, 0.45], [np.nan, np.nan], [0.9, 0.1], [0.6, 0.4]])
    assert unsure_rows(probs, 0.6).tolist() == [True, False, False, False]  # equal is sure enough
    assert not unsure_rows(probs, None).any() and unsure_rows(np.zeros((0, 2)), 0.5).shape == (0,)
    assert window_label(probs[0], ["anger", "sad"], 0.6) == UNSURE
    assert window_label(probs[0], ["anger", "sad"]) == window_label(probs[0], ["anger", "sad"], 0.5) == "anger"


# ------------------------------------------------------------------------------ timelines
def test_a_timeline_labels_windows_below_the_threshold_unsure_and_keeps_their_probabilities(
        predictor, tmp_path):  # noqa: F811
    from ser.inference.timeline import timeline, timeline_summary, write_timeline_files
    from ser.inference.windows import UNSURE

    audio = voice(RATE, 3.3)
    off = timeline(predictor, audio, smooth=3)
    assert UNSURE not in off["labels"] and "unsure" not in timeline_summary(off)
    threshold = above_every(np.nanmax(off["probs"], axis=1))
    on = timeline(predictor, audio, smooth=3, min_confidence=threshold)
    assert on["labels"] == [UNSURE] * len(off["labels"]) == [UNSURE] * 10
    np.testing.assert_array_equal(on["probs"], off["probs"])  # the probabilities stay
    line = timeline_summary(on)
    assert line["labels"] == on["labels"] and line["min_confidence"] == threshold
    assert line["unsure"] == [{"start_s": 0.0, "end_s": 3.25}] and line["stretches"] == []
    assert line["probabilities"] == timeline_summary(off)["probabilities"]
    written = write_timeline_files(on, tmp_path, "voice", tmp_path / "voice.wav")
    with open(written["csv"]) as f:
        rows = list(csv.reader(f))
    assert rows[0][-1] == "label" and {r[-1] for r in rows[1:]} == {UNSURE}
    assert all(abs(sum(float(v) for v in r[1:-1]) - 1) < 1e-3 for r in rows[1:])
    valid_png(tmp_path / "voice.timeline.png")
    # part of it: only the windows below the threshold
    middle = float(np.median(np.nanmax(off["probs"], axis=1)))
    some = timeline(predictor, audio, smooth=3, min_confidence=middle)
    tops = np.nanmax(off["probs"], axis=1)
    assert [label == UNSURE for label in some["labels"]] == (tops < middle).tolist()


# ------------------------------------------------------------------------------ ser.predict
def test_ser_predict_json_and_table_say_unsure_only_with_a_threshold(run, recordings, capsys):  # noqa: F811
    from ser.commands.predict import predict

    talk = recordings / "talk.wav"
    off = predict([f"ckpt={run}", f"audio={talk}", "output=json", "vad=none", "min_confidence=none"])
    assert "unsure" not in capsys.readouterr().out
    [rec] = off["recordings"]
    assert "unsure_share" not in rec["recording"] and "unsure" not in rec["timeline"]
    tops = [*top_probabilities(rec["timeline"], off["classes"]),
            *(max(b["probabilities"].values()) for b in rec["blocks"]),
            max(rec["recording"]["probabilities"].values())]
    threshold = above_every(tops)
    on = predict([f"ckpt={run}", f"audio={talk}", "output=json", "vad=none", f"min_confidence={threshold}"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(on))
    [rec] = printed["recordings"]
    assert set(rec["timeline"]["labels"]) == {"unsure"} and len(rec["timeline"]["labels"]) == 6
    assert [b["emotion"] for b in rec["blocks"]] == ["unsure", "unsure"]
    assert rec["recording"]["emotion"] == "unsure" and rec["recording"]["unsure_share"] == 1.0
    assert rec["recording"]["unsure_blocks"] == 2 and rec["recording"]["min_confidence"] == threshold
    assert rec["recording"]["probabilities"] == off["recordings"][0]["recording"]["probabilities"]
    assert rec["timeline"]["probabilities"] == off["recordings"][0]["timeline"]["probabilities"]
    predict([f"ckpt={run}", f"audio={talk}", "vad=none", f"min_confidence={threshold}"])
    table = capsys.readouterr().out
    assert "| **unsure** (100% of blocks unsure) |" in table and "s unsure" in table  # the timeline line
    predict([f"ckpt={run}", f"audio={talk}", "vad=none", "min_confidence=none"])
    assert "unsure" not in capsys.readouterr().out


def test_the_recording_says_which_share_of_its_blocks_was_unsure_and_had_no_speech(tmp_path):
    from ser.audio.speech_detectors import energy
    from ser.inference.recordings import predict_audio, predict_recordings, predictions_markdown
    from ser.inference.speech_gate import NO_SPEECH, SpeechGate
    from ser.inference.windows import UNSURE

    # 1 s silence, then blocks whose top probabilities are 0.9 (anger), 0.55 and 0.8 (sad)
    sf.write(tmp_path / "talk.wav", np.concatenate([np.zeros(RATE, np.float32), sine(0.9), sine(0.55),
                                                    sine(0.2)]), RATE)
    gate = SpeechGate(energy(RATE, 20, -35, 30), 0.5)
    [rec] = predict_audio(Scripted(), tmp_path, gate, min_confidence=0.7)["recordings"]
    assert [b["emotion"] for b in rec["blocks"]] == [NO_SPEECH, "anger", UNSURE, "sad"]
    assert rec["blocks"][2]["probabilities"]["anger"] == pytest.approx(0.55, abs=1e-3)
    whole = rec["recording"]
    assert whole["unsure_blocks"] == 1 and whole["unsure_share"] == 0.25
    assert whole["no_speech_share"] == 0.25 and whole["speech_blocks"] == 3
    # the whole recording: the mean of its speech blocks, anger at (0.9 + 0.55 + 0.2) / 3 = 0.55
    assert whole["emotion"] == UNSURE and whole["probabilities"]["anger"] == pytest.approx(0.55, abs=1e-3)
    text = predictions_markdown({"classes": Scripted.classes, "recordings": [rec], "errors": []})
    assert "| **unsure** (25% of blocks unsure, 25% no speech) |" in text
    lower = predict_audio(Scripted(), tmp_path, gate, min_confidence=0.5)["recordings"][0]["recording"]
    assert lower["emotion"] == "anger" and lower["unsure_share"] == 0.0 and lower["no_speech_share"] == 0.25
    plain = predict_audio(Scripted(), tmp_path)["recordings"][0]["recording"]
    assert set(plain) == {"probabilities", "emotion"}
    # the timeline's windows: unsure where the loudest tone a 1-s window holds is the 0.55 one
    line = predict_recordings(Scripted(), tmp_path, min_confidence=0.7)["recordings"][0]["timeline"]
    unsure = [t for t, label in zip(line["time_s"], line["labels"]) if label == UNSURE]
    assert unsure == [2.5, 2.75, 3.0, 3.25] and line["unsure"] == [{"start_s": 2.375, "end_s": 3.375}]


# ------------------------------------------------------------------------------ ser.listen
def test_a_live_stream_says_unsure_below_the_threshold(run, predictor, capsys):  # noqa: F811
    from ser.commands.listen import listen
    from ser.inference.live import stream

    audio = voice(RATE, 2.3)
    off: list[dict] = []
    summary = stream(predictor, [audio], RATE, 4000, off.append)
    assert summary["unsure"] == 0 and all(h["label"] != "unsure" for h in off)
    threshold = above_every([max(h["probabilities"].values()) for h in off])
    on: list[dict] = []
    summary = stream(predictor, [audio], RATE, 4000, on.append, min_confidence=threshold)
    assert summary["unsure"] == summary["windows"] == 6 and {h["label"] for h in on} == {"unsure"}
    assert [h["probabilities"] for h in on] == [h["probabilities"] for h in off]
    listen([f"ckpt={run}", "source=-", "vad=none", f"min_confidence={threshold}"],
           stdin=io.BytesIO(pcm16(audio)))
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 6 and all(line.split()[2] == "unsure" for line in out.splitlines())
    assert "6 below min_confidence (unsure)" in " ".join(err.split())


# ------------------------------------------------------------------------------ the server
@pytest.fixture(scope="module")
def served(predictor):  # noqa: F811
    pytest.importorskip("fastapi")
    pytest.importorskip("multipart")
    from fastapi.testclient import TestClient

    from ser.serve.app import create_app

    return TestClient(create_app(predictor))


def test_predict_and_stream_say_unsure_when_the_request_sets_min_confidence(served, recordings,  # noqa: F811
                                                                           predictor):  # noqa: F811
    body = (recordings / "talk.wav").read_bytes()
    files = {"file": ("talk.wav", body, "audio/wav")}
    off = served.post("/predict", files=files)
    assert off.status_code == 200 and "unsure" not in off.text
    rec = off.json()["recordings"][0]
    threshold = above_every([*top_probabilities(rec["timeline"], predictor.classes),
                             *(max(b["probabilities"].values()) for b in rec["blocks"])])
    for answer in (served.post("/predict", files=files, data={"min_confidence": str(threshold)}),
                   served.post(f"/predict?min_confidence={threshold}", files=files)):
        assert answer.status_code == 200, answer.text
        got = answer.json()["recordings"][0]
        assert set(got["timeline"]["labels"]) == {"unsure"} and got["recording"]["unsure_share"] == 1.0
        assert got["timeline"]["probabilities"] == rec["timeline"]["probabilities"]
    assert served.get("/model").json()["min_confidence"] is None

    data = pcm16(voice(RATE, 2.3))
    with served.websocket_connect("/stream?rate=16000") as ws:
        ws.send_bytes(data)
        off_hops = [ws.receive_json() for _ in range(6)]
    assert all(h["label"] != "unsure" for h in off_hops)
    stream_threshold = above_every([max(h["probabilities"].values()) for h in off_hops])
    with served.websocket_connect(f"/stream?rate=16000&min_confidence={stream_threshold}") as ws:
        ws.send_bytes(data)
        on_hops = [ws.receive_json() for _ in range(6)]
    assert {h["label"] for h in on_hops} == {"unsure"}
    assert [h["probabilities"] for h in on_hops] == [h["probabilities"] for h in off_hops]


def test_the_servers_own_threshold_stands_unless_a_request_sets_another():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from ser.errors import SerError
    from ser.serve.app import create_app

    c = TestClient(create_app(Scripted(), min_confidence=0.96))  # Scripted tops at 0.95
    assert c.get("/model").json()["min_confidence"] == 0.96
    files = {"file": ("tone.wav", _wav(sine(0.9, 2.0)), "audio/wav")}
    assert set(c.post("/predict", files=files).json()["recordings"][0]["timeline"]["labels"]) == {"unsure"}
    lower = c.post("/predict", files=files, data={"min_confidence": "0.5"}).json()["recordings"][0]
    assert set(lower["timeline"]["labels"]) == {"anger"} and lower["recording"]["unsure_share"] == 0
    off = c.post("/predict?min_confidence=none", files=files).json()["recordings"][0]
    assert "unsure_share" not in off["recording"] and set(off["timeline"]["labels"]) == {"anger"}
    with c.websocket_connect("/stream") as ws:
        ws.send_bytes(pcm16(sine(0.9)))
        assert ws.receive_json()["label"] == "unsure"
    with pytest.raises(SerError, match="min_confidence=1.5"):
        create_app(Scripted(), min_confidence=1.5)


class Cautious(Scripted):
    """Scripted, with its own threshold chosen on validation (as a calibrated run stores it)."""

    min_confidence = 0.96


def test_the_models_own_threshold_is_every_ways_default():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from ser.commands.keys import MIN_CONFIDENCE
    from ser.serve.app import create_app
    from ser.inference.windows import resolve_min_confidence

    assert MIN_CONFIDENCE.default == "model"
    assert resolve_min_confidence("model", 0.7) == 0.7 and resolve_min_confidence("model", None) is None
    assert resolve_min_confidence("none", 0.7) is None and resolve_min_confidence("0.4", 0.7) == 0.4
    c = TestClient(create_app(Cautious()))  # Scripted tops at 0.95, below its own 0.96
    assert c.get("/model").json()["min_confidence"] == 0.96
    files = {"file": ("tone.wav", _wav(sine(0.9, 2.0)), "audio/wav")}
    assert set(c.post("/predict", files=files).json()["recordings"][0]["timeline"]["labels"]) == {"unsure"}
    off = c.post("/predict?min_confidence=none", files=files).json()["recordings"][0]
    assert set(off["timeline"]["labels"]) == {"anger"}
    lenient = TestClient(create_app(Cautious(), min_confidence=0.5))
    again = lenient.post("/predict?min_confidence=model", files=files).json()["recordings"][0]
    assert set(again["timeline"]["labels"]) == {"unsure"}
    assert TestClient(create_app(Scripted())).get("/model").json()["min_confidence"] is None


def _wav(x: np.ndarray) -> bytes:
    out = io.BytesIO()
    sf.write(out, x, RATE, format="WAV", subtype="PCM_16")
    return out.getvalue()


# ------------------------------------------------------------------------------ bad thresholds
@pytest.mark.parametrize("value", BAD)
def test_a_bad_threshold_is_one_message_everywhere(value, capsys, tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("multipart")
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from ser.serve.app import create_app

    expected = "min_confidence= takes model, none, or a probability above 0 and below 1"
    for module, argv in [("ser.commands.predict", ["ckpt=m.onnx", "audio=x.wav"]),
                         ("ser.commands.listen", ["ckpt=m.onnx", "source=-"]),
                         ("ser.commands.serve", ["ckpt=m.onnx"])]:
        with pytest.raises(SystemExit) as stopped:
            importlib.import_module(module).main([*argv, f"min_confidence={value}"])
        err = capsys.readouterr().err
        flat = " ".join(err.split())
        assert stopped.value.code == 2 and flat.startswith("error:") and flat.count("error:") == 1, err
        assert f"min_confidence={value!r}: {expected}" in flat and "Traceback" not in err
    c = TestClient(create_app(Scripted()))
    files = {"file": ("tone.wav", _wav(sine(0.9, 1.5)), "audio/wav")}
    for got in (c.post("/predict", files=files, data={"min_confidence": value}),
                c.post(f"/predict?min_confidence={value}", files=files)):
        assert got.status_code == 422 and got.json()["status"] == 422
        message = got.json()["error"]
        assert message.startswith(f"min_confidence={value}:") and "above 0 and below 1" in message
    with c.websocket_connect(f"/stream?min_confidence={value}") as ws:
        message = ws.receive_json()["error"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008 and message.startswith(f"min_confidence={value}:")
    code, out, err = evaluate_in_process(["ckpt=none.onnx", "audio=x.wav", f"min_confidence={value}"])
    assert code == 2 and f"min_confidence={value}:" in err and "above 0 and below 1" in err


def test_evaluate_audio_writes_unsure_timelines_and_tables(run, predictor, tmp_path):  # noqa: F811
    from ser.inference.recordings import predict_recording
    from ser.inference.timeline import timeline

    audio = voice(RATE, 2.2)
    wav = tmp_path / "voice.wav"
    sf.write(wav, audio, RATE)
    blocks = predict_recording(predictor, wav, RATE, 1.0, None)["blocks"]
    threshold = above_every([*np.nanmax(timeline(predictor, audio)["probs"], axis=1),
                             *(max(b["probabilities"].values()) for b in blocks)])
    code, out, err = evaluate_in_process([f"ckpt={run}", f"audio={wav}", "vad=none", "output=json",
                                          f"out_dir={tmp_path / 'out'}", f"min_confidence={threshold}"])
    assert code == 0, err
    [rec] = json.loads(out)["recordings"]
    assert rec["recording"]["unsure_share"] == 1.0 and {b["emotion"] for b in rec["blocks"]} == {"unsure"}
    rows = (tmp_path / "out" / "voice.timeline.csv").read_text().splitlines()[1:]
    assert len(rows) == 5 and {r.split(",")[-1] for r in rows} == {"unsure"}
    assert "100% of blocks unsure" in (tmp_path / "out" / "predictions.md").read_text()
