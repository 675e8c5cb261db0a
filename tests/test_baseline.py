"""model=mfcc_svm, the conventional baseline, on the demo corpus: the same run files and test
sets as a deep run, a sweep that reports both side by side in its tables and its figure, gain-
invariant features, and the same metrics from the same seed."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import FAST, compose, run_script
from tests.test_evaluate import evaluate_in_process, ok, valid_png

# The deep runs' tiny overrides, less the one a baseline has no key for: the rest (trainer.*,
# data.batch_size) reach the baseline exactly as a user passes them to both.
BASELINE = ["model=mfcc_svm", "logger=none", *[o for o in FAST if not o.startswith("model.")]]


def train_baseline_into(run_dir: Path, overrides: list[str]) -> dict:
    """train.py model=mfcc_svm in this process (no interpreter start), writing into ``run_dir``."""
    from ser.baseline import run as baseline_run

    cfg = compose([*BASELINE, *overrides])
    with mock.patch.object(baseline_run, "run_directory", lambda cfg: (run_dir, None)):
        return baseline_run.train_baseline(cfg)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A sweep folder holding deep and baseline runs, each clean-trained and augmented (fold 0)."""
    root = tmp_path_factory.mktemp("baseline")
    # job folders numbered, not named by the overrides: FAST's names can outgrow a file name
    ok(run_script("train.py", ["-m", "snr=clean,all", *FAST, "logger=none",
                               f"hydra.sweep.dir={root / 'sweep'}",
                               "hydra.sweep.subdir=deep_${hydra.job.num}"], cwd=root))
    for snr in ("clean", "all"):
        train_baseline_into(root / "sweep" / f"model=mfcc_svm,snr={snr}", [f"snr={snr}"])
    return root / "sweep"


def read(run: Path, name: str) -> dict:
    return json.loads((run / name).read_text())


def deep_run(sweep: Path, snr: str) -> Path:
    """The sweep's network run trained with ``snr`` (its folder is named by all the overrides)."""
    [run] = [p.parent for p in sweep.glob("*/run.json")
             if read(p.parent, "run.json")["model"] != "mfcc_svm" and read(p.parent, "run.json")["snr"] == snr]
    return run


def test_a_baseline_run_writes_the_deep_runs_files_and_keys(sweep):
    from ser.models.metrics import score_test_set
    from ser.reporting.predictions import read_predictions

    deep, baseline = deep_run(sweep, "all"), sweep / "model=mfcc_svm,snr=all"
    deep_metrics, metrics = read(deep, "metrics.json"), read(baseline, "metrics.json")
    record, deep_record = read(baseline, "run.json"), read(deep, "run.json")
    assert list(metrics) == list(deep_metrics) == record["test_sets"] == deep_record["test_sets"]
    assert record["test_sets"][0] == "clean" and len(record["test_sets"]) > 1
    expected_keys = set(score_test_set(torch.full((2, 4), 0.25), torch.tensor([0, 1]), torch.tensor([0, 0])))
    for name in metrics:
        assert set(metrics[name]) == set(deep_metrics[name]) == expected_keys
        assert np.asarray(metrics[name]["confusion_matrix"]).sum() == metrics[name]["n_blocks"]
    network_only = {"memory_per_epoch", "training", "calibration"}  # a network's epochs, steps and memory
    assert set(deep_record) - network_only <= set(record)
    assert record["model"] == "mfcc_svm" and record["regime"] == "augmented"
    assert record["data_fingerprint"] == deep_record["data_fingerprint"]
    assert set(record["validation"]) == {"weighted_f1", "ua", "accuracy"}
    config = yaml.safe_load((baseline / "config.yaml").read_text())
    assert config["model"]["_target_"] == "ser.baseline.svm.MfccSvm" and "kind" not in config["model"]
    assert "optim" not in config and "callbacks" not in config and "trainer" not in config
    assert (baseline / "checkpoints" / "baseline.pkl").is_file()
    # predictions.csv as a network run writes it: every test block of every test set
    deep_pred = read_predictions(deep / "predictions.csv")
    pred = read_predictions(baseline / "predictions.csv")
    assert len(pred) == sum(m["n_blocks"] for m in metrics.values())
    assert list(dict.fromkeys(pred.test_set)) == record["test_sets"] and pred.classes == deep_pred.classes
    # C chosen on validation UA from the config's grid, which keeps the former C=3
    selection = record["selection"]
    assert selection["grid"] == {"C": list(compose(BASELINE).model.grid.C)} and 3.0 in selection["grid"]["C"]
    uas = [r["validation_ua"] for r in selection["results"]]
    assert selection["chosen"]["C"] == selection["grid"]["C"][int(np.argmax(uas))]
    assert selection["validation_ua"] == pytest.approx(record["validation"]["ua"])


