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
    "random_offset": ("data.random_offset", True),
    "train_snr_range": ("data.train_snr_range", [0, 30]),
    "mixup_alpha": ("augment.mixup_alpha", 0.2),
    "vtlp": ("augment.vtlp", {"max_warp": 0.1, "max_stretch": 0.1}),
    "deltas": ("features.deltas", True),
    "band_norm": ("features.band_norm", True),
    "pcen": ("features.pcen", True),
    "label_smoothing": ("optim.label_smoothing", 0.1),
    "ema_decay": ("optim.ema_decay", 0.995),
    "speaker_adversary": ("optim.speaker_adversary", {"weight": 0.1}),
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
    from ser.data.datamodule import EmotionDataModule
    from ser.features.logmel import LogMel
    from ser.training.callbacks import weight_ema
    from tests.test_recipe import module_for

    data = inspect.signature(EmotionDataModule).parameters
    assert data["random_offset"].default is False and data["train_snr_range"].default is None
    front = inspect.signature(LogMel).parameters
    assert not any(front[k].default for k in ("deltas", "band_norm", "pcen"))
    module, cfg = module_for([])
    assert module.mixup_alpha == 0 and module.vtlp is None and module.label_smoothing == 0
    assert module.adversary_cfg == {} and module.speaker_adversary is None
    assert cfg.callbacks.weight_ema.decay is None and weight_ema(cfg.callbacks.weight_ema.decay) is None


def test_each_experiment_switches_its_lever_on_where_it_acts():
    import torch
    from hydra.utils import instantiate

    from tests.test_recipe import module_for

    assert module_for(["experiment=mixup_alpha"])[0].mixup_alpha == 0.2
    assert module_for(["experiment=vtlp"])[0].vtlp is not None
    assert module_for(["experiment=label_smoothing"])[0].label_smoothing == 0.1
    assert module_for(["experiment=speaker_adversary"])[0].adversary_cfg == {"weight": 0.1}
    torch.manual_seed(0)
    blocks = torch.randn(2, 16000) * torch.linspace(0.2, 1.0, 16000)
    recipe = module_for([])[0].frontend(blocks)
    assert torch.equal(recipe[:, 1], recipe[:, 0])  # three copies of the log-mel
    images = {lever: module_for([f"experiment={lever}"])[0].frontend(blocks) for lever in ("deltas", "band_norm", "pcen")}
    assert not torch.allclose(images["deltas"][:, 1], images["deltas"][:, 0])  # channel 1: the delta
    assert images["band_norm"][:, 0].mean(dim=-1).abs().max() < 1e-4  # each band's mean removed
    assert not torch.allclose(images["pcen"], recipe, atol=1e-2)
    assert compose(["experiment=ema_decay"]).callbacks.weight_ema.decay == 0.995
    dm = instantiate(compose(["experiment=train_snr_range"]).data, verbose=False)
    assert dm.random_offset and dm.train_snr_range == (0.0, 30.0)
    assert compose(["experiment=train_snr_range"]).trainer.max_steps == 500  # as it was measured
    # levers combine, and a key can still be set on the command line with `+`
    both = compose(["experiment=[random_offset,mixup_alpha]", "+optim.label_smoothing=0.05"])
    assert both.data.random_offset and both.augment.mixup_alpha == 0.2 and both.optim.label_smoothing == 0.05
