"""Configs saved before every group named its builder by a top-level ``_target_``, upgraded in one place.

A checkpoint carries the resolved config it was trained with, and a run folder its
config.yaml; both must keep loading after the files in conf/ change. Older configs named the
builder of a group indirectly: ``noise``, ``logger`` (and ``model`` for the baselines) by a
``kind:`` key, ``split`` and the image ``model`` by ``name:`` through a registry, ``features``
not at all (the paper's spectrogram image was the only front-end), and ``dataset`` one level
down, in ``dataset.reader``. :func:`with_target` turns such a node into the current form,
``_target_`` plus the builder's own keys, so every builder reads one shape of config;
:func:`current_form` does it to a whole saved config (every built node, the dataset's copy
``data.dataset`` too), for the sweep reports and for rebuilding a run's data.
"""

from __future__ import annotations

from typing import Any, Mapping

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
               ("data", "noise"), ("data", "dataset"))


def current_form(run: Mapping[str, Any]) -> dict[str, Any]:
    """A saved training config (plain) with every group node in today's form: the retired label
    keys gone and ``_target_`` set from them where the node had none, the dataset's reader lifted,
    and keys added since then set to what the run did (``data.test_hop: null``).
    The sweep reports compare runs by their settings, so a run saved before a config change
    must read like one saved after it (``noise.kind: dir`` is ``noise._target_: ...folder``);
    ``evaluate.py ckpt=`` lays it over today's conf/ files to rebuild the run's data."""
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
    for path, marker, key, then in ADDED_KEYS:
        *above, name = (path,) if isinstance(path, str) else path
        parent = run
        for step in above:  # a nested copy (data.split) is copied before it is changed
            child = parent.get(step)
            if not isinstance(child, Mapping):
                parent = None
                break
            parent[step] = parent = dict(child)
        node = None if parent is None else parent.get(name)
        if isinstance(node, Mapping) and marker(node) and key not in node:
            parent[name] = {**node, key: then}
    return run


# Keys added to a group since runs were first saved: (group, which nodes have it, key, what a run
# saved before it did). Runs from before data.test_hop voted with their blocks alone (re-tested,
# they still do); a log-mel saved before features.pcen was a log-mel; an optimiser before
# optim.ema_decay kept no average, nor one before optim.speaker_adversary had a speaker head;
# augment before augment.vtlp did not warp; data before data.speaker_norm normalised no group; a
# baseline before model.speaker_norm did not standardise per speaker; a loso split before
# split.validation validated on the training speakers' utterances. Filled in, an old run's
# settings compare with a new run's. A group is a top-level key or a path to a nested copy.
_is_loso = lambda node: (str(node.get("_target_", "")).endswith("loso_split")  # noqa: E731
                         or node.get("name") == "loso")
ADDED_KEYS = (
    ("split", _is_loso, "validation", "utterances"),
    (("data", "split"), _is_loso, "validation", "utterances"),
    ("data", lambda node: "block_seconds" in node, "test_hop", None),
    ("data", lambda node: "block_seconds" in node, "speaker_norm", None),
    ("features", lambda node: str(node.get("_target_", "")).endswith("logmel.LogMel"), "pcen", False),
    ("optim", lambda node: "lr" in node, "ema_decay", None),
    ("optim", lambda node: "lr" in node, "speaker_adversary", None),
    ("augment", lambda node: "specaugment" in node, "vtlp", None),
    ("model", lambda node: str(node.get("_target_", "")).startswith("ser.baseline."), "speaker_norm", False),
)


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
    from hydra.utils import get_object

    try:
        built = get_object(str(target))
    except Exception:  # a target that moved or never existed builds no baseline we know of
        return False
    return bool(getattr(built, "is_baseline", False))
