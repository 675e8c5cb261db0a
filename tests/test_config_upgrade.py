"""Every config group is built from its ``_target_``; configs saved before that (a checkpoint's,
a run folder's config.yaml) still build, through the one upgrade in ser/config_upgrade.py."""

from __future__ import annotations

import pytest

from ser.config_upgrade import is_baseline_config, with_target
from tests.conftest import REPO, compose


# Keys that left the default files in conf/ (levers measured as no help, now in conf/experiment/,
# and keys that did nothing), as runs saved before then held them.
OLD_DEFAULTS = {("data", "random_offset"): False, ("data", "train_snr_range"): None,
                ("augment", "mixup_alpha"): 0.0, ("augment", "vtlp"): None, ("augment", "gain_db"): 0.0,
                ("features", "deltas"): False, ("features", "band_norm"): False, ("features", "pcen"): False,
                ("optim", "label_smoothing"): 0.0, ("optim", "ema_decay"): None,
                ("optim", "speaker_adversary"): None, ("augment", "time_reverse"): 0.0,
                ("data", "train_texts"): "all"}


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
    from ser.errors import SerError
    from ser.models.builders import build_frontend, build_network
    from ser.models.checkpoints import trained_hyper_parameters

    old_model = {"name": "alexnet", "pretrained": False, "trainable_from": "features.10",
                 "channels_last": False, "compile": False}
    old = {"hyper_parameters": {"classes": ["a", "b", "c", "d"], "model": old_model,
                                "features": {"sample_rate": 16000}}}
    hp = trained_hyper_parameters(old, "old.ckpt")  # the one place a checkpoint is upgraded
    assert isinstance(build_network(hp["model"], 4), TransferNet)
    assert isinstance(build_frontend(hp["features"]), SpectrogramImage)
    with pytest.raises(SerError, match="names no `_target_`"):  # the builders know no old forms
        build_network(old_model, 4)


def test_baselines_are_told_by_their_class_or_an_old_kind():
    assert is_baseline_config({"_target_": "ser.baseline.svm.MfccSvm"})
    assert is_baseline_config({"name": "mfcc_svm", "kind": "sklearn"})
    assert not is_baseline_config({"_target_": "ser.models.backbones.alexnet"})
    assert not is_baseline_config({"_target_": "ser.nowhere.Thing"})
    assert not is_baseline_config({"name": "efficientnet_lite0"})


def test_a_run_saved_before_the_config_changes_falls_in_the_same_sweep_group(tmp_path):
    """An older run's config.yaml (noise and logger labelled by kind, the model by name, the
    corpus reader one level down, no callbacks node, none of the keys added since, the keys
    removed since at their old defaults) is compared in today's form, so a sweep resumed across
    the change reports one group, not two."""
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
    for group, key in (("data", "test_hop"), ("data", "speaker_norm")):
        del old[group][key]   # keys added since: an old run did what their defaults do
    for (group, key), off in OLD_DEFAULTS.items():
        old[group][key] = off  # keys removed since, saved at the value that meant "off"
    reader = {"_target_": new["dataset"]["_target_"], "csv_path": "/m.csv"}
    old["dataset"] = {"reader": reader, **{k: v for k, v in new["dataset"].items()
                                           if k not in ("_target_", "manifest")}}
    # a run saved while callbacks.weight_ema read optim.ema_decay (null: off)
    old_ema = json.loads(json.dumps(new))
    old_ema["callbacks"]["weight_ema"] = {"_target_": "ser.training.callbacks.weight_ema",
                                          "decay": None, "start_step": 0}
    old_ema["optim"]["ema_decay"] = None
    runs = []
    for name, config in (("old", old), ("old_ema", old_ema), ("new", new)):
        run = tmp_path / name
        run.mkdir()
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        runs.append(FinishedRun(run, {}, {}, _run_settings(run, {})))
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        ignore = list(hydra_compose(config_name="evaluate").sweep_ignore)
    assert len(group_runs(runs, ignore)) == 1
    changed = dict(runs[2].settings, **{"model.dropout": "0.5"})
    assert len(group_runs([runs[0], FinishedRun(runs[2].path, {}, {}, changed)], ignore)) == 2


def test_a_noise_folder_saved_before_per_fold_drew_one_split_for_every_fold():
    from ser.config_upgrade import current_form

    node = {"_target_": "ser.audio.noise_sources.folder", "root": "/n", "test_fraction": 0.2,
            "validation_fraction": 0.2, "fixed": False, "snr_reference": "block"}
    run = current_form({"noise": dict(node), "data": {"noise": dict(node)}})
    assert run["noise"]["per_fold"] is False and run["data"]["noise"]["per_fold"] is False
    assert current_form({"noise": {**node, "per_fold": True}})["noise"]["per_fold"] is True


