"""Configs saved before every group named its builder by a top-level ``_target_``, upgraded in one place.

A checkpoint carries the resolved config it was trained with, and a run folder its
config.yaml; both must keep loading after the files in conf/ change. Older configs named the
builder of a group indirectly: ``noise``, ``logger`` (and ``model`` for the baselines) by a
``kind:`` key, ``split`` and the image ``model`` by ``name:`` through a registry, ``features``
not at all (the paper's spectrogram image was the only front-end), and ``dataset`` one level
down, in ``dataset.reader``. :func:`with_target` turns such a node into the current form,
``_target_`` plus the builder's own keys, so every builder reads one shape of config;
:func:`current_form` does it to a whole saved config (every built node, the dataset's copy
``data.dataset`` too), for the sweep reports and for rebuilding a run's data. Keys are also
added to and removed from the files in conf/: :data:`ADDED_KEYS` fills a key in where an old run
lacks it, :data:`REMOVED_KEYS` drops one where an old run holds it at the value that meant "off".
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from ser.errors import SerError

# The builder each old label named, per group (the labels are the conf/<group>/<file>.yaml names).
LEGACY_TARGETS: dict[str, dict[str, str]] = {
    "noise": {"demo": "ser.audio.noise_sources.synthetic_room",
              "dir": "ser.audio.noise_sources.folder"},
    "split": {name: f"ser.data.splits.{name}_split" for name in ("paper", "utterance", "loso")},
    "logger": {"none": "ser.training.loggers.no_logger", "csv": "ser.training.loggers.csv_logger",
               "wandb": "ser.training.loggers.wandb_logger"},
    "model": {"alexnet": "ser.models.backbones.alexnet",
              "efficientnet_lite0": "ser.models.efficientnet.efficientnet_lite0"},
}
# A group whose old configs had one builder and no label: the paper's spectrogram image.
LEGACY_DEFAULT_TARGETS = {"features": "ser.features.spectrogram.SpectrogramImage"}
# Keys that only labelled the file a node came from; never passed to a builder.
RETIRED_KEYS = ("kind",)
# A dataset node's old ``reader`` sub-node: keys renamed when lifted to the top, and keys of the
# old node that only fed the reader (the demo corpus's seed, now ``dataset.seed``).
READER_RENAMED = {"csv_path": "manifest"}
READER_ONLY_KEYS = ("corpus_seed",)


def legacy_label(node: Mapping[str, Any]) -> str | None:
    """The file name an old node was labelled with (``kind``, else ``name``), or None."""
    label = node.get("kind", node.get("name"))
    return None if label is None else str(label)


def lifted_reader(node: Mapping[str, Any]) -> dict[str, Any]:
    """An old dataset node (``{name, root, reader: {_target_, root, variant}}``) in the current
    form (``{_target_, name, root, variant}``); any other node as it is."""
    node = dict(node)
    reader = node.get("reader")
    if node.get("_target_") or not isinstance(reader, Mapping):
        return node
    lifted = {k: v for k, v in node.items() if k not in ("reader", *READER_ONLY_KEYS)}
    lifted.update({READER_RENAMED.get(k, k): v for k, v in reader.items()})
    return lifted


def with_target(group: str, node: Mapping[str, Any]) -> dict[str, Any]:
    """``node`` (plain) as a builder reads it: ``_target_`` set (from the old label where the
    node has none) and the retired label keys dropped. ``_target_`` stays None where nothing
    names a builder; the caller says which file in conf/ to follow."""
    if group == "dataset":
        node = lifted_reader(node)
    settings = {k: v for k, v in dict(node).items() if k not in RETIRED_KEYS}
    if not settings.get("_target_"):
        label = legacy_label(node)
        settings["_target_"] = LEGACY_TARGETS.get(group, {}).get(label) or LEGACY_DEFAULT_TARGETS.get(group)
    return settings


# The groups whose nodes name a builder, where they sit in a saved training config.
BUILT_NODES = (("noise",), ("logger",), ("split",), ("model",), ("dataset",),
               ("data", "noise"), ("data", "dataset"), ("data", "split"))


def upgrade_checkpoint_config(hp: Mapping[str, Any], source: Any = None) -> dict[str, Any]:
    """A checkpoint's hyper-parameters with its ``model`` and ``features`` nodes and its whole
    ``run_config`` in today's form (:func:`current_form`), the removed keys dropped from its own
    groups too: what every reader of a checkpoint gets, so the builders read one shape of config.
    ``source`` (the checkpoint's path): as in :func:`current_form`."""
    hp = dict(hp)
    for group in ("model", "features"):
        if isinstance(hp.get(group), Mapping):
            hp[group] = with_target(group, hp[group])
    if isinstance(hp.get("run_config"), Mapping):
        hp["run_config"] = current_form(hp["run_config"], source)
    return _without_removed_keys(hp, source)


def current_form(run: Mapping[str, Any], source: Any = None) -> dict[str, Any]:
    """A saved training config (plain) with every group node in today's form: the retired label
    keys gone and ``_target_`` set from them where the node had none, the dataset's reader lifted,
    keys added since then set to what the run did (``data.test_hop: null``), and keys removed
    since then dropped where the run held them at their old default (``data.random_offset:
    false``; kept where it switched them on, ``data.random_offset: true``).
    The sweep reports compare runs by their settings, so a run saved before a config change
    must read like one saved after it (``noise.kind: dir`` is ``noise._target_: ...folder``);
    ``evaluate.py ckpt=`` lays it over today's conf/ files to rebuild the run's data. ``source``
    (the checkpoint or run folder it was read from) says it is read to be rebuilt: a lever of
    :data:`CODE_REMOVED` it switched on is then a SerError, where a report keeps it."""
    run = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in run.items()}
    for path in BUILT_NODES:
        parent = run
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent.get(key), dict) else None
            if parent is None:
                break
        node = None if parent is None else parent.get(path[-1])
        if isinstance(node, Mapping):
            upgraded = with_target(path[0] if len(path) == 1 else path[-1], node)
            if upgraded.get("_target_") is not None:  # else nothing named a builder: as it was
                parent[path[-1]] = upgraded
    data = run.get("data")
    if isinstance(data, dict) and isinstance(data.get("test_corpora"), list):
        # entries written as {name, reader: {_target_: ...}} before readers were lifted
        data["test_corpora"] = [lifted_reader(e) if isinstance(e, Mapping) else e for e in data["test_corpora"]]
    if "calibration" not in run and isinstance(run.get("optim"), Mapping):
        run["calibration"] = {}  # a network run from before calibration layers had none
    for path, marker, key, then in ADDED_KEYS:
        parent, name, node = _group_node(run, path)
        if isinstance(node, Mapping) and marker(node) and key not in node:
            parent[name] = {**node, key: then}
    return _without_removed_keys(run, source)


