"""Images normalised by each speaker's (or recording's) band statistics (data.speaker_norm)."""

from __future__ import annotations

import json

import pytest
import torch

from ser.errors import SerError
from ser.features.group_norm import GroupStatistics, group_keys, grouping_setting
from tests.conftest import FAST, compose


def test_each_group_gets_the_reference_statistics_and_a_speaker_offset_is_removed():
    torch.manual_seed(0)
    base = torch.randn(40, 3, 8, 20) * 0.3
    offset = torch.zeros(40, 1, 8, 1)
    offset[:20, :, 2] = 0.5  # speaker a: band 2 louder in every image
    images = base + offset
    groups = [("a", "clean")] * 20 + [("b", "clean")] * 20
    stats = GroupStatistics()
    stats.add(images[:25], groups[:25])  # added in two batches, as a loader gives them
    stats.add(images[25:], groups[25:])
    norm = stats.finish()
    out = norm(images, groups)
    for rows in (slice(0, 20), slice(20, 40)):
        mean = out[rows].mean(dim=(0, 3))
        std = out[rows].permute(1, 2, 0, 3).reshape(3, 8, -1).std(-1, unbiased=False)
        assert torch.allclose(mean, norm.ref_mean, atol=1e-5)
        assert torch.allclose(std, norm.ref_std, atol=1e-4)
    # band 2 no longer tells the speakers apart
    gap = (out[:20, :, 2].mean() - out[20:, :, 2].mean()).abs()
    assert gap < 1e-4 < (images[:20, :, 2].mean() - images[20:, :, 2].mean()).abs()
    flat = torch.zeros(1, 3, 8, 20)
    single = GroupStatistics()
    single.add(flat, [("c", 0)])
    assert torch.isfinite(single.finish()(flat, [("c", 0)])).all()  # no spread: centred only
    with pytest.raises(SerError, match="no statistics"):
        norm(images[:1], [("z", "clean")])


def test_groups_are_speaker_or_recording_and_condition():
    keys = group_keys("speaker", [0, 1, 2], [float("inf"), 15.0, 15.2], ["s1", "s1", "s2"])
    assert keys == [("s1", "clean"), ("s1", 15), ("s2", 15)]
    assert group_keys("utterance", [4, 4], [0.0, 0.0], []) == [(4, 0), (4, 0)]
    assert grouping_setting(None) is None and grouping_setting("false") is None
    assert grouping_setting("speaker") == "speaker"
    with pytest.raises(SerError, match="data.speaker_norm=voice"):
        grouping_setting("voice")


@pytest.mark.parametrize("grouping", ["speaker", "utterance"])
def test_a_run_normalised_by_group_trains_and_tests_and_inference_refuses_it(tmp_path, grouping):
    from ser.inference.checkpoint_predictor import load_block_classifier
    from ser.training.runner import train

    # every validation batch: the calibration fit's pass holds noisier copies (calibration.fit_snrs)
    # whose groups the fit's own validation never saw
    cfg = compose([*FAST, "split=loso", "logger=none", f"data.speaker_norm={grouping}",
                   "trainer.limit_val_batches=1.0", "+dataset.n_speakers=10", "+dataset.utterances_per_class=2",
                   f"+run_dir={tmp_path / 'run'}", f"dataset.out_dir={tmp_path / 'corpus'}"])
    metrics = train(cfg)
    assert {"clean", "0dB"} <= set(metrics)
    saved = json.loads((tmp_path / "run" / "run.json").read_text())
    assert saved["generalisation"] is not None
    ckpt = sorted((tmp_path / "run" / "checkpoints").glob("*.ckpt"))[0]
    with pytest.raises(SerError, match="data.speaker_norm"):
        load_block_classifier(ckpt)
    if grouping == "speaker":  # a re-test takes the statistics from the rebuilt sets: same figures
        from ser.evaluation.checkpoint_eval import evaluate_checkpoint

        again = evaluate_checkpoint(ckpt, out_dir=tmp_path / "retest", verbose=False)["metrics"]
        assert again["clean"]["ua"] == pytest.approx(metrics["clean"]["ua"])
