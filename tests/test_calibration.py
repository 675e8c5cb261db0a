"""Calibration: the metrics against hand-computed values, and fits that recover known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ser.models.calibration import TemperatureScaling, VectorScaling
from ser.models.calibration_metrics import (aurc, brier, calibration_metrics, coverage_at_accuracy,
                                            ece_equal_mass, ece_equal_width, nll, risk_coverage,
                                            threshold_for_accuracy)

# four items, two classes: confidences 0.9, 0.8, 0.6, 0.7; the second and third are wrong
PROBS = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
LABELS = np.array([0, 0, 1, 1])


def test_metrics_against_hand_computed_values():
    # equal width, 10 bins: 0.6 | 0.7 | 0.8 | 0.9 each alone: |0.6-0|+|0.7-1|+|0.8-0|+|0.9-1| over 4
    assert ece_equal_width(PROBS, LABELS, bins=10) == pytest.approx((0.6 + 0.3 + 0.8 + 0.1) / 4)
    # equal mass, 2 bins: {0.6, 0.7} mean conf 0.65, acc 0.5; {0.8, 0.9} mean 0.85, acc 0.5
    assert ece_equal_mass(PROBS, LABELS, bins=2) == pytest.approx((2 * 0.15 + 2 * 0.35) / 4)
    assert nll(PROBS, LABELS) == pytest.approx(-np.log([0.9, 0.2, 0.4, 0.7]).mean())
    assert brier(PROBS, LABELS) == pytest.approx((0.02 + 1.28 + 0.72 + 0.18) / 4)
    # most confident first: 0.9 right, 0.8 wrong, 0.7 right, 0.6 wrong
    coverage, risk = risk_coverage(PROBS, LABELS)
    assert coverage.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert risk == pytest.approx([0.0, 0.5, 1 / 3, 0.5])
    assert aurc(PROBS, LABELS) == pytest.approx((0 + 0.5 + 1 / 3 + 0.5) / 4)
    assert coverage_at_accuracy(PROBS, LABELS, 0.9) == 0.25
    # the model's own threshold: the lowest confidence whose items at or above it reach the level
    assert threshold_for_accuracy(PROBS, LABELS, 0.9) == 0.9
    assert threshold_for_accuracy(PROBS, LABELS, 0.6) == 0.7     # 0.9, 0.8, 0.7: two of three
    assert threshold_for_accuracy(PROBS, LABELS, 0.5) is None    # all four: half right
    assert threshold_for_accuracy(PROBS[[1]], LABELS[[1]], 0.9) > 0.8   # even the top is wrong
    assert coverage_at_accuracy(PROBS, LABELS, 0.5) == 1.0
    assert set(calibration_metrics(torch.tensor(PROBS), torch.tensor(LABELS))) == {
        "ece", "ece_equal_mass", "nll", "brier", "aurc", "coverage_at_90", "mean_confidence"}


def test_tied_confidences_are_answered_together():
    probs = np.array([[0.7, 0.3], [0.7, 0.3], [0.6, 0.4]])
    _, risk = risk_coverage(probs, np.array([0, 1, 0]))
    assert risk == pytest.approx([0.5, 0.5, 1 / 3])


def synthetic(temperature: float, n: int = 20000, classes: int = 4, seed: int = 0):
    """Logits whose labels are drawn from softmax(logits / temperature): that T calibrates them."""
    g = torch.Generator().manual_seed(seed)
    logits = 3.0 * torch.randn(n, classes, generator=g)
    labels = torch.multinomial(torch.softmax(logits / temperature, 1), 1, generator=g).squeeze(1)
    return logits, labels


def test_temperature_fit_recovers_a_known_temperature_and_keeps_the_arg_max():
    logits, labels = synthetic(2.5)
    layer = TemperatureScaling(4)
    before = nll(torch.softmax(logits, 1), labels)
    layer.fit(logits, labels)
    assert float(layer.temperature) == pytest.approx(2.5, rel=0.05) and bool(layer.fitted)
    after = torch.softmax(layer(logits), 1)
    assert nll(after, labels) < before
    assert torch.equal(after.argmax(1), logits.argmax(1))
    assert ece_equal_width(after, labels) < 0.02


def test_vector_scaling_fits_a_per_class_bias():
    logits, labels = synthetic(1.0)
    shifted = logits + torch.tensor([1.5, 0.0, 0.0, -1.0])  # a model biased towards class 0
    layer = VectorScaling(4)
    layer.fit(shifted, labels)
    assert nll(torch.softmax(layer(shifted), 1), labels) < nll(torch.softmax(shifted, 1), labels)
    bias = layer.bias - layer.bias.mean()
    assert float(bias[0] - bias[3]) == pytest.approx(-2.5, abs=0.3)


def test_a_calibration_target_that_is_no_calibrator_is_refused():
    from ser.errors import SerError
    from ser.models.builders import build_calibration

    assert isinstance(build_calibration({"_target_": "ser.models.calibration.VectorScaling"}, 4), VectorScaling)
    assert build_calibration({}, 4) is None
    with pytest.raises(SerError, match="Calibrator protocol"):
        build_calibration({"_target_": "torch.nn.Identity"}, 4)


def test_noise_aware_fit_recovers_a_temperature_that_follows_the_level_spread():
    """Labels drawn from softmax(z / T(s)) with log T = 0.2 + 0.5 u (u: the standardised level
    spread): the fit finds both numbers, and the spread is read off the image's frames."""
    from ser.models.noise_calibration import NoiseAwareScaling, level_spread

    g = torch.Generator().manual_seed(0)
    n, classes = 40_000, 4
    logits = 3 * torch.randn(n, classes, generator=g)
    spread = 0.5 + torch.rand(n, generator=g)
    u = (spread - spread.mean()) / spread.std()
    t = (0.2 + 0.5 * u).exp()
    labels = torch.multinomial(torch.softmax(logits / t[:, None], 1), 1, generator=g).squeeze(1)
    layer = NoiseAwareScaling(classes, l2=0.0)
    layer.fit(logits, labels, spread)
    assert layer.log_temperature.tolist() == pytest.approx([0.2, 0.5], abs=0.05)
    assert layer.scale.tolist() == pytest.approx([1.0] * classes, abs=0.05)
    assert torch.allclose(layer.temperature(spread), t, rtol=0.1)
    # frames of value 0..9 (mean over channels and rows): the 90th minus the 10th percentile
    images = torch.arange(10.0).expand(2, 3, 5, 10).clone()
    images[1] *= 2
    assert level_spread(images).tolist() == pytest.approx([8.0 - 1.0, 16.0 - 2.0])
    # a waveform (the speech encoders' input): the spread of its frames' log amplitude
    wave = torch.ones(2, 1000)
    wave[1, :500] = 0.01
    assert level_spread(wave).tolist() == pytest.approx([0.0, np.log(100.0)], abs=1e-4)


