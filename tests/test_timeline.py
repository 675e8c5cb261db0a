"""Timelines of recordings: sliding windows, smoothing, clear stretches, and what
``evaluate.py ckpt=RUN audio=...`` writes (CSV + PNG per recording) for speech-like, silent,
short and 44.1 kHz stereo recordings, on one tiny trained run."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from ser.errors import SerError
from tests.conftest import FAST, REPO, run_script


def trained_run(tmp_path_factory) -> Path:
    """One tiny trained run per test session (test_listen.py reuses it): ~20 s on 2 cores."""
    run = tmp_path_factory.getbasetemp() / "tiny_listen_run"
    if not (run / "checkpoints" / "last.ckpt").is_file():
        result = run_script("train.py", [*FAST, "logger=none", f"hydra.run.dir={run}"],
                            cwd=tmp_path_factory.getbasetemp())
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return run


def voice(rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """A gliding harmonic tone with a syllable-like envelope, float32 in [-0.3, 0.3]."""
    t = np.arange(int(round(rate * seconds))) / rate
    phase = 2 * np.pi * np.cumsum(140 + 40 * np.sin(2 * np.pi * 1.5 * t)) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    x += 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.15 * x).astype(np.float32)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return trained_run(tmp_path_factory)


@pytest.fixture(scope="module")
def predictor(run):
    from ser.inference.predictor import load_predictor

    return load_predictor(run)


def valid_png(path: Path, min_size=(600, 300)) -> None:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size >= min_size
        assert np.asarray(image.convert("L")).std() > 5  # not a blank canvas


def evaluate_in_process(overrides: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of evaluate.py's code path without a new interpreter."""
    from hydra import compose, initialize_config_dir

    from ser.cli import report_errors
    from ser.evaluation.evaluate_command import evaluate

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=overrides)
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            report_errors(evaluate)(cfg)
        except SystemExit as stopped:
            code = stopped.code
    return code, out.getvalue(), " ".join(err.getvalue().split())


def test_windows_counts_times_and_hop():
    from ser.inference.windows import sliding_windows

    audio = np.arange(52800, dtype=np.float32)  # 3.3 s at 16 kHz
    w = sliding_windows(audio, 16000, 1.0, 0.25)
    assert len(w) == 1 + (52800 - 16000) // 4000 == 10 and w.frames.shape == (10, 16000)
    assert np.allclose(w.starts_s, np.arange(10) * 0.25) and np.allclose(w.centres_s, w.starts_s + 0.5)
    assert np.array_equal(w.frames[3], audio[12000:28000]) and w.note is None
    half = sliding_windows(audio, 16000, 1.0, 0.5)
    assert len(half) == 5 and np.allclose(half.starts_s, [0, 0.5, 1, 1.5, 2])
    two = sliding_windows(audio, 16000, 2.0, 0.25)
    assert len(two) == 6 and two.frames.shape[1] == 32000
    exact = sliding_windows(audio[:16000], 16000, 1.0)
    assert len(exact) == 1 and exact.note is None


def test_a_recording_shorter_than_a_window_is_one_padded_window():
    from ser.inference.windows import sliding_windows

    w = sliding_windows(np.ones(6400, np.float32), 16000, 1.0, 0.25)
    assert w.frames.shape == (1, 16000) and w.starts_s.tolist() == [0.0]
    assert w.frames[0, :6400].sum() == 6400 and not w.frames[0, 6400:].any()
    assert "0.40 s is shorter than one 1-s window" in w.note and "zero-padded" in w.note
    with pytest.raises(SerError, match="must both be positive"):
        sliding_windows(np.ones(100, np.float32), 16000, 1.0, 0.0)


def test_smoothing_averages_neighbours_and_keeps_rows_summing_to_one():
    from ser.inference.windows import smooth_probabilities

    probs = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, 1]], float)
    assert np.array_equal(smooth_probabilities(probs, 0), probs)
    assert np.array_equal(smooth_probabilities(probs, 1), probs)
    s3 = smooth_probabilities(probs, 3)
    assert np.allclose(s3[:, 0], [1, 2 / 3, 1 / 3, 0, 0]) and np.allclose(s3.sum(1), 1)
    s4 = smooth_probabilities(probs, 4)  # even k: one more window after than before
    assert np.allclose(s4[0, 0], 2 / 3) and np.allclose(s4.sum(1), 1)
    assert np.allclose(smooth_probabilities(np.full((6, 4), 0.25), 5), 0.25)
    with pytest.raises(SerError, match="smooth=-2"):
        smooth_probabilities(probs, -2)


