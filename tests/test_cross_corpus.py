"""Other corpora as test sets (data.test_corpora): relabelled into the run's classes, tested at
every test SNR, written to metrics.json, predictions.csv and split.csv; bad label maps refused."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from ser.data.cross_corpus import load_test_corpus
from ser.errors import SerError
from ser.reporting.predictions import read_predictions
from tests.conftest import FAST, run_script
from tests.fake_corpora import make_fake_manifest

DEMO = ["anger", "happy", "sad", "neutral"]


def test_labels_are_mapped_into_the_run_classes_and_others_left_out(tmp_path):
    fake = make_fake_manifest(tmp_path / "other", labels=("Angry", "happy", "Calm"), per_class=2)
    corpus = load_test_corpus({"name": "other", "manifest": str(fake.csv_path),
                               "label_map": {"ANGRY": "anger"}}, 0, DEMO, 16000, 1.0)
    assert corpus.name == "other" and corpus.blocks.classes == DEMO
    labels = {corpus.blocks.table.utterances[u].label for u in corpus.blocks.utterance}
    assert labels == {"anger", "happy"} and corpus.dropped == {"calm": 2}
    ids = {DEMO[i] for i in corpus.blocks.labels}
    assert ids == {"anger", "happy"}  # class ids of the run, not of the other corpus
    assert "left out: 2 calm" in corpus.describe()


def test_a_label_map_onto_a_class_the_model_lacks_is_one_clear_error(tmp_path):
    fake = make_fake_manifest(tmp_path / "other", labels=("Angry", "happy"), per_class=1)
    with pytest.raises(SerError, match=r"maps onto \['rage'\].*its classes are"):
        load_test_corpus({"manifest": str(fake.csv_path), "label_map": {"angry": "rage"}},
                         0, DEMO, 16000, 1.0)
    with pytest.raises(SerError, match="needs a manifest"):
        load_test_corpus({"name": "x"}, 0, DEMO, 16000, 1.0)


@pytest.mark.slow
def test_a_run_tests_another_corpus_at_every_test_snr(tmp_path):
    fake = make_fake_manifest(tmp_path / "other", labels=("Angry", "happy", "Sad", "calm"),
                              per_class=3)
    run_dir = tmp_path / "run"
    corpora = f"+data.test_corpora=[{{name:other,manifest:'{fake.csv_path}',label_map:{{angry:anger}}}}]"
    result = run_script("train.py", [*FAST, "logger=none", "data.test_snrs=[0,20]", corpora,
                                     "trainer.limit_test_batches=1.0", f"hydra.run.dir={run_dir}"],
                        cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Test corpus other: 9 utterances" in result.stdout and "left out: 3 calm" in result.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == ["clean", "0dB", "20dB", "other/clean", "other/0dB", "other/20dB"]
    pred = read_predictions(run_dir / "predictions.csv")
    other = pred.select(pred.test_set == "other/0dB")
    assert len(other) == metrics["other/0dB"]["n_blocks"] > 0
    assert set(other.speaker) == {"spk0", "spk1"} and {DEMO[i] for i in other.label} == {"anger", "happy", "sad"}
    # UA over the three classes the other corpus has
    recalls = [np.mean(other.predicted[other.label == c] == c) for c in np.unique(other.label)]
    assert metrics["other/0dB"]["ua"] == pytest.approx(np.mean(recalls), abs=1e-6)
    with open(run_dir / "split.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["part"] == "test:other"]
    assert len(rows) == 9 and sum(int(r["blocks"]) for r in rows) == metrics["other/clean"]["n_blocks"]
    # a finished run's checkpoint tested on another corpus afterwards: the same figures
    out = tmp_path / "eval"
    evaluated = run_script("evaluate.py", [f"ckpt={run_dir}", f"out_dir={out}", corpora], cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stdout[-2000:] + evaluated.stderr[-3000:]
    got = json.loads((out / "evaluation.json").read_text())["metrics"]
    assert got["other/0dB"]["confusion_matrix"] == metrics["other/0dB"]["confusion_matrix"]
    assert "| other/0 dB |" in evaluated.stdout


def test_a_sweep_job_testing_another_corpus_gets_a_flat_folder_name():
    """Job folders are named by their overrides; a test corpus's manifest path would nest the
    folder in its slashes (``.../+data.test_corpora-[{name:urdu,manifest:/data/...``)."""
    import yaml
    from hydra._internal.config_loader_impl import get_overrides_dirname
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from tests.conftest import REPO

    naming = yaml.safe_load((REPO / "conf" / "hydra" / "default.yaml").read_text())["job"]["config"]["override_dirname"]
    overrides = OverridesParser.create().parse_overrides(
        ["fold=1", "snr=all", "dataset.manifest=/data/ased/manifest.csv",
         "+data.test_corpora=[{name: urdu, manifest: /data/urdu/manifest.csv, label_map: {angry: anger}}]",
         "+data.train_corpora=[{name: other, manifest: /data/other/manifest.csv}]"])
    name = get_overrides_dirname(overrides, naming["exclude_keys"], naming["item_sep"], naming["kv_sep"])
    assert name == "fold-1_snr-all"


def test_another_corpus_test_set_is_named_and_read_back_one_way():
    from ser.reporting.sweep_summary import is_noisy_test_set
    from ser.reporting.tables import test_set_label
    from ser.set_names import corpus_set_name, is_own_set, other_corpus

    name = corpus_set_name("urdu", "0dB")
    assert (name, other_corpus(name), other_corpus("0dB")) == ("urdu/0dB", "urdu", None)
    assert [is_own_set(n) for n in ("clean", "15dB", name)] == [True, True, False]
    assert [is_noisy_test_set(n) for n in ("clean", "15dB", name)] == [False, True, False]
    assert [test_set_label(n) for n in ("urdu/clean", name, "15dB")] == ["urdu/Clean", "urdu/0 dB", "15 dB"]


def test_another_corpus_joins_every_folds_training_part_and_nothing_else(tmp_path):
    """data.train_corpora: its blocks are added to the training part of each fold (speakers named
    <corpus>:<speaker>), validation and test stay the run's corpus, and a corpus may not be both
    trained and tested on."""
    from hydra.utils import instantiate

    from tests.conftest import compose

    fake = make_fake_manifest(tmp_path / "other", labels=("Angry", "happy", "calm"), per_class=2)
    entry = f"{{name:other,manifest:'{fake.csv_path}',label_map:{{angry:anger}}}}"
    plain = instantiate(compose(["data.batch_size=8"]).data, verbose=False)
    plain.setup("fit")
    both = instantiate(compose(["data.batch_size=8", f"+data.train_corpora=[{entry}]"]).data, verbose=False)
    both.setup("fit")
    own = len(plain.blocks)
    added = np.arange(own, len(both.blocks))
    assert len(added) > 0 and np.array_equal(both.train_idx, np.concatenate([plain.train_idx, added]))
    assert np.array_equal(both.val_idx, plain.val_idx) and np.array_equal(both.test_idx, plain.test_idx)
    assert np.array_equal(both.blocks.audio[:own], plain.blocks.audio)
    assert {DEMO[i] for i in both.blocks.labels[added]} == {"anger", "happy"}   # calm left out
    speakers = both.utterance_speakers()
    assert {speakers[u] for u in both.blocks.utterance[added]} == {"other:spk0", "other:spk1"}
    assert len(both.train_dataset()) == 4 * len(both.train_idx)  # clean + 15/20/40 dB, as the rest
    assert "Also trained on other:" in both.describe()
    clash = compose(["data.batch_size=8", f"+data.train_corpora=[{entry}]", f"+data.test_corpora=[{entry}]"])
    with pytest.raises(SerError, match="cannot test generalisation"):
        instantiate(clash.data, verbose=False).setup("fit")
