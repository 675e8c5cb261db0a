import math

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from ser.data.block_dataset import CLEAN
from ser.errors import SerError
from ser.models.module import EmotionClassifier
from tests.conftest import SHARED_DATA, compose
from tests.fake_corpora import make_fake_iemocap


def datamodule(overrides, verbose=False):
    cfg = compose(["data.batch_size=8", *overrides])
    dm = instantiate(cfg.data, verbose=verbose)
    dm.setup("fit")
    return dm, cfg


@pytest.fixture(scope="module")
def demo():
    return datamodule([])


def test_demo_batches_hold_raw_blocks_noise_and_snr(demo):
    dm, cfg = demo
    batch = next(iter(dm.train_dataloader()))
    assert batch["clean"].shape == (8, 16000) and batch["noise"].shape == (8, 16000)
    assert batch["clean"].dtype == torch.float32 and batch["label"].dtype == torch.int64
    assert set(batch["snr"].tolist()) <= {math.inf, 15.0, 20.0, 40.0}
    ds = dm.train_dataset()
    assert len(ds) == 4 * len(dm.train_idx)  # clean + a copy at each of 15, 20, 40 dB
    assert dm.test_set_names == ["clean", "0dB", "5dB", "10dB", "15dB", "20dB", "40dB"]
    module = EmotionClassifier(dm.classes, compose(["model.pretrained=false"]).model, cfg.optim, cfg.features)
    out = module.on_after_batch_transfer(batch, 0)
    assert out["image"].shape == (8, 3, 64, 101) and torch.isfinite(out["image"]).all()  # log-mel
    # the validation part's noise is held out from training (noise.validation_fraction)
    assert dm.val_dataset().bank is dm.val_bank and dm.train_dataset().bank is dm.train_bank
    assert dm.val_bank is not dm.train_bank and set(dm.val_bank.names).isdisjoint(dm.train_bank.names)
    assert "(validation)" in dm.describe()


def test_training_noise_is_fresh_each_epoch_unless_fixed(demo):
    dm, _ = demo
    ds = dm.train_dataset()
    noisy = len(dm.train_idx) + 3  # an item of the first noisy copy
    first, again, next_epoch = ds[noisy], ds[noisy], ds[len(ds) + noisy]
    assert first["snr"] == 15.0
    assert torch.equal(first["noise"], again["noise"])           # same epoch: same draw
    assert not torch.equal(first["noise"], next_epoch["noise"])  # next epoch: fresh noise
    assert torch.equal(first["clean"], next_epoch["clean"])
    dm.noise_cfg.fixed = True
    fixed = dm.train_dataset()
    assert torch.equal(fixed[noisy]["noise"], fixed[len(fixed) + noisy]["noise"])
    dm.noise_cfg.fixed = False


def test_test_sets_are_the_same_in_every_run_of_a_seed(demo):
    dm, _ = demo
    other, _ = datamodule(["fold=3"])          # another fold: the test sets do not move
    seeded, _ = datamodule(["seed=1"])
    for a, b in zip(dm.test_datasets(), other.test_datasets()):
        assert np.array_equal(a.blocks, b.blocks)
        assert torch.equal(a[5]["noise"], b[5]["noise"]) and a[5]["snr"] == b[5]["snr"]
    # one noise segment per test block, at every SNR: the sets differ only in level
    sets = dm.test_datasets()
    assert sets[0][5]["snr"] == CLEAN and torch.equal(sets[1][5]["noise"], sets[3][5]["noise"])
    assert not np.array_equal(dm.test_idx, seeded.test_idx)


def test_setup_prints_counts_like_the_papers_tables(capsys):
    dm, _ = datamodule([], verbose=True)
    out = capsys.readouterr().out
    for name in dm.classes + ["Total", "Utterances", "Blocks", "Training examples", "split=loso"]:
        assert name in out
    total = len(dm.blocks.labels)
    assert f"{total:,}" in out and "15 dB, 20 dB, 40 dB" in out


def test_fake_iemocap_through_the_data_module(tmp_path, capsys):
    fake = make_fake_iemocap(tmp_path, undecodable=1)
    dm, _ = datamodule(["dataset=ahsn", f"dataset.root={fake.root}", "snr=clean", "split=loso"],
                       verbose=True)
    expected = fake.expected("ahsn", states=("ok",))
    per_class = {c: sum(int(u.duration) for u, k in expected if k == c) for c in dm.classes}
    assert dm.classes == ["anger", "happy", "sad", "neutral"]
    assert np.bincount(dm.blocks.labels, minlength=4).tolist() == [per_class[c] for c in dm.classes]
    out = capsys.readouterr().out
    assert "Skipped 1 file" in out
    # loso on IEMOCAP: the held-out session's speakers are not trained on
    speakers = {dm.table.utterances[u].session for u in dm.blocks.utterance[dm.test_idx]}
    assert len(speakers) == 1


def test_missing_iemocap_root_is_one_clear_error(tmp_path):
    with pytest.raises(SerError, match="dataset.root"):
        datamodule(["dataset=ahsn", "dataset.root=null"])
    with pytest.raises(SerError, match=str(tmp_path / "nowhere")):
        datamodule(["dataset=ahsn", f"dataset.root={tmp_path / 'nowhere'}"])


@pytest.mark.skipif(not (SHARED_DATA / "urdu" / "manifest.csv").is_file(),
                    reason="../shared/data is not here; the fake-corpus tests cover this path")
def test_manifest_corpus_with_real_noise_folder(tmp_path):
    dm, _ = datamodule(["dataset=manifest", f"dataset.manifest={SHARED_DATA / 'urdu' / 'manifest.csv'}",
                        "noise=dir", f"noise.root={SHARED_DATA / 'noise'}", "split=loso"])
    assert dm.classes == ["angry", "happy", "neutral", "sad"]
    assert len(dm.table) == 400
    train_names = set(dm.train_bank.names)
    assert train_names and not train_names & set(dm.test_bank.names)


def test_each_fold_draws_its_own_noise_files_with_per_fold(tmp_path):
    """noise.per_fold (noise=dir's default): a fold's test, validation and training files come
    from a draw of its own, the same in every run of that seed and fold; per_fold=false keeps
    one draw for every fold, as runs saved before it did."""
    from tests.test_noise import write_tones

    write_tones(tmp_path / "noise", [1.0 + 0.1 * i for i in range(20)])
    base = ["noise=dir", f"noise.root={tmp_path / 'noise'}", f"paths.cache_dir={tmp_path / 'cache'}"]

    def banks(*extra):
        dm, _ = datamodule([*base, *extra])
        assert set(dm.test_bank.names).isdisjoint(dm.train_bank.names)
        assert set(dm.val_bank.names).isdisjoint(set(dm.train_bank.names) | set(dm.test_bank.names))
        return tuple(sorted(dm.test_bank.names)), tuple(sorted(dm.val_bank.names))

    per_fold = [banks(f"fold={k}") for k in range(3)]
    assert len(set(per_fold)) == 3                        # three folds, three draws
    assert banks("fold=1") == per_fold[1]                 # and each the same again
    one_draw = {banks(f"fold={k}", "noise.per_fold=false") for k in range(3)}
    assert len(one_draw) == 1