def test_a_sweep_reports_deep_and_baseline_groups_side_by_side(sweep):
    code, stdout, err = evaluate_in_process([f"sweep='{sweep}'"])
    assert code == 0, err
    deep_model = read(deep_run(sweep, "all"), "run.json")["model"]
    summary = json.loads((sweep / "summary" / "summary.json").read_text())
    labels = {g["label"] for g in summary["groups"]}
    assert labels == {f"model={m}, snr={s}" for m in (deep_model, "mfcc_svm") for s in ("clean", "all")}
    for text in ((sweep / "summary" / "summary.md").read_text(),
                 (sweep / "summary" / "summary.csv").read_text(), stdout):
        assert "model=mfcc_svm, snr=all" in text and f"model={deep_model}, snr=clean" in text
    # one figure holds both models' regimes: the baseline is the bar beside the network's
    [figure] = summary["figures"]
    assert Path(figure["path"]).name == "weighted_f1_by_regime.png"
    assert figure["groups"] == [f"model={deep_model}, snr=clean", "model=mfcc_svm, snr=clean",
                                f"model={deep_model}, snr=all", "model=mfcc_svm, snr=all"]
    valid_png(Path(figure["path"]), min_size=(800, 500))


def test_same_seed_gives_the_same_metrics_and_resume_skips_a_finished_run(sweep, tmp_path):
    first = sweep / "model=mfcc_svm,snr=clean"  # the cheaper run; its test sets are noisy too
    train_baseline_into(tmp_path / "again", ["snr=clean"])
    assert (tmp_path / "again" / "metrics.json").read_text() == (first / "metrics.json").read_text()
    before = (tmp_path / "again" / "run.json").stat().st_mtime_ns
    with mock.patch("ser.baseline.run.build_baseline", side_effect=AssertionError("refitted")):
        metrics = train_baseline_into(tmp_path / "again", ["snr=clean", "resume=true"])
    assert metrics == read(first, "metrics.json")
    assert (tmp_path / "again" / "run.json").stat().st_mtime_ns == before


def test_a_baseline_run_is_re_tested_without_refitting_windows_included(sweep, tmp_path):
    from ser.reporting.predictions import read_predictions

    run = sweep / "model=mfcc_svm,snr=clean"
    fitted = (run / "checkpoints" / "baseline.pkl").stat().st_mtime_ns
    code, _, err = evaluate_in_process([f"ckpt='{run}'", f"out_dir={tmp_path / 'same'}"])
    assert code == 0, err
    same = read(tmp_path / "same", "evaluation.json")["metrics"]
    assert same == read(run, "metrics.json")  # the fold's test sets, rebuilt exactly
    ok(run_script("evaluate.py", [f"ckpt={run}", "data.test_hop=0.5", f"out_dir={tmp_path / 'hop'}"],
                  cwd=tmp_path))
    hop = read(tmp_path / "hop", "evaluation.json")
    assert hop["changes"] == {"data.test_hop": 0.5}
    for test_set, m in hop["metrics"].items():  # block metrics keep to the grid blocks
        assert m["confusion_matrix"] == same[test_set]["confusion_matrix"]
        assert m["n_windows"] > 0
    pred = read_predictions(tmp_path / "hop" / "predictions.csv")
    assert set(pred.offset.tolist()) == {0.0, 0.5}
    grid = read_predictions(run / "predictions.csv")
    assert np.allclose(pred.grid().probs, grid.probs, atol=1e-6)
    assert (run / "checkpoints" / "baseline.pkl").stat().st_mtime_ns == fitted
    code, _, err = evaluate_in_process([f"ckpt='{run}'", f"audio='{run / 'run.json'}'"])
    assert code == 2 and "Traceback" not in err
    assert "baseline runs have no network checkpoint; their metrics are in" in err


