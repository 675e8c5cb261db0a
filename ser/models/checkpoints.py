"""Reading checkpoints safely and checking they fit the data they are used with."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from ser.config_upgrade import upgrade_checkpoint_config
from ser.errors import SerError
from ser.run_layout import (BASELINE_FILE, BEST_GLOB, CHECKPOINT_DIR, LAST_CHECKPOINT, METRICS_FILE,
                            run_dir_of)


def read_checkpoint(path: str | Path) -> dict:
    """A Lightning checkpoint loaded without running pickled code (``weights_only=True``)."""
    from ser.models.weights import torch_load_untrusted  # torch: only when a checkpoint is read

    ckpt = torch_load_untrusted(
        path, "Checkpoint",
        not_found_hint="Pass the path of a .ckpt file written by train.py "
                       "(run_dir/checkpoints/last.ckpt or best-*.ckpt).",
        refused_hint="Only checkpoints written by ser's train.py are accepted.",
        unreadable_hint="Use another checkpoint of the run, e.g. last.ckpt.")
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise SerError(f"{path} is not a checkpoint written by ser's train.py (it lacks the "
                       "state_dict / hyper_parameters entries).")
    return ckpt


def trained_hyper_parameters(ckpt: Mapping, path: str | Path,
                             needs: Sequence[str] = ("classes", "model", "features")) -> dict:
    """The hyper-parameters of a checkpoint :func:`read_checkpoint` gave, in today's form (the
    one place a checkpoint's configs are upgraded: :func:`ser.config_upgrade.upgrade_checkpoint_config`),
    or a SerError (one paragraph) when it lacks one of ``needs``: it was then not written by
    ser's train.py, or when it switched on a lever whose code was removed since."""
    hp = ckpt["hyper_parameters"]
    missing = [k for k in needs if k not in hp]
    if missing:
        raise SerError(f"Checkpoint {path} lacks {missing} in its hyper-parameters: it was not "
                       "written by ser's train.py. Use a checkpoint from a ser run directory.")
    return upgrade_checkpoint_config(hp, source=path)


def load_weights(module, ckpt: Mapping, path: str | Path) -> None:
    """Load the weights of ``ckpt`` (from :func:`read_checkpoint`) into ``module``: the
    LightningModule, or any ``nn.Module`` holding the same ``net`` and ``frontend``.

    Only the network's weights must match: the front-end's buffers (window, colour table) are
    rebuilt from the checkpoint's feature settings, so one missing or extra there is no fault.
    A network that does not fit is a SerError (one paragraph) naming the file.
    """
    hp = ckpt["hyper_parameters"]
    state = {k: v for k, v in ckpt["state_dict"].items() if k.startswith(("net.", "frontend.", "calibration."))}
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise SerError(f"The weights in {path} do not fit a {hp['model'].get('name')} network "
                       f"with {len(hp['classes'])} classes ({str(exc).splitlines()[0]}); the "
                       "checkpoint is damaged or from an incompatible version of ser.") from exc
    bad = [k for k in [*result.missing_keys, *result.unexpected_keys] if k.startswith("net.")]
    if bad:
        raise SerError(f"The weights in {path} do not match the {hp['model'].get('name')} network "
                       f"(missing or unexpected: {', '.join(bad[:4])}); the checkpoint is from an "
                       "incompatible version of ser.")


def check_classes(ckpt_classes: Sequence[str], data_classes: Sequence[str], path: str | Path) -> None:
    if list(ckpt_classes) != list(data_classes):
        raise SerError(f"Checkpoint {path} was trained on classes {list(ckpt_classes)}, but the "
                       f"dataset gives {list(data_classes)}. Use a checkpoint trained on this class "
                       "set, or pick the dataset it was trained on (e.g. dataset=ahsn vs aesn).")


def refuse_baseline_run(path: Path) -> None:
    """A SerError for a baseline run (``model=mfcc_svm``) or its pickle: it has no network."""
    run_dir = run_dir_of(path) if path.name == BASELINE_FILE else path
    if path.name == BASELINE_FILE or (path.is_dir() and (
            (path / CHECKPOINT_DIR / BASELINE_FILE).is_file() or (path / BASELINE_FILE).is_file())):
        raise SerError(f"{path} is a baseline run (model=mfcc_svm): baseline runs have no network "
                       f"checkpoint; their metrics are in {run_dir / METRICS_FILE}, and "
                       "`evaluate.py sweep=DIR` reports them beside the deep runs. To re-test "
                       "the baseline on other data or noise, give its run folder as it is: "
                       "`evaluate.py ckpt=RUN noise=...` refits nothing.")


def find_checkpoint(path: str | Path) -> Path:
    """``path`` itself, or for a run directory its best checkpoint (else ``last.ckpt``)."""
    path = Path(path).expanduser()
    refuse_baseline_run(path)
    if path.is_dir():
        folder = path / CHECKPOINT_DIR if (path / CHECKPOINT_DIR).is_dir() else path
        best = sorted(folder.glob(BEST_GLOB), key=lambda p: p.stat().st_mtime)
        if best:
            return best[-1]
        if (folder / LAST_CHECKPOINT).is_file():
            return folder / LAST_CHECKPOINT
        raise SerError(f"No checkpoint in {path}: expected a .ckpt file, or a run directory "
                       f"holding {CHECKPOINT_DIR}/{BEST_GLOB} or {CHECKPOINT_DIR}/{LAST_CHECKPOINT} "
                       "(written by train.py).")
    return path


def block_settings(hp: Mapping) -> tuple[int, float, float | None]:
    """(sample rate in Hz, block length in s, pad fraction) the checkpoint was trained with."""
    data = (hp.get("run_config") or {}).get("data") or {}
    if "block_seconds" not in data:
        raise SerError("The checkpoint does not record its block length (run_config.data."
                       "block_seconds); use a checkpoint written by the current train.py.")
    return int(hp["features"]["sample_rate"]), float(data["block_seconds"]), data.get("pad_min_fraction")
