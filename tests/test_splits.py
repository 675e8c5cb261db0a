import numpy as np
import pytest

from ser.data.splits import SPLITS, check_no_leak, make_split
from ser.errors import SerError


def toy_corpus(n_utt=120, seed=0):
    rng = np.random.default_rng(seed)
    per_utt = rng.integers(1, 6, n_utt)
    utterance = np.repeat(np.arange(n_utt), per_utt)
    utt_label = rng.integers(0, 4, n_utt)
    speakers = [f"{i % 5 + 1}{'FM'[i % 2]}" for i in range(n_utt)]
    sessions = [str(i % 5 + 1) for i in range(n_utt)]
    return utt_label[utterance], utterance, speakers, sessions


@pytest.mark.parametrize("name", SPLITS)
def test_folds_partition_blocks_without_leaks(name):
    labels, utterance, speakers, sessions = toy_corpus()
    plan = make_split(name, labels, utterance, speakers, sessions, seed=3)
    assert len(plan.folds) == 5
    val_union = []
    for k in range(5):
        train, val = plan.fold(k)
        test = plan.test_for(k)
        check_no_leak(name, train, val, test, utterance, speakers)
        assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(len(labels)))
        val_union.append(val)
    if name != "loso":  # the five validation fifths cover the non-test blocks exactly once
        allval = np.concatenate(val_union)
        assert len(allval) == len(set(allval.tolist())) == len(labels) - len(plan.test_for(0))


def test_paper_split_is_stratified_and_seeded():
    labels, utterance, speakers, sessions = toy_corpus()
    a = make_split("paper", labels, utterance, speakers, sessions, seed=1)
    b = make_split("paper", labels, utterance, speakers, sessions, seed=1)
    c = make_split("paper", labels, utterance, speakers, sessions, seed=2)
    assert np.array_equal(a.test_for(0), b.test_for(0)) and np.array_equal(a.fold(2)[1], b.fold(2)[1])
    assert not np.array_equal(a.test_for(0), c.test_for(0))
    share = np.bincount(labels[a.test_for(0)], minlength=4) / np.bincount(labels, minlength=4)
    assert np.allclose(share, 0.2, atol=0.02)


def test_loso_holds_out_one_session_per_fold():
    labels, utterance, speakers, sessions = toy_corpus()
    plan = make_split("loso", labels, utterance, speakers, sessions)
    held = []
    for k in range(5):
        test_sessions = {sessions[u] for u in utterance[plan.test_for(k)]}
        train_sessions = {sessions[u] for u in utterance[plan.fold(k)[0]]}
        assert len(test_sessions) == 1 and not test_sessions & train_sessions
        held += test_sessions
    assert sorted(held) == ["1", "2", "3", "4", "5"]


def test_loso_without_sessions_deals_speakers_into_groups():
    labels, utterance, _, _ = toy_corpus()
    speakers = [f"spk{i % 12}" for i in range(120)]
    plan = make_split("loso", labels, utterance, speakers, [""] * 120)
    for k in range(5):
        check_no_leak("loso", *plan.fold(k), plan.test_for(k), utterance, speakers)


def test_loso_refuses_a_corpus_without_speakers():
    labels, utterance, _, _ = toy_corpus()
    with pytest.raises(SerError, match="speaker"):
        make_split("loso", labels, utterance, ["unknown"] * 120, [""] * 120)


def test_fold_out_of_range_is_a_clear_error():
    labels, utterance, speakers, sessions = toy_corpus()
    plan = make_split("paper", labels, utterance, speakers, sessions)
    with pytest.raises(SerError, match="fold=7.*0..4"):
        plan.fold(7)


def test_planted_leaks_are_caught():
    labels, utterance, speakers, sessions = toy_corpus()
    for name in SPLITS:
        plan = make_split(name, labels, utterance, speakers, sessions)
        train, val = plan.fold(0)
        test = plan.test_for(0)
        with pytest.raises(SerError, match="block"):  # one block on both sides
            check_no_leak(name, np.append(train, test[0]), val, test, utterance, speakers)
    plan = make_split("utterance", labels, utterance, speakers, sessions)
    train, val = plan.fold(0)
    test = plan.test_for(0)
    # move one block of a training utterance into the test set: the utterance now straddles
    moved = train[0]
    with pytest.raises(SerError, match="utterance"):
        check_no_leak("utterance", train[1:], val, np.append(test, moved), utterance, speakers)
    plan = make_split("loso", labels, utterance, speakers, sessions)
    train, val = plan.fold(0)
    test = plan.test_for(0)
    test_spk = speakers[utterance[test[0]]]
    # relabel a training utterance as spoken by a test speaker
    leaked = list(speakers)
    leaked[utterance[train[0]]] = test_spk
    with pytest.raises(SerError, match="speaker"):
        check_no_leak("loso", train, val, test, utterance, leaked)