def voice_blocks(n: int = 3, rate: int = 16000) -> np.ndarray:
    """``n`` 1-s harmonic glides (different pitch each) over a little noise, peak about 0.3."""
    t = np.arange(rate) / rate
    rng = np.random.default_rng(1)
    out = []
    for k in range(n):
        f0 = (120 + 60 * k) * (1 + 0.2 * np.sin(2 * np.pi * 2 * t))
        phase = 2 * np.pi * np.cumsum(f0) / rate
        voice = sum(np.sin(h * phase) / h for h in range(1, 6)) * (0.3 + 0.7 * np.sin(np.pi * t) ** 2)
        out.append(0.1 * voice + 0.005 * rng.standard_normal(rate))
    return np.stack(out).astype(np.float32)


def test_features_have_their_documented_shape_and_ignore_the_blocks_gain():
    from ser.baseline.features import block_features, feature_names

    blocks = voice_blocks()
    features = block_features(blocks, 16000, prosody=True)
    assert features.shape == (3, 66) == (3, len(feature_names(20, prosody=True)))
    assert block_features(blocks, 16000).shape == (3, 60) == (3, len(feature_names(20)))
    assert block_features(blocks, 16000, n_mfcc=13, prosody=True).shape == (3, 3 * 13 + 6)
    # the infinity norm: a block's level never reaches its features
    for gain in (0.01, 3.0):
        np.testing.assert_allclose(block_features(gain * blocks, 16000, prosody=True), features,
                                   rtol=1e-4, atol=1e-3)
    # per block: the same features alone as in a batch; a silent block gives finite features
    np.testing.assert_allclose(block_features(blocks[1:2], 16000, prosody=True), features[1:2],
                               rtol=1e-5, atol=1e-4)
    assert np.isfinite(block_features(np.zeros((1, 16000), np.float32), 16000, prosody=True)).all()
    # the pitch statistic follows the glides' pitch (semitones above 100 Hz)
    pitch = features[:, feature_names(prosody=True).index("pitch_st_mean")]
    assert np.all(np.diff(pitch) > 2)


def test_probabilities_follow_the_svms_own_predictions():
    from ser.baseline.svm import MfccSvm, agree_with

    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 5))
    y = rng.integers(0, 3, 60)  # class 3 never seen in training
    model = MfccSvm(C=1.0).fit(x, y, n_classes=4)
    probs, preds = model.predict_scores(rng.standard_normal((40, 5)))
    assert probs.shape == (40, 4) and np.allclose(probs.sum(1), 1) and np.all(probs[:, 3] == 0)
    assert np.array_equal(probs.argmax(1), preds)
    tied = agree_with(np.array([[0.4, 0.4, 0.2], [0.5, 0.3, 0.2]]), np.array([1, 0]))
    assert list(tied.argmax(1)) == [1, 0] and np.allclose(tied.sum(1), 1)


def test_bad_svm_settings_stop_with_one_paragraph():
    from ser.baseline.svm import MfccSvm
    from ser.errors import SerError

    with pytest.raises(SerError, match="model.class_weight"):
        MfccSvm(class_weight="heavy")
    with pytest.raises(SerError, match="model.kernel"):
        MfccSvm(kernel="bogus").fit(np.zeros((4, 2)) + np.arange(4)[:, None], np.array([0, 1, 0, 1]), 2)
    with pytest.raises(SerError, match="at least two"):
        MfccSvm().fit(np.zeros((4, 2)), np.zeros(4, dtype=int), 2)


