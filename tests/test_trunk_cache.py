"""The frozen-trunk cache: the same metrics as recomputing, only when inputs repeat, bounded."""

import json
import os
import subprocess
import sys

import pytest
import torch

from ser.models.trunk_cache import TrunkCache, trunk_cache_reason
from tests.conftest import compose

# The paper's frozen split on a small, fast network: EfficientNet-Lite0 up to blocks.5 frozen,
# log-mel inputs, clean training (inputs repeat), three full epochs of a tiny demo corpus.
CACHED_RUN = ["model.pretrained=false", "model.trainable_from=blocks.5", "augment=none", "snr=clean",
              "trainer=epochs", "trainer.max_epochs=3", "trainer.limit_test_batches=2",
              "data.batch_size=16", "trainer.enable_progress_bar=false", "logger=none",
              "+dataset.n_speakers=4", "+dataset.utterances_per_class=3",
              "select.patience=null"]


def _train(tmp_path, name, extra):
    from ser.training.runner import train

    cfg = compose([*CACHED_RUN, *extra, f"+run_dir={tmp_path / name}",
                   f"dataset.out_dir={tmp_path / 'corpus'}"])
    metrics = train(cfg)
    record = json.loads((tmp_path / name / "run.json").read_text())
    return metrics, record["training"]["trunk_cache"]


def test_cached_trunk_gives_the_metrics_of_recomputing_it(tmp_path):
    torch.use_deterministic_algorithms(False)
    plain, plain_report = _train(tmp_path, "plain", ["trunk_cache.enabled=false"])
    cached, report = _train(tmp_path, "cached", ["trunk_cache.enabled=auto"])
    assert plain_report == {}
    # epochs 2 and 3 came from the cache, and so did validation after the first check
    assert report["training"]["batches_from_cache"] > 0 and report["validation"]["batches_from_cache"] > 0
    assert report["training"]["batches_computed"] > 0
    assert cached == plain


def test_cache_is_off_when_inputs_change_every_epoch(tmp_path):
    assert trunk_cache_reason(True, repeats=True, augments=False) is None
    assert "afresh" in trunk_cache_reason(True, repeats=False, augments=False)
    assert "augment" in trunk_cache_reason(True, repeats=True, augments=True)
    assert "frozen" in trunk_cache_reason(False, repeats=True, augments=False)
    _, report = _train(tmp_path, "noisy", ["snr=15", "trainer.max_epochs=1"])
    assert set(report) == {"validation"}  # fresh noise: training recomputes, validation still cached


@pytest.mark.parametrize("ram_gb, disk_gb, where", [(1.0, 0.0, "RAM"), (0.0, 1.0, "memory-mapped"),
                                                    (0.0, 0.0, "off")])
def test_store_stays_within_its_bounds(tmp_path, ram_gb, disk_gb, where):
    cache = TrunkCache(10, max_ram_gb=ram_gb, max_disk_gb=disk_gb, spill_dir=tmp_path)
    features = torch.arange(4 * 6, dtype=torch.float32).view(4, 2, 3)
    items = torch.tensor([7, 1, 3, 1])  # a padded batch repeats an item: the first copy is kept
    assert not cache.holds(items)
    cache.store(items, features)
    assert where in cache.where
    if where == "off":
        assert not cache.holds(items)
        return
    assert cache.holds(torch.tensor([1, 3, 7])) and not cache.holds(torch.tensor([1, 2]))
    assert torch.equal(cache.lookup(torch.tensor([3, 7]), torch.device("cpu")), features[[2, 0]])
    assert torch.equal(cache.lookup(torch.tensor([1]), torch.device("cpu")), features[[1]])
    cache.close()
    assert not list(tmp_path.iterdir())  # the memory-mapped file goes with the cache


def test_frozen_layers_in_chunks_give_the_whole_batch_output():
    from ser.models.backbones import build_backbone

    torch.manual_seed(0)
    images = torch.randn(10, 3, 64, 64)
    chunked = build_backbone("efficientnet_lite0", 4, False, "blocks.5", trunk_chunk=3)
    whole = build_backbone("efficientnet_lite0", 4, False, "blocks.5", trunk_chunk=0)
    whole.load_state_dict(chunked.state_dict())
    chunked.train(), whole.train()  # frozen layers stay in eval mode either way
    assert torch.allclose(chunked.trunk(images), whole.trunk(images), rtol=1e-4, atol=1e-4)


def test_allocator_keeps_large_blocks_unless_told_not_to():
    from ser.allocator import configure_allocator

    if not sys.platform.startswith("linux"):
        pytest.skip("mallopt is glibc's")
    assert configure_allocator() == {"M_MMAP_MAX": 0, "M_TRIM_THRESHOLD": 1 << 30}
    code = "import ser.allocator as a; print(a.configure_allocator())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, SER_MALLOC="default"), check=True).stdout
    assert out.strip() == "{}"
