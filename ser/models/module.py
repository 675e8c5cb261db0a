"""The LightningModule: mix and render batches on the device, fine-tune, report every test set.

Its per-speaker image normalisation stages live in :mod:`ser.models.group_norm_stages`, its
trunk-cache stages in :mod:`ser.models.trunk_cache_stages` (mixins of the one class) and the
DDP gathering of outputs in :mod:`ser.models.gathering`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from ser.audio.mixing import mix_at_snr
from ser.configs import plain
from ser.errors import SerError
from ser.features.group_norm import GroupNorm, grouping_setting
from ser.features.augment import build_specaugment, build_time_reversal
from ser.models.builders import build_calibration, build_frontend, build_network
from ser.models.calibration import calibrate
from ser.models.gathering import gather_items
from ser.models.group_norm_stages import GroupNormStages
from ser.models.metrics import block_metrics, score_test_set
from ser.models.trunk_cache import TrunkCache
from ser.models.trunk_cache_stages import TrunkCacheStages
from ser.models.optimizers import build_optimizer


class EmotionClassifier(GroupNormStages, TrunkCacheStages, pl.LightningModule):
    """Waveform blocks + noise + SNR -> spectrogram images -> emotion logits.

    The image pipeline lives here, not in the data module, so a checkpoint alone can classify a
    new recording: it carries the classes, the backbone and the spectrogram settings.
    """

    def __init__(self, classes: list[str], model: dict, optim: dict, features: dict,
                 run_config: dict | None = None, augment: dict | None = None,
                 trunk_cache: dict | None = None, choices: dict | None = None,
                 calibration: dict | None = None):
        """``run_config`` is the whole resolved training config: it travels in the checkpoint so
        evaluate.py can rebuild the exact data (corpus, split, fold, seed, noise) it was tested on.
        ``features`` builds the front-end (waveform -> network input), ``model`` the backbone and
        head, ``augment`` the training-only augmentation (``conf/augment``; None: none),
        ``trunk_cache`` whether frozen layers are computed once (:mod:`ser.models.trunk_cache`),
        ``choices`` the file of each config group Hydra composed the run from (evaluate.py
        recomposes the config from them), ``calibration`` the layer on the logits fitted after
        training (``conf/calibration``, :mod:`ser.models.calibration`; None or no ``_target_``: none)."""
        super().__init__()
        model, optim, features = plain(model), plain(optim), plain(features)
        augment = plain(augment) or {}
        self.save_hyperparameters({"classes": list(classes), "model": model, "optim": optim,
                                   "features": features, "run_config": plain(run_config),
                                   "augment": augment, "choices": dict(choices or {}),
                                   "calibration": plain(calibration) or None})
        self.trunk_cache_cfg = dict(plain(trunk_cache) or {"enabled": False})
        self.caches: dict[str, TrunkCache] = {}
        self.trunk_cache_report: dict[str, dict] = {}
        self.classes = list(classes)
        self.net = build_network(model, len(self.classes))
        self.calibration = build_calibration(calibration, len(self.classes))
        self.validation_logits: list | None = None   # set to a list to collect them (calibration_fit)
        self.validation_history: list[dict] = []     # each validation's step and UA (and on shared texts)
        self.shared_text: np.ndarray | None = None   # (N blocks,) bool, from the data module at setup
        encoder = getattr(self.net, "encoder", None)
        if encoder is not None and hasattr(encoder, "config"):
            # the architecture travels in the checkpoint: evaluate.py rebuilds it offline
            self.hparams["model"]["encoder_config"] = encoder.config.to_dict()
        self.channels_last = bool(model.get("channels_last", False))
        self.frontend = build_frontend(features, self.channels_last)
        self.specaugment = build_specaugment(augment.get("specaugment"))
        self.time_reversal = build_time_reversal(augment.get("time_reverse"))
        if self.specaugment is not None and not getattr(self.frontend, "image", True):
            raise SerError(f"augment.specaugment masks rows and columns of spectrogram images, but "
                           f"the front-end {type(self.frontend).__name__} gives the network "
                           "waveforms (features=waveform). Use augment=none; a speech encoder "
                           "masks its own frames while fine-tuning (model.mask_time_prob).")
        # optim.label_smoothing: the share of each target spread over the other classes
        self.label_smoothing = float(optim.get("label_smoothing") or 0.0)
        if self.channels_last:
            # Weights in the images' memory order: gradients then come out in the order of
            # the weights (DDP's gradient buckets require it) and convolutions skip conversions.
            self.net = self.net.to(memory_format=torch.channels_last)
        # data.speaker_norm: the images normalised by each speaker's (or recording's) band
        # statistics, taken per part at the start of fitting and testing (ser/features/group_norm.py)
        self.grouping = grouping_setting(((plain(run_config) or {}).get("data") or {}).get("speaker_norm"))
        self.group_norms: dict[str, GroupNorm] = {}
        self._speakers_of: dict[str, list[str]] = {}
        self.compile_net = bool(model.get("compile", False))
        self.register_buffer("class_weights", torch.ones(len(self.classes)), persistent=False)
        self._outputs: dict[int, list[tuple[torch.Tensor, ...]]] = {}
        self.test_set_names: list[str] = []
        self.test_results: dict[str, dict] = {}
        # per test set: (probs (N, C), labels, utterance indices, block indices, window offsets
        # in samples), numpy, for predictions.csv
        self.test_items: dict[str, tuple[np.ndarray, ...]] = {}

    # ------------------------------------------------------------- images
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, dict) and "clean" in batch and "image" not in batch:
            training = self._trainer is not None and self.trainer.training
            cache = self._stage_cache()
            collecting = self.validation_logits is not None   # calibration may read the images
            if cache is not None and "item" in batch and cache.holds(batch["item"]) and not collecting:
                batch["trunk"] = cache.lookup(batch["item"], batch["clean"].device)
                return batch  # no image needed: the frozen layers' output is kept
            if training and self.time_reversal is not None:
                batch["clean"] = self.time_reversal(batch["clean"])
            batch["image"] = self.render(batch["clean"], batch["noise"], batch["snr"])
            if self.grouping is not None:
                batch["image"] = self._group_normalise(batch, dataloader_idx)
            if training and self.specaugment is not None:
                batch["image"] = self.specaugment(batch["image"])
        return batch

    @torch.no_grad()
    def render(self, clean: torch.Tensor, noise: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
        """(B, T) clean + (B, T) noise at (B,) dB (inf = clean) -> (B, 3, H, W) images, or
        (B, T) normalised waveforms for a waveform front-end."""
        image = self.frontend(mix_at_snr(clean, noise, snr.to(clean.dtype)))
        if self.channels_last and image.dim() == 4:
            return image.contiguous(memory_format=torch.channels_last)
        return image

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self._network()(images)

    def _network(self) -> nn.Module:
        """The backbone, or (``model.compile=true``) its ``torch.compile``'d form, made on
        first use. The compiled wrapper is kept out of the module's registered children, so
        checkpoints hold the same parameter names either way."""
        if not self.compile_net:
            return self.net
        compiled = self.__dict__.get("_compiled_net")
        if compiled is None:
            compiled = self.__dict__["_compiled_net"] = torch.compile(self.net)
        return compiled

    # ----------------------------------------------------------- training
    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if stage == "fit" and self.hparams.optim.get("class_weighted") and dm is not None:
            counts = torch.as_tensor(dm.train_class_counts, dtype=torch.float32).clamp(min=1)
            self.class_weights = (counts.sum() / (len(counts) * counts)).to(self.device)
        if dm is not None and hasattr(dm, "test_set_names"):
            self.test_set_names = list(dm.test_set_names)
        if dm is not None and hasattr(dm, "shared_text_blocks"):
            self.shared_text = dm.shared_text_blocks()   # validation's val/ua_shared_text
        if stage == "fit":
            self._setup_trunk_caches(dm)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The training loss of (B, C) logits against (B,) class ids: cross-entropy with the
        optional class weights and label smoothing (``optim.label_smoothing``)."""
        return nn.functional.cross_entropy(logits, labels, weight=self.class_weights,
                                           label_smoothing=self.label_smoothing)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        labels = batch["label"]
        logits = self._batch_logits(batch)
        loss = self.loss(logits, labels)
        acc = (logits.argmax(1) == labels).float().mean()
        self.log_dict({"train/loss": loss, "train/accuracy": acc}, prog_bar=True,
                      batch_size=len(batch["label"]))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self._batch_logits(batch)
        loss = nn.functional.cross_entropy(logits, batch["label"])
        self.log("val/loss", loss, batch_size=len(batch["label"]), sync_dist=True)
        self._outputs.setdefault(0, []).append((logits.argmax(1).cpu(), batch["label"].cpu(),
                                                batch["block"].cpu(), batch["snr"].cpu()))
        if self.validation_logits is not None:
            columns = (logits.detach().float().cpu(), batch["label"].cpu(), batch["block"].cpu(),
                       batch["snr"].cpu())
            if getattr(self.calibration, "uses_images", False):
                columns += (self.calibration.context(batch["image"]).float().cpu(),)
            self.validation_logits.append(columns)

    def on_validation_epoch_end(self) -> None:
        outs = gather_items(self._outputs.pop(0, []), key=(2, 3))
        if not outs:
            return
        preds, target = outs[:2]
        if self.validation_logits is not None:
            return   # calibration_fit's pass over the part and its noisy copies: no validation check
        m = block_metrics(preds, target, len(self.classes))
        # identical on every process after the gather; sync_dist only keeps DDP's logging uniform
        self.log_dict({"val/weighted_f1": m["weighted_f1"], "val/ua": m["ua"],
                       "val/accuracy": m["accuracy"]}, prog_bar=True, sync_dist=True)
        scores = {"ua": float(m["ua"])}
        shared = self.shared_text
        if shared is not None:   # the blocks whose words cannot give the label away (ser/data/texts.py)
            keep = torch.as_tensor(shared)[outs[2].long()]
            if bool(keep.any()):
                shared_ua = block_metrics(preds[keep], target[keep], len(self.classes))["ua"]
                scores["ua_shared_text"] = float(shared_ua)
                self.log("val/ua_shared_text", scores["ua_shared_text"], sync_dist=True)
        if self._trainer is not None and not self.trainer.sanity_checking:
            self.validation_history.append({"step": int(self.global_step), **scores})
        shares = self.layer_shares()
        if shares:  # which encoder layers the head listens to (speech encoders)
            self.log_dict({f"layers/{i:02d}": v for i, v in enumerate(shares)}, sync_dist=True)

    def validation_at(self, score: float | None, monitor: str = "val/ua") -> dict | None:
        """The first validation during training whose ``monitor`` (``val/ua`` or
        ``val/ua_shared_text``) was ``score`` (the selected checkpoint's: a checkpoint is replaced
        only by a strictly better one): ``{"step", "ua"[, "ua_shared_text"]}``."""
        if score is None:
            return None
        key = monitor.split("/", 1)[-1]
        return next((h for h in self.validation_history
                     if h.get(key) is not None and abs(h[key] - float(score)) < 1e-6), None)

    def layer_shares(self) -> list[float]:
        """softmax of a speech encoder head's layer weights, layer 0 (the CNN's output) first;
        empty for the CNNs."""
        head = getattr(self.net, "head", None)
        return [float(v) for v in head.layer_shares()] if hasattr(head, "layer_shares") else []

    def calibrated(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """Logits of ``images`` through the calibration layer (as they are without one)."""
        return calibrate(self.calibration, logits, images)

    # --------------------------------------------------------------- test
    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        probs = torch.softmax(self.calibrated(self(batch["image"]).float(), batch["image"]), dim=1)
        offset = batch.get("offset", torch.zeros_like(batch["block"]))
        self._outputs.setdefault(dataloader_idx, []).append(
            (probs.cpu(), batch["label"].cpu(), batch["utterance"].cpu(), batch["block"].cpu(),
             torch.as_tensor(offset).cpu()))

    def on_test_epoch_end(self) -> None:
        self.test_results, self.test_items = {}, {}
        for idx in sorted(self._outputs):
            # a test set holds each block (and window: block + offset) once, at its one SNR
            probs, target, utt, block, offset = gather_items(self._outputs[idx], key=(3, 4))
            name = self.test_set_names[idx] if idx < len(self.test_set_names) else f"test{idx}"
            self.test_results[name] = score_test_set(probs, target, utt, offset)
            self.test_items[name] = tuple(t.numpy() for t in (probs, target, utt, block, offset))
        self._outputs.clear()
        flat = {f"test/{name}/{k}": v for name, m in self.test_results.items()
                for k, v in m.items() if isinstance(v, float)}
        if flat:
            self.log_dict(flat, add_dataloader_idx=False, sync_dist=True)

    # ---------------------------------------------------------- optimiser
    def configure_optimizers(self) -> dict:
        """Optimiser and schedule from ``conf/optim`` (partials), over the groups of
        :func:`ser.models.optimizers.parameter_groups`; step schedules learn the run's length
        from the trainer's step budget."""
        total = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 1
        return build_optimizer(self.net, self.hparams.optim, total)

    # ---------------------------------------------------------- inference
    @torch.no_grad()
    def predict_blocks(self, blocks: np.ndarray | torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """(N, T) clean waveform blocks -> (N, C) class probabilities (eval mode, no noise)."""
        self.eval()
        x = torch.as_tensor(np.asarray(blocks, dtype=np.float32))
        out = []
        for chunk in torch.split(x, batch_size):
            chunk = chunk.to(self.device)
            snr = torch.full((len(chunk),), float("inf"), device=self.device)
            images = self.render(chunk, torch.zeros_like(chunk), snr)
            out.append(torch.softmax(self.calibrated(self(images), images), 1).cpu())
        return torch.cat(out) if out else torch.empty(0, len(self.classes))
