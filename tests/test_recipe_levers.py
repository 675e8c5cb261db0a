"""The recipe's switches beyond the paper: label smoothing, time reversal."""

from __future__ import annotations

import pytest
import torch

from ser.errors import SerError
from ser.features.augment import build_time_reversal


def test_label_smoothing_reaches_the_training_loss():
    from tests.test_recipe import module_for

    module, _ = module_for(["+optim.label_smoothing=0.2"])
    plain, _ = module_for([])
    logits, labels = torch.randn(8, 4), torch.arange(8) % 4
    smoothed = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.2)
    assert torch.allclose(module.loss(logits, labels), smoothed)
    assert torch.allclose(plain.loss(logits, labels), torch.nn.functional.cross_entropy(logits, labels))


def test_time_reversal_plays_a_share_of_the_blocks_backwards():
    clean = torch.arange(24, dtype=torch.float32).view(4, 6)
    assert torch.equal(build_time_reversal(1.0)(clean), clean.flip(-1))
    assert build_time_reversal(0.0) is None and build_time_reversal(None) is None
    torch.manual_seed(0)
    out = build_time_reversal(0.5)(clean.repeat(50, 1))
    flipped = (out == clean.repeat(50, 1).flip(-1)).all(1)
    kept = (out == clean.repeat(50, 1)).all(1)
    assert bool((flipped | kept).all()) and 60 < int(flipped.sum()) < 140   # about half, rows whole
    with pytest.raises(SerError, match="from 0 .off. to 1"):
        build_time_reversal(1.5)


def test_time_reversal_reaches_training_batches_only(monkeypatch):
    from tests.test_recipe import module_for

    module, _ = module_for(["+augment.time_reverse=1.0", "augment.specaugment=null"])
    torch.manual_seed(0)
    clean = torch.randn(2, 16000)
    batch = lambda: {"clean": clean.clone(), "noise": torch.zeros(2, 16000),  # noqa: E731
                     "snr": torch.full((2,), float("inf")), "label": torch.zeros(2, dtype=torch.long)}
    plain = module.on_after_batch_transfer(batch(), 0)   # no trainer: not training
    assert torch.equal(plain["image"], module.render(clean, torch.zeros(2, 16000), torch.full((2,), float("inf"))))
    monkeypatch.setattr(type(module), "trainer", property(lambda self: type("T", (), {"training": True})()))
    monkeypatch.setattr(module, "_trainer", object())
    monkeypatch.setattr(module, "_stage_cache", lambda: None)
    trained = module.on_after_batch_transfer(batch(), 0)
    assert torch.equal(trained["clean"], clean.flip(-1))
    assert torch.equal(trained["image"], module.render(clean.flip(-1), torch.zeros(2, 16000),
                                                       torch.full((2,), float("inf"))))
