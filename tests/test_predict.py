"""``python -m ser.predict``: what ``evaluate.py ckpt= audio=`` gives, without Lightning or Hydra.

One tiny trained run (shared with test_timeline.py and test_listen.py) and its ONNX export; the
light checkpoint loader must give the LightningModule's own probabilities, and a fresh process
that predicts from either model must never have imported pytorch_lightning or hydra (nor the
other slow imports of :data:`HEAVY`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import REPO
from tests.test_timeline import run, voice  # noqa: F401  (module fixture: one tiny run)

# What a fresh ser.predict must not import: Lightning and Hydra, and what made a checkpoint's
# cold start slow (timm with torchvision and torch._dynamo, librosa with scipy.signal and numba).
HEAVY = ("pytorch_lightning", "lightning", "hydra", "timm", "torchvision", "librosa", "scipy.signal",
         "numba", "onnx")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    """A folder with a 2.3-s speech-like recording at 44.1 kHz stereo and a 0.6-s one."""
    folder = tmp_path_factory.mktemp("recordings")
    x = voice(44100, 2.3)
    sf.write(folder / "talk.wav", np.stack([x, 0.5 * x], axis=1), 44100)
    sf.write(folder / "short.wav", voice(16000, 0.6, seed=1), 16000)
    return folder


@pytest.fixture(scope="module")
def onnx_model(run, tmp_path_factory) -> Path:  # noqa: F811
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from ser.export import export_onnx

    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_onnx(run, out)
    return out


def python(code_or_args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, *code_or_args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_light_checkpoint_loader_gives_the_lightning_modules_numbers(run):  # noqa: F811
    from ser.evaluation.runs import find_checkpoint, load_classifier
    from ser.inference.predictor import load_predictor

    blocks = np.stack([voice(16000, 1.0, seed=s) for s in range(3)])
    model, _ = load_classifier(find_checkpoint(run))
    light = load_predictor(run)
    assert type(light).__module__ == "ser.inference.checkpoint_predictor"
    np.testing.assert_allclose(light.predict_blocks(blocks), model.predict_blocks(blocks).numpy(),
                               atol=1e-6)


@pytest.mark.parametrize("kind", ["checkpoint", "onnx"])
def test_a_fresh_process_imports_neither_lightning_nor_hydra(kind, run, onnx_model, recordings,  # noqa: F811
                                                               tmp_path):
    model = run if kind == "checkpoint" else onnx_model
    code = ("import sys, contextlib, io\n"
            "from ser.commands.predict import predict\n"
            "import ser.listen, ser.inference.recordings\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    predict(['ckpt={model}', 'audio={recordings / 'talk.wav'}', 'output=json'])\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    done = python(["-c", code], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_json_matches_evaluate_and_holds_the_timeline(onnx_model, recordings, tmp_path):
    from ser.inference.recordings import predict_audio
    from ser.inference.onnx_predictor import OnnxPredictor

    done = python(["-m", "ser.predict", f"ckpt={onnx_model}", f"audio={recordings}", "output=json",
                   f"out_dir={tmp_path / 'out'}", "vad=none"], tmp_path)
    got = json.loads(done.stdout)
    # the 0.6-s file gives no block unless the run pads short remainders: then exit 2, as evaluate.py
    assert done.returncode == (2 if got["errors"] else 0), done.stderr[-3000:]
    want = predict_audio(OnnxPredictor(onnx_model), recordings)
    assert [r["path"] for r in got["recordings"]] == [r["path"] for r in want["recordings"]]
    talk = next(r for r in got["recordings"] if r["path"].endswith("talk.wav"))
    ref = next(r for r in want["recordings"] if r["path"].endswith("talk.wav"))
    assert talk["recording"]["emotion"] == ref["recording"]["emotion"]
    assert len(talk["blocks"]) == 2 and talk["source"] == "44100 Hz, 2 channels"
    line = talk["timeline"]
    assert line["time_s"] == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert set(line["probabilities"]) == set(got["classes"]) and len(line["labels"]) == 6
    sums = np.sum([line["probabilities"][c] for c in got["classes"]], axis=0)
    assert np.allclose(sums, 1, atol=1e-3)
    assert (tmp_path / "out" / "talk.timeline.png").is_file() and len(got["timelines"]) == 2
    assert (tmp_path / "out" / "predictions.json").is_file()


def test_table_output_and_one_paragraph_errors(onnx_model, recordings, tmp_path):
    done = python(["-m", "ser.predict", f"ckpt={onnx_model}", f"audio={recordings / 'talk.wav'}",
                   "vad=none"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| **Whole recording** |" in done.stdout and "Timelines:" in done.stdout
    for argv, expected in [([f"ckpt={onnx_model}", f"audio={tmp_path / 'none.wav'}"], "Audio file not found"),
                           ([f"ckpt={tmp_path / 'none.onnx'}", f"audio={recordings}"], "Model not found"),
                           ([f"ckpt={onnx_model}", f"audio={recordings}", "output=xml"], "output='xml'"),
                           (["speed=2"], "Unknown argument 'speed=2'")]:
        done = python(["-m", "ser.predict", *argv], tmp_path)
        err = " ".join(done.stderr.split())
        assert done.returncode == 2 and "Traceback" not in err and expected in err, err


def test_a_folder_prints_every_good_recording_and_a_line_per_bad_one(onnx_model, recordings,  # noqa: F811
                                                                    tmp_path):
    """A WAV whose header says 0 Hz and a text file named .wav among good recordings: the good
    ones are printed, each bad one gets one line on stderr, the exit status is 2."""
    import shutil
    import struct

    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(recordings / "talk.wav", folder / "a_talk.wav")
    sf.write(folder / "b_again.wav", voice(16000, 1.5, seed=3), 16000)
    data = b"\0\1" * 16000
    (folder / "c_rate0.wav").write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
                                         + struct.pack("<IHHIIHH", 16, 1, 1, 0, 0, 2, 16) + b"data"
                                         + struct.pack("<I", len(data)) + data)
    (folder / "d_notes.wav").write_text("not a recording\n" * 10)
    done = python(["-m", "ser.predict", f"ckpt={onnx_model}", f"audio={folder}", "vad=none"], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stdout.count("| **Whole recording** |") == 2
    assert "a_talk.wav" in done.stdout and "b_again.wav" in done.stdout
    lines = done.stderr.splitlines()
    bad = [line for line in lines if line.startswith(str(folder))]
    assert [Path(line.split(":")[0]).name for line in bad] == ["c_rate0.wav", "d_notes.wav"]
    assert "0 Hz" in bad[0] and "not a recording in a format ser reads" in bad[1]
    flat = " ".join(done.stderr.split())
    assert "error: 2 of 4 recordings gave no prediction" in flat and "the other 2 are printed" in flat
    as_json = python(["-m", "ser.predict", f"ckpt={onnx_model}", f"audio={folder}", "vad=none",
                      "output=json"], tmp_path)
    got = json.loads(as_json.stdout)
    assert as_json.returncode == 2 and len(got["recordings"]) == 2 and len(got["errors"]) == 2
    one = python(["-m", "ser.predict", f"ckpt={onnx_model}", f"audio={folder / 'c_rate0.wav'}"], tmp_path)
    err = " ".join(one.stderr.split())
    assert one.returncode == 2 and err.count("error:") == 1 and "0 Hz" in err and "Traceback" not in err