def test_clear_stretches_are_runs_of_one_confident_leader():
    from ser.inference.stretches import clear_stretches

    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.45, 0.55], [0.4, 0.6], [0.1, 0.9]])
    starts = np.arange(5) * 0.25
    [(lo, hi, c, mean)] = [s for s in clear_stretches(probs, starts, 1.0, 0.25) if s[2] == 0]
    assert (lo, hi, c) == (0.0, 0.875, 0) and mean == pytest.approx(0.85)
    second = clear_stretches(probs, starts, 1.0, 0.25)[1]
    assert second[:3] == (0.875, 2.0, 1) and second[3] == pytest.approx((0.55 + 0.6 + 0.9) / 3)
    assert clear_stretches(probs[:1], starts[:1], 1.0, 0.25)[0][:2] == (0.0, 1.0)  # one window
    assert clear_stretches(np.full((3, 2), 0.5), starts[:3], 1.0, 0.25, threshold=0.6) == []


def test_evaluate_writes_a_timeline_per_recording(run, tmp_path):
    from ser.evaluation.checkpoint_eval import default_output_dir
    from ser.models.checkpoints import find_checkpoint

    folder = tmp_path / "recordings"
    folder.mkdir()
    sf.write(folder / "a_voice44k.wav", np.stack([voice(44100, 3.3), 0.6 * voice(44100, 3.3)], 1), 44100)
    sf.write(folder / "b_silence.wav", np.zeros(16000 * 2, np.float32), 16000)
    sf.write(folder / "c_short.wav", voice(16000, 0.5), 16000)
    (folder / "d_broken.wav").write_bytes(b"RIFF....WAVEfmt not really audio")
    code, out, err = evaluate_in_process([f"ckpt={run}", f"audio={folder}", "smooth=3", "vad=none"])
    assert code == 2 and "2 of 4 recordings gave no prediction" in err  # the short and broken ones
    assert out.count("Resampled 1 recording(s) to the model's 16000 Hz: a_voice44k.wav (44100 Hz)") == 1
    where = default_output_dir(find_checkpoint(run), {})
    assert f"Wrote 3 timeline(s) (<name>.timeline.csv, <name>.timeline.png) to {where}" in out
    assert "c_short.wav: 0.50 s is shorter than one 1-s window" in out
    assert "**Whole recording**" in out  # the table stays
    classes = ["anger", "happy", "sad", "neutral"]
    for name, rows in [("a_voice44k", 10), ("b_silence", 5), ("c_short", 1)]:
        with open(where / f"{name}.timeline.csv") as f:
            table = list(csv.reader(f))
        assert table[0] == ["time_s", *classes, "label"] and len(table) == 1 + rows
        probs = np.array([[float(v) for v in r[1:-1]] for r in table[1:]])
        assert np.isfinite(probs).all() and np.allclose(probs.sum(1), 1, atol=1e-4)
        assert [r[-1] for r in table[1:]] == [classes[i] for i in probs.argmax(1)]
        assert float(table[1][0]) == 0.5
        valid_png(where / f"{name}.timeline.png")
    assert not (where / "d_broken.timeline.csv").exists()


def test_out_dir_hop_and_json_reach_the_timelines(run, tmp_path):
    wav = tmp_path / "voice.wav"
    sf.write(wav, voice(16000, 2.2), 16000)
    code, out, err = evaluate_in_process([f"ckpt={run}", f"audio={wav}", "hop=0.5", "window=0.8", "vad=none",
                                          f"out_dir={tmp_path / 'out'}", "output=json"])
    assert code == 0, err
    data = json.loads(out)
    [line] = data["timelines"]
    assert line["windows"] == 1 + (2.2 - 0.8) // 0.5 == 3 and Path(line["png"]).parent == tmp_path / "out"
    times = [float(r.split(",")[0]) for r in Path(line["csv"]).read_text().splitlines()[1:]]
    assert times == [0.4, 0.9, 1.4]
    assert "timelines" in json.loads((tmp_path / "out" / "predictions.json").read_text())
    short = tmp_path / "short.wav"  # no block for the table, still a one-window timeline
    sf.write(short, voice(16000, 0.6), 16000)
    code, out, err = evaluate_in_process([f"ckpt={run}", f"audio={short}", f"out_dir={tmp_path / 'o2'}", "vad=none"])
    assert code == 2 and "holds 0.60 s of audio, shorter than one 1-s block" in err
    assert "Wrote 1 timeline(s)" in out and (tmp_path / "o2" / "short.timeline.png").is_file()
