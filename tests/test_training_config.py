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

    from ser.evaluation.training_config import chosen_files, rebuild_training_config
    from tests.conftest import compose

    trained = OmegaConf.to_container(compose(["dataset=aesn", "dataset.root=/old/IEMOCAP", "noise=dir",
                                              "noise.root=/old/noise", "logger=none"]), resolve=True)
    # no kind or name key is read: the _target_ and the literal values (variant: aesn) decide
    expected = {"dataset": "aesn", "noise": "dir", "split": "paper", "model": "efficientnet_lite0",
                "logger": "none"}
    assert chosen_files(trained, None) == expected
    assert chosen_files(old_form(trained), None) == expected
    assert chosen_files(trained, {"dataset": "ahsn"})["dataset"] == "ahsn"  # what Hydra recorded wins
    rebuilt = rebuild_training_config(old_form(trained), overrides={"dataset.root": "/new/IEMOCAP"})
    assert rebuilt.data.dataset.root == "/new/IEMOCAP" and "reader" not in rebuilt.dataset
    assert rebuilt.dataset.variant == "aesn" and rebuilt.noise._target_.endswith("noise_sources.folder")
