"""What a tracker shows beyond curves: spectrogram previews and the test tables."""

from __future__ import annotations

import logging

import numpy as np
import torch

from ser.audio.mixing import mix_at_snr

log = logging.getLogger(__name__)


def _pictures(frontend, mixed: torch.Tensor) -> np.ndarray:
    """(B, T) blocks -> (B, H, W, 3) uint8: the bytes a front-end's images are made from."""
    if hasattr(frontend, "rgba"):  # the paper's jet images, before normalisation
        return frontend.rgba(mixed)[:, :3].permute(0, 2, 3, 1).cpu().numpy()
    return frontend.picture(mixed).cpu().numpy()


def preview_images(model, datamodule, n: int, snr_db: float = 15.0) -> list[tuple[np.ndarray, str]]:
    """(H, W, 3) uint8 pictures of ``n`` validation blocks, clean and mixed at ``snr_db``."""
    ds = datamodule.val_dataset()
    items = [ds[i] for i in range(min(n, len(ds.blocks)))]
    if not items:
        return []
    clean = torch.stack([it["clean"] for it in items])
    noise = torch.from_numpy(np.stack([datamodule.train_bank.segment(np.random.default_rng([i, 17]),
                                                                     clean.shape[1]) for i in range(len(items))]))
    out = []
    for snr in (float("inf"), snr_db):
        mixed = mix_at_snr(clean, noise, torch.full((len(items),), snr))
        # the un-normalised bytes the training images are made from: no inverse normalisation
        pictures = _pictures(model.frontend, mixed)
        for picture, it in zip(pictures, items):
            label = datamodule.classes[it["label"]]
            cond = "clean" if snr == float("inf") else f"{snr:g} dB"
            out.append((np.ascontiguousarray(picture), f"{label}, {cond}"))
    return out


def log_spectrogram_previews(logger, model, datamodule, n: int) -> None:
    if n <= 0 or not hasattr(logger, "log_image") or not getattr(model.frontend, "image", True):
        return  # nothing to show for waveform front-ends (speech encoders)
    try:
        pics = preview_images(model, datamodule, n)
        logger.log_image(key="spectrograms", images=[p for p, _ in pics], caption=[c for _, c in pics])
    except Exception as exc:  # previews are a nicety: never fail a run over them
        log.warning("Could not log spectrogram previews: %s", exc)


def log_test_tables(logger, metrics: dict, classes: list[str]) -> None:
    """The Table 5/6 rows and one confusion matrix per test set, for the W&B dashboard."""
    if not hasattr(logger, "log_table"):
        return
    try:
        import wandb

        from ser.reporting.tables import METRICS as keys

        logger.log_table(key="test_metrics", columns=["test_set", *keys],
                         data=[[name, *(m[k] for k in keys)] for name, m in metrics.items()])
        for name, m in metrics.items():
            cm = np.asarray(m["confusion_matrix"])
            y_true = np.repeat(np.arange(len(classes)), cm.sum(1))
            y_pred = np.concatenate([np.repeat(np.arange(len(classes)), row) for row in cm])
            logger.experiment.log({f"confusion/{name}": wandb.plot.confusion_matrix(
                y_true=y_true.tolist(), preds=y_pred.tolist(), class_names=classes, title=name)})
    except Exception as exc:
        log.warning("Could not log test tables to the tracker: %s", exc)