def test_a_baseline_is_drawn_beside_each_network_variant_it_shares_the_data_of():
    from ser.reporting.regime_figures import MODEL_KEYS, regime_families
    from ser.reporting.sweep_summary import FinishedRun, RunGroup, distinguishing_labels

    def group(settings: dict) -> RunGroup:
        regime = "clean" if settings["snr"] == '"clean"' else "augmented"
        record = {"regime": regime, "model": json.loads(settings["model.name"])}
        return RunGroup(settings, [FinishedRun(Path("."), {}, record, settings)])

    snrs = ('"clean"', '"all"')
    networks = [group({"model.name": '"efficientnet_lite0"', "model.pretrained": p, "snr": s,
                       "data.seed": "0"}) for p in ("true", "false") for s in snrs]
    svm = [group({"model.name": '"mfcc_svm"', "model._target_": '"ser.baseline.svm.MfccSvm"', "model.C": "3.0", "snr": s,
                  "data.seed": "0"}) for s in snrs]
    other_data = [group({**g.settings, "data.seed": "1"}) for g in svm]
    families = regime_families([*networks, *svm, *other_data], ["snr"], MODEL_KEYS)
    members = [{(g.settings["model.name"], g.settings.get("model.pretrained"), g.settings["data.seed"])
                for g in f} for f in families]
    assert members == [{('"efficientnet_lite0"', "true", "0"), ('"mfcc_svm"', None, "0")},
                       {('"efficientnet_lite0"', "false", "0"), ('"mfcc_svm"', None, "0")},
                       {('"mfcc_svm"', None, "1")}]  # no network trained on that data
    # without model keys every model keeps its own figure, as before baselines existed
    assert len(regime_families([*networks, *svm], ["snr"])) == 3
    labels = distinguishing_labels([g.settings for g in [*networks, *svm]])
    assert labels[0] == "model=efficientnet_lite0, snr=clean, model.pretrained=true"
    assert labels[-1] == "model=mfcc_svm, snr=all"  # no "model.pretrained=unset"


def test_sweep_labels_name_what_tells_groups_apart_and_nothing_incidental():
    from ser.reporting.sweep_summary import distinguishing_labels

    network = {"model.name": '"efficientnet_lite0"', "optim.lr": "0.001", "snr": '"all"'}
    smile = [{"model.name": '"opensmile_svm"', "model.feature_set": f'"{f}"', "model.workers": "1",
              "model.c_patience": p, "snr": '"all"'} for f, p in (("egemaps", "null"), ("compare", "1"))]
    mfcc = {"model.name": '"mfcc_svm"', "model.C": "null", "snr": '"all"'}
    labels = distinguishing_labels([network, *smile, mfcc])
    assert labels == ["model=efficientnet_lite0", "model=opensmile_svm, model.feature_set=egemaps",
                      "model=opensmile_svm, model.feature_set=compare", "model=mfcc_svm"]


def test_the_sweep_summary_shows_each_groups_validation_ua_per_fold():
    from ser.reporting.sweep_report import validation_markdown
    from ser.reporting.sweep_summary import FinishedRun, RunGroup, summary_rows

    def run(fold: int, record: dict) -> FinishedRun:
        return FinishedRun(Path("."), {}, {"fold": fold, **record}, {})

    network = RunGroup({}, [run(f, {"training": {"selected": {"monitor": "val/ua", "score": s}}})
                            for f, s in ((0, 0.70), (1, 0.80))], label="network")
    svm = RunGroup({}, [run(1, {"validation": {"ua": 0.6}})], label="svm")
    untracked = RunGroup({}, [run(0, {"training": {"selected": {"monitor": "val/loss", "score": 0.1}}})],
                         label="monitors the loss")
    assert network.validation_ua()["mean"] == pytest.approx(0.75)
    assert untracked.validation_ua() is None  # a loss is not a UA
    table = validation_markdown(json.loads(json.dumps(summary_rows([network, svm, untracked]))))
    assert "| network | – | 75.0 ± 7.1 | 70.0 | 80.0 | – | – |" in table
    assert "| svm | – | 60.0 | – | 60.0 | – | – |" in table
    assert "monitors the loss" not in table


def test_the_sweep_summary_gives_the_gap_between_validation_and_clean_test_ua():
    from ser.reporting.generalisation import gap_words, matching_test_sets, validation_gap
    from ser.reporting.sweep_report import validation_markdown
    from ser.reporting.sweep_summary import FinishedRun, RunGroup, summary_rows
    from ser.reporting.tables import METRICS

    def run(fold: int, val: float, test: float) -> FinishedRun:
        metrics = {"clean": {key: test for key in METRICS}}
        return FinishedRun(Path("."), metrics, {"fold": fold, "validation": {"ua": val}},
                           {"split.validation": '"speakers"'})

    group = RunGroup({}, [run(0, 0.80, 0.70), run(1, 0.76, 0.74)], label="held-out voices")
    row = group.validation_ua()
    assert row["gap"] == pytest.approx(0.06) and row["test_ua"] == pytest.approx(0.72)
    table = validation_markdown(json.loads(json.dumps(summary_rows([group]))))
    assert "| held-out voices | speakers | 78.0 ± 2.8 | 80.0 | 76.0 | 72.0 | +6.0 |" in table
    gap = validation_gap(0.8, {"clean": {"ua": 0.7}}, "utterances")
    assert gap["gap"] == pytest.approx(0.1)
    assert "utterances of the training speakers" in gap_words(gap) and "+10.0 points" in gap_words(gap)
    # validation holds clean + 15/20/40 dB copies under snr=all: compared with those test sets
    sets = matching_test_sets("all", [15, 20, 40])
    assert sets == ["clean", "15dB", "20dB", "40dB"] and matching_test_sets("clean") == ["clean"]
    noisy = validation_gap(0.7, {"clean": {"ua": 0.8}, "15dB": {"ua": 0.6}, "0dB": {"ua": 0.1}},
                           test_sets=sets)
    assert noisy["test_ua"] == pytest.approx(0.7) and noisy["test_sets"] == ["clean", "15dB"]
    assert validation_gap(None, {"clean": {"ua": 0.7}}) is None and validation_gap(0.8, {}) is None


