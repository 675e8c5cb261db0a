"""evaluate.py on a tiny demo sweep (clean-trained and augmented, two folds), as a user runs it:
sweep tables against the runs' own metrics.json, the figures, a checkpoint reproducing its run's
test metrics, emotions of a 44.1 kHz stereo recording, and the error cases."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from ser.reporting.predictions import read_predictions
from tests.conftest import FAST, REPO, run_script

METRICS = ["accuracy", "ua", "weighted_precision", "weighted_recall", "weighted_f1", "macro_f1",
           "utterance_accuracy"]


def ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def valid_png(path: Path, min_size=(300, 200)) -> None:
    assert path.is_file(), path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size >= min_size
        assert np.asarray(image.convert("L")).std() > 5  # not a blank canvas


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evaluate")
    ok(run_script("train.py", ["-m", "snr=clean,all", "fold=0,1", *FAST, "logger=none",
                               f"hydra.sweep.dir={root / 'sweep'}"], cwd=root))
    return root / "sweep"


@pytest.fixture(scope="module")
def runs(sweep) -> list[Path]:
    found = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert len(found) == 4
    return found


def evaluate_config(overrides: list[str]):
    """The config evaluate.py would see for ``overrides``."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="evaluate", overrides=overrides)


def evaluate_in_process(overrides: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of evaluate.py's own code path, without a new interpreter
    (starting one costs seconds); command-line overrides of the training config need the
    real script (see the checkpoint test)."""
    from ser.cli import report_errors
    from ser.evaluation.evaluate_command import evaluate

    cfg = evaluate_config(overrides)
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            report_errors(evaluate)(cfg)
        except SystemExit as stopped:
            code = stopped.code
    # the message is wrapped at 100 columns, also at hyphens: join the lines back
    return code, out.getvalue(), " ".join(err.getvalue().split()).replace("- ", "-")


@pytest.fixture(scope="module")
def summary(sweep):
    code, out, err = evaluate_in_process([f"sweep={sweep}"])
    assert code == 0, err
    return out, json.loads((sweep / "summary" / "summary.json").read_text())


@pytest.fixture(scope="module")
def wav_44k_stereo(tmp_path_factory) -> Path:
    """2.6 s of a gliding harmonic voice-like tone at 44.1 kHz, two channels of unequal level."""
    rate, seconds = 44100, 2.6
    t = np.arange(int(rate * seconds)) / rate
    f0 = 140 + 40 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    voice += 0.01 * np.random.default_rng(0).standard_normal(t.size)
    path = tmp_path_factory.mktemp("audio") / "voice_44k_stereo.wav"
    sf.write(path, 0.2 * np.stack([voice, 0.6 * voice], axis=1), rate)
    return path


def test_sweep_means_and_stds_match_the_runs_own_metrics(summary, runs):
    stdout, data = summary
    by_snr: dict[str, list[dict]] = {}
    for run in runs:
        snr = json.loads((run / "run.json").read_text())["snr"]
        by_snr.setdefault(snr, []).append(json.loads((run / "metrics.json").read_text()))
    groups = {g["label"]: g for g in data["groups"]}
    assert set(groups) == {"snr=clean", "snr=all"}
    assert groups["snr=clean"]["regime"] == "clean" and groups["snr=all"]["regime"] == "augmented"
    for snr, metrics in by_snr.items():
        group = groups[f"snr={snr}"]
        assert group["folds"] == [0, 1] and len(group["runs"]) == 2
        for test_set in ["clean", "0dB", "10dB", "15dB", "20dB", "40dB"]:
            for key in METRICS:
                values = [m[test_set][key] for m in metrics]
                got = group["metrics"][test_set][key]
                assert got["mean"] == pytest.approx(statistics.fmean(values), abs=1e-12)
                assert got["std"] == pytest.approx(statistics.stdev(values), abs=1e-12)
                assert got["n"] == 2
    # the printed tables carry the same numbers, in percent
    clean_f1 = groups["snr=clean"]["metrics"]["clean"]["weighted_f1"]
    assert f"{100 * clean_f1['mean']:.2f} ± {100 * clean_f1['std']:.2f}" in stdout
    assert "| snr=all (noise-augmented) | 0, 1 |" in stdout
    csv_lines = (Path(data["out_dir"]) / "summary.csv").read_text().strip().splitlines()
    # 7 test sets and the noisy mean (the robustness row) per group
    assert len(csv_lines) == 1 + 2 * 8 and "weighted_f1_mean" in csv_lines[0]
    assert set(data["pooled"]["groups"]) | set(data["pooled"]["not_pooled"]) == set(groups)


def test_regime_figure_with_and_without_the_papers_numbers(summary, sweep, tmp_path):
    from ser.reporting.sweep_report import summarise_sweep

    _, data = summary
    [figure] = data["figures"]
    assert not figure["paper_reference"]  # the paper reports no numbers for the demo corpus
    assert figure["groups"] == ["snr=clean", "snr=all"]
    valid_png(Path(figure["path"]), min_size=(800, 500))
    # the same runs labelled as AHSN get the paper's Figure 4 numbers as a third bar group
    copy = tmp_path / "ahsn"
    shutil.copytree(sweep, copy, ignore=shutil.ignore_patterns("*.ckpt", "summary"))
    for run_file in copy.glob("*/run.json"):
        run_file.write_text(run_file.read_text().replace('"dataset": "demo"', '"dataset": "ahsn"'))
    from omegaconf import OmegaConf

    paper = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "paper_reference.yaml"))["paper_figures"]
    ignore = list(OmegaConf.load(REPO / "conf" / "evaluate.yaml").sweep_ignore)
    ahsn = summarise_sweep(copy, ignore=ignore, paper_figures=paper)
    [figure] = ahsn["figures"]
    assert figure["paper_reference"] and figure["dataset"] == "ahsn"
    valid_png(Path(figure["path"]), min_size=(800, 500))


def test_runs_that_differ_only_in_how_they_computed_share_a_group(sweep, tmp_path):
    """A run from an older version (no model.compile key) or another machine (precision
    resolved differently) still falls in its regime's group."""
    import yaml
    from omegaconf import OmegaConf

    from ser.reporting.sweep_report import summarise_sweep

    copy = tmp_path / "mixed"
    shutil.copytree(sweep, copy, ignore=shutil.ignore_patterns("*.ckpt", "summary"))
    first = sorted(copy.glob("*/config.yaml"))[0]
    config = yaml.safe_load(first.read_text())
    config["model"].pop("compile")
    config["trainer"]["precision"] = "32-true"
    config["features"]["fused"] = False
    first.write_text(yaml.safe_dump(config))
    ignore = list(OmegaConf.load(REPO / "conf" / "evaluate.yaml").sweep_ignore)
    result = summarise_sweep(copy, ignore=ignore, paper_figures={})
    assert sorted(g["label"] for g in result["groups"]) == ["snr=all", "snr=clean"]


def test_a_rewritten_summary_keeps_only_its_own_figures(sweep, tmp_path):
    from ser.reporting.sweep_report import summarise_sweep

    out = tmp_path / "summary"
    out.mkdir()
    (out / "weighted_f1_by_regime_model.pretrained=false.png").write_bytes(b"an older grouping")
    (out / "notes.png").write_bytes(b"not ours")
    result = summarise_sweep(sweep, ignore=["fold", "data.fold", "run_name", "paths.*", "logger.*"],
                             out_dir=out, paper_figures={})
    [figure] = result["figures"]
    assert sorted(p.name for p in out.glob("*.png")) == sorted(["notes.png", Path(figure["path"]).name])


def test_a_checkpoint_reproduces_its_runs_test_metrics(runs, tmp_path):
    def predicted_classes(run):  # the run whose predictions vary most tests the most
        metrics = json.loads((run / "metrics.json").read_text())
        return sum(np.count_nonzero(np.asarray(m["confusion_matrix"]).sum(0)) for m in metrics.values())

    run = max(runs, key=predicted_classes)
    out = tmp_path / "eval"
    # overrides that name what the run used already go through the real command line and
    # must change nothing: a group swap to the same corpus, a dotted key of the trainer
    result = ok(run_script("evaluate.py", [f"ckpt={run}", f"out_dir={out}", "dataset=demo",
                                           "trainer.accelerator=cpu"], cwd=tmp_path))
    expected = json.loads((run / "metrics.json").read_text())
    evaluation = json.loads((out / "evaluation.json").read_text())
    got = evaluation["metrics"]
    assert list(got) == list(expected) == ["clean", "0dB", "5dB", "10dB", "15dB", "20dB", "40dB"]
    # the same noise files as the run's own test (what the sweep report pairs by)
    assert evaluation["test_noise"] == json.loads((run / "run.json").read_text())["test_noise"]
    for test_set, m in expected.items():
        assert got[test_set]["confusion_matrix"] == m["confusion_matrix"]
        for key in METRICS:
            assert got[test_set][key] == pytest.approx(m[key], abs=1e-6), (test_set, key)
    assert "| Clean |" in result.stdout and "| 40 dB |" in result.stdout
    assert "Acc (UAcc)" in result.stdout and "Wavgf1" in result.stdout and "UttAcc" in result.stdout
    assert (out / "table.md").read_text().count("\n| ") == 1 + 7  # header + test sets
    pred = read_predictions(out / "predictions.csv")  # the same predictions the run wrote
    assert np.allclose(pred.probs, read_predictions(run / "predictions.csv").probs, atol=1e-5)
    assert (out / "table.csv").read_text().splitlines()[0].startswith("test_set,accuracy")
    for test_set in expected:
        valid_png(out / f"confusion_{test_set}.png")


def test_job_folders_paste_as_they_are_and_older_sweeps_folders_too(sweep, runs, wav_44k_stereo,
                                                                   tmp_path):
    assert all("=" not in run.name and "," not in run.name for run in runs)
    named = {tuple(kv for kv in run.name.split("_") if kv.startswith(("fold-", "snr-"))): run
             for run in runs}
    assert set(named) == {("fold-0", "snr-clean"), ("fold-1", "snr-clean"), ("fold-0", "snr-all"),
                          ("fold-1", "snr-all")}
    # an older version named the job folders by `key=value,...`: those paths are taken unquoted
    old = tmp_path / "old_sweep" / "fold=0,model.pretrained=False,snr=clean"
    shutil.copytree(named["fold-0", "snr-clean"], old)
    heard = ok(run_script("evaluate.py", [f"ckpt={old}", f"audio={wav_44k_stereo}", "vad=none"], cwd=tmp_path))
    assert "**Whole recording**" in heard.stdout and (old / "evaluation").is_dir()
    summed = ok(run_script("evaluate.py", [f"sweep={old}", "paper_reference=false"], cwd=tmp_path))
    assert "1 finished run(s)" in summed.stdout and (old / "summary" / "summary.json").is_file()


def test_emotions_of_a_44k_stereo_recording_as_table_and_json(runs, wav_44k_stereo, tmp_path):
    ckpt = f"ckpt={runs[0] / 'checkpoints' / 'last.ckpt'}"
    code, table, err = evaluate_in_process([ckpt, f"audio={wav_44k_stereo}", "vad=none"])
    assert code == 0, err
    assert "44100 Hz, 2 channels" in table and "2 block(s) of 1 s" in table
    assert "| 1 | 0–1 |" in table and "| 2 | 1–2 |" in table and "**Whole recording**" in table
    assert "the last 0.60 s" in table
    # a folder: the good file is predicted, the bad ones are reported, and the exit is non-zero
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copy(wav_44k_stereo, folder / "a_voice.wav")
    (folder / "b_broken.wav").write_bytes(b"RIFF....WAVEfmt not really audio")
    sf.write(folder / "c_short.wav", np.zeros((20000, 2), np.float32), 44100)
    code, stdout, err = evaluate_in_process([ckpt, f"audio={folder}", "output=json", "vad=none"])
    assert code == 2 and "2 of 3 recordings gave no prediction" in err
    data = json.loads(stdout)  # stdout holds the JSON document alone
    [rec] = data["recordings"]
    assert rec["path"].endswith("a_voice.wav") and data["classes"] == ["anger", "happy", "sad", "neutral"]
    blocks = np.array([[b["probabilities"][c] for c in data["classes"]] for b in rec["blocks"]])
    assert blocks.shape == (2, 4) and np.allclose(blocks.sum(1), 1.0, atol=1e-5)
    whole = np.array([rec["recording"]["probabilities"][c] for c in data["classes"]])
    assert np.allclose(whole, blocks.mean(0), atol=1e-9)
    assert rec["recording"]["emotion"] == data["classes"][int(whole.argmax())]
    assert [e["path"].rsplit("/", 1)[1] for e in data["errors"]] == ["b_broken.wav", "c_short.wav"]


def test_a_checkpoint_from_another_class_set_is_refused(runs, tmp_path):
    from tests.fake_corpora import make_fake_manifest

    from ser.cli import report_errors
    from ser.evaluation.checkpoint_eval import evaluate_checkpoint

    fake = make_fake_manifest(tmp_path / "corpus", labels=("calm", "angry", "happy", "sad"), per_class=2)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stopped:
        # what `evaluate.py ckpt=RUN dataset=manifest dataset.manifest=CSV` asks for
        report_errors(evaluate_checkpoint)(runs[0], {"dataset": "manifest"},
                                           {"dataset.manifest": str(fake.csv_path)}, tmp_path / "out",
                                           verbose=False)
    message = " ".join(err.getvalue().split()).replace("- ", "-")
    assert stopped.value.code == 2 and "Traceback" not in message
    assert "trained on classes ['anger', 'happy', 'sad', 'neutral']" in message and "calm" in message


def test_recordings_that_give_no_block_and_sweeps_without_runs_are_refused(runs, tmp_path):
    ckpt = f"ckpt={runs[0] / 'checkpoints' / 'last.ckpt'}"
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros((30000, 2), np.float32), 48000)
    code, _, err = evaluate_in_process([ckpt, f"audio={short}"])
    assert code == 2 and "holds 0.62 s of audio, shorter than one 1-s block" in err
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"\x00\x01 not a wave file")
    code, _, err = evaluate_in_process([ckpt, f"audio={broken}"])
    assert code == 2 and "Cannot decode audio file" in err and "broken.wav" in err
    unfinished = tmp_path / "sweep" / "snr=clean,fold=0" / "checkpoints"
    unfinished.mkdir(parents=True)
    (unfinished / "last.ckpt").write_bytes(b"")
    code, _, err = evaluate_in_process([f"sweep={tmp_path / 'sweep'}"])
    assert code == 2 and "No finished run" in err and "unfinished" in err and "resume=true" in err
    code, _, err = evaluate_in_process([])
    assert code == 2 and "Nothing to evaluate" in err


def test_a_network_re_tested_with_windows_keeps_its_block_metrics(runs, tmp_path):
    args = ["trainer.limit_test_batches=1.0", "data.test_snrs=[10]"]
    ok(run_script("evaluate.py", [f"ckpt={runs[0]}", *args, f"out_dir={tmp_path / 'grid'}"], cwd=tmp_path))
    ok(run_script("evaluate.py", [f"ckpt={runs[0]}", *args, "data.test_hop=0.5",
                                  f"out_dir={tmp_path / 'hop'}"], cwd=tmp_path))
    grid = json.loads((tmp_path / "grid" / "evaluation.json").read_text())["metrics"]
    hop = json.loads((tmp_path / "hop" / "evaluation.json").read_text())["metrics"]
    assert list(hop) == ["clean", "10dB"]
    for test_set, m in hop.items():
        assert m["confusion_matrix"] == grid[test_set]["confusion_matrix"]
        assert m["n_windows"] > 0 and m["n_utterances"] == grid[test_set]["n_utterances"]
    pred = read_predictions(tmp_path / "hop" / "predictions.csv")
    assert np.allclose(pred.grid().probs, read_predictions(tmp_path / "grid" / "predictions.csv").probs,
                       atol=1e-5)
