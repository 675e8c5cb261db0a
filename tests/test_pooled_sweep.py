"""evaluate.py sweep= pools the folds' test predictions: a constructed sweep with a known answer
(two groups, two folds of disjoint speakers) gives the pooled UA, its speaker interval and the
paired comparison, in summary.json, summary.md and a figure; folds that test the same blocks are
not pooled, and say why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from ser.models.metrics import block_metrics
from ser.reporting.predictions import Predictions, write_predictions
from ser.reporting.sweep_report import summarise_sweep
from ser.reporting.tables import METRICS

CLASSES = ["anger", "happy", "sad", "neutral"]
IGNORE = ["fold", "run_name"]


def _metrics(labels: np.ndarray, predicted: np.ndarray) -> dict:
    import torch

    m = block_metrics(torch.from_numpy(predicted), torch.from_numpy(labels), len(CLASSES))
    return {**m, "utterance_accuracy": m["accuracy"], "n_utterances": len(labels)}


def write_run(folder: Path, model: str, fold: int, speakers: list[str], labels: np.ndarray,
              predicted: np.ndarray, test_sets=("clean", "10dB")) -> None:
    """A finished run folder as train.py leaves it: config.yaml, run.json, metrics.json and
    predictions.csv (one block per utterance; probabilities one-hot on ``predicted``)."""
    folder.mkdir(parents=True)
    n = len(labels)
    parts, metrics = [], {}
    for test_set in test_sets:
        probs = np.full((n, len(CLASSES)), 0.1 / 3)
        probs[np.arange(n), predicted] = 0.9
        parts.append(Predictions(CLASSES, np.full(n, test_set, dtype=object), np.full(n, fold),
                                 np.array([f"u{fold}-{i}" for i in range(n)], dtype=object),
                                 np.zeros(n, dtype=np.int64), np.array(speakers, dtype=object),
                                 labels, probs))
        metrics[test_set] = _metrics(labels, predicted)
    write_predictions(folder / "predictions.csv", Predictions.concat(parts))
    kind = {"kind": "sklearn"} if model == "svm" else {}
    (folder / "config.yaml").write_text(yaml.safe_dump({"model": {"name": model, **kind}, "fold": fold,
                                                        "snr": "all", "dataset": {"name": "toy"}}))
    (folder / "run.json").write_text(json.dumps({"dataset": "toy", "fold": fold, "regime": "augmented",
                                                 "model": model, "split": "loso", "seed": 0,
                                                 "split_plan": "p1", "classes": CLASSES}))
    (folder / "metrics.json").write_text(json.dumps(metrics))


def toy_sweep(root: Path, rng: np.random.Generator) -> dict:
    """Two folds of 10 speakers x 12 utterances; the network is right 80 % of the time, the
    baseline 50 %; returns the pooled labels and predictions per model."""
    pooled = {"net": ([], []), "svm": ([], [])}
    for fold in (0, 1):
        speakers = [f"s{fold}{k}" for k in range(10) for _ in range(12)]
        labels = rng.integers(0, 4, len(speakers))
        for model, right in (("net", 0.8), ("svm", 0.5)):
            wrong = (labels + rng.integers(1, 4, len(labels))) % 4
            predicted = np.where(rng.random(len(labels)) < right, labels, wrong)
            write_run(root / model / f"fold-{fold}", model, fold, speakers, labels, predicted)
            pooled[model][0].append(labels)
            pooled[model][1].append(predicted)
    return {m: (np.concatenate(a), np.concatenate(b)) for m, (a, b) in pooled.items()}


def test_pooled_ua_intervals_and_paired_differences_of_a_constructed_sweep(tmp_path):
    truth = toy_sweep(tmp_path / "sweep", np.random.default_rng(0))
    summary = summarise_sweep(tmp_path / "sweep", IGNORE, statistics={"n_boot": 400, "n_perm": 400})
    pooled = summary["pooled"]
    labels = {g["label"]: g for g in summary["groups"]}
    net = next(k for k in labels if "net" in k)
    svm = next(k for k in labels if "svm" in k)
    for label, model in ((net, "net"), (svm, "svm")):
        y, p = truth[model]
        recalls = [np.mean(p[y == c] == c) for c in range(4)]
        clean = pooled["groups"][label]["block"]["clean"]["ua"]
        assert clean["value"] == pytest.approx(np.mean(recalls), abs=1e-9)  # pooled, not mean of folds
        assert clean["low"] < clean["value"] < clean["high"]
        assert pooled["groups"][label]["block"]["clean"]["n_speakers"] == 20
    # the network is far ahead: the difference's interval is above zero, p small
    diff = [c for c in pooled["comparisons"] if c["test_set"] == "clean" and c["level"] == "block"]
    assert len(diff) == 1 and diff[0]["a"] == net and diff[0]["b"] == svm
    assert diff[0]["low"] > 0 and diff[0]["p_value"] < 0.01
    assert (net, svm) in [tuple(p) for p in pooled["headline_pairs"]]
    out = Path(summary["out_dir"])
    assert (out / "paired_differences.png").is_file()
    text = (out / "summary.md").read_text()
    assert "Pooled UA (block level" in text and "Paired differences" in text and "Noisy mean" in text
    saved = json.loads((out / "summary.json").read_text())
    assert saved["pooled"]["groups"][net]["utterance"]["clean"]["ua"]["value"] == pytest.approx(
        pooled["groups"][net]["utterance"]["clean"]["ua"]["value"])
    rob = pooled["groups"][net]["block"]["robustness"]
    assert rob["loss_from_clean"] == pytest.approx(0.0)  # the same predictions at clean and 10 dB
    # the mean ± std tables get the robustness row too
    assert set(labels[net]["metrics"]["noisy_mean"]) == set(METRICS)


def test_folds_that_test_the_same_blocks_are_not_pooled_and_say_why(tmp_path):
    rng = np.random.default_rng(1)
    speakers = [f"s{k}" for k in range(6) for _ in range(5)]
    labels = rng.integers(0, 4, len(speakers))
    for fold in (0, 1):  # the same utterance ids in both folds, as split=paper's one test set
        write_run(tmp_path / "sweep" / f"fold-{fold}", "net", fold, speakers, labels, labels)
        folder = tmp_path / "sweep" / f"fold-{fold}"
        pred = (folder / "predictions.csv").read_text().replace(f"u{fold}-", "u-")
        (folder / "predictions.csv").write_text(pred)
    summary = summarise_sweep(tmp_path / "sweep", IGNORE, statistics={"n_boot": 50, "n_perm": 50})
    assert not summary["pooled"]["groups"]
    (why,) = summary["pooled"]["not_pooled"].values()
    assert "more than once" in why
    assert "No pooled figures for" in (Path(summary["out_dir"]) / "summary.md").read_text()


def write_retest(run: Path, name: str, changes: dict, keep: np.ndarray) -> None:
    """``evaluate.py ckpt=RUN <changes>`` as it leaves a re-test: evaluation/<name>/ with
    evaluation.json and predictions.csv, here on the run's own blocks where ``keep`` is true
    (as data.min_speech keeps a subset)."""
    from ser.reporting.predictions import read_predictions

    pred = read_predictions(run / "predictions.csv")
    rows = np.concatenate([np.nonzero(pred.test_set == t)[0][keep] for t in np.unique(pred.test_set)])
    part = pred.select(np.isin(np.arange(len(pred)), rows))
    folder = run / "evaluation" / name
    folder.mkdir(parents=True)
    write_predictions(folder / "predictions.csv", part)
    metrics = {t: _metrics(part.label[part.test_set == t], part.predicted[part.test_set == t])
               for t in np.unique(part.test_set)}
    (folder / "evaluation.json").write_text(json.dumps({"metrics": metrics, "changes": changes}))


def test_retests_group_pool_and_pair_like_runs_when_asked(tmp_path):
    """`evaluate.py sweep=DIR retests=true`: each fold's re-test on a subset of its blocks forms
    one group (labelled by its changes) whose pooled UA is that of the kept blocks, paired with
    another group re-tested on the same blocks; without retests=true nothing changes."""
    truth = toy_sweep(tmp_path / "sweep", np.random.default_rng(1))
    # fold 1 from a copied corpus: another plan digest, the same partitions (split.csv), which
    # a re-test is judged by through its run's folder
    ids = {fold: [f"u{fold}-{i}" for i in range(120)] for fold in (0, 1)}
    for model in ("net", "svm"):
        for fold in (0, 1):
            run = tmp_path / "sweep" / model / f"fold-{fold}"
            rows = ["id,label,blocks,part"] + [f"{u},x,1,{'test' if f == fold else 'train'}"
                                               for f in (0, 1) for u in ids[f]]
            (run / "split.csv").write_text("\n".join(rows) + "\n")
            record = json.loads((run / "run.json").read_text())
            (run / "run.json").write_text(json.dumps({**record, "split_plan": f"p{fold}"}))
    keep = np.arange(120) % 3 != 0  # the same blocks of both models' folds
    changes = {"vad": "silero", "data.min_speech": 0.5}
    for model in ("net", "svm"):
        for fold in (0, 1):
            write_retest(tmp_path / "sweep" / model / f"fold-{fold}", f"best_{model}{fold}", changes, keep)
    plain = summarise_sweep(tmp_path / "sweep", IGNORE, out_dir=tmp_path / "plain",
                            statistics={"n_boot": 50, "n_perm": 50})
    assert len(plain["groups"]) == 2
    summary = summarise_sweep(tmp_path / "sweep", IGNORE, statistics={"n_boot": 50, "n_perm": 50},
                              retests=True)
    labels = [g["label"] for g in summary["groups"]]
    assert len(labels) == 4, labels
    gated = [label for label in labels if "retest.data.min_speech=0.5" in label and "net" in label]
    assert len(gated) == 1
    # where only re-tests tell groups apart, the runs' own tests read as what they kept
    from ser.reporting.sweep_summary import distinguishing_labels

    assert distinguishing_labels([{"model.name": '"net"'},
                                  {"model.name": '"net"', "retest.calibration": '"none"'}]) == [
        "retest.calibration=as trained", "retest.calibration=none"]
    y, p = truth["net"]
    kept = np.concatenate([keep, keep])
    expected = np.mean([np.mean(p[kept][y[kept] == c] == c) for c in range(4)])
    got = summary["pooled"]["groups"][gated[0]]["block"]["clean"]["ua"]["value"]
    assert got == pytest.approx(expected)
    pairs = {(c["a"], c["b"]) for c in summary["pooled"]["comparisons"]}
    svm_gated = next(label for label in labels if "retest.data.min_speech=0.5" in label and "svm" in label)
    assert (gated[0], svm_gated) in pairs
    # the re-test and the run's own tests hold different blocks: not paired, and said why
    assert any(gated[0] in (n["a"], n["b"]) for n in summary["pooled"]["not_compared"])


def test_another_corpus_tested_by_every_fold_pools_beside_the_own_folds(tmp_path):
    """``data.test_corpora``: every fold tests the whole other corpus, so its utterances repeat
    over the folds; the own corpus still pools, and the other corpus pools each fold's test of
    it (its UA is that of all folds' predictions together, its speakers resampled)."""
    rng = np.random.default_rng(2)
    other = [f"o{k}" for k in range(5) for _ in range(6)]
    other_labels = rng.integers(0, 4, len(other))
    right, wrong = [], []
    for fold in (0, 1):
        speakers = [f"s{fold}{k}" for k in range(5) for _ in range(6)]
        labels = rng.integers(0, 4, len(speakers))
        folder = tmp_path / "sweep" / f"fold-{fold}"
        write_run(folder, "net", fold, speakers, labels, labels)
        # the same corpus named by a relative path in one fold and an absolute one in the other
        config = yaml.safe_load((folder / "config.yaml").read_text())
        manifest = "../other/manifest.csv" if fold == 0 else str(tmp_path / "other/manifest.csv")
        config["data"] = {"test_corpora": [{"name": "other", "manifest": manifest, "label_map": {"angry": "anger"}}]}
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        predicted = np.where(rng.random(len(other)) < 0.6, other_labels, (other_labels + 1) % 4)
        right.append(other_labels)
        wrong.append(predicted)
        probs = np.full((len(other), 4), 0.1 / 3)
        probs[np.arange(len(other)), predicted] = 0.9
        theirs = Predictions(CLASSES, np.full(len(other), "other/clean", dtype=object), np.full(len(other), fold),
                             np.array([f"x{i}" for i in range(len(other))], dtype=object),
                             np.zeros(len(other), dtype=np.int64), np.array(other, dtype=object),
                             other_labels, probs)
        from ser.reporting.predictions import read_predictions
        own = read_predictions(folder / "predictions.csv")
        write_predictions(folder / "predictions.csv", Predictions.concat([own, theirs]))
    summary = summarise_sweep(tmp_path / "sweep", [*IGNORE, "*.manifest"], statistics={"n_boot": 50, "n_perm": 50})
    assert not summary["pooled"]["not_pooled"]
    (group,) = summary["pooled"]["groups"].values()   # one group: the corpus's path form is ignored
    assert group["block"]["clean"]["ua"]["value"] == pytest.approx(1.0)
    y, p = np.concatenate(right), np.concatenate(wrong)
    expected = np.mean([np.mean(p[y == c] == c) for c in range(4)])
    assert group["block"]["other/clean"]["ua"]["value"] == pytest.approx(expected, abs=1e-9)
    assert group["block"]["other/clean"]["n_items"] == 2 * len(other)
    assert group["block"]["other/clean"]["n_speakers"] == 5


def test_a_group_screened_on_fewer_folds_pairs_on_the_folds_it_shares(tmp_path):
    rng = np.random.default_rng(2)
    truth = toy_sweep(tmp_path / "sweep", rng)
    # a lever run on fold 0 only, right 70 % of the time: compared with the net on fold 0's speakers
    speakers = [f"s0{k}" for k in range(10) for _ in range(12)]
    labels = truth["net"][0][:len(speakers)]
    lever = np.where(rng.random(len(labels)) < 0.7, labels, (labels + 1) % 4)
    write_run(tmp_path / "sweep" / "lever" / "fold-0", "lever", 0, speakers, labels, lever)
    summary = summarise_sweep(tmp_path / "sweep", IGNORE, statistics={"n_boot": 200, "n_perm": 200})
    rows = [c for c in summary["pooled"]["comparisons"] if c["test_set"] == "clean" and c["level"] == "block"]
    net_svm = [c for c in rows if "lever" not in c["a"] + c["b"]]
    with_lever = [c for c in rows if "lever" in c["a"] + c["b"]]
    assert len(net_svm) == 1 and "folds" not in net_svm[0]        # both groups ran folds 0 and 1
    assert len(with_lever) == 2 and all(c["folds"] == [0] for c in with_lever)
    net_vs_lever = next(c for c in with_lever if "net" in c["a"] + c["b"])
    assert net_vs_lever["n_speakers"] == 10                       # fold 0's speakers only
    y, p = labels, truth["net"][1][:len(speakers)]
    ua = lambda pred: np.mean([np.mean(pred[y == c] == c) for c in range(4)])  # noqa: E731
    sign = 1 if "net" in net_vs_lever["a"] else -1
    assert net_vs_lever["difference"] == pytest.approx(sign * (ua(p) - ua(lever)), abs=1e-9)
    assert "(folds 0 only)" in (Path(summary["out_dir"]) / "summary.md").read_text()


def test_groups_tested_with_different_noise_files_pair_only_on_clean_speech(tmp_path):
    """run.json's test_noise names the noise files of a run's noisy test sets: a network drawn
    per fold (noise.per_fold) against a baseline of one draw holds the same blocks mixed with
    other noise, so the report pairs their clean test sets only and says why."""
    toy_sweep(tmp_path / "sweep", np.random.default_rng(0))
    for fold in (0, 1):
        for model, noise in (("net", f"draw-of-fold-{fold}"), ("svm", "one-draw")):
            record_file = tmp_path / "sweep" / model / f"fold-{fold}" / "run.json"
            record = json.loads(record_file.read_text())
            record_file.write_text(json.dumps({**record, "test_noise": noise}))
    summary = summarise_sweep(tmp_path / "sweep", IGNORE, statistics={"n_boot": 200, "n_perm": 200})
    pooled = summary["pooled"]
    assert {c["test_set"] for c in pooled["comparisons"]} == {"clean"}
    unpaired = [c for c in pooled["not_compared"] if c["level"] == "noisy test sets"]
    assert len(unpaired) == 1 and "fold(s) 0, 1" in unpaired[0]["why"]
    assert "Only the clean test sets pair" in (Path(summary["out_dir"]) / "summary.md").read_text()
    # the same noise on every fold (as for runs from before test_noise): every test set pairs
    for fold in (0, 1):
        record_file = tmp_path / "sweep" / "svm" / f"fold-{fold}" / "run.json"
        record = json.loads(record_file.read_text())
        record_file.write_text(json.dumps({**record, "test_noise": f"draw-of-fold-{fold}"}))
    again = summarise_sweep(tmp_path / "sweep", IGNORE, statistics={"n_boot": 200, "n_perm": 200})
    assert {c["test_set"] for c in again["pooled"]["comparisons"]} == {"clean", "10dB"}
    assert not [c for c in again["pooled"]["not_compared"] if c["level"] == "noisy test sets"]


def test_a_noise_banks_digest_names_its_files():
    from ser.audio.noise import NoiseBank

    one = NoiseBank([np.zeros(10, np.float32)] * 2, ["a.wav", "b.wav"], 16000)
    same = NoiseBank([np.ones(10, np.float32)] * 2, ["b.wav", "a.wav"], 16000)
    other = NoiseBank([np.zeros(10, np.float32)] * 2, ["a.wav", "c.wav"], 16000)
    assert one.digest() == same.digest() != other.digest() and len(one.digest()) == 12
