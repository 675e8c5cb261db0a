"""One checkpoint on the test sets of the data it was trained on: the paper's Table 5/6 layout.

The checkpoint carries its classes, network, spectrogram settings and whole training config, so
the corpus, split, fold, seed and noise are rebuilt exactly and the fixed test sets come out the
same as when the run tested itself (same blocks, same noise segment per block, same batches):
on a CPU the metrics equal the run's own metrics.json.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from ser.configs import build, plain
from ser.evaluation.runs import load_run
from ser.evaluation.training_config import rebuild_training_config
from ser.models.checkpoints import check_classes
from ser.run_layout import EVALUATION_DIR, PREDICTIONS_FILE, run_dir_of


def default_output_dir(ckpt: Path, overrides: Mapping[str, Any]) -> Path:
    """``<run>/evaluation/<checkpoint name>[_key-value...]``, so evaluations of other data sit
    apart (named like sweep job folders: the path pastes into a command line as it is)."""
    name = ckpt.stem
    if overrides:
        shown = lambda v: "-".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)  # noqa: E731
        name += "_" + "_".join(f"{k}-{shown(v)}" for k, v in overrides.items())
        name = re.sub(r"[^\w.+-]+", "_", name)[:120]
    return run_dir_of(ckpt) / EVALUATION_DIR / name


def evaluate_checkpoint(path: str | Path, group_choices: Mapping[str, str] | None = None,
                        overrides: Mapping[str, Any] | None = None, out_dir: str | Path | None = None,
                        verbose: bool = True) -> dict:
    """Test a run (a network's checkpoint or a baseline's estimator: :func:`load_run`) on every
    test set of its data; write table.md/.csv, predictions.csv, evaluation.json and one
    confusion-matrix PNG per test set. Returns ``{"metrics", "title", "out_dir", "files", ...}``.

    ``group_choices``/``overrides`` change the data it is tested on (another corpus with the same
    classes, the corpus's new location, other noise or test SNRs): see ``training_config``.
    """
    import pytorch_lightning as pl

    run = load_run(path)
    changes = {**dict(group_choices or {}), **{k: plain(v) for k, v in (overrides or {}).items()}}
    cfg = rebuild_training_config(run.config, group_choices, overrides, recorded_choices=run.choices)
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    datamodule = build(cfg.data, verbose=verbose)
    datamodule.setup("test")
    if run.classes:
        check_classes(run.classes, datamodule.classes, run.path)
    out_dir = Path(out_dir) if out_dir else default_output_dir(run.path, changes)
    if "calibration" in (group_choices or {}) and hasattr(run, "calibrate"):
        run.calibrate = cfg.get("calibration")  # e.g. calibration=temperature: fitted on its validation part
    metrics, predictions = run.score(datamodule, cfg, out_dir, verbose)
    return write_evaluation(out_dir, run.path, str(cfg.run_name), run.classes or list(datamodule.classes),
                            changes, metrics, predictions, calibration=getattr(run, "calibration", None),
                            test_noise=datamodule.test_bank.digest())


def write_evaluation(out_dir: Path, checkpoint: Path, run_name: str, classes: list[str],
                     changes: Mapping[str, Any], metrics: dict, predictions,
                     calibration: dict | None = None, test_noise: str | None = None) -> dict:
    """table.md/.csv, predictions.csv, one confusion-matrix PNG per test set and
    evaluation.json (written last: it marks a finished re-test) in ``out_dir``, for a network's
    checkpoint and a baseline's estimator alike; ``test_noise``: the digest of the test noise bank
    (run.json's ``test_noise``). Returns evaluation.json's content + ``files``."""
    from ser.atomic import write_json_atomic, write_text_atomic
    from ser.reporting.figures import confusion_matrix_figure
    from ser.reporting.predictions import write_predictions
    from ser.reporting.tables import csv_table, markdown_table, test_set_label

    title = f"{run_name}: {checkpoint.name}"
    if changes:
        title += f" ({', '.join(f'{k}={v}' for k, v in changes.items())})"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "table.md", markdown_table(metrics, title=title) + "\n")
    write_text_atomic(out_dir / "table.csv", csv_table(metrics))
    files = [out_dir / "table.md", out_dir / "table.csv"]
    if predictions is not None:
        files.append(write_predictions(out_dir / PREDICTIONS_FILE, predictions))
    for name, m in metrics.items():
        files.append(confusion_matrix_figure(
            m["confusion_matrix"], classes, path=out_dir / f"confusion_{name}.png",
            title=f"{run_name}, test set {test_set_label(name)}: accuracy {100 * m['accuracy']:.1f}%, "
                  f"{m['n_blocks']} blocks"))
    result = {"checkpoint": str(checkpoint), "title": title, "classes": list(classes),
              "changes": dict(changes), "metrics": metrics, "out_dir": str(out_dir),
              **({"calibration": calibration} if calibration else {}),
              **({"test_noise": test_noise} if test_noise else {})}
    write_json_atomic(out_dir / "evaluation.json", result)
    result["files"] = [str(f) for f in [*files, out_dir / "evaluation.json"]]
    return result


def describe_evaluation(result: dict) -> str:
    """What evaluate.py prints: the table, then where the files went."""
    from ser.reporting.tables import markdown_table

    n_figures = sum(f.endswith(".png") for f in result["files"])
    return (markdown_table(result["metrics"], title=result["title"]) + "\n\n"
            f"Wrote table.md, table.csv, predictions.csv, evaluation.json and {n_figures} confusion-matrix "
            f"picture(s) (confusion_<test set>.png) to {result['out_dir']}")
