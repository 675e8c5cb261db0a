"""Extension points plug in by adding their own file and YAML only: nothing in ser/ changes.

A new front-end (one Python file of step modules, one conf/features/ YAML) builds from the
config, classifies, and exports to ONNX with parity, with no twin written for the export.
"""

from __future__ import annotations

import shutil
import textwrap

import numpy as np
import pytest
import torch

from tests.conftest import FAST, REPO

FRONT_END = '''
"""A linear-frequency dB image: ser's STFT step, then this file's own step."""
import torch
from torch import nn

from ser.features.stft import InfinityNorm, StftPower


class DbImage(nn.Module):
    """|STFT|^2 (B, F, frames) -> (B, 3, F, frames) dB below each block's peak, in [-1, 1]."""

    def __init__(self, top_db: float) -> None:
        super().__init__()
        self.top_db = float(top_db)

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        db = 10.0 * torch.log10(power.clamp(min=1e-10))
        db = torch.maximum(db - db.amax(dim=(1, 2), keepdim=True), db.new_tensor(-self.top_db))
        return (db / (self.top_db / 2) + 1.0).unsqueeze(1).expand(-1, 3, -1, -1)


class LinearDb(nn.Sequential):
    def __init__(self, sample_rate: int = 16000, n_fft: int = 256, hop_length: int = 128,
                 top_db: float = 60.0) -> None:
        super().__init__(InfinityNorm(),
                         StftPower(n_fft, hop_length, torch.hann_window(n_fft), "reflect"),
                         DbImage(top_db))
        self.sample_rate = sample_rate
'''

FRONT_END_YAML = """
_target_: linear_db.LinearDb
sample_rate: 16000
n_fft: 256
hop_length: 128
top_db: 60.0
"""


def plug_in(tmp_path, monkeypatch, module: str, code: str, yaml_file: str, yaml: str, overrides: list[str]):
    """What a user adds, and nothing else: ``module``.py (on the import path) and one YAML at
    ``yaml_file`` in a copy of conf/; returns train.py's config with ``overrides``."""
    from hydra import compose, initialize_config_dir

    (tmp_path / "code").mkdir()
    (tmp_path / "code" / f"{module}.py").write_text(textwrap.dedent(code))
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    (tmp_path / "conf" / yaml_file).write_text(yaml)
    monkeypatch.setenv("SER_CONF", str(tmp_path / "conf"))
    with initialize_config_dir(config_dir=str(tmp_path / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def test_a_new_front_end_is_one_file_and_one_yaml_and_exports_with_parity(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from omegaconf import OmegaConf

    from ser.export import export_onnx
    from ser.inference.onnx_predictor import OnnxPredictor
    from ser.models.module import EmotionClassifier

    cfg = plug_in(tmp_path, monkeypatch, "linear_db", FRONT_END, "features/linear_db.yaml", FRONT_END_YAML,
                  [*FAST, "features=linear_db", "model=alexnet"])
    plain = lambda node: OmegaConf.to_container(node, resolve=True)  # noqa: E731
    classes = ["anger", "happiness", "neutral", "sadness"]
    torch.manual_seed(0)
    model = EmotionClassifier(classes=classes, model=plain(cfg.model), optim=plain(cfg.optim),
                              features=plain(cfg.features)).eval()
    assert type(model.frontend).__name__ == "LinearDb"
    blocks = (0.3 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * np.array([[180.0], [440.0], [900.0]]))
              + 0.05 * np.random.default_rng(0).standard_normal((3, 16000))).astype(np.float32)
    assert model.frontend(torch.from_numpy(blocks)).shape == (3, 3, 129, 126)

    hp = {"classes": classes, "model": plain(cfg.model), "optim": plain(cfg.optim),
          "features": plain(cfg.features), "run_config": {"data": plain(cfg.data)}}
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hp}, ckpt)
    meta = export_onnx(tmp_path / "run", tmp_path / "linear_db.onnx")
    assert meta["features"] == "LinearDb"
    ref = model.predict_blocks(blocks).numpy()
    got = OnnxPredictor(tmp_path / "linear_db.onnx").predict_blocks(blocks)
    assert np.abs(got - ref).max() <= 1e-3 and (got.argmax(1) == ref.argmax(1)).all()


