"""split.csv rows and the split-plan check of ``evaluate.py sweep=``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from ser.data.blocks import BlockTable
from ser.data.split_file import plan_digest, split_csv
from ser.data.splits import make_split
from ser.data.utterances import Utterance, UtteranceTable
from ser.errors import SerError
from ser.reporting.split_plans import check_split_plans
from ser.reporting.sweep_summary import FinishedRun, RunGroup


def blocks_of(n_utterances: int = 20, per_utterance: int = 3) -> BlockTable:
    classes = ["a", "b"]
    utterances = [Utterance(f"u{i}", f"/data/u{i}.wav", classes[i % 2], f"s{i % 4}", str(i % 4), 3.0)
                  for i in range(n_utterances)]
    table = UtteranceTable("toy", classes, utterances)
    owners = np.repeat(np.arange(n_utterances), per_utterance)
    return BlockTable(audio=np.zeros((len(owners), 4), np.int16), labels=owners % 2,
                      utterance=owners, table=table)


def test_rows_count_each_utterances_blocks_per_part():
    blocks = blocks_of()
    plan = make_split("paper", blocks.labels, blocks.utterance, [u.speaker for u in blocks.table.utterances],
                      [u.session for u in blocks.table.utterances], n_folds=5, test_fraction=0.2, seed=0)
    train, val = plan.fold(1)
    rows = list(csv.DictReader(io.StringIO(split_csv(blocks, {"train": train, "validation": val,
                                                              "test": plan.test_for(1)}))))
    assert {r["part"] for r in rows} == {"train", "validation", "test"}
    assert sum(int(r["blocks"]) for r in rows) == len(blocks)  # every block in exactly one part
    assert {r["id"]: r["speaker"] for r in rows}["u5"] == "s1"
    other = make_split("paper", blocks.labels, blocks.utterance, [""] * 20, [""] * 20, n_folds=5,
                       test_fraction=0.2, seed=1)
    assert plan_digest(plan, blocks) != plan_digest(other, blocks)


def run(path: str, fold: int, plan: str | None, snr: str = "clean") -> FinishedRun:
    record = {"dataset": "demo", "split": "loso", "seed": 0, "fold": fold, "snr": snr,
              "data_fingerprint": {"table_hash": "t"}}
    if plan:
        record["split_plan"] = plan
    return FinishedRun(Path(path), {}, record, {})


def test_runs_of_one_plan_pass_and_a_different_plan_is_refused():
    same = [RunGroup({}, [run("clean/f0", 0, "p1"), run("clean/f1", 1, "p1")], "snr=clean"),
            RunGroup({}, [run("all/f0", 0, "p1", "all"), run("old/f1", 1, None, "all")], "snr=all")]
    check_split_plans(same)  # a run from before split_plan was recorded is not checked
    odd = [RunGroup({}, [run("clean/f0", 0, "p1")], "snr=clean"),
           RunGroup({}, [run("all/f0", 0, "p2", "all")], "snr=all")]
    with pytest.raises(SerError, match="different split plans") as raised:
        check_split_plans(odd)
    assert "all/f0" in str(raised.value) and "split.csv" in str(raised.value)


def test_a_copied_corpus_passes_on_its_split_files_and_a_moved_utterance_does_not(tmp_path):
    """Digests that differ only by the corpus files' times (a copied corpus) are judged by the
    runs' split.csv files: the same parts pass; one utterance in another part is refused."""
    blocks = blocks_of()
    plan = make_split("loso", blocks.labels, blocks.utterance, [u.speaker for u in blocks.table.utterances],
                      [u.session for u in blocks.table.utterances], n_folds=4, seed=0)

    def written(name: str, fold: int, digest: str, move: str | None = None) -> FinishedRun:
        train, val = plan.fold(fold)
        text = split_csv(blocks, {"train": train, "validation": val, "test": plan.test_for(fold)})
        if move:  # one utterance's part changed
            rows = text.splitlines()
            at = next(i for i, r in enumerate(rows) if r.startswith(f"{move},"))
            part = rows[at].split(",")[5]
            rows[at] = rows[at].replace(f",{part},", ",train," if part != "train" else ",test,")
            text = "\n".join(rows) + "\n"
        (tmp_path / name).mkdir()
        (tmp_path / name / "split.csv").write_text(text)
        return FinishedRun(tmp_path / name, {}, {"dataset": "toy", "split": "loso", "seed": 0,
                                                 "fold": fold, "split_plan": digest,
                                                 "data_fingerprint": {"table_hash": "t"}}, {})

    group = [written("f0", 0, "old"), written("f1", 1, "old"), written("f2", 2, "new")]
    check_split_plans([RunGroup({}, group, "snr=all")])
    test_of_fold_0 = next(r.split(",")[0] for r in (tmp_path / "f0" / "split.csv").read_text().splitlines()
                          if r.split(",")[5:6] == ["test"])
    odd = group[:2] + [written("f0b", 0, "new", move=test_of_fold_0)]
    with pytest.raises(SerError, match="different split plans"):
        check_split_plans([RunGroup({}, odd, "snr=all")])
