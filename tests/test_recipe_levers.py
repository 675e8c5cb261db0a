"""The recipe's switches beyond the paper: label smoothing."""

from __future__ import annotations

import torch


def test_label_smoothing_reaches_the_training_loss():
    from tests.test_recipe import module_for

    module, _ = module_for(["+optim.label_smoothing=0.2"])
    plain, _ = module_for([])
    logits, labels = torch.randn(8, 4), torch.arange(8) % 4
    smoothed = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.2)
    assert torch.allclose(module.loss(logits, labels), smoothed)
    assert torch.allclose(plain.loss(logits, labels), torch.nn.functional.cross_entropy(logits, labels))