def test_c_patience_stops_the_search_along_c_after_validation_ua_stops_rising():
    from ser.baseline.estimator import SvmBaseline
    from ser.errors import SerError

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    features = rng.standard_normal((400, 20)) + labels[:, None] * 0.8
    val_labels = rng.integers(0, 2, 200)
    val_features = rng.standard_normal((200, 20)) + val_labels[:, None] * 0.8
    grid = {"kernel": ["linear"], "solver": ["liblinear"], "C": [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]}
    full = SvmBaseline(grid=grid).fit(features, labels, 2, val_features, val_labels).selection
    stopped = SvmBaseline(grid=grid, c_patience=1).fit(features, labels, 2, val_features,
                                                       val_labels).selection
    uas = [r["validation_ua"] for r in full["results"]]
    first_miss = next(i for i in range(1, len(uas)) if uas[i] <= max(uas[:i]))
    fitted = [r for r in stopped["results"] if "skipped" not in r]
    assert [r["validation_ua"] for r in fitted] == uas[:first_miss + 1]  # fitted up to the miss
    assert first_miss + 1 < len(uas)  # the example has C values left to skip
    assert all("c_patience=1" in r["skipped"] for r in stopped["results"][first_miss + 1:])
    assert stopped["chosen"]["C"] == grid["C"][int(np.argmax(uas[:first_miss + 1]))]
    with pytest.raises(SerError, match="c_patience"):
        SvmBaseline(grid=grid, c_patience=0)


def test_a_list_of_sub_grids_gives_each_kernel_its_own_c_range():
    """model.grids.egemaps as a list: RBF's C range and linear's are searched in turn, each
    point recorded in run.json's selection; a malformed sub-grid is one clear error."""
    from omegaconf import OmegaConf

    from ser.baseline.estimator import SvmBaseline
    from ser.baseline.svm_grid import grid_points
    from ser.errors import SerError

    grid = OmegaConf.create([{"kernel": ["rbf"], "C": [1.0, 10.0, 100.0]},
                             {"kernel": ["linear"], "C": [0.01, 0.1]}])
    assert grid_points(grid) == [{"kernel": "rbf", "C": 1.0}, {"kernel": "rbf", "C": 10.0},
                                 {"kernel": "rbf", "C": 100.0}, {"kernel": "linear", "C": 0.01},
                                 {"kernel": "linear", "C": 0.1}]
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 300)
    features = rng.standard_normal((300, 8)) + labels[:, None]
    val_labels = rng.integers(0, 3, 90)
    val_features = rng.standard_normal((90, 8)) + val_labels[:, None]
    svm = SvmBaseline(grid=grid).fit(features, labels, 3, val_features, val_labels)
    tried = [(r["kernel"], r["C"]) for r in svm.selection["results"]]
    assert tried == [("rbf", 1.0), ("rbf", 10.0), ("rbf", 100.0), ("linear", 0.01), ("linear", 0.1)]
    best = max(svm.selection["results"], key=lambda r: r["validation_ua"])
    assert svm.selection["validation_ua"] == best["validation_ua"]
    with pytest.raises(SerError, match="fixed but"):
        SvmBaseline(grid=grid, C=1.0)
    for bad in ([{"kernel": ["rbf"]}, "C"], [{"C": []}], [{"degree": [2]}]):
        with pytest.raises(SerError, match="model.grid"):
            SvmBaseline(grid=bad)


