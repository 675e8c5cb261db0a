"""ONNX export: the graph reproduces the checkpoint's own predict_blocks on real speech.

One tiny train.py run (features=logmel, the default EfficientNet-Lite0) goes through the CLI;
the paper's jet-image front-end is checked with an AlexNet checkpoint made in-process (same
file layout as train.py's), which keeps the whole file well under a minute on 2 cores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import FAST, REPO, compose, run_script

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

URDU = REPO.parent / "shared" / "data" / "urdu"
CLASSES = ["angry", "happy", "neutral", "sad"]


def speech_blocks(tmp: Path, count: int = 12, sample_rate: int = 16000) -> np.ndarray:
    """(count, sample_rate) 1-s blocks of real speech: the Urdu corpus if here, else the demo."""
    from ser.audio.io import load_audio
    from ser.data.blocks import cut_blocks

    if URDU.is_dir():
        files = sorted(URDU.rglob("*.wav"))[::37][:count]
    else:
        from ser.data.demo import build_demo_corpus

        build_demo_corpus(tmp / "demo", n_speakers=2, utterances_per_class=2)
        files = sorted((tmp / "demo").rglob("*.wav"))[:count]
    blocks = [cut_blocks(load_audio(f, sample_rate), sample_rate, 0.5) for f in files]
    return np.concatenate(blocks)[:count].astype(np.float32)


def export(ckpt: Path, out: Path, capsys) -> tuple[int, str]:
    """``python -m ser.export ckpt=.. out=..`` in-process (a subprocess would re-import torch):
    (exit code, stderr)."""
    from ser.commands.export import main

    try:
        main([f"ckpt={ckpt}", f"out={out}"])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def check_parity(model, onnx_path: Path, blocks: np.ndarray) -> tuple[float, float]:
    from ser.inference.onnx_predictor import OnnxPredictor

    ref = model.predict_blocks(blocks).numpy()
    got = OnnxPredictor(onnx_path).predict_blocks(blocks)
    assert got.shape == ref.shape and got.dtype == np.float32
    diff = float(np.abs(got - ref).max())
    agree = float((got.argmax(1) == ref.argmax(1)).mean())
    print(f"{onnx_path.name}: {len(blocks)} blocks, max abs diff {diff:.2e}, argmax agreement {agree:.0%}")
    assert diff <= 1e-3 and agree == 1.0
    return diff, agree


@pytest.fixture(scope="module")
def logmel_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export_run")
    done = run_script("train.py", [*FAST, "logger=none", f"hydra.run.dir={root / 'run'}"], cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "run"


@pytest.fixture(scope="module")
def blocks(tmp_path_factory) -> np.ndarray:
    return speech_blocks(tmp_path_factory.mktemp("speech"))


def test_logmel_run_exports_with_metadata_and_parity(logmel_run, blocks, tmp_path, capsys):
    from ser.inference.onnx_predictor import OnnxPredictor, onnx_blocks_per_second
    from ser.evaluation.runs import find_checkpoint, load_classifier

    out = tmp_path / "model.onnx"
    code, err = export(logmel_run, out, capsys)
    assert code == 0 and out.is_file(), err[-3000:]
    model, hp = load_classifier(find_checkpoint(logmel_run))
    # the run fitted its calibration layer on its validation part (calibration=noise_aware, the
    # default): the graph carries it, so the parity below is of calibrated probabilities; its
    # own abstention threshold travels in the metadata
    assert bool(model.calibration.fitted) and not bool((model.calibration.scale == 1).all())
    predictor = OnnxPredictor(out)
    assert predictor.classes == list(hp["classes"])
    assert predictor.sample_rate == 16000 and predictor.block_seconds == 1.0
    data = hp["run_config"]["data"]
    assert predictor.pad_min_fraction == data.get("pad_min_fraction")
    assert "min_confidence" in hp and predictor.min_confidence == hp["min_confidence"]
    check_parity(model, out, blocks)
    assert predictor.predict_blocks(np.zeros((0, 16000), np.float32)).shape == (0, len(CLASSES))
    assert onnx_blocks_per_second(out, blocks[:4], repeats=1) > 0


def _paper_checkpoint(tmp: Path) -> Path:
    """An AlexNet + features=paper checkpoint laid out as train.py writes it (random weights)."""
    from omegaconf import OmegaConf

    from ser.models.module import EmotionClassifier

    cfg = compose([*FAST, "logger=none", "features=paper", "model=alexnet"])
    plain = lambda node: OmegaConf.to_container(node, resolve=True)  # noqa: E731
    torch.manual_seed(0)
    model = EmotionClassifier(classes=CLASSES, model=plain(cfg.model), optim=plain(cfg.optim),
                              features=plain(cfg.features))
    hp = {"classes": CLASSES, "model": plain(cfg.model), "optim": plain(cfg.optim),
          "features": plain(cfg.features), "run_config": {"data": plain(cfg.data)}}
    path = tmp / "run" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hp}, path)
    return path


def test_paper_front_end_exports_with_parity(blocks, tmp_path):
    from ser.export import export_onnx
    from ser.evaluation.runs import load_classifier

    ckpt = _paper_checkpoint(tmp_path)
    meta = export_onnx(ckpt.parent.parent, tmp_path / "paper.onnx")
    assert json.loads(meta["classes"]) == CLASSES and meta["features"] == "SpectrogramImage"
    model, _ = load_classifier(ckpt)
    assert model.calibration is None  # a checkpoint from before calibration layers still loads
    check_parity(model, tmp_path / "paper.onnx", blocks[:6])


def test_baseline_run_is_refused(tmp_path, capsys):
    (tmp_path / "base" / "checkpoints").mkdir(parents=True)
    (tmp_path / "base" / "checkpoints" / "baseline.pkl").write_bytes(b"")
    code, err = export(tmp_path / "base", tmp_path / "x.onnx", capsys)
    assert code == 2 and "error:" in err and "baseline" in err and "Traceback" not in err


def test_missing_onnxruntime_is_one_clear_error(monkeypatch):
    from ser.errors import SerError
    from ser.inference.onnx_predictor import require_onnx

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(SerError, match="onnxruntime"):
        require_onnx()


def test_arguments_are_key_value_words_as_in_the_other_light_commands():
    from ser.cli import parse
    from ser.commands.export import SPEC
    from ser.errors import SerError

    assert parse(["ckpt=run", "opset=17"], SPEC, "ser.export") == {"ckpt": "run", "out": "model.onnx", "opset": 17}
    for argv, expected in [(["ckpt=run", "speed=2"], "Unknown argument 'speed=2': ser.export takes "
                                                       "key=value words among ckpt, out, opset"),
                           (["out=x.onnx"], "ser.export needs the model"),
                           (["ckpt=run", "opset=new"], "opset= takes an integer")]:
        with pytest.raises(SerError, match=expected):
            parse(argv, SPEC, "ser.export")


def test_a_calibration_that_reads_the_input_travels_in_the_graph(logmel_run, blocks, tmp_path, capsys):
    """calibration=noise_aware: its temperature follows each block's level spread, computed
    from the image inside the layer, so the ONNX graph (sort and gather) gives what the
    checkpoint gives, and the context really moves the probabilities."""
    from ser.evaluation.runs import find_checkpoint, load_classifier

    ckpt = torch.load(find_checkpoint(logmel_run), map_location="cpu", weights_only=False)
    ckpt["hyper_parameters"]["calibration"] = {"_target_": "ser.models.noise_calibration.NoiseAwareScaling"}
    state = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("calibration.")}
    state.update({"calibration.scale": torch.tensor([0.9, 1.1, 1.0, 0.8]),
                  "calibration.bias": torch.tensor([0.1, -0.1, 0.0, 0.05]),
                  "calibration.log_temperature": torch.tensor([0.1, 0.6]),
                  "calibration.centre": torch.tensor(0.8), "calibration.spread_scale": torch.tensor(0.2),
                  "calibration.fitted": torch.tensor(True)})
    ckpt["state_dict"] = state
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save(ckpt, path)
    out = tmp_path / "noise_aware.onnx"
    code, err = export(path, out, capsys)
    assert code == 0, err[-3000:]
    model, _ = load_classifier(path)
    check_parity(model, out, blocks)
    calibrated = model.predict_blocks(blocks)
    model.calibration.log_temperature[1] = 0.0   # the same layer, blind to the noise
    assert not torch.allclose(calibrated, model.predict_blocks(blocks), atol=1e-4)
