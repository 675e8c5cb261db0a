"""What is said against how it is said: a corpus's `text` column reaches the utterances, the
test predictions and the sweep report, which scores apart the items whose text is spoken in more
than one class; validation logs its UA on them; data.train_texts=shared trains on them alone."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from ser.data.manifest import read_manifest
from ser.data.texts import shared_texts, training_texts
from ser.data.utterances import UtteranceTable
from ser.errors import SerError
from ser.models.module import EmotionClassifier
from ser.reporting.predictions import Predictions, read_predictions, write_predictions
from ser.reporting.shared_text import shared_text_mask, shared_text_ua, shared_text_words
from ser.reporting.sweep_report import summarise_sweep
from tests.conftest import compose
from tests.fake_corpora import make_fake_manifest
from tests.test_pooled_sweep import CLASSES, IGNORE, _metrics

LABELS = ("anger", "happy", "sad", "neutral")


def manifest_with_texts(root: Path, per_class: int = 4) -> Path:
    """The fake manifest with a text column: every class's first two recordings say "common",
    the others a sentence of their class alone ("<label>-own")."""
    fake = make_fake_manifest(root, labels=LABELS, per_class=per_class)
    with open(fake.csv_path, newline="") as handle:
        rows = list(csv.reader(handle))
    seen: dict[str, int] = {}
    for row in rows[1:]:
        seen[row[1]] = seen.get(row[1], 0) + 1
        row.append("common" if seen[row[1]] <= 2 else f"{row[1]}-own")
    rows[0].append("text")
    with open(fake.csv_path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return fake.csv_path


def test_shared_texts_are_those_spoken_in_two_classes_or_more():
    assert shared_texts(["a", "b", "a", "a", "b"], ["x", "x", "y", "", ""]) == {"x"}
    assert shared_texts(["a", "a"], ["x", "x"]) == set()


def test_the_text_column_reaches_the_utterances_and_their_saved_table(tmp_path):
    table = read_manifest(manifest_with_texts(tmp_path / "corpus"))
    texts = [u.text for u in table.utterances]
    assert texts.count("common") == 8 and texts.count("anger-own") == 2
    table.to_csv(tmp_path / "table.csv")
    again = UtteranceTable.from_csv(tmp_path / "table.csv", name="t")
    assert [u.text for u in again.utterances] == texts
    # a table saved before texts existed still reads, with no texts
    old = (tmp_path / "table.csv").read_text().splitlines()
    (tmp_path / "old.csv").write_text("\n".join(line.rsplit(",", 1)[0] for line in old) + "\n")
    assert {u.text for u in UtteranceTable.from_csv(tmp_path / "old.csv", name="t").utterances} == {""}


def test_train_texts_shared_keeps_the_training_part_to_shared_texts(tmp_path):
    csv_path = manifest_with_texts(tmp_path / "corpus")
    overrides = ["dataset=manifest", f"dataset.manifest={csv_path}", "split=paper", "data.batch_size=4"]
    full = instantiate(compose(overrides).data, verbose=False)
    full.setup("fit")
    shared = full.shared_text_blocks()
    assert shared is not None and shared.any() and not shared.all()
    kept = instantiate(compose([*overrides, "+data.train_texts=shared"]).data, verbose=False)
    kept.setup("fit")
    assert shared[kept.train_idx].all() and set(kept.train_idx) == set(full.train_idx[shared[full.train_idx]])
    # validation and test keep every text
    assert np.array_equal(kept.val_idx, full.val_idx) and np.array_equal(kept.test_idx, full.test_idx)
    with pytest.raises(SerError, match="use all"):
        training_texts(full.train_idx, full.blocks, "some")
    # the run's files: predictions.csv names each block's text, metrics.json its shared-text UA
    from ser.reporting.predictions import test_set_predictions
    from ser.training.run_files import write_run_files

    idx = full.test_idx
    labels = full.blocks.labels[idx]
    pred = test_set_predictions(full, "clean", np.eye(4)[labels], full.blocks.utterance[idx], idx, labels)
    metrics = {"clean": {"ua": 1.0}}
    write_run_files(tmp_path / "run", full, "{}", {}, metrics, predictions=pred)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["clean"]["ua_shared_text"] == pytest.approx(1.0) and metrics == saved
    assert read_predictions(tmp_path / "run" / "predictions.csv").has_text


def test_train_texts_shared_refuses_a_corpus_without_texts(tmp_path):
    fake = make_fake_manifest(tmp_path / "corpus", per_class=2)
    dm = instantiate(compose(["dataset=manifest", f"dataset.manifest={fake.csv_path}", "split=paper",
                              "+data.train_texts=shared"]).data, verbose=False)
    with pytest.raises(SerError, match="names none .*text"):
        dm.setup("fit")


def test_validation_logs_ua_on_the_shared_text_blocks(monkeypatch):
    cfg = compose(["model.pretrained=false"])
    module = EmotionClassifier(list(CLASSES), cfg.model, cfg.optim, cfg.features)
    logged: dict[str, float] = {}
    monkeypatch.setattr(module, "log_dict", lambda values, **kw: logged.update(values))
    monkeypatch.setattr(module, "log", lambda name, value, **kw: logged.update({name: value}))
    module.shared_text = np.array([True, True, True, True, False, False, False, False])
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    preds = torch.tensor([0, 1, 0, 0, 0, 1, 2, 3])   # right on 2 of 4 shared blocks, on all others
    module._outputs[0] = [(preds, labels, torch.arange(8), torch.full((8,), float("inf")))]
    module.on_validation_epoch_end()
    assert logged["val/ua"] == pytest.approx(0.75) and logged["val/ua_shared_text"] == pytest.approx(0.5)
    # run.json's selected checkpoint reads the first validation that reached its score
    module.validation_history = [{"step": 99, "ua": 0.5}, {"step": 199, "ua": 0.75, "ua_shared_text": 0.5},
                                 {"step": 299, "ua": 0.75, "ua_shared_text": 0.7}]
    assert module.validation_at(torch.tensor(0.75)) == {"step": 199, "ua": 0.75, "ua_shared_text": 0.5}
    assert module.validation_at(None) is None
    # a run that selects by the shared-text score finds its checkpoint by that score, and its
    # validation UA (what the validation-test gap reads) is that checkpoint's UA, not the score
    assert module.validation_at(torch.tensor(0.7), "val/ua_shared_text") == {
        "step": 299, "ua": 0.75, "ua_shared_text": 0.7}


def test_the_sweep_report_reads_the_validation_ua_whatever_chose_the_checkpoint():
    from ser.reporting.sweep_summary import validation_score

    chosen_by_texts = {"monitor": "val/ua_shared_text", "score": 0.7, "ua": 0.75}
    assert validation_score({"training": {"selected": chosen_by_texts}}) == pytest.approx(0.75)
    # runs written before the selected checkpoint kept its UA: the score, where it is the UA
    assert validation_score({"training": {"selected": {"monitor": "val/ua", "score": 0.8}}}) == pytest.approx(0.8)
    assert validation_score({"training": {"selected": {"monitor": "val/ua_shared_text", "score": 0.7}}}) is None
    assert validation_score({"validation": {"ua": 0.6}}) == pytest.approx(0.6)   # a baseline

def _run(folder: Path, model: str, fold: int, labels: np.ndarray, predicted: np.ndarray,
         texts: list[str]) -> None:
    folder.mkdir(parents=True)
    n = len(labels)
    probs = np.full((n, len(CLASSES)), 0.1 / 3)
    probs[np.arange(n), predicted] = 0.9
    speakers = np.array([f"s{fold}{i % 6}" for i in range(n)], dtype=object)
    pred = Predictions(CLASSES, np.full(n, "clean", dtype=object), np.full(n, fold),
                       np.array([f"u{fold}-{i}" for i in range(n)], dtype=object), np.zeros(n, dtype=np.int64),
                       speakers, labels, probs, text=np.array(texts, dtype=object))
    write_predictions(folder / "predictions.csv", pred)
    (folder / "config.yaml").write_text(f"model: {{name: {model}}}\nfold: {fold}\nsnr: all\n")
    selected = {"monitor": "val/ua", "score": 0.7, "ua_shared_text": 0.6 + 0.1 * fold}
    (folder / "run.json").write_text(json.dumps({"dataset": "toy", "fold": fold, "regime": "augmented",
                                                 "model": model, "split": "loso", "seed": 0,
                                                 "split_plan": "p1", "classes": CLASSES,
                                                 "training": {"selected": selected}}))
    (folder / "metrics.json").write_text(json.dumps({"clean": _metrics(labels, predicted)}))


def test_sweep_report_scores_shared_texts_apart(tmp_path):
    """A network that reads the words (always right on a class's own sentences, right half the
    time on the sentences every class says) against one that hears the voice (right 70 % on
    both): the shared-text level shows what the block level hides."""
    rng = np.random.default_rng(0)
    truth = {}
    for fold in (0, 1):
        labels = np.repeat(np.arange(4), 30)
        texts = ["common" if i % 2 else f"{CLASSES[y]}-own" for i, y in enumerate(labels)]
        shared = np.array([t == "common" for t in texts])
        wrong = (labels + 1) % 4
        words = np.where(shared & (rng.random(len(labels)) < 0.5), wrong, labels)
        voice = np.where(rng.random(len(labels)) < 0.7, labels, wrong)
        for model, predicted in (("words", words), ("voice", voice)):
            _run(tmp_path / "sweep" / model / f"fold-{fold}", model, fold, labels, predicted, texts)
            truth.setdefault(model, []).append((labels[shared], predicted[shared]))
    back = read_predictions(tmp_path / "sweep" / "words" / "fold-0" / "predictions.csv")
    assert back.has_text and shared_text_mask(back).sum() == 60
    summary = summarise_sweep(tmp_path / "sweep", IGNORE, statistics={"n_boot": 200, "n_perm": 200})
    groups = summary["pooled"]["groups"]
    for label, g in groups.items():
        model = "words" if "words" in label else "voice"
        y = np.concatenate([t[0] for t in truth[model]])
        p = np.concatenate([t[1] for t in truth[model]])
        expected = np.mean([np.mean(p[y == c] == c) for c in range(4)])
        assert g["shared_text"]["clean"]["ua"]["value"] == pytest.approx(expected)
        assert g["shared_text"]["clean"]["n_items"] == 120
    words = next(g for label, g in groups.items() if "words" in label)
    assert words["block"]["clean"]["ua"]["value"] > words["shared_text"]["clean"]["ua"]["value"] + 0.15
    assert any(c["level"] == "shared_text" for c in summary["pooled"]["comparisons"])
    text = (Path(summary["out_dir"]) / "summary.md").read_text()
    assert "only texts spoken in more than one class" in text
    assert "Validation, shared texts only" in text and "65.0 (60.0 / 70.0)" in text


def test_predictions_without_texts_have_no_shared_text_level(tmp_path):
    from tests.test_pooled_sweep import toy_sweep

    toy_sweep(tmp_path / "sweep", np.random.default_rng(0))
    summary = summarise_sweep(tmp_path / "sweep", IGNORE, statistics={"n_boot": 50, "n_perm": 50})
    assert all("shared_text" not in g for g in summary["pooled"]["groups"].values())
    assert "text" not in (tmp_path / "sweep" / "net" / "fold-0" / "predictions.csv").read_text().splitlines()[0]


def test_a_run_reports_its_ua_on_the_shared_texts():
    n = 8
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    predicted = np.array([0, 1, 0, 0, 0, 1, 2, 3])   # shared blocks (first four): 2 of 4 classes right
    probs = np.eye(4)[predicted]
    texts = np.array(["common"] * 4 + ["a-own", "b-own", "c-own", "d-own"], dtype=object)
    pred = Predictions(CLASSES, np.full(n, "clean", dtype=object), np.zeros(n, dtype=np.int64),
                       np.array([f"u{i}" for i in range(n)], dtype=object), np.zeros(n, dtype=np.int64),
                       np.array(["s"] * n, dtype=object), labels, probs, text=texts)
    assert shared_text_ua(pred) == {"clean": pytest.approx(0.5)}
    assert shared_text_ua(Predictions(pred.classes, pred.test_set, pred.fold, pred.utterance, pred.block,
                                      pred.speaker, pred.label, pred.probs)) == {}
    said = shared_text_words({"clean": {"ua": 0.75, "ua_shared_text": 0.5}, "0dB": {"ua": 0.5}})
    assert said.startswith("UA on the texts spoken in more than one class") and "Clean 50.0" in said
    assert shared_text_words({"clean": {"ua": 0.75}}) is None
