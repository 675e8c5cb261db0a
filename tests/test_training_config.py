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
