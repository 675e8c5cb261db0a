"""Levers measured as no help live in conf/experiment/<lever>.yaml, not in the default files: the
recipe's config does not hold them, the code reads their absence as "off", and
``experiment=<lever>`` switches each on where it acts, as its measurement in docs/results.md did."""

from __future__ import annotations

import inspect
import re

import pytest

from tests.conftest import REPO, compose

# experiment file -> (dotted key it sets, value), as measured in docs/results.md
LEVERS = {
    "label_smoothing": ("optim.label_smoothing", 0.1),
    "time_reverse": ("augment.time_reverse", 0.5),
    "shared_texts_only": ("data.train_texts", "shared"),
}
RESULTS = (REPO / "docs" / "results.md").read_text()


def test_every_lever_file_is_listed_and_every_listed_lever_has_a_file():
    files = {p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml") if not p.stem.startswith("paper_")}
    assert files == set(LEVERS)


@pytest.mark.parametrize("lever", sorted(LEVERS))
def test_a_lever_is_off_by_default_and_its_experiment_sets_it(lever):
    from omegaconf import OmegaConf

    from ser.config_upgrade import REMOVED_KEYS

    key, value = LEVERS[lever]
    group, name = key.split(".")
    assert OmegaConf.select(compose([]), key) is None  # not in the default files
    for option in (REPO / "conf" / group).glob("*.yaml"):
        assert name not in (OmegaConf.load(option) or {}), option
    on = compose([f"experiment={lever}"])
    assert (OmegaConf.to_container(OmegaConf.select(on, key)) if isinstance(value, (dict, list))
            else OmegaConf.select(on, key)) == value
    # the saved form of an old run at "off" is the upgrader's old default for the key
    assert any(path == group and k == name for path, _, k, _ in REMOVED_KEYS)
    # the file says what it measured, where, and the command that reproduces it
    text = (REPO / "conf" / "experiment" / f"{lever}.yaml").read_text()
    assert text.startswith("# @package _global_\n") and "docs/results.md" in text
    assert f"experiment={lever} " in text
    section = re.search(r'docs/results\.md, "([^"]+)"', " ".join(line.lstrip("# ") for line in text.splitlines()))
    assert section and section.group(1) in " ".join(RESULTS.split()), lever


def test_the_code_reads_a_missing_lever_as_off():
    from tests.test_recipe import module_for

    module, cfg = module_for([])
    assert module.label_smoothing == 0 and module.time_reversal is None
    from ser.data.datamodule import EmotionDataModule

    assert inspect.signature(EmotionDataModule).parameters["train_texts"].default == "all"


def test_a_lever_removed_with_its_code_is_in_no_file_and_no_builder():
    """The levers of CODE_REMOVED left conf/ (an experiment file included) and the code that read
    them; the upgrader still drops their old "off" values (tests/test_config_upgrade.py)."""
    from ser.config_upgrade import CODE_REMOVED
    from ser.data.datamodule import EmotionDataModule
    from ser.features.logmel import LogMel

    builders = {"data": EmotionDataModule, "features": LogMel}
    readers = [p for p in (REPO / "ser").rglob("*.py") if p.name != "config_upgrade.py"]
    for dotted in CODE_REMOVED:
        group, key = dotted.split(".")
        assert not (REPO / "conf" / "experiment" / f"{key}.yaml").exists()
        assert not any(re.search(rf"^\s*{key}:", p.read_text(), re.M) for p in (REPO / "conf").rglob("*.yaml")), dotted
        if group in builders:
            assert key not in inspect.signature(builders[group]).parameters
        assert not [p for p in readers if dotted in p.read_text()], dotted  # no code reads it


def test_each_experiment_switches_its_lever_on_where_it_acts():
    from tests.test_recipe import module_for

    assert module_for(["experiment=label_smoothing"])[0].label_smoothing == 0.1
    assert module_for(["experiment=time_reverse"])[0].time_reversal.p == 0.5
    assert compose(["experiment=shared_texts_only"]).data.train_texts == "shared"
    # a key can still be set on the command line with `+`
    assert compose(["+optim.label_smoothing=0.05"]).optim.label_smoothing == 0.05