def test_networks_are_checked_against_the_network_protocol():
    from ser.errors import SerError
    from ser.models.builders import build_network
    from ser.models.network import Network

    net = build_network({"_target_": "ser.models.backbones.alexnet", "pretrained": False}, 4)
    assert isinstance(net, Network) and [n for n, _ in net.finetune_stages()][0] == "features_10"
    with pytest.raises(SerError, match="lacks has_frozen, head, trunk, tail, finetune_stages"):
        build_network({"_target_": "torch.nn.Identity"}, 4)  # takes any keys, is no Network


TEST_SET_KIND = '''
"""Telephone-band test sets: the held-out speakers' clean blocks through a 300-3400 Hz band."""
import numpy as np
import torch
from torch.utils.data import Dataset

from ser.data.test_sets import TestSet


class BandLimited(Dataset):
    def __init__(self, inner, sample_rate, low_hz, high_hz):
        self.inner, self.sample_rate, self.band = inner, sample_rate, (low_hz, high_hz)

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        item = dict(self.inner[i])
        spectrum = torch.fft.rfft(item["clean"])
        hz = torch.fft.rfftfreq(item["clean"].shape[-1], 1.0 / self.sample_rate)
        spectrum[(hz < self.band[0]) | (hz > self.band[1])] = 0
        item["clean"] = torch.fft.irfft(spectrum, n=item["clean"].shape[-1])
        return item


def phone_band(data, low_hz: float = 300.0, high_hz: float = 3400.0):
    clean = data.noisy_dataset(data.test_idx, float("inf"), stream=7)
    return [TestSet("phone", None, "phone", BandLimited(clean, data.sample_rate, low_hz, high_hz),
                    data.blocks)]
'''

TEST_SET_YAML = """# @package _global_
data:
  test_sets:
    phone:
      _target_: phone_band.phone_band
      high_hz: 3400
"""


def test_a_new_test_set_kind_is_one_file_and_one_yaml_and_reports_read_it(tmp_path, monkeypatch):
    import pytorch_lightning as pl
    from omegaconf import OmegaConf

    from ser.configs import build
    from ser.models.module import EmotionClassifier
    from ser.set_names import is_own_set, recorded_test_sets
    from ser.training.run_files import run_record

    monkeypatch.setenv("SER_CACHE", str(tmp_path / "cache"))
    cfg = plug_in(tmp_path, monkeypatch, "phone_band", TEST_SET_KIND, "experiment/phone.yaml", TEST_SET_YAML,
                  [*FAST, "logger=none", "experiment=phone", "data.test_snrs=[0]"])
    data = build(cfg.data, verbose=False)
    data.setup("test")
    assert data.test_set_names == ["clean", "0dB", "phone"]
    phone = data.test_sets()[-1].dataset[0]
    spectrum = torch.fft.rfft(phone["clean"]).abs()
    assert float(spectrum[3500:].max()) < 1e-3 * float(spectrum.max())   # nothing above 3.4 kHz

    plain = lambda node: OmegaConf.to_container(node, resolve=True)  # noqa: E731
    model = EmotionClassifier(classes=data.classes, model=plain(cfg.model), optim=plain(cfg.optim),
                              features=plain(cfg.features), run_config=plain(cfg))
    pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
               limit_test_batches=1, accelerator="cpu").test(model, datamodule=data, verbose=False)
    assert list(model.test_results) == ["clean", "0dB", "phone"]
    record = run_record(cfg, data, wall_time_s=0.0)
    recorded = recorded_test_sets([record])
    assert recorded["phone"] == {"corpus": None, "condition": "phone"} and is_own_set("phone", recorded)
