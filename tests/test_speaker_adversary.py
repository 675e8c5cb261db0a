"""The adversarial speaker head: reversed gradients, its schedule, and a run that uses it."""

from __future__ import annotations

import json

import pytest
import torch

from ser.errors import SerError
from ser.models.speaker_adversary import SpeakerAdversary, ramp, reverse_gradient, speaker_index
from tests.conftest import FAST, compose


def test_gradient_reversal_is_identity_forward_and_negated_backward():
    x = torch.randn(3, 5, requires_grad=True)
    y = reverse_gradient(x, 0.5)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, -0.5))


def test_the_ramp_starts_at_zero_and_reaches_the_weight():
    assert ramp(0.0, 0.3) == 0.0
    assert ramp(1.0, 0.3) == pytest.approx(0.3, abs=1e-4)
    assert 0.0 < ramp(0.1, 0.3) < ramp(0.3, 0.3) < 0.3


def test_the_head_learns_speakers_while_the_embedding_is_pushed_away_from_them():
    torch.manual_seed(0)
    head = SpeakerAdversary(dim=8, n_speakers=2, weight=1.0, hidden=0, dropout=0.0)
    embedding = torch.randn(64, 8, requires_grad=True)
    speakers = (embedding[:, 0] > 0).long().detach()
    loss = torch.nn.functional.cross_entropy(head(embedding, progress=1.0), speakers)
    loss.backward()
    w = head.classify[-1].weight
    # the head descends its loss; the embedding's gradient is the reverse of descending it
    plain = torch.autograd.grad(torch.nn.functional.cross_entropy(
        head.classify(embedding), speakers), embedding)[0]
    assert w.grad is not None and w.grad.abs().sum() > 0
    assert torch.allclose(embedding.grad, -ramp(1.0, 1.0) * plain, atol=1e-6)
    with pytest.raises(SerError, match="at least 2 training speakers"):
        SpeakerAdversary(dim=8, n_speakers=1)


def test_speaker_numbers_cover_the_training_speakers_only():
    index, names = speaker_index(["b", "a", "c", "a"], {0, 1, 3})
    assert names == ["a", "b"] and index.tolist() == [1, 0, -1, 0]


def test_a_run_with_the_adversary_trains_records_and_reloads_it(tmp_path):
    from ser.models.module import EmotionClassifier
    from ser.training.runner import train

    cfg = compose([*FAST, "split=loso", "logger=none", "+optim.speaker_adversary={weight: 0.1}",
                   "+augment.vtlp={max_warp: 0.1, max_stretch: 0.05}", "+dataset.n_speakers=10",
                   "+dataset.utterances_per_class=2", f"+run_dir={tmp_path / 'run'}",
                   f"dataset.out_dir={tmp_path / 'corpus'}"])
    metrics = train(cfg)
    assert "clean" in metrics
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["generalisation"]["validation"] == "speakers"
    ckpt = sorted((tmp_path / "run" / "checkpoints").glob("*.ckpt"))[0]
    model = EmotionClassifier.load_from_checkpoint(ckpt, map_location="cpu")
    assert model.speaker_adversary is not None  # the head's size travels in the checkpoint
    assert model.hparams.optim["speaker_adversary"]["n_speakers"] == 6  # 8 train-side, 2 validate