def _without_removed_keys(run: dict, source: Any) -> dict:
    """``run`` with each key of :data:`REMOVED_KEYS` it holds at its old default dropped; one of
    :data:`CODE_REMOVED` switched on is a SerError when ``source`` is given (see current_form)."""
    for path, marker, key, off in REMOVED_KEYS:
        parent, name, node = _group_node(run, path)
        if not (isinstance(node, Mapping) and marker(node) and key in node):
            continue
        if _same(node[key], off):
            parent[name] = {k: v for k, v in node.items() if k != key}
        elif source is not None and _dotted(path, key) in CODE_REMOVED:
            raise SerError(
                f"{source} was trained with {_dotted(path, key)}={json.dumps(node[key], default=str)}, "
                "a lever whose code was removed after it was measured as no help (docs/results.md), "
                "so this version cannot rebuild the run. Re-test it at a commit that still holds the "
                f"lever (`git log -S {key}` lists the commits that added and removed it), or train "
                "the run again without it.")
    return run


def _dotted(path: str | tuple[str, ...], key: str) -> str:
    return ".".join(((path,) if isinstance(path, str) else path) + (key,))


def _group_node(run: dict, path: str | tuple[str, ...]) -> tuple[dict | None, str, Any]:
    """(the node holding it, its name, the node) of a group (``optim``) or a path to a nested
    copy (``("data", "split")``) in ``run``; the nodes above it are copied on the way, so the
    caller may replace it without touching the config it was given."""
    *above, name = (path,) if isinstance(path, str) else path
    parent = run
    for step in above:
        child = parent.get(step)
        if not isinstance(child, Mapping):
            return None, name, None
        parent[step] = parent = dict(child)
    return parent, name, parent.get(name)


def _same(value: Any, off: Any) -> bool:
    """Whether a saved value is the old default ``off``: ``0`` is ``0.0``, ``False`` is not, a
    word is itself;
    :data:`ANY_VALUE` for a key that did nothing whatever it held; a function says it of a node."""
    if off is ANY_VALUE:
        return True
    if callable(off):
        return bool(off(value))
    if off is None or isinstance(off, bool):
        return value is off
    if isinstance(off, str):
        return value == off
    return isinstance(value, (int, float)) and not isinstance(value, bool) and float(value) == float(off)


# Keys added to a group since runs were first saved: (group, which nodes have it, key, what a run
# saved before it did). Runs from before data.test_sets were tested on the held-out speakers'
# noisy copies and the test corpora, the two kinds it names by default. Runs from before data.test_hop voted with their blocks alone (re-tested,
# they still do); data before data.speaker_norm normalised no group; a baseline before
# model.speaker_norm did not standardise per speaker; a loso split before split.validation
# validated on the training speakers' utterances. Filled in, an old run's settings compare with
# a new run's. A group is a top-level key or a path to a nested copy.
_is_loso = lambda node: (str(node.get("_target_", "")).endswith("loso_split")  # noqa: E731
                         or node.get("name") == "loso")
