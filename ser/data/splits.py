"""Test set and cross-validation folds for the three protocols, and the leak check.

Blocks are cut before splitting (the paper's protocol), so ``paper`` splits single blocks and lets
an utterance's, and a speaker's, blocks sit on both sides; ``utterance`` keeps each utterance on
one side and ``loso`` each session (IEMOCAP) or speaker group (other corpora).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ser.errors import SerError

SPLITS = ("paper", "utterance", "loso")
SPLIT_CAVEAT = ("split=paper splits single 1-s blocks, so one speaker's and one utterance's blocks can sit "
                "on both sides of train/test (optimistic figures); quote split=loso against the literature.")


@dataclass
class SplitPlan:
    """Block indices of each fold's train, validation and test parts.

    For ``paper`` and ``utterance`` every fold shares one test set; in leave-one-group-out the
    test set moves with the fold.
    """

    name: str
    folds: list[tuple[np.ndarray, np.ndarray]]
    tests: list[np.ndarray]
    # what the validation part holds: "utterances" of the training speakers (paper, utterance,
    # loso's old form) or whole "speakers" held out from training (loso's default)
    validation: str = "utterances"

    def test_for(self, k: int) -> np.ndarray:
        self.fold(k)
        return self.tests[k]

    def fold(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= k < len(self.folds):
            raise SerError(f"fold={k} is outside split={self.name}'s range: it has {len(self.folds)} "
                           f"folds, numbered 0..{len(self.folds) - 1}.")
        return self.folds[k]


def _stratified_parts(items: np.ndarray, labels: np.ndarray, n_parts: int,
                      rng: np.random.Generator) -> list[np.ndarray]:
    """Deal each class's items, shuffled, into ``n_parts`` near-equal parts."""
    parts: list[list[np.ndarray]] = [[] for _ in range(n_parts)]
    offset = 0
    for c in np.unique(labels):
        members = rng.permutation(items[labels == c])
        # rotate the start so small classes do not always leave the last parts short
        for j, chunk in enumerate(np.array_split(members, n_parts)):
            parts[(j + offset) % n_parts].append(chunk)
        offset += 1
    return [np.sort(np.concatenate(p)) if p else np.empty(0, dtype=np.int64) for p in parts]


def _stratified_holdout(items: np.ndarray, labels: np.ndarray, fraction: float,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held_out) with ``fraction`` of each class held out."""
    held = []
    for c in np.unique(labels):
        members = rng.permutation(items[labels == c])
        held.append(members[: int(round(fraction * len(members)))])
    held_out = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
    return np.setdiff1d(items, held_out), held_out


def _expand(units: np.ndarray, unit_of_block: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.isin(unit_of_block, units))


def _utterance_labels(block_labels: np.ndarray, block_utt: np.ndarray, n_utt: int) -> np.ndarray:
    labels = np.full(n_utt, -1, dtype=np.int64)
    labels[block_utt] = block_labels
    return labels


def _deal(unit_key: np.ndarray, n_units: int, utt_labels: np.ndarray, utt_blocks: np.ndarray,
          n_groups: int, rng: np.random.Generator) -> np.ndarray:
    """Group number of each unit (speaker or session), dealt greedily, largest first, to the group
    whose class counts it brings closest to an even share.

    In corpora where each speaker voices only some emotions (URDU, many in-the-wild sets), a blind
    deal leaves groups that lack whole classes. ``unit_key`` is each utterance's unit number; only
    the utterances with a label (>= 0) count.
    """
    n_classes = int(utt_labels.max()) + 1
    counts = np.zeros((n_units, n_classes))
    present = utt_labels >= 0
    np.add.at(counts, (unit_key[present], utt_labels[present]), utt_blocks[present])
    target = counts.sum(0) / n_groups
    # largest first; a seeded shuffle breaks ties so the seed still varies the deal
    order = sorted(rng.permutation(n_units), key=lambda k: -counts[k].sum())
    groups = np.zeros((n_groups, n_classes))
    group_of = np.empty(n_units, dtype=np.int64)
    for rank, k in enumerate(order):
        if rank < n_groups:  # every group gets at least one unit
            g = rank
        else:
            gain = ((groups + counts[k] - target) ** 2).sum(1) - ((groups - target) ** 2).sum(1)
            g = int(np.argmin(gain))
        group_of[k] = g
        groups[g] += counts[k]
    return group_of


def _group_units(sessions: list[str], speakers: list[str], utt_labels: np.ndarray,
                 utt_blocks: np.ndarray, n_folds: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Fold number of every utterance for ``loso``: by session when the corpus has them.

    With exactly ``n_folds`` sessions (IEMOCAP) each session is a fold. Otherwise sessions or
    speakers are dealt by :func:`_deal` so that every fold's test set holds every class it can.
    """
    keys, kind = (sessions, "session") if any(sessions) else (speakers, "speaker")
    unique = sorted(set(keys))
    if len(unique) < n_folds or (kind == "speaker" and not any(k.strip() and k != "unknown" for k in unique)):
        raise SerError(f"split=loso needs at least {n_folds} distinct {kind}s to leave one group out, "
                       f"but the corpus has {len(unique)} ({', '.join(unique[:8])}). Add a `speaker` "
                       "(or `session`) column to the manifest, or use split=paper / split=utterance.")
    key_index = {k: i for i, k in enumerate(unique)}
    utt_key = np.array([key_index[k] for k in keys], dtype=np.int64)
    if len(unique) == n_folds:
        return utt_key, kind
    return _deal(utt_key, len(unique), utt_labels, utt_blocks, n_folds, rng)[utt_key], kind


