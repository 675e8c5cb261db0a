"""Self-supervised speech encoders from ``transformers``: where their weights come from.

One family table covers WavLM, HuBERT and wav2vec 2.0: they share the layout the network in
:mod:`ser.models.speech_net` relies on (a convolutional ``feature_extractor`` from samples to
50 frames/s, a ``feature_projection``, a transformer ``encoder``, ``output_hidden_states``).

``model.pretrained`` is one of
- a hub id (``microsoft/wavlm-base-plus``): read from the Hugging Face cache when it is there,
  downloaded once otherwise; offline with no local copy, one paragraph says how to bring it;
- a local directory written by ``save_pretrained`` (or a downloaded snapshot);
- ``true``: the family's usual base checkpoint (``default_id``);
- ``false``: random weights, in the architecture of ``encoder_config`` when given (what a
  checkpoint records, so :func:`ser.evaluation.runs.load_classifier` rebuilds the
  network without the network) or the family's base size otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ser.errors import SerError
from ser.models.weights import pretrained_choice


@dataclass(frozen=True)
class EncoderFamily:
    """A ``transformers`` model family: its config and model class names, its usual checkpoint."""

    model_type: str      # transformers' config.model_type
    config_class: str
    model_class: str
    default_id: str      # the base checkpoint model.pretrained=true means

    def classes(self) -> tuple[type, type]:
        transformers = require_transformers()
        return getattr(transformers, self.config_class), getattr(transformers, self.model_class)


FAMILIES: dict[str, EncoderFamily] = {
    "wavlm": EncoderFamily("wavlm", "WavLMConfig", "WavLMModel", "microsoft/wavlm-base-plus"),
    "hubert": EncoderFamily("hubert", "HubertConfig", "HubertModel", "facebook/hubert-base-ls960"),
    "wav2vec2": EncoderFamily("wav2vec2", "Wav2Vec2Config", "Wav2Vec2Model", "facebook/wav2vec2-base"),
}


def require_transformers() -> Any:
    """The ``transformers`` module, or a SerError saying how to install it."""
    try:
        import transformers
    except ImportError as exc:
        raise SerError("The speech encoders (model=wavlm, hubert, wav2vec2) are built with the "
                       "`transformers` library, which is not installed in this environment. "
                       "Install the extra: pip install -e '.[ssl]' (or pip install "
                       "'transformers>=4.40').") from exc
    return transformers


def family(name: str) -> EncoderFamily:
    if name not in FAMILIES:
        raise SerError(f"Unknown speech encoder family `model.family={name}`; known: "
                       f"{', '.join(sorted(FAMILIES))}. Pick one with model=wavlm, model=hubert "
                       "or model=wav2vec2.")
    return FAMILIES[name]


def hub_cache_dir() -> str:
    """Where ``from_pretrained`` looks for downloaded checkpoints (``$HF_HUB_CACHE``)."""
    try:
        from huggingface_hub import constants
        return str(constants.HF_HUB_CACHE)
    except Exception:  # pragma: no cover - huggingface_hub comes with transformers
        return os.path.expanduser("~/.cache/huggingface/hub")


def _looks_like_path(text: str) -> bool:
    """A directory, not a hub id (``owner/name``, one slash, no leading ``/``, ``.`` or ``~``)."""
    return text.startswith(("/", ".", "~")) or text.count("/") != 1 or Path(text).expanduser().exists()


def _offline_error(hub_id: str, reason: str) -> SerError:
    folder = "models--" + hub_id.replace("/", "--")
    return SerError(
        f"The speech encoder `model.pretrained={hub_id}` is a Hugging Face hub id, and there is "
        f"no local copy of it in the cache folder {hub_cache_dir()} ({reason}). On a machine "
        f"with internet access run `huggingface-cli download {hub_id}` (or load it once with "
        f"transformers) and copy its folder {folder} from that machine's "
        f"~/.cache/huggingface/hub into {hub_cache_dir()} here (set HF_HUB_CACHE to use "
        "another folder); or save it with `save_pretrained(DIR)` and pass "
        "`model.pretrained=DIR`; or train from random weights on purpose with "
        "`model.pretrained=false`.")


def _check_type(model: Any, fam: EncoderFamily, origin: str) -> None:
    got = getattr(model.config, "model_type", None)
    if got != fam.model_type:
        raise SerError(f"{origin} holds a `{got}` model, but model=... asks for the "
                       f"`{fam.model_type}` family. Pick the model config of that family "
                       f"(model={got}) or point model.pretrained at a {fam.model_type} checkpoint.")


def load_encoder(name: str, pretrained: bool | str | os.PathLike | None,
                 encoder_config: dict | None = None, overrides: dict | None = None) -> Any:
    """A ``transformers`` model of family ``name`` with the weights ``pretrained`` names.

    ``overrides`` are config attributes set on top of the checkpoint's (``layerdrop``,
    ``mask_time_prob``, ...): they change training behaviour, never the architecture.
    """
    fam = family(name)
    config_cls, model_cls = fam.classes()
    require_transformers().utils.logging.disable_progress_bar()  # one bar per file: noise in logs
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    flag = pretrained_choice(pretrained)
    if flag is False:
        config = config_cls.from_dict(dict(encoder_config)) if encoder_config else config_cls()
        for key, value in overrides.items():
            setattr(config, key, value)
        return model_cls(config)
    source = fam.default_id if flag is True else os.fspath(flag)
    if _looks_like_path(source):
        folder = Path(source).expanduser()
        if not (folder / "config.json").is_file():
            raise SerError(f"`model.pretrained={source}` should be a directory written by "
                           "`save_pretrained` (with config.json and the weights), but "
                           f"{folder} {'has no config.json' if folder.is_dir() else 'does not exist'}. "
                           "Pass such a directory, a hub id, or model.pretrained=false.")
        model = _from_pretrained(model_cls, str(folder), overrides, local=True, origin=str(folder))
        _check_type(model, fam, str(folder))
        return model
    try:  # the cache first: no network when the checkpoint is already here
        model = _from_pretrained(model_cls, source, overrides, local=True, origin=source)
    except OSError:
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            raise _offline_error(source, "HF_HUB_OFFLINE is set") from None
        try:
            model = _from_pretrained(model_cls, source, overrides, local=False, origin=source)
        except OSError as exc:
            raise _offline_error(source, f"the download failed: {str(exc).splitlines()[0][:160]}") from None
    _check_type(model, fam, source)
    return model


def _from_pretrained(model_cls: type, source: str, overrides: dict, local: bool, origin: str) -> Any:
    try:
        return model_cls.from_pretrained(source, local_files_only=local, **overrides)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise SerError(f"The speech encoder at {origin} could not be loaded as a "
                       f"{model_cls.__name__}: {str(exc).splitlines()[0][:300]}. Pass a checkpoint "
                       "of that family (see model=wavlm|hubert|wav2vec2).") from exc