_is_data = lambda node: "block_seconds" in node  # noqa: E731
_is_logmel = lambda node: str(node.get("_target_", "")).endswith("logmel.LogMel")  # noqa: E731
_is_optim = lambda node: "lr" in node  # noqa: E731
_is_augment = lambda node: "specaugment" in node  # noqa: E731
_is_speech_encoder = lambda node: str(node.get("_target_", "")).endswith("build_speech_encoder_net")  # noqa: E731
_is_noise = lambda node: "snr_reference" in node or "fixed" in node  # noqa: E731
_is_noise_folder = lambda node: str(node.get("_target_", "")).endswith("noise_sources.folder")  # noqa: E731
ADDED_KEYS = (
    ("split", _is_loso, "validation", "utterances"),
    (("data", "split"), _is_loso, "validation", "utterances"),
    ("data", _is_data, "test_hop", None),
    ("data", _is_data, "speaker_norm", None),
    ("data", _is_data, "test_sets", {"noisy": {"_target_": "ser.data.test_sets.noisy_copies"},
                                     "corpora": {"_target_": "ser.data.test_sets.other_corpora"}}),
    ("model", lambda node: str(node.get("_target_", "")).startswith("ser.baseline."), "speaker_norm", False),
    ("noise", _is_noise, "validation_fraction", 0.0),
    (("data", "noise"), _is_noise, "validation_fraction", 0.0),
    ("noise", _is_noise_folder, "per_fold", False),   # every fold drew the same noise files
    (("data", "noise"), _is_noise_folder, "per_fold", False),
)

# Keys removed from the files in conf/ since runs were first saved: (group, which nodes had it,
# key, its default then, which was "off"). Levers measured as no help left the default files
# (docs/results.md has each measurement): for conf/experiment/<key>.yaml, or with their code
# (CODE_REMOVED, the callbacks.weight_ema node that read optim.ema_decay too); keys that did
# nothing left altogether: augment.gain_db (every built-in front-end normalises a block's
# level), a loso split's test_fraction (the held-out group is its test set) and a speech
# encoder's layerdrop (LayerDrop is always off: a skipped layer leaves the weighted layer sum
# short). The code reads
# a missing key as that default, so a run that held it there did what a run without it does:
# dropped, the two compare as one setting. A run that switched a lever on keeps it and reads as
# what it was; evaluate.py ckpt= lays it over today's files, and the code still reads it (not
# gain_db nor layerdrop: set by hand, they are kept for the record and ignored); a lever of
# CODE_REMOVED switched on is kept for the reports, but such a run is not rebuilt (a SerError).
ANY_VALUE = object()  # "its default then": a key no value of which did anything
_is_callbacks = lambda node: "best_checkpoint" in node  # noqa: E731
_no_ema = lambda node: isinstance(node, Mapping) and node.get("decay") is None  # noqa: E731
REMOVED_KEYS = (
    ("data", _is_data, "random_offset", False),
    ("data", _is_data, "train_snr_range", None),
    ("augment", _is_augment, "mixup_alpha", 0.0),
    ("augment", _is_augment, "vtlp", None),
    ("augment", _is_augment, "gain_db", 0.0),
    ("augment", _is_augment, "time_reverse", 0.0),
    ("data", _is_data, "train_texts", "all"),
    ("features", _is_logmel, "deltas", False),
    ("features", _is_logmel, "band_norm", False),
    ("features", _is_logmel, "pcen", False),
    ("optim", _is_optim, "label_smoothing", 0.0),
    ("optim", _is_optim, "ema_decay", None),
    ("callbacks", _is_callbacks, "weight_ema", _no_ema),
    ("optim", _is_optim, "speaker_adversary", None),
    ("split", _is_loso, "test_fraction", ANY_VALUE),
    (("data", "split"), _is_loso, "test_fraction", ANY_VALUE),
    ("model", _is_speech_encoder, "layerdrop", 0.0),
)
# The removed keys whose code went too: a run that switched one on cannot be rebuilt.
CODE_REMOVED = ("data.random_offset", "data.train_snr_range", "augment.mixup_alpha", "augment.vtlp",
                "features.deltas", "features.band_norm", "features.pcen", "optim.ema_decay",
                "callbacks.weight_ema", "optim.speaker_adversary")


def removed_defaults() -> dict[str, Any]:
    """Dotted key -> the value that meant "off", for each key :data:`REMOVED_KEYS` drops from
    the default files: a sweep report labels a run that lacks one by it (``data.random_offset=false``)."""
    return {_dotted(path, key): off for path, _, key, off in REMOVED_KEYS
            if off is not ANY_VALUE and not callable(off)}


def is_baseline_config(model: Mapping[str, Any]) -> bool:
    """Whether a ``model`` node builds a conventional baseline (an SVM on block features) rather
    than a network: the class its ``_target_`` names says so (``is_baseline``, see
    :class:`ser.baseline.estimator.SvmBaseline`), or an old config says ``kind: sklearn``.
    train.py hands such configs to :func:`ser.baseline.run.train_baseline`; the sweep reports
    rank and label their runs apart from the networks'."""
    if model.get("kind") == "sklearn":
        return True
    target = model.get("_target_")
    if not target:
        return False
    from ser.configs import locate

    try:
        built = locate(str(target))
    except Exception:  # a target that moved or never existed builds no baseline we know of
        return False
    return bool(getattr(built, "is_baseline", False))