def _speaker_holdout(units: np.ndarray, speakers: list[str], utt_labels: np.ndarray,
                     utt_blocks: np.ndarray, fraction: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held_out) utterances where ``held_out`` is a class-balanced group of whole speakers,
    about ``fraction`` of the speakers of ``units``.

    The speakers are dealt into ``round(1 / fraction)`` class-balanced groups (:func:`_deal`) and
    one group, drawn by the seed, is held out: a validation part of voices the model never
    trained on, so that it scores what a test on new speakers scores.
    """
    unit_speakers = sorted({speakers[u] for u in units})
    if len(unit_speakers) < 2:
        raise SerError(f"split.validation=speakers holds out whole speakers of the training side, but "
                       f"it has {len(unit_speakers)} speaker ({', '.join(unit_speakers)}). Use a corpus "
                       "with more speakers, or split.validation=utterances (validation on utterances "
                       "of the training speakers: it measures how well the model knows their voices).")
    n_groups = int(min(len(unit_speakers), max(2, round(1.0 / fraction))))
    index = {s: i for i, s in enumerate(unit_speakers)}
    key = np.full(len(speakers), -1, dtype=np.int64)
    key[units] = [index[speakers[u]] for u in units]
    labels = np.full(len(speakers), -1, dtype=np.int64)
    labels[units] = utt_labels[units]
    group_of = _deal(np.maximum(key, 0), len(unit_speakers), labels, utt_blocks, n_groups, rng)
    held_group = int(rng.integers(n_groups))
    held = units[group_of[key[units]] == held_group]
    return np.setdiff1d(units, held), np.sort(held)


# A split is a function (labels, utterance, speakers, sessions, n_folds, seed and its own keys,
# e.g. test_fraction) -> SplitPlan: ``labels`` and ``utterance`` per block,
# ``speakers``/``sessions`` per utterance.
# conf/split/<name>.yaml names it by ``_target_``, so a new protocol is a function and a file.
def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 7919])


def paper_split(labels: np.ndarray, utterance: np.ndarray, speakers: list[str], sessions: list[str],
                n_folds: int = 5, test_fraction: float = 0.2, seed: int = 0) -> SplitPlan:
    """Blocks: a stratified ``test_fraction`` test set, folds of the rest (the paper's protocol)."""
    rng = _rng(seed)
    rest, test = _stratified_holdout(np.arange(len(labels)), labels, test_fraction, rng)
    parts = _stratified_parts(rest, labels[rest], n_folds, rng)
    folds = [(np.setdiff1d(rest, parts[k]), parts[k]) for k in range(n_folds)]
    return SplitPlan("paper", folds, [test] * n_folds)


def utterance_split(labels: np.ndarray, utterance: np.ndarray, speakers: list[str],
                    sessions: list[str], n_folds: int = 5, test_fraction: float = 0.2,
                    seed: int = 0) -> SplitPlan:
    """As :func:`paper_split`, but dealing whole utterances."""
    rng = _rng(seed)
    utt_labels = _utterance_labels(labels, utterance, len(speakers))
    present = np.flatnonzero(utt_labels >= 0)
    rest, test_u = _stratified_holdout(present, utt_labels[present], test_fraction, rng)
    parts = _stratified_parts(rest, utt_labels[rest], n_folds, rng)
    folds = [(_expand(np.setdiff1d(rest, parts[k]), utterance), _expand(parts[k], utterance))
             for k in range(n_folds)]
    return SplitPlan("utterance", folds, [_expand(test_u, utterance)] * n_folds)


VALIDATIONS = ("speakers", "utterances")


def loso_split(labels: np.ndarray, utterance: np.ndarray, speakers: list[str], sessions: list[str],
               n_folds: int = 5, seed: int = 0, validation: str = "speakers") -> SplitPlan:
    """Fold k tests on session (or speaker group) k: the held-out group is the test set.

    ``validation="speakers"`` (the default) validates on a class-balanced group of about
    ``1/n_folds`` of the *other* speakers, held out from training too, so the score that picks
    the checkpoint, early stopping and every setting is a score on unseen voices, as the test
    is. ``"utterances"`` validates on a stratified ``1/n_folds`` of the training speakers'
    utterances: it measures how well a model knows voices it trained on (and, in scripted
    corpora, their sentences), and rewards learning them.
    """
    if validation not in VALIDATIONS:
        raise SerError(f"split.validation={validation}: use speakers (validate on speakers held out "
                       "from training and test) or utterances (on the training speakers' utterances).")
    rng = _rng(seed)
    n_utt = len(speakers)
    utt_labels = _utterance_labels(labels, utterance, n_utt)
    present = np.flatnonzero(utt_labels >= 0)
    utt_blocks = np.bincount(utterance, minlength=n_utt)
    group, _ = _group_units(sessions, speakers, utt_labels, utt_blocks, n_folds, rng)
    folds, tests = [], []
    for k in range(n_folds):
        test_u = present[group[present] == k]
        others = present[group[present] != k]
        if validation == "speakers":
            train_u, val_u = _speaker_holdout(others, speakers, utt_labels, utt_blocks,
                                              1.0 / n_folds, rng)
        else:
            train_u, val_u = _stratified_holdout(others, utt_labels[others], 1.0 / n_folds, rng)
        folds.append((_expand(train_u, utterance), _expand(val_u, utterance)))
        tests.append(_expand(test_u, utterance))
    return SplitPlan("loso", folds, tests, validation)


SPLIT_FUNCTIONS = {"paper": paper_split, "utterance": utterance_split, "loso": loso_split}


def make_split(name: str, labels: np.ndarray, utterance: np.ndarray, speakers: list[str],
               sessions: list[str], n_folds: int = 5, seed: int = 0, **options) -> SplitPlan:
    """The built-in split ``name`` (the config's ``_target_`` names one directly); ``options``
    are the split's own keys (``test_fraction=`` for ``paper`` and ``utterance``,
    ``validation=`` for ``loso``)."""
    if name not in SPLIT_FUNCTIONS:
        raise SerError(f"Unknown split `split={name}`; choose one of {', '.join(SPLITS)}.")
    return SPLIT_FUNCTIONS[name](labels, utterance, speakers, sessions, n_folds=n_folds, seed=seed,
                                 **options)


def check_no_leak(name: str, train: np.ndarray, val: np.ndarray, test: np.ndarray,
                  utterance: np.ndarray, speaker_of_utt: list[str],
                  validation: str = "utterances") -> None:
    """Fail loudly when the protocol's unit sits on both sides: block, utterance or speaker
    (under ``loso`` with ``validation="speakers"`` no speaker is in two of the three parts)."""
    sides = {"train": train, "validation": val, "test": test}
    for a, b in (("train", "test"), ("validation", "test"), ("train", "validation")):
        shared = np.intersect1d(sides[a], sides[b])
        if shared.size:
            raise SerError(f"Split leak: {shared.size} block(s) (first: #{shared[0]}) are in both the "
                           f"{a} and the {b} set. This is a bug in the split; please report it with "
                           "the config you ran.")
    if name in ("utterance", "loso"):
        test_utts = set(utterance[test].tolist())
        for side in ("train", "validation") if name == "utterance" else ("train",):
            shared_u = test_utts & set(utterance[sides[side]].tolist())
            if shared_u:
                raise SerError(f"Split leak: {len(shared_u)} utterance(s) have blocks in both the "
                               f"{side} and the test set under split={name} (first: utterance "
                               f"#{min(shared_u)}), which that protocol forbids.")
    if name == "loso":
        spk = {side: {speaker_of_utt[u] for u in set(utterance[idx].tolist())} for side, idx in sides.items()}
        pairs = [("train", "test"), ("validation", "test")]
        if validation == "speakers":
            pairs.append(("train", "validation"))
        for a, b in pairs:
            shared_s = sorted(spk[a] & spk[b])
            if shared_s:
                raise SerError(f"Split leak: speaker(s) {', '.join(shared_s[:5])} appear in both the {a} "
                               f"and the {b} set under split=loso, which must keep them apart. Check "
                               "that the corpus gives each speaker one session/speaker id.")
