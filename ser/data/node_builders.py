"""The objects a run's config nodes name: the corpus reader (``conf/dataset``), the noise
source (``conf/noise``), the speech-activity detector (``conf/vad``) and the split
(``conf/split``) are each a ``_target_`` called with the node's own keys. One place for how a
node becomes its builder's arguments (which keys label the node rather than configure it, and
that nested values reach the builder unbuilt), so every group is built the same way.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from ser.audio.noise import NoiseBank
from ser.audio.noise_sources import NOT_SOURCE_KEYS
from ser.configs import build

# Keys of a dataset node that label it and are not its reader's arguments.
DATASET_META_KEYS = ("name",)


def build_from(group: str, node: DictConfig, meta_keys: tuple[str, ...], **given):
    """Call ``node._target_`` with ``given`` and the node's own keys but ``meta_keys`` (a file of
    conf/<group>/, e.g. conf/noise/dir.yaml or conf/split/loso.yaml, names the builder)."""
    settings = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k not in meta_keys}
    return build({**settings, "_recursive_": False}, **given)  # nested values reach the builder as they are


def build_detector(vad: DictConfig | None, sample_rate: int):
    """The speech-activity detector ``vad._target_`` names (None: ``vad=none`` or no node)."""
    if vad is None or not vad.get("_target_"):
        return None
    return build_from("vad", vad, (), sample_rate=sample_rate)


def noise_split_seed(seed: int, fold: int, per_fold: bool) -> int:
    """The seed that picks which noise files are test, validation and training noise: the run's
    ``seed``, or with ``noise.per_fold`` one of its own for each ``fold``. With one draw for every
    fold, a pooled noisy test set is five looks at the same few test files, and a draw of harder
    files (ASED's noise folder: 6 of its 22 test files crowd sounds, 2 of 19 validation files)
    moves every fold alike; a draw per fold averages over five."""
    return int(seed) if not per_fold else int(seed) * 1000 + 101 * (int(fold) + 1)


def build_noise_banks(noise: DictConfig, sample_rate: int, seed: int,
                      cache_dir: str | None) -> tuple[NoiseBank, NoiseBank]:
    """(train, test) banks from the noise source ``noise._target_`` names."""
    return build_from("noise", noise, NOT_SOURCE_KEYS, sample_rate=sample_rate, cache_dir=cache_dir,
                      run_seed=seed)
