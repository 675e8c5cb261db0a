"""The speech gate: detectors, per-block speech cached with the blocks, data.min_speech,
SNR against active speech, and ``no speech`` in timelines, recordings and live streams.

Real speech (``../shared/data``) is used where it is there: Silero is trained on speech, so a
generated tone is no test of it. Without it those tests are skipped and the energy detector,
which any loud signal passes, covers the same paths on generated audio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import soundfile as sf

from ser.errors import SerError
from tests.conftest import FAST, REPO, SHARED_DATA, compose
from tests.test_timeline import run  # noqa: F401  (the module's tiny trained run, shared)

RATE = 16000
SPEECH_FILE = SHARED_DATA / "urdu" / "Angry" / "SM1_F14_A014.wav"  # 3 s, 97 % speech to Silero
AMBIENCE = SHARED_DATA / "noise" / "ambience" / "city.ogg"  # traffic (coffee-shop.ogg holds talkers: speech)
real_speech = pytest.mark.skipif(not (SPEECH_FILE.is_file() and AMBIENCE.is_file()),
                                 reason="../shared/data (real speech and room noise) is not here")


def silero_or_skip():
    from ser.inference.speech_gate import detector_from_name

    try:
        return detector_from_name("silero", RATE)
    except SerError as exc:
        pytest.skip(f"silero-vad is not installed ({exc})")


def tone(seconds: float, seed: int = 0) -> np.ndarray:
    from tests.test_timeline import voice

    return voice(RATE, seconds, seed)


def padded_speech(kind: str) -> tuple[np.ndarray, float, float]:
    """Real speech with 2 s of ``silence`` or ``room`` noise before and after: (audio, start s, end s)."""
    from ser.audio.io import load_audio

    speech = load_audio(SPEECH_FILE, RATE)
    if kind == "silence":
        pad = (np.random.default_rng(0).standard_normal(4 * RATE) * 1e-3).astype(np.float32)  # -60 dBFS
    else:
        room = load_audio(AMBIENCE, RATE)[: 4 * RATE]
        pad = room * (np.sqrt(np.mean(speech ** 2) / np.mean(room ** 2)) * 10 ** (-10 / 20))
    audio = np.concatenate([pad[: 2 * RATE], speech, pad[2 * RATE:]]).astype(np.float32)
    return audio, 2.0, 2.0 + speech.size / RATE


class FixedPredictor:
    """Every block gets the same probabilities: the gate alone decides ``no speech``."""

    classes, sample_rate, block_seconds, pad_min_fraction = ["anger", "sad"], RATE, 1.0, None

    def predict_blocks(self, blocks):
        return np.tile(np.array([[0.3, 0.7]], np.float32), (len(blocks), 1))


# ------------------------------------------------------------------------------ detectors
def test_a_stream_gets_the_whole_recordings_decisions_however_it_is_chunked():
    from ser.audio.speech_activity import ActivityStream, speech_frames, speech_mask, window_fractions
    from ser.audio.speech_detectors import energy

    det = energy(RATE, 20, -35, 30)
    audio = np.concatenate([np.zeros(RATE, np.float32), tone(1.5), np.zeros(RATE, np.float32)])
    frames = speech_frames(det, audio)
    assert not frames[:50].any() and frames[55:120].mean() > 0.8 and not frames[-45:].any()
    mask = speech_mask(det, audio)
    for chunk in (4000, 1234):
        stream = ActivityStream(det, RATE)
        for i in range(0, audio.size, chunk):
            stream.push(audio[i: i + chunk])
            decided = (i + chunk) // det.frame_samples * det.frame_samples
            if decided >= RATE:
                want = window_fractions(mask, [decided - RATE], RATE)[0]
                assert stream.fraction() == pytest.approx(want)


def test_silero_runs_from_its_wheel_without_importing_torch_into_the_gate():
    det = silero_or_skip()
    from ser.audio.speech_activity import speech_frames

    assert det.frame_samples == 512 and not speech_frames(det, np.zeros(RATE, np.float32)).any()
    done = subprocess.run([sys.executable, "-c", "import sys; from ser.inference.speech_gate import "
                           "detector_from_name as d; d('silero', 16000); print('torch' in sys.modules)"],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
                          cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"  # silero_vad's own modules (torch, set_num_threads) stay out


def test_a_detector_that_cannot_load_names_the_extra(tmp_path, monkeypatch):
    from ser.inference.speech_gate import inference_gate

    stub = tmp_path / "stub"
    (stub / "silero_vad").mkdir(parents=True)
    (stub / "silero_vad" / "__init__.py").write_text("")  # the package without its model
    monkeypatch.syspath_prepend(str(stub))
    with pytest.raises(SerError, match=r"pip install 'ser\[vad\]'"):
        inference_gate("silero", None, RATE)
    assert inference_gate("auto", None, RATE, quiet=True) is None  # auto: no gate, not an error
    with pytest.raises(SerError, match="choose one of"):
        inference_gate("loud", None, RATE)
    # train.py: one paragraph, exit 2 (the stub in front of the installed package)
    env_done = subprocess.run([sys.executable, str(REPO / "train.py"), *FAST, "logger=none", "vad=silero",
                               "data.min_speech=0.5", f"hydra.run.dir={tmp_path / 'run2'}"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, PYTHONPATH=f"{stub}:{REPO}", HYDRA_FULL_ERROR="0"))
    assert env_done.returncode == 2, env_done.stderr[-3000:]
    assert "ser[vad]" in env_done.stderr and "Traceback" not in env_done.stderr


# ------------------------------------------------------------------------------ inference
@real_speech
@pytest.mark.parametrize("kind", ["silence", "room"])
def test_padding_is_no_speech_in_the_timeline_and_the_stdin_stream(kind, tmp_path):
    from ser.inference.speech_gate import NO_SPEECH, SpeechGate
    from ser.inference.timeline import timeline, timeline_summary
    from ser.inference.live import stream

    gate = SpeechGate(silero_or_skip(), 0.5)
    audio, start, end = padded_speech(kind)
    line = timeline(FixedPredictor(), audio, hop_s=0.25, gate=gate)
    lo, hi = line["starts_s"], line["starts_s"] + 1.0
    labels = np.array(line["labels"])
    assert (labels[hi <= start] == NO_SPEECH).all() and (labels[lo >= end] == NO_SPEECH).all()
    inside = (lo >= start) & (hi <= end)
    assert (labels[inside] != NO_SPEECH).all()  # the speech is not
    summary = timeline_summary(line)
    assert summary["no_speech"][0]["start_s"] == 0.0 and summary["speech"][0] < 0.5
    hops: list[dict] = []
    chunks = (audio[i: i + 3000] for i in range(0, audio.size, 3000))
    stream(FixedPredictor(), chunks, RATE, RATE // 4, hops.append, gate)
    ends = np.array([h["time_s"] for h in hops])
    live = np.array([h["label"] for h in hops])
    assert (live[ends <= start] == NO_SPEECH).all() and (live[ends - 1.0 >= end + 0.1] == NO_SPEECH).all()
    assert (live[(ends - 1.0 >= start) & (ends <= end)] != NO_SPEECH).all()
    assert all(h["probabilities"] is None for h in hops if h["label"] == NO_SPEECH)


@real_speech
def test_listen_prints_no_speech_for_the_padding_of_pcm_on_stdin(run, tmp_path):  # noqa: F811
    """Through the command, on raw PCM on stdin, with a trained checkpoint."""
    silero_or_skip()
    audio, start, _ = padded_speech("silence")
    done = subprocess.run([sys.executable, "-m", "ser.listen", f"ckpt={run}", "source=-", "vad=silero"],
                          input=(np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes(),
                          capture_output=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    lines = done.stdout.decode().splitlines()
    first = [line for line in lines if float(line.split()[0]) <= start]
    assert first and all("no speech" in line for line in first)
    assert any("no speech" not in line for line in lines)


def test_noise_only_gives_no_emotion_and_the_overall_emotion_skips_silence(tmp_path):
    from ser.audio.speech_detectors import energy
    from ser.inference.recordings import predict_audio, predictions_markdown
    from ser.inference.speech_gate import NO_SPEECH, SpeechGate

    gate = SpeechGate(energy(RATE, 20, -35, 30), 0.5)
    sf.write(tmp_path / "quiet.wav", np.random.default_rng(0).standard_normal(3 * RATE) * 1e-3, RATE)
    sf.write(tmp_path / "talk.wav", np.concatenate([np.zeros(RATE, np.float32), tone(2.0)]), RATE)
    result = predict_audio(FixedPredictor(), tmp_path, gate)
    quiet, talk = result["recordings"]
    assert quiet["recording"] == {"probabilities": None, "emotion": NO_SPEECH, "speech_blocks": 0,
                                  "gate": "vad=energy, min_speech=0.5"}
    assert [b["emotion"] for b in talk["blocks"]] == [NO_SPEECH, "sad", "sad"]
    assert talk["recording"]["emotion"] == "sad" and talk["recording"]["speech_blocks"] == 2
    assert "no speech" in predictions_markdown(result)
    json.dumps(result)  # None, not NaN: valid JSON for the server and output=json


@real_speech
def test_room_noise_alone_is_no_speech_to_silero():
    from ser.audio.io import load_audio
    from ser.inference.recordings import predict_recording
    from ser.inference.speech_gate import NO_SPEECH, SpeechGate

    gate = SpeechGate(silero_or_skip(), 0.5)
    rec = predict_recording(FixedPredictor(), AMBIENCE, RATE, 1.0, None, gate)
    assert load_audio(AMBIENCE, RATE).size > 10 * RATE
    assert rec["recording"]["emotion"] == NO_SPEECH or rec["recording"]["speech_blocks"] <= 2


def test_the_server_stream_marks_silence_no_speech():
    from ser.audio.speech_detectors import energy
    from ser.inference.speech_gate import NO_SPEECH, SpeechGate
    from ser.serve.streaming import StreamSession

    session = StreamSession(FixedPredictor(), RATE, "f32le", None, 0.25,
                            SpeechGate(energy(RATE, 20, -35, 30), 0.5))
    audio = np.concatenate([np.zeros(2 * RATE, np.float32), tone(2.0)])
    items = session.feed(audio.astype("<f4").tobytes())
    assert items[0]["label"] == NO_SPEECH and items[0]["probabilities"] is None
    assert items[-1]["label"] == "sad" and items[-1]["speech"] > 0.5


# ------------------------------------------------------------------------------ data
def datamodule(overrides, tmp_path):
    from hydra.utils import instantiate

    cfg = compose([*overrides, f"paths.cache_dir={tmp_path / 'cache'}", "dataset=demo"])
    dm = instantiate(cfg.data, verbose=False)
    dm.setup()
    return dm


def test_vad_none_keeps_the_same_blocks_and_the_same_mixing(tmp_path):
    from ser.data.block_dataset import BlockNoiseDataset

    plain = datamodule([], tmp_path)
    again = datamodule(["vad=none", "data.min_speech=null", "noise.snr_reference=block"], tmp_path)
    assert plain.gate is None and plain.speech is None
    for a, b in [(plain.train_idx, again.train_idx), (plain.test_idx, again.test_idx)]:
        assert np.array_equal(a, b)
    train, val = plain.plan.fold(plain.fold)
    assert np.array_equal(plain.train_idx, train) and np.array_equal(plain.test_idx, plain.plan.test_for(0))
    ds = plain.train_dataset()
    b = plain.blocks
    before = BlockNoiseDataset(b.audio, b.labels, b.utterance, plain.train_idx, ds.snrs, plain.train_bank,
                               plain.seed, 1, False)
    after = BlockNoiseDataset(b.audio, b.labels, b.utterance, plain.train_idx, ds.snrs, plain.train_bank,
                              plain.seed, 1, False, speech=None)
    for key in (0, len(ds) // 2 + 3, len(ds) + 7):
        x, y = before[key], after[key]
        assert x["snr"] == y["snr"] and np.array_equal(x["clean"], y["clean"])
        assert np.array_equal(x["noise"], y["noise"])
    assert "No speech" not in plain.describe()


def test_min_speech_drops_the_padded_blocks_of_a_tiny_corpus(tmp_path):
    from ser.data.blocks import build_blocks
    from ser.data.manifest import read_manifest
    from ser.data.speech_blocks import BlockGate, block_speech
    from ser.audio.speech_detectors import energy

    rows = ["path,label,speaker"]
    for i in range(4):  # 1 s of speech-like tone, then 2 s of near-silence padding
        audio = np.concatenate([tone(1.0, i), np.random.default_rng(i).standard_normal(2 * RATE) * 1e-3])
        sf.write(tmp_path / f"u{i}.wav", audio.astype(np.float32), RATE)
        rows.append(f"u{i}.wav,{'anger' if i % 2 else 'sad'},s{i}")
    sf.write(tmp_path / "quiet.wav", np.zeros(2 * RATE, np.float32), RATE)  # no speech at all
    rows.append("quiet.wav,sad,s9")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    blocks = build_blocks(read_manifest(tmp_path / "manifest.csv"), progress=False)
    speech = block_speech(blocks, energy(RATE, 20, -35, 30), {"vad": "energy"}, progress=False)
    gate = BlockGate(blocks, speech, 0.5, "energy")
    assert len(blocks) == 14 and gate.keep.tolist() == [True, False, False] * 4 + [True, False]
    assert [blocks.table.utterances[u].id for u in gate.rescued] == ["quiet"]  # keeps its best block
    assert gate.dropped_per_class().tolist() == [4, 5]  # anger, sad
    record = gate.record()
    assert record["left_out_per_utterance"]["u0"] == 2 and record["kept_best_block"] == ["quiet"]
    assert "keep their most speech-filled one" in gate.describe()


def test_the_gate_through_the_data_module_and_the_run_files(tmp_path):
    from ser.data.split_file import split_csv

    gated = datamodule(["vad=energy", "data.min_speech=0.5"], tmp_path)
    plain = datamodule([], tmp_path)
    assert set(gated.test_idx) < set(plain.test_idx) and set(gated.train_idx) < set(plain.train_idx)
    assert (gated.speech.fraction[gated.test_idx] >= 0.5).all() or len(gated.gate.rescued)
    assert "No speech" in gated.describe() and "Speech gate (energy" in gated.describe()
    text = split_csv(gated.blocks, {"train": gated.train_idx, "validation": gated.val_idx,
                                    "test": gated.test_idx}, ungated=gated.ungated)
    header, *rows = text.splitlines()
    assert header.endswith(",blocks,no_speech_blocks")
    assert sum(int(r.split(",")[-1]) for r in rows) == int((~gated.gate.keep).sum())


def test_snr_against_active_speech_puts_half_silent_blocks_in_louder_noise(tmp_path):
    from ser.audio.mixing import mix_at_snr
    from ser.audio.speech_activity import active_level_offset_db, speech_mask
    from ser.audio.speech_detectors import energy

    block = np.concatenate([tone(0.5), np.zeros(RATE // 2, np.float32)])
    mask = speech_mask(energy(RATE, 20, -35, 30), block)
    offset = active_level_offset_db(block, mask)
    assert offset == pytest.approx(10 * np.log10(RATE / mask.sum()), abs=0.05) and 2.5 < offset < 3.5
    noise = np.random.default_rng(0).standard_normal(RATE).astype(np.float32)
    import torch

    mixed = mix_at_snr(torch.from_numpy(block[None]), torch.from_numpy(noise[None]), 10.0 - offset)[0].numpy()
    active = 10 * np.log10(np.mean(block[mask] ** 2) / np.mean((mixed - block) ** 2))
    assert active == pytest.approx(10.0, abs=1e-3)  # 10 dB against the speech, not the block
    gated = datamodule(["vad=energy", "noise.snr_reference=active"], tmp_path)
    plain = datamodule([], tmp_path)
    ds, ds0 = gated.test_datasets()[1], plain.test_datasets()[1]  # 0 dB
    for i in range(5):
        block_id = ds[i]["block"]
        want = -active_level_offset_db(gated.blocks.as_float(block_id), gated.speech.mask(block_id))
        assert ds[i]["snr"] == pytest.approx(want) and ds0[i]["snr"] == 0.0
    with pytest.raises(SerError, match="needs a speech-activity detector"):
        datamodule(["noise.snr_reference=active"], tmp_path)


def test_a_damaged_speech_cache_is_rebuilt_with_one_warning(tmp_path):
    from ser.audio.speech_detectors import energy
    from ser.cache_files import CacheWarning
    from ser.data.speech_blocks import block_speech

    dm = datamodule([], tmp_path)
    det = energy(RATE, 20, -35, 30)
    first = block_speech(dm.blocks, det, {"vad": "energy"}, tmp_path / "c", progress=False)
    (cache,) = (tmp_path / "c").glob("speech-*.npz")
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = block_speech(dm.blocks, det, {"vad": "energy"}, tmp_path / "c", progress=False)
    assert [w.category for w in caught] == [CacheWarning] and "rebuilding" in str(caught[0].message)
    assert np.array_equal(first.fraction, again.fraction)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # whole again: read without a word
        block_speech(dm.blocks, det, {"vad": "energy"}, tmp_path / "c", progress=False)


def test_the_bench_part_prints_each_detectors_cost(tmp_path):
    from ser.bench.vad import vad_figures

    blocks = np.stack([tone(1.0, i) for i in range(3)])
    lines = vad_figures(None, None, RATE, 2, blocks, names=("energy",))
    assert lines[1].startswith("(j) energy:") and "ms per 1-s block" in lines[1] and "per 0.25-s hop" in lines[1]
    assert len(lines) == 5 and "padding called speech" in lines[2]


def test_timeline_files_and_the_server_show_no_speech(tmp_path):
    from ser.audio.speech_detectors import energy
    from ser.inference.speech_gate import NO_SPEECH, SpeechGate
    from ser.inference.timeline import write_timelines

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from ser.serve.app import create_app

    gate = SpeechGate(energy(RATE, 20, -35, 30), 0.5)
    wav = tmp_path / "talk.wav"
    sf.write(wav, np.concatenate([np.zeros(2 * RATE, np.float32), tone(2.0)]), RATE)
    (written,) = write_timelines(FixedPredictor(), [wav], tmp_path / "out", hop_s=0.5, gate=gate)
    rows = (tmp_path / "out" / "talk.timeline.csv").read_text().splitlines()
    assert rows[0].endswith(",label,speech") and rows[1].split(",")[-2] == NO_SPEECH
    assert rows[-1].split(",")[-2] == "sad" and (tmp_path / "out" / "talk.timeline.png").stat().st_size > 0
    client = TestClient(create_app(FixedPredictor(), gate=gate))
    assert client.get("/model").json()["speech_gate"] == "vad=energy, min_speech=0.5"
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(2 * RATE, np.float32), RATE)
    with open(quiet, "rb") as f:
        body = client.post("/predict", files={"file": ("quiet.wav", f, "audio/wav")}).json()
    rec = body["recordings"][0]
    assert rec["recording"]["emotion"] == NO_SPEECH and set(rec["timeline"]["labels"]) == {NO_SPEECH}
    assert rec["timeline"]["no_speech"] == [{"start_s": 0.0, "end_s": 2.0}]