def test_keys_removed_since_are_dropped_at_their_old_default_and_kept_where_switched_on():
    """A run saved before a lever left the default files reads like a new run where it held the
    old default, and as what it was where it switched the lever on; a loso split's unused
    test_fraction goes whatever it held."""
    from omegaconf import OmegaConf

    from ser.config_upgrade import REMOVED_KEYS, current_form

    new = OmegaConf.to_container(compose(["split=loso"]), resolve=True)
    old = {k: (dict(v) if isinstance(v, dict) else v) for k, v in new.items()}
    for (group, key), off in OLD_DEFAULTS.items():
        old[group] = {**old[group], key: off}
    old["split"] = {**old["split"], "test_fraction": 0.3}
    old["data"] = {**old["data"], "split": {**old["data"]["split"], "test_fraction": 0.2}}
    assert current_form(old) == current_form(new) == new
    assert "test_fraction" in old["split"]  # the saved config itself is left as it was
    assert {(path, key) for path, _, key, _ in REMOVED_KEYS} == {
        *OLD_DEFAULTS, ("split", "test_fraction"), (("data", "split"), "test_fraction"), ("model", "layerdrop"),
        ("callbacks", "weight_ema")}
    encoder = OmegaConf.to_container(compose(["model=wavlm"]), resolve=True)
    assert current_form({**encoder, "model": {**encoder["model"], "layerdrop": 0.0}}) == encoder

    switched = {"data": {"random_offset": True, "train_snr_range": [0, 30], "train_texts": "shared"},
                "augment": {"mixup_alpha": 0.2, "vtlp": {"max_warp": 0.1}, "gain_db": 6.0, "time_reverse": 0.5},
                "features": {"deltas": True, "band_norm": True, "pcen": True},
                "optim": {"label_smoothing": 0.1, "ema_decay": 0.995, "speaker_adversary": {"weight": 0.1}}}
    on = {k: (dict(v) if isinstance(v, dict) else v) for k, v in new.items()}
    for group, keys in switched.items():
        on[group] = {**on[group], **keys}
    upgraded = current_form(on)
    for group, keys in switched.items():
        assert {k: upgraded[group][k] for k in keys} == keys
    # 0 is 0.0, but False is no number and a number is no False
    assert "mixup_alpha" not in current_form({**new, "augment": {**new["augment"], "mixup_alpha": 0}})["augment"]
    kept = current_form({**new, "data": {**new["data"], "random_offset": 0}})["data"]
    assert kept["random_offset"] == 0
    # a paper split's test_fraction is its test set's share: kept
    paper = OmegaConf.to_container(compose([]), resolve=True)
    assert current_form(paper)["split"]["test_fraction"] == 0.2


def test_a_run_that_switched_on_a_lever_whose_code_went_is_refused_where_it_is_rebuilt():
    """A report reads such a run as what it was; re-testing or loading it (a source given) is one
    SerError naming the key, the run and where the measurement is, not a TypeError in a builder.
    At its old "off" value the key is dropped, from a checkpoint's own groups too."""
    from omegaconf import OmegaConf

    from ser.config_upgrade import CODE_REMOVED, current_form
    from ser.errors import SerError
    from ser.models.builders import build_frontend
    from ser.models.checkpoints import trained_hyper_parameters

    new = OmegaConf.to_container(compose(["features=logmel"]), resolve=True)
    switched = {"data.random_offset": True, "data.train_snr_range": [0, 30], "augment.mixup_alpha": 0.2,
                "features.deltas": True, "features.band_norm": True, "features.pcen": True,
                "optim.ema_decay": 0.995, "callbacks.weight_ema": {"decay": 0.995},
                "augment.vtlp": {"max_warp": 0.1, "max_stretch": 0.1}, "optim.speaker_adversary": {"weight": 0.1}}
    assert set(switched) == set(CODE_REMOVED)
    for dotted, value in switched.items():
        group, key = dotted.split(".")
        on = {**new, group: {**new[group], key: value}}
        assert current_form(on)[group][key] == value  # a report keeps it
        with pytest.raises(SerError, match=rf"runs/x was trained with {dotted}=.*removed after it was "
                                           rf"measured as no help \(docs/results.md\).*git log -S {key}"):
            current_form(on, source="runs/x")
    hp = {"classes": ["a", "b"], "model": new["model"],
          "optim": {**new["optim"], "ema_decay": None, "speaker_adversary": None},
          "augment": {**new["augment"], "mixup_alpha": 0.0, "vtlp": None},
          "features": {**new["features"], "pcen": False, "deltas": False, "band_norm": False}}
    upgraded = trained_hyper_parameters({"hyper_parameters": hp}, "old.ckpt")
    assert upgraded["features"] == new["features"] and upgraded["augment"] == new["augment"]
    assert upgraded["optim"] == new["optim"]
    build_frontend(upgraded["features"])
    # a run with the speaker adversary recorded its head's size in its own optim group
    adversary = {**hp, "optim": {**new["optim"], "speaker_adversary": {"weight": 0.1, "n_speakers": 6}}}
    with pytest.raises(SerError, match=r"old\.ckpt was trained with optim\.speaker_adversary="
                                       r'\{"weight": 0\.1, "n_speakers": 6\}.*git log -S speaker_adversary') as refused:
        trained_hyper_parameters({"hyper_parameters": adversary}, "old.ckpt")
    assert "\n" not in str(refused.value)  # one paragraph
    warped = {**hp, "augment": {**new["augment"], "vtlp": {"max_warp": 0.1}}}
    with pytest.raises(SerError, match=r"old\.ckpt was trained with augment\.vtlp="):
        trained_hyper_parameters({"hyper_parameters": warped}, "old.ckpt")
    hp["features"]["pcen"] = True
    with pytest.raises(SerError, match=r"old\.ckpt was trained with features\.pcen=true"):
        trained_hyper_parameters({"hyper_parameters": hp}, "old.ckpt")
