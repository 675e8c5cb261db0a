"""A checkpoint's training config, rebuilt so that overrides given at evaluation reach every copy.

A checkpoint carries the config it was trained with, *resolved*: ``data.dataset`` is a literal
copy of ``dataset``, the demo corpus's ``dataset.out_dir`` a literal built from the cache folder
and ``dataset.seed``. Setting ``dataset.root`` on the copy would leave ``data.dataset`` reading
the old place. So the config is composed again from ``conf/`` with the file the run chose in
each group (interpolations intact), the checkpoint's plain values are laid over it, and
overrides are applied last: ``dataset.root=...`` then reaches ``data.dataset`` as it does in
train.py. Without overrides the result resolves to the checkpoint's config, values read from
the environment (``${oc.env:...}``, e.g. the cache folder) included.

Which file a group came from is what Hydra recorded as the run's choice (``choices`` in the
checkpoint and in run.json); for runs from before that, the conf/ file whose ``_target_`` and
literal values the run's node has.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf, open_dict

from ser.configs import conf_dir, plain

# Groups whose node is taken from the file the run chose (the others from train.yaml's default,
# with the run's values laid over it): the ones whose options differ in shape, not in values.
REBUILT_GROUPS = ("dataset", "noise", "split", "model", "logger")
_RESOLVER = re.compile(r"\$\{[\w.-]+:")  # ${oc.env:...}: a value that depends on the environment


def compose_config(config_name: str, overrides: list[str]) -> DictConfig:
    """Hydra's composition of ``config_name`` from conf/ (inside evaluate.py, or standalone)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(config_name=config_name, overrides=overrides)
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


def group_options(group: str) -> list[str]:
    """The files of one config group, e.g. ``dataset`` -> ``[aesn, ahsn, demo, ...]``."""
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return list(GlobalHydra.instance().config_loader().get_group_options(group))
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


def file_with_target(group: str, node: Mapping) -> str | None:
    """The conf/<group>/ file a run's ``node`` was made from, for runs that did not record their
    choices: the one whose ``_target_`` and literal values are the node's (in today's form, as
    the run was read); None when no single file is."""
    target = node.get("_target_")
    if not target:
        return None
    found = []
    for path in sorted((conf_dir() / group).glob("*.yaml")):
        option = OmegaConf.load(path)
        if option.get("_target_") != target:
            continue
        literal = {k for k in option if k != "defaults" and not OmegaConf.is_interpolation(option, k)
                   and not OmegaConf.is_missing(option, k) and not OmegaConf.is_config(option[k])}
        if all(node.get(k) == option[k] for k in literal - {"_target_"}):
            found.append(path.stem)
    return found[0] if len(found) == 1 else None


def chosen_files(run: Mapping, recorded: Mapping[str, str] | None) -> dict[str, str]:
    """The file of each of :data:`REBUILT_GROUPS` the run was composed from (``recorded``: the
    choices Hydra recorded, from the checkpoint or run.json), where conf/ still holds it."""
    picked = {}
    for group in REBUILT_GROUPS:
        option = (recorded or {}).get(group)
        if option is None and isinstance(run.get(group), Mapping):
            option = file_with_target(group, run[group])
        if option is not None and str(option) in group_options(group):
            picked[group] = str(option)
    return picked


def _resolved(node: DictConfig, key: str) -> Any:
    try:
        return plain(node[key])
    except Exception:  # an unresolvable interpolation (e.g. a missing environment variable)
        return object()


def _overlay(template: DictConfig, run: Mapping) -> None:
    """Lay the run's plain values over ``template``, keeping its interpolations (the links)."""
    for key, value in run.items():
        if key in template and OmegaConf.is_interpolation(template, key):
            continue
        current = template._get_node(key) if key in template else None
        if isinstance(value, Mapping) and isinstance(current, DictConfig) and not current._is_none():
            _overlay(current, value)
        else:
            template[key] = value


def _pin(template: DictConfig, run: Mapping, only_resolvers: bool) -> None:
    """Replace interpolations that no longer give the run's value by that value."""
    for key, value in run.items():
        if key not in template:
            continue
        if OmegaConf.is_interpolation(template, key):
            expression = str(template._get_node(key)._value())
            if (not only_resolvers or _RESOLVER.search(expression)) and _resolved(template, key) != value:
                template[key] = value
            continue
        current = template._get_node(key)
        if isinstance(value, Mapping) and isinstance(current, DictConfig) and not current._is_none():
            _pin(current, value, only_resolvers)


def rebuild_training_config(run_config: Mapping, group_choices: Mapping[str, str] | None = None,
                            overrides: Mapping[str, Any] | None = None,
                            config_name: str = "train",
                            recorded_choices: Mapping[str, str] | None = None) -> DictConfig:
    """The training config of a run, relinked, with ``group_choices`` and ``overrides`` applied.

    ``group_choices``: whole groups to swap, e.g. ``{"dataset": "manifest"}`` (test on another
    corpus). ``overrides``: dotted keys to set afterwards, e.g. ``{"dataset.root": "/data/x"}``.
    ``recorded_choices``: the files the run chose (Hydra's runtime choices, as it recorded them).
    ``run_config`` is in today's form: :func:`ser.evaluation.runs.load_run` upgrades it where it
    reads the checkpoint or the run folder.
    """
    run = dict(run_config)
    picked = chosen_files(run, recorded_choices)
    template = compose_config(config_name, [f"{g}={o}" for g, o in picked.items()])
    with open_dict(template):
        for group in REBUILT_GROUPS:  # no file of that name: the run's node, as it was
            if group not in picked and isinstance(run.get(group), Mapping):
                template[group] = run[group]
        _overlay(template, run)
        _pin(template, run, only_resolvers=True)   # e.g. the cache folder of the training machine
        _pin(template, run, only_resolvers=False)  # derived keys the run had set by hand
        for group, option in (group_choices or {}).items():
            template[group] = compose_config(config_name, [f"{group}={option}"])[group]
        for key, value in (overrides or {}).items():
            OmegaConf.update(template, key, plain(value), merge=False, force_add=True)
    return template