def test_a_run_fits_the_noise_aware_layer_on_noisier_validation_copies(tmp_path):
    """train.py calibration=noise_aware: the fit sees the validation part at its own conditions
    and at fit_snrs (training noise), and run.json gives the NLL per condition."""
    import json

    from tests.conftest import FAST, run_script

    done = run_script("train.py", [*FAST, "logger=none", "calibration=noise_aware",
                                   "trainer.limit_val_batches=1.0", "calibration.fit_snrs=[0]",
                                   f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = json.loads((tmp_path / "run" / "run.json").read_text())
    assert saved["training"]["threads"] and all(n >= 1 for n in saved["training"]["threads"])
    record = saved["calibration"]
    assert record["method"] == "NoiseAwareScaling" and "temperature exp(" in record["fitted"]
    # its own abstention threshold, read off the calibrated validation items, is in the
    # checkpoint that ser-predict, timelines and the server load
    from ser.inference.predictor import load_predictor

    abstain = record["abstain"]
    assert abstain["selective_accuracy"] == 0.9 and 0 < abstain["validation_coverage"] <= 1
    assert load_predictor(tmp_path / "run").min_confidence == abstain["min_confidence"]
    assert "Calibration (NoiseAwareScaling, fitted on" in done.stdout  # what the run says at its end
    conditions = record["validation_nll_by_condition"]["after"]
    assert "0dB" in conditions and "clean" in conditions
    # evaluate.py calibration=... fits that layer now in place of the run's own, with its
    # settings from the command line, into a folder named for both
    done = run_script("evaluate.py", [f"ckpt={tmp_path / 'run'}", "calibration=vector",
                                      "calibration.fit_snrs=[5]"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    [evaluation] = (tmp_path / "run" / "evaluation").glob("*calibration-vector*fit_snrs-5*/evaluation.json")
    refit = json.loads(evaluation.read_text())["calibration"]
    assert refit["method"] == "VectorScaling" and "5dB" in refit["validation_nll_by_condition"]["after"]
