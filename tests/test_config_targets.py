"""A new noise source, tracker or split is a function and a YAML file with its ``_target_``:
nothing in ser changes. Here each comes from a config folder outside conf/ (hydra.searchpath)."""

from __future__ import annotations

import numpy as np
import pytest
from hydra.utils import instantiate

from ser.audio.noise import NoiseBank
from ser.errors import SerError
from tests.conftest import compose

CALLS: dict[str, dict] = {}


def white_noise(sample_rate: int, cache_dir, run_seed: int, level: float = 0.1):
    """A noise source: white noise, a different recording for train and test."""
    CALLS["noise"] = {"sample_rate": sample_rate, "run_seed": run_seed, "level": level}
    rng = np.random.default_rng(run_seed)
    make = lambda name: NoiseBank([level * rng.standard_normal(4 * sample_rate)], [name], sample_rate)  # noqa: E731
    return make("white-train"), make("white-test")


def odd_even_split(labels, utterance, speakers, sessions, n_folds=2, test_fraction=0.0, seed=0):
    """A split: utterances with an even index train, odd ones validate and test."""
    from ser.data.splits import SplitPlan

    odd = utterance % 2 == 1
    train, rest = np.flatnonzero(~odd), np.flatnonzero(odd)
    return SplitPlan("odd_even", [(train, rest[::2])] * n_folds, [rest[1::2]] * n_folds)


class ListLogger:
    def __init__(self, **run):
        self.run = run


def list_logger(run_dir, run_name, group, tags, config, flavour="plain"):
    return ListLogger(run_dir=run_dir, run_name=run_name, group=group, flavour=flavour,
                      has_config="data" in config)


@pytest.fixture
def extra_conf(tmp_path):
    (tmp_path / "noise").mkdir()
    (tmp_path / "noise" / "white.yaml").write_text(
        "_target_: tests.test_config_targets.white_noise\nlevel: 0.05\nfixed: false\n")
    (tmp_path / "split").mkdir()
    (tmp_path / "split" / "odd_even.yaml").write_text(
        "name: odd_even\n_target_: tests.test_config_targets.odd_even_split\nn_folds: 2\n")
    (tmp_path / "logger").mkdir()
    (tmp_path / "logger" / "list.yaml").write_text(
        "_target_: tests.test_config_targets.list_logger\nflavour: spicy\n")
    return f"hydra.searchpath=[file://{tmp_path}]"


def test_a_noise_source_and_a_split_from_yaml_files(extra_conf):
    cfg = compose([extra_conf, "noise=white", "split=odd_even", "seed=3"])
    dm = instantiate(cfg.data, verbose=False)
    dm.setup("fit")
    assert CALLS["noise"] == {"sample_rate": 16000, "run_seed": 3, "level": 0.05}
    assert dm.train_bank.names == ["white-train"] and dm.test_bank.names == ["white-test"]
    assert dm.plan.name == "odd_even" and set(dm.blocks.utterance[dm.train_idx] % 2) == {0}


def test_a_tracker_from_a_yaml_file(extra_conf, tmp_path):
    from ser.training.loggers import build_logger

    cfg = compose([extra_conf, "logger=list"])
    logger = build_logger(cfg, tmp_path, "sweep-a")
    assert isinstance(logger, ListLogger)
    assert logger.run == {"run_dir": tmp_path, "run_name": cfg.run_name, "group": "sweep-a",
                          "flavour": "spicy", "has_config": True}
    assert build_logger(compose(["logger=none"]), tmp_path, None) is False


def test_a_target_that_does_not_exist_is_one_clear_error(extra_conf):
    cfg = compose([extra_conf, "noise=white", "noise._target_=tests.nowhere.noise"])
    with pytest.raises(SerError, match="tests.nowhere.noise"):
        instantiate(cfg.data, verbose=False).setup("fit")
