"""evaluate.py rebuilds a checkpoint's training config: overrides reach every resolved copy."""

from __future__ import annotations


def test_overrides_reach_every_copy_of_a_resolved_training_config(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from ser.evaluation.training_config import rebuild_training_config
    from tests.conftest import compose

    trained = OmegaConf.to_container(compose(["dataset=ahsn", "dataset.root=/old/IEMOCAP", "noise=dir",
                                              "noise.root=/old/noise", "logger=none"]), resolve=True)
    monkeypatch.setenv("SER_CACHE", str(tmp_path / "another-cache"))  # another machine
    same = OmegaConf.to_container(rebuild_training_config(trained), resolve=True)
    assert same == trained  # the training machine's cache folder included
    moved = rebuild_training_config(trained, overrides={"dataset.root": "/new/IEMOCAP",
                                                        "data.test_snrs": [0, 15]})
    assert moved.data.dataset.root == "/new/IEMOCAP" == moved.dataset.root
    assert list(moved.data.test_snrs) == [0, 15] and moved.data.noise.root == "/old/noise"
    swapped = rebuild_training_config(trained, {"dataset": "manifest"}, {"dataset.manifest": "/x.csv"})
    assert swapped.data.dataset.manifest == "/x.csv" and swapped.data.split.name == "paper"


def old_form(config: dict) -> dict:
    """``config`` as versions before every group's top-level ``_target_`` saved it: the dataset's
    builder in ``dataset.reader``, noise and logger labelled by ``kind``."""
    import copy

    old = copy.deepcopy(config)
    for holder in (old, old["data"]):
        dataset = holder["dataset"]
        reader = {"_target_": dataset.pop("_target_"), "root": dataset["root"],
                  "variant": dataset.pop("variant")}
        holder["dataset"] = {**dataset, "reader": reader}
        holder["noise"] = {"kind": "dir", **{k: v for k, v in holder["noise"].items() if k != "_target_"}}
    old["logger"] = {"kind": "none"}
    return old


def test_old_configs_and_recorded_choices_pick_the_same_files(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from ser.config_upgrade import current_form
    from ser.evaluation.training_config import chosen_files, rebuild_training_config
    from tests.conftest import compose

    trained = OmegaConf.to_container(compose(["dataset=aesn", "dataset.root=/old/IEMOCAP", "noise=dir",
                                              "noise.root=/old/noise", "logger=none"]), resolve=True)
    # no kind or name key is read: the _target_ and the literal values (variant: aesn) decide
    expected = {"dataset": "aesn", "noise": "dir", "split": "paper", "model": "efficientnet_lite0",
                "logger": "none"}
    assert chosen_files(trained, None) == expected
    # an old config is brought to today's form once, where it is read (load_run); then it is a run
    assert chosen_files(current_form(old_form(trained)), None) == expected
    assert chosen_files(trained, {"dataset": "ahsn"})["dataset"] == "ahsn"  # what Hydra recorded wins
    rebuilt = rebuild_training_config(current_form(old_form(trained)), overrides={"dataset.root": "/new/IEMOCAP"})
    assert rebuilt.data.dataset.root == "/new/IEMOCAP" and "reader" not in rebuilt.dataset
    assert rebuilt.dataset.variant == "aesn" and rebuilt.noise._target_.endswith("noise_sources.folder")


def with_removed_keys(config: dict, **switched_on) -> dict:
    """``config`` as versions before the levers measured as no help left conf/ saved it: every
    removed key at the default that meant "off" (a loso split's unused test_fraction too), then
    ``switched_on`` (``optim={"label_smoothing": 0.1}``) laid over it."""
    import copy

    from tests.test_config_upgrade import OLD_DEFAULTS

    old = copy.deepcopy(config)
    for (group, key), off in OLD_DEFAULTS.items():
        old[group][key] = off
    for split in (old["split"], old["data"]["split"]):
        split["test_fraction"] = 0.2
    if "callbacks" in old:  # read optim.ema_decay, resolved when it was saved
        old["callbacks"]["weight_ema"] = {"_target_": "ser.training.callbacks.weight_ema",
                                          "decay": old["optim"]["ema_decay"], "start_step": 0}
    for group, keys in switched_on.items():
        old[group].update(keys)
    return old


def test_an_old_config_with_the_keys_removed_since_rebuilds(tmp_path):
    """Off, a removed key is gone from the rebuilt config (the code reads its absence as off);
    a lever still in conf/experiment/, switched on, reaches the config; one whose code went
    is a SerError naming it and the run."""
    import pytest
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from ser.config_upgrade import current_form
    from ser.errors import SerError
    from ser.evaluation.training_config import rebuild_training_config
    from tests.conftest import compose

    trained = OmegaConf.to_container(compose(["split=loso", "logger=none"]), resolve=True)
    rebuilt = rebuild_training_config(current_form(with_removed_keys(trained), source="run"))
    assert OmegaConf.to_container(rebuilt, resolve=True) == trained
    assert "test_fraction" not in rebuilt.split and "pcen" not in rebuilt.features
    assert "weight_ema" not in rebuilt.callbacks
    on = with_removed_keys(trained, optim={"label_smoothing": 0.1})
    rebuilt = rebuild_training_config(current_form(on, source="run"))
    assert rebuilt.optim.label_smoothing == 0.1
    dm = instantiate(rebuilt.data, verbose=False)
    assert dm.split_cfg.validation == "speakers"
    with pytest.raises(SerError, match=r"runs/x was trained with data\.random_offset=true"):
        current_form(with_removed_keys(trained, data={"random_offset": True}), source="runs/x")


def test_evaluate_re_tests_a_run_saved_with_the_keys_removed_since(tmp_path):
    """``evaluate.py ckpt=`` of a run whose checkpoint and config.yaml hold the removed keys (a
    loso split's test_fraction, which the split no longer takes, among them) scores what the run
    scored."""
    import numpy as np
    import torch
    import yaml

    from ser.reporting.predictions import read_predictions
    from tests.conftest import FAST, run_script
    from tests.test_evaluate import ok

    run = tmp_path / "run"
    ok(run_script("train.py", [*FAST, "split=loso", "logger=none", f"hydra.run.dir={run}"], cwd=tmp_path))
    for ckpt_file in (run / "checkpoints").glob("*.ckpt"):
        ckpt = torch.load(ckpt_file, map_location="cpu", weights_only=False)
        hp = ckpt["hyper_parameters"]
        hp["run_config"] = with_removed_keys(hp["run_config"])
        hp["features"] = {**hp["features"], "pcen": False, "deltas": False, "band_norm": False}
        hp["augment"] = {**hp["augment"], "mixup_alpha": 0.0, "vtlp": None, "gain_db": 0.0}
        torch.save(ckpt, ckpt_file)
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump(with_removed_keys(config)))
    ok(run_script("evaluate.py", [f"ckpt={run}", f"out_dir={tmp_path / 'eval'}"], cwd=tmp_path))
    own, again = read_predictions(run / "predictions.csv"), read_predictions(tmp_path / "eval" / "predictions.csv")
    assert len(own) == len(again) and np.allclose(own.probs, again.probs, atol=1e-5)
