"""Every config group is built from its ``_target_``; configs saved before that (a checkpoint's,
a run folder's config.yaml) still build, through the one upgrade in ser/config_upgrade.py."""

from __future__ import annotations

import pytest

from ser.config_upgrade import is_baseline_config, with_target
from tests.conftest import REPO, compose


def test_no_config_file_carries_a_kind_key():
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "conf").rglob("*.yaml")
                 if any(line.startswith("kind:") for line in p.read_text().splitlines())]
    assert offenders == []


@pytest.mark.parametrize("model", sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml")))
def test_every_model_option_names_its_builder(model):
    cfg = compose([f"model={model}"])
    assert cfg.model._target_ and cfg.model.name == model
    assert is_baseline_config(cfg.model) == model.endswith("_svm")


def test_old_labels_are_upgraded_to_targets():
    assert with_target("noise", {"kind": "demo", "seconds": 5}) == {
        "_target_": "ser.audio.noise_sources.synthetic_room", "seconds": 5}
    assert with_target("logger", {"kind": "csv"}) == {"_target_": "ser.training.loggers.csv_logger"}
    assert with_target("split", {"name": "loso"})["_target_"] == "ser.data.splits.loso_split"
    assert with_target("model", {"name": "alexnet"})["_target_"] == "ser.models.backbones.alexnet"
    assert with_target("features", {"sample_rate": 16000})["_target_"].endswith("SpectrogramImage")
    kept = {"_target_": "tests.somewhere.noise", "kind": "white"}
    assert with_target("noise", kept) == {"_target_": "tests.somewhere.noise"}
    assert with_target("noise", {"kind": "unknown"})["_target_"] is None


@pytest.mark.parametrize("group", ["dataset", "noise", "split", "model", "features", "logger"])
def test_every_option_of_a_built_group_names_its_builder_at_the_top(group):
    for path in sorted((REPO / "conf" / group).glob("*.yaml")):
        node = compose([f"{group}={path.stem}"])[group]
        assert node.get("_target_") and "reader" not in node, path


def test_old_dataset_readers_are_lifted_to_the_top():
    old_iemocap = {"name": "aesn", "root": "/d", "reader": {"_target_": "ser.data.iemocap.read_iemocap",
                                                            "root": "/d", "variant": "aesn"}}
    assert with_target("dataset", old_iemocap) == {"_target_": "ser.data.iemocap.read_iemocap",
                                                   "name": "aesn", "root": "/d", "variant": "aesn"}
    old_manifest = {"name": "manifest", "manifest": "/m.csv", "classes": None,
                    "reader": {"_target_": "ser.data.manifest.read_manifest", "csv_path": "/m.csv",
                               "classes": None}}
    assert with_target("dataset", old_manifest) == {"_target_": "ser.data.manifest.read_manifest",
                                                    "name": "manifest", "manifest": "/m.csv", "classes": None}
    old_demo = {"name": "demo", "corpus_seed": 3, "reader": {"_target_": "ser.data.demo.build_demo_corpus",
                                                             "out_dir": "/c/seed3", "seed": 3}}
    assert with_target("dataset", old_demo) == {"_target_": "ser.data.demo.build_demo_corpus",
                                                "name": "demo", "out_dir": "/c/seed3", "seed": 3}


def test_an_old_checkpoints_model_and_features_still_build():
    from ser.features.spectrogram import SpectrogramImage
    from ser.models.backbones import TransferNet
    from ser.models.builders import build_frontend, build_network

    old_model = {"name": "alexnet", "pretrained": False, "trainable_from": "features.10",
                 "channels_last": False, "compile": False}
    assert isinstance(build_network(old_model, 4), TransferNet)
    assert isinstance(build_frontend({"sample_rate": 16000}), SpectrogramImage)


def test_baselines_are_told_by_their_class_or_an_old_kind():
    assert is_baseline_config({"_target_": "ser.baseline.svm.MfccSvm"})
    assert is_baseline_config({"name": "mfcc_svm", "kind": "sklearn"})
    assert not is_baseline_config({"_target_": "ser.models.backbones.alexnet"})
    assert not is_baseline_config({"_target_": "ser.nowhere.Thing"})
    assert not is_baseline_config({"name": "efficientnet_lite0"})


def test_a_run_saved_before_the_config_changes_falls_in_the_same_sweep_group(tmp_path):
    """An older run's config.yaml (noise and logger labelled by kind, the model by name, the
    corpus reader one level down, no callbacks node, none of the keys added since) is compared in today's form, so a sweep
    resumed across the change reports one group, not two."""
    import json

    import yaml

    from ser.reporting.sweep_summary import _run_settings, group_runs, FinishedRun
    from tests.conftest import compose as compose_cfg
    from omegaconf import OmegaConf

    new = OmegaConf.to_container(compose_cfg(["dataset=manifest", "dataset.manifest=/m.csv",
                                              "noise=dir", "noise.root=/n"]), resolve=False)
    old = json.loads(json.dumps(new))
    old["noise"] = {"kind": "dir", **{k: v for k, v in new["noise"].items() if k != "_target_"}}
    old["logger"] = {"kind": "csv"}
    old["model"] = {k: v for k, v in new["model"].items() if k != "_target_"}
    old.pop("callbacks", None)
    for group, key in (("data", "test_hop"), ("features", "pcen"), ("optim", "ema_decay")):
        del old[group][key]   # keys added since: an old run did what their defaults do
    reader = {"_target_": new["dataset"]["_target_"], "csv_path": "/m.csv"}
    old["dataset"] = {"reader": reader, **{k: v for k, v in new["dataset"].items()
                                           if k not in ("_target_", "manifest")}}
    runs = []
    for name, config in (("old", old), ("new", new)):
        run = tmp_path / name
        run.mkdir()
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        runs.append(FinishedRun(run, {}, {}, _run_settings(run, {})))
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        ignore = list(hydra_compose(config_name="evaluate").sweep_ignore)
    assert len(group_runs(runs, ignore)) == 1
    changed = dict(runs[1].settings, **{"model.dropout": "0.5"})
    assert len(group_runs([runs[0], FinishedRun(runs[1].path, {}, {}, changed)], ignore)) == 2