def test_unknown_split_name():
    labels, utterance, speakers, sessions = toy_corpus()
    with pytest.raises(SerError, match="Unknown split"):
        make_split("random", labels, utterance, speakers, sessions)


def test_loso_deals_single_emotion_speakers_so_every_fold_tests_several_classes():
    # 20 speakers who each voice one emotion (as in corpora of acted or broadcast speech)
    speakers = [f"spk{s}" for s in range(20) for _ in range(6)]
    utt_label = np.array([s % 4 for s in range(20) for _ in range(6)])
    utterance = np.arange(120)
    plan = make_split("loso", utt_label, utterance, speakers, [""] * 120, seed=5)
    for k in range(5):
        classes = set(utt_label[plan.test_for(k)].tolist())
        assert len(classes) == 4, (k, classes)  # a blind deal of speakers often misses classes
        check_no_leak("loso", *plan.fold(k), plan.test_for(k), utterance, speakers)


def _speakers_of(idx, utterance, speakers):
    return {speakers[u] for u in set(utterance[idx].tolist())}


def test_loso_validates_on_speakers_held_out_from_training_and_test():
    labels, utterance, _, _ = toy_corpus(n_utt=400)
    speakers = [f"spk{i % 40}" for i in range(400)]
    plan = make_split("loso", labels, utterance, speakers, [""] * 400)
    assert plan.validation == "speakers"
    for k in range(5):
        train, val = plan.fold(k)
        test = plan.test_for(k)
        check_no_leak("loso", train, val, test, utterance, speakers, plan.validation)
        tr, va, te = (_speakers_of(i, utterance, speakers) for i in (train, val, test))
        assert not tr & va and not va & te and not tr & te
        assert 4 <= len(va) <= 10  # about a fifth of the 32 training-side speakers
        assert set(labels[val].tolist()) == {0, 1, 2, 3}  # the deal balances classes


def test_loso_utterance_validation_is_the_old_speaker_dependent_form_with_the_same_tests():
    labels, utterance, speakers, sessions = toy_corpus()
    new = make_split("loso", labels, utterance, speakers, sessions)
    old = make_split("loso", labels, utterance, speakers, sessions, validation="utterances")
    for k in range(5):
        assert np.array_equal(new.test_for(k), old.test_for(k))
        train, val = old.fold(k)
        assert _speakers_of(val, utterance, speakers) <= _speakers_of(train, utterance, speakers)
    with pytest.raises(SerError, match="both the train and the validation set"):
        check_no_leak("loso", *old.fold(0), old.test_for(0), utterance, speakers, "speakers")


def test_loso_validation_errors_are_clear():
    labels, utterance, speakers, sessions = toy_corpus()
    with pytest.raises(SerError, match="split.validation=voices"):
        make_split("loso", labels, utterance, speakers, sessions, validation="voices")
    one_per_group = [f"s{i % 5}" for i in range(120)]  # 5 speakers: 4 on the training side
    plan = make_split("loso", labels, utterance, one_per_group, [""] * 120)
    assert all(len(_speakers_of(plan.fold(k)[1], utterance, one_per_group)) == 1 for k in range(5))
    two = [f"s{i % 2}" for i in range(120)]  # 2 folds of 1 speaker: one speaker left to train on
    with pytest.raises(SerError, match="split.validation=utterances"):
        make_split("loso", labels, utterance, two, [""] * 120, n_folds=2)


def test_a_saved_loso_config_from_before_split_validation_reads_as_what_it_did():
    from ser.config_upgrade import current_form

    old = {"split": {"name": "loso", "_target_": "ser.data.splits.loso_split", "n_folds": 5},
           "data": {"block_seconds": 1.0, "split": {"name": "loso", "n_folds": 5}}}
    upgraded = current_form(old)
    assert upgraded["split"]["validation"] == "utterances"
    assert upgraded["data"]["split"]["validation"] == "utterances"
    assert "validation" not in old["data"]["split"]  # the caller's dict is left as it was
    paper = current_form({"split": {"name": "paper", "_target_": "ser.data.splits.paper_split"}})
    assert "validation" not in paper["split"]
