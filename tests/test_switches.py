"""Switches that are off in the recipe and that no other test turns on, each checked to still do
what it says: class-weighted loss, balanced sampling, a speech encoder's channel masking (and its
LayerDrop kept off), and the spectrogram previews a tracker gets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.conftest import FAST, compose


class SetupTrainer:
    """What EmotionClassifier.setup reads of its trainer."""

    is_global_zero = True

    def __init__(self, datamodule):
        self.datamodule = datamodule


@pytest.fixture(scope="module")
def imbalance_levers():
    cfg = compose(["data.batch_size=8", "model.pretrained=false", "balanced_sampling=true",
                   "optim.class_weighted=true"])
    dm = instantiate(cfg.data, verbose=False)
    dm.setup("fit")
    return dm, cfg


def test_balanced_sampling_gives_every_class_the_same_share_of_the_draws(imbalance_levers):
    dm, cfg = imbalance_levers
    assert cfg.data.balanced_sampling is True  # the top-level key reaches the data module
    labels = dm.train_dataset().item_labels
    n = len(labels)
    assert len(set(np.bincount(labels))) > 1  # the demo corpus's classes differ in size
    sampler = dm.train_dataloader().sampler
    share = np.bincount(labels, weights=sampler.weights)
    assert np.allclose(share, share[0])
    drawn = np.fromiter(sampler, dtype=np.int64) % n
    assert len(drawn) == n and len(np.unique(drawn)) < n  # drawn with replacement
    dm.balanced_sampling = False
    try:
        plain = dm.train_dataloader().sampler
    finally:
        dm.balanced_sampling = True
    assert plain.weights is None
    assert sorted(np.fromiter(plain, dtype=np.int64) % n) == list(range(n))  # each item once


def test_class_weighted_loss_weighs_each_class_by_its_inverse_frequency(imbalance_levers):
    from ser.models.module import EmotionClassifier

    dm, cfg = imbalance_levers
    default = compose(["model.pretrained=false"])
    losses = {}
    torch.manual_seed(0)
    logits, labels = torch.randn(16, 4), torch.arange(16) % 4
    for name, optim in (("weighted", cfg.optim), ("plain", default.optim)):
        module = EmotionClassifier(dm.classes, cfg.model, optim, cfg.features, augment=cfg.augment)
        module._trainer = SetupTrainer(dm)
        module.setup("fit")
        losses[name] = module.loss(logits, labels)
    counts = torch.as_tensor(dm.train_class_counts, dtype=torch.float32)
    weights = counts.sum() / (len(counts) * counts)
    assert torch.allclose(losses["weighted"], torch.nn.functional.cross_entropy(logits, labels, weight=weights))
    assert torch.allclose(losses["plain"], torch.nn.functional.cross_entropy(logits, labels))
    assert not torch.allclose(losses["weighted"], losses["plain"])


@pytest.mark.parametrize("family", ["wavlm", "wav2vec2"])
def test_mask_feature_prob_masks_channels_and_layerdrop_stays_off(family, tmp_path):
    pytest.importorskip("transformers")
    from ser.configs import plain
    from ser.models.builders import build_network
    from ser.models.speech_encoders import FAMILIES
    from tests.test_speech_encoders import save_tiny

    folder = save_tiny(family, tmp_path / family)
    assert FAMILIES[family].classes()[0].from_pretrained(folder).layerdrop == 0.1  # the checkpoint's
    nets = {}
    for prob in (0.5, None):  # None: the checkpoint's, which masks no channel
        cfg = compose([f"model={family}", f"model.pretrained={folder}", "model.trainable_from=encoder",
                       "model.mask_time_prob=0", f"model.mask_feature_prob={'null' if prob is None else prob}"])
        assert "layerdrop" not in cfg.model
        nets[prob] = build_network(plain(cfg.model), 4).train()
    frames = torch.ones(2, 49, 32)
    masked = nets[0.5].encoder._mask_hidden_states(frames.clone())
    channels = (masked == 0).all(dim=1)  # (B, D): channels zeroed in every frame
    assert channels.any() and (masked == channels[:, None, :].logical_not().float()).all()
    assert torch.equal(nets[None].encoder._mask_hidden_states(frames.clone()), frames)
    # LayerDrop off whatever the checkpoint says: in training every step sees every layer
    net = nets[0.5]
    assert net.encoder.config.layerdrop == 0.0
    blocks = torch.randn(2, 16000)
    for _ in range(5):
        assert net.layer_states(net.trunk(blocks)).shape[1] == net.encoder.config.num_hidden_layers + 1


PREVIEWS: list[tuple[str, int, list[str]]] = []


def image_logger(run_dir, **run):
    """A tracker that records the spectrogram previews it is given (conf/logger/*.yaml's
    ``_target_`` form; the W&B file's own keys arrive in ``run`` and are not needed)."""
    from pytorch_lightning.loggers import CSVLogger

    class ImageLogger(CSVLogger):
        def log_image(self, key, images, caption=None, **kwargs):
            PREVIEWS.append((key, len(images), list(caption or [])))

    return ImageLogger(save_dir=str(run_dir), name="csv", version="")


def test_log_images_sets_how_many_blocks_the_tracker_sees_as_spectrograms(tmp_path):
    from ser.training.runner import train

    assert compose(["logger=wandb"]).logger.log_images == 4
    PREVIEWS.clear()
    cfg = compose([*FAST, "logger=wandb", "logger._target_=tests.test_switches.image_logger",
                   "logger.log_images=2", f"+run_dir={tmp_path / 'run'}"])
    assert "clean" in train(cfg)
    [(key, count, captions)] = PREVIEWS
    assert key == "spectrograms" and count == 4  # 2 validation blocks, clean and at 15 dB
    assert sum(c.endswith("clean") for c in captions) == 2 and sum(c.endswith("15 dB") for c in captions) == 2
    assert OmegaConf.select(compose(["logger=csv"]), "logger.log_images") is None  # csv: no previews
