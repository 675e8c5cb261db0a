"""The recommended recipe's parts: front-end, fine-tuning depth, optimisers, schedules, augmentation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from ser.features.augment import SpecAugment
from ser.features.logmel import LogMel
from ser.models.module import EmotionClassifier
from ser.models.optimizers import build_optimizer
from ser.training.schedules import warmup_cosine
from tests.conftest import compose


def module_for(overrides: list[str]) -> tuple[EmotionClassifier, object]:
    cfg = compose(["model.pretrained=false", *overrides])
    return EmotionClassifier(["a", "b", "c", "d"], cfg.model, cfg.optim, cfg.features,
                             augment=cfg.augment), cfg


def test_logmel_shape_range_and_gain_invariance():
    torch.manual_seed(0)
    blocks = torch.randn(3, 16000) * torch.linspace(0, 1, 16000)
    front = LogMel(n_mels=64)
    image = front(blocks)
    assert image.shape == (3, 3, 64, 101) and image.dtype == torch.float32
    assert image.min() >= -1.0 - 1e-6 and image.max() <= 1.0 + 1e-6
    assert torch.allclose(front(blocks * 0.01), image, atol=1e-4)  # peak-normalised, dB re max
    assert torch.equal(image[:, 1], image[:, 0]) and torch.equal(image[:, 2], image[:, 0])
    assert LogMel(n_mels=64, image_size=(96, 96))(blocks).shape == (3, 3, 96, 96)
    assert front.picture(blocks).shape == (3, 64, 101, 3)


@pytest.mark.parametrize("rate,n_fft,n_mels,f_min,f_max", [(16000, 512, 128, 50.0, None),
                                                            (16000, 400, 64, 0.0, 7600.0),
                                                            (44100, 2048, 40, 20.0, None)])
def test_mel_filters_are_librosas_without_importing_it(rate, n_fft, n_mels, f_min, f_max):
    import librosa

    from ser.features.logmel import mel_filterbank

    want = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max)
    got = mel_filterbank(rate, n_fft, n_mels, f_min, f_max)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert float(abs(got - want).max()) <= 1e-7 * float(abs(want).max())


def test_any_front_end_class_is_built_from_its_target():
    from ser.models.builders import build_frontend

    assert isinstance(build_frontend({"_target_": "torch.nn.Identity"}, channels_last=True), torch.nn.Identity)
    assert build_frontend({"_target_": "ser.features.logmel.LogMel", "n_mels": 32}, True).channels_last


@pytest.mark.parametrize("trainable_from, frozen_params", [("conv_stem", 0), ("blocks.5", None)])
def test_trainable_from_names_any_stage_including_the_whole_network(trainable_from, frozen_params):
    module, _ = module_for([f"model.trainable_from={trainable_from}", "features.n_mels=32"])
    module.train()
    module(torch.randn(2, 3, 32, 101)).sum().backward()
    net = module.net
    frozen = list(net.frozen.parameters())
    assert all(not p.requires_grad and p.grad is None for p in frozen)
    assert all(p.grad is not None for p in net.finetune.parameters())
    if frozen_params is not None:
        assert len(frozen) == frozen_params and next(iter(net.finetune.named_children()))[0] == "conv_stem"
    else:
        assert [n for n, _ in net.finetune.named_children()][0] == "blocks_5" and frozen


def test_layer_decay_scales_each_stage_below_the_top():
    module, cfg = module_for(["model.trainable_from=blocks.4", "optim.layer_decay=0.5", "optim.lr=0.001"])
    groups = {g["name"].removesuffix(".no_decay"): g["initial_lr"]  # before the warm-up's factor
              for g in build_optimizer(module.net, cfg.optim, 100)["optimizer"].param_groups}
    stages = [n for n, m in module.net.finetune.named_children() if any(True for _ in m.parameters())]
    top = stages[-1]
    assert groups[f"finetune.{top}"] == pytest.approx(0.001)
    assert groups[f"finetune.{stages[0]}"] == pytest.approx(0.001 * 0.5 ** (len(stages) - 1))
    assert groups["head_weight"] == cfg.optim.head_weight_lr


def test_adamw_without_decay_on_biases_and_norms():
    module, cfg = module_for(["optim=adamw"])
    opt = build_optimizer(module.net, cfg.optim, 100)["optimizer"]
    assert isinstance(opt, torch.optim.AdamW)
    for g in opt.param_groups:
        if g["name"].endswith("no_decay") or g["name"] == "head_bias":
            assert g["weight_decay"] == 0.0 and all(p.ndim <= 1 for p in g["params"])
        else:
            assert g["weight_decay"] == cfg.optim.optimizer.weight_decay


def test_a_new_optimiser_and_scheduler_are_config_only():
    module, cfg = module_for(["optim=sgd", "+optim.optimizer.nesterov=true",
                              "optim.scheduler._target_=torch.optim.lr_scheduler.ExponentialLR",
                              "~optim.scheduler.step_size", "optim.scheduler.gamma=0.5"])
    answer = build_optimizer(module.net, cfg.optim, 10)
    assert answer["optimizer"].defaults["nesterov"] is True
    assert isinstance(answer["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.ExponentialLR)


def test_warmup_cosine_learning_rate_at_given_steps():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = warmup_cosine(opt, total_steps=110, warmup_steps=10, final_ratio=0.0)
    lrs = []
    for _ in range(110):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1 / 11) and lrs[9] == pytest.approx(10 / 11)
    assert lrs[10] == pytest.approx(1.0)                                   # peak after warm-up
    assert lrs[60] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))  # half-way: 0.5
    assert lrs[109] < 0.001 and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    fraction = warmup_cosine(torch.optim.SGD([p], lr=1.0), total_steps=200, warmup_steps=0.1)
    assert fraction.lr_lambdas[0](19) < 1.0 and fraction.lr_lambdas[0](20) == pytest.approx(1.0)  # 20 = 0.1 x 200


def test_specaugment_masks_are_bands_within_their_widths():
    torch.manual_seed(1)
    spec = SpecAugment(freq_masks=1, freq_width=0.25, time_masks=1, time_width=0.1)
    images = spec(torch.ones(64, 3, 40, 100))
    zero = images[:, 0] == 0
    assert torch.equal(images[:, 0] == 0, images[:, 2] == 0)       # same mask in every channel
    rows = zero.all(dim=2)          # whole rows zeroed: the frequency band
    cols = zero.all(dim=1)          # whole columns zeroed: the time band
    assert rows.sum(1).max() <= 10 and cols.sum(1).max() <= 10     # 0.25 * 40, 0.1 * 100
    assert rows.sum() > 0 and cols.sum() > 0
    for r in rows:                  # one contiguous band per image
        idx = r.nonzero().flatten()
        assert len(idx) == 0 or (idx[-1] - idx[0] + 1) == len(idx)
    assert torch.equal(zero, rows.unsqueeze(2) | cols.unsqueeze(1))  # nothing else masked


def test_paper_experiments_keep_table_4():
    cfg = compose(["experiment=paper_table5"])
    module = EmotionClassifier(["a", "b", "c", "d"], {**cfg.model, "pretrained": False}, cfg.optim,
                               cfg.features, augment=cfg.augment)
    answer = build_optimizer(module.net, cfg.optim, 10)
    opt, sched = answer["optimizer"], answer["lr_scheduler"]
    assert isinstance(opt, torch.optim.SGD) and answer["lr_scheduler"]["interval"] == "epoch"
    assert {g["name"]: g["lr"] for g in opt.param_groups} == {"finetune": 4e-4, "head_weight": 0.01,
                                                             "head_bias": 0.01}
    assert all(g["momentum"] == 0.9 and g["weight_decay"] == 4e-4 for g in opt.param_groups)
    assert sched["scheduler"].step_size == 2 and sched["scheduler"].gamma == 0.2
    assert cfg.trainer.max_epochs == 6 and cfg.data.batch_size == 128 and cfg.select.patience is None
    assert cfg.model.trainable_from == "features.10" and cfg.features._target_.endswith("SpectrogramImage")
    assert module.specaugment is None


class ScriptedValidation(pl.LightningModule):
    """One weight that grows every step; validation UA follows a script, so the best state is known."""

    def __init__(self, script: list[float]):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.script, self.rounds, self.tested_w = script, 0, None

    def training_step(self, batch, batch_idx):
        return (self.w - 1e3).square().sum()  # SGD moves w on every step

    def validation_step(self, batch, batch_idx):
        pass

    def on_validation_epoch_end(self):
        self.log("val/ua", self.script[min(self.rounds, len(self.script) - 1)])
        self.rounds += 1

    def test_step(self, batch, batch_idx):
        self.tested_w = float(self.w)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)

    def _loader(self, n):
        return torch.utils.data.DataLoader(torch.zeros(n, 1), batch_size=1)

    def train_dataloader(self):
        return self._loader(3)       # 3 steps an epoch: validation crosses epoch boundaries

    def val_dataloader(self):
        return self._loader(1)

    def test_dataloader(self):
        return self._loader(1)


def test_early_stopping_tests_the_best_checkpoint_not_the_last(tmp_path):
    """Validation every 2 steps scores 0.5, 0.9, 0.4, 0.3, ...: with patience 2 the run stops at
    step 8 of 40, and the test sees the weights of step 4 (the 0.9), not those of step 8."""
    from omegaconf import OmegaConf

    from ser.training.callbacks import build_callbacks
    from ser.training.runner import step_budget

    trainer_cfg = step_budget(OmegaConf.create({"max_steps": 40, "val_check_interval": 2,
                                                "check_val_every_n_epoch": None}))
    cfg = compose(["select.monitor=val/ua", "select.mode=max", "select.patience=2"])
    callbacks = build_callbacks(cfg.callbacks, tmp_path / "checkpoints", trainer_cfg, has_tracker=False)
    best, last, stop = callbacks.best, callbacks.last, callbacks.stop
    assert not any(isinstance(c, pl.callbacks.LearningRateMonitor) for c in callbacks.all)
    trainer = pl.Trainer(max_steps=40, max_epochs=-1, val_check_interval=2, check_val_every_n_epoch=None,
                         callbacks=callbacks.all, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu",
                         default_root_dir=str(tmp_path))
    model = ScriptedValidation([0.5, 0.9, 0.4, 0.3, 0.2, 0.1])
    trainer.fit(model)
    assert trainer.global_step == 8 and stop.stopped_epoch > 0
    assert Path(best.best_model_path).name == "best-step4-ua0.9000.ckpt"
    at_best = torch.load(best.best_model_path, map_location="cpu", weights_only=False)
    final_w = float(model.w.detach())
    trainer.test(model, ckpt_path="best", verbose=False)
    assert model.tested_w == pytest.approx(float(at_best["state_dict"]["w"]))
    assert model.tested_w < final_w - 1e-3  # w grows every step: step 4's is smaller than step 8's
    assert torch.load(last.dirpath + "/last.ckpt", map_location="cpu", weights_only=False)["global_step"] == 8


def test_callbacks_come_from_their_config_group(tmp_path):
    from pytorch_lightning.callbacks import LearningRateMonitor, Timer

    from ser.errors import SerError
    from ser.training.callbacks import build_callbacks
    from ser.training.runner import step_budget

    cfg = compose(["callbacks.memory=null", "+callbacks.timer._target_=pytorch_lightning.callbacks.Timer"])
    built = build_callbacks(cfg.callbacks, tmp_path, step_budget(cfg.trainer), has_tracker=True)
    assert built.memory is None and built.stop is not None
    assert {type(c) for c in built.others} == {Timer, LearningRateMonitor}
    assert built.last._every_n_train_steps == cfg.trainer.val_check_interval  # at each validation
    cfg = compose(["select.patience=null", "callbacks.last_checkpoint.every_n_steps=7"])
    built = build_callbacks(cfg.callbacks, tmp_path, step_budget(cfg.trainer), has_tracker=False)
    assert built.stop is None and built.last._every_n_train_steps == 7
    with pytest.raises(SerError, match="callbacks.best_checkpoint"):
        build_callbacks({"memory": cfg.callbacks.memory}, tmp_path, cfg.trainer, has_tracker=False)


def test_step_budget_validates_short_runs():
    from omegaconf import OmegaConf

    from ser.training.runner import step_budget

    short = step_budget(OmegaConf.create({"max_steps": 30, "val_check_interval": 100}))
    assert short.val_check_interval == 30
    assert step_budget(OmegaConf.create({"max_steps": 500, "val_check_interval": 100})).val_check_interval == 100


def test_demo_corpus_has_its_own_short_budget_and_the_command_line_wins():
    assert compose([]).trainer.max_steps == 200  # dataset=demo picks trainer=demo
    assert compose(["dataset=manifest"]).trainer.max_steps == 1500
    assert compose(["trainer=default"]).trainer.max_steps == 1500
    assert compose(["trainer=epochs"]).trainer.max_epochs == 6
    assert compose(["trainer.max_steps=50"]).trainer.max_steps == 50