def test_clean_and_augmented_runs_are_paired_only_within_one_model():
    from ser.reporting.pooled import headline_pairs
    from ser.reporting.sweep_summary import FinishedRun, RunGroup

    def group(feature_set: str, regime: str) -> RunGroup:
        settings = {"model.name": '"opensmile_svm"', "model._target_":
                    '"ser.baseline.opensmile_svm.OpenSmileSvm"',
                    "model.feature_set": f'"{feature_set}"', "snr": f'"{regime}"'}
        record = {"regime": "clean" if regime == "clean" else "augmented"}
        return RunGroup(settings, [FinishedRun(Path("."), {}, record, settings)],
                        label=f"{feature_set}-{regime}")

    groups = [group("compare", "clean"), group("compare", "all"), group("egemaps", "all")]
    assert headline_pairs(groups) == [("compare-all", "compare-clean")]


@pytest.mark.parametrize("n_classes", [2, 4])
def test_the_gram_solver_is_the_linear_svc_and_pickles_small(n_classes):
    """solver=libsvm_gram must give SVC(kernel=linear)'s decisions, through one Gram matrix
    for the whole C grid, and keep only the pairs' weight vectors."""
    import pickle

    from sklearn.svm import SVC

    from ser.baseline.estimator import SvmBaseline
    from ser.baseline.gram_svm import GramLinearSVC, gram_matrix
    from ser.errors import SerError

    rng = np.random.default_rng(1)
    labels = rng.integers(0, n_classes, 300)
    features = rng.standard_normal((300, 40)) + labels[:, None] * 0.3
    test = rng.standard_normal((150, 40))
    for break_ties in (True, False):
        reference = SVC(kernel="linear", C=0.05, class_weight="balanced",
                        break_ties=break_ties and n_classes > 2).fit(features, labels)
        gram = GramLinearSVC(C=0.05, class_weight="balanced", break_ties=break_ties)
        gram.fit(features, labels)
        np.testing.assert_allclose(gram.decision_function(test),
                                   reference.decision_function(test), atol=1e-8)
        np.testing.assert_array_equal(gram.predict(test), reference.predict(test))
    assert len(pickle.dumps(gram)) < 8 * 40 * n_classes * n_classes + 4096  # no support vectors

    grid = {"kernel": ["linear"], "solver": ["libsvm_gram"], "C": [1e-3, 1e-2, 1e-1]}
    val_labels = rng.integers(0, n_classes, 120)
    val = rng.standard_normal((120, 40)) + val_labels[:, None] * 0.3
    calls = []
    import ser.baseline.estimator as estimator

    original = estimator.gram_matrix
    estimator.gram_matrix = lambda x: calls.append(len(x)) or original(x)
    try:
        chosen = SvmBaseline(grid=grid).fit(features, labels, n_classes, val, val_labels)
    finally:
        estimator.gram_matrix = original
    assert calls == [300]  # one Gram matrix served every C
    svc = SvmBaseline(grid={**grid, "solver": ["libsvm"]}).fit(features, labels, n_classes,
                                                             val, val_labels)
    assert chosen.selection["validation_ua"] == pytest.approx(svc.selection["validation_ua"])
    np.testing.assert_array_equal(chosen.predict_scores(test)[1], svc.predict_scores(test)[1])
    with pytest.raises(SerError, match="liblinear"):
        gram_matrix(features, max_items=100)
    with pytest.raises(SerError, match="model.kernel=linear"):
        SvmBaseline(kernel="rbf", solver="libsvm_gram").fit(features, labels, n_classes)


def test_a_lever_set_to_a_mapping_is_named_in_its_groups_label():
    from ser.reporting.sweep_summary import distinguishing_labels

    plain = {"model.name": '"efficientnet_lite0"', "augment.specaugment": "null", "optim.scheduler": "null"}
    masked = {"model.name": '"efficientnet_lite0"', "augment.specaugment.time_masks": "2",
              "optim.scheduler": "null"}
    stepped = {"model.name": '"efficientnet_lite0"', "augment.specaugment": "null",
               "optim.scheduler.gamma": "0.2"}
    assert distinguishing_labels([plain, masked, stepped]) == [
        "optim.scheduler=null, augment.specaugment=null",  # the shorter path first
        'optim.scheduler=null, augment.specaugment={"time_masks": 2}',
        'optim.scheduler={"gamma": 0.2}, augment.specaugment=null']
