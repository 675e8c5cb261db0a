"""Speech encoders (model=wavlm|hubert|wav2vec2) built from tiny random `transformers` models.

Each family's model is made with its own config class at a toy size, saved with
``save_pretrained`` into a temporary folder and used through ``model.pretrained=THAT_FOLDER``,
exactly as a downloaded checkpoint would be: no network anywhere.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

transformers = pytest.importorskip("transformers")

from ser.errors import SerError  # noqa: E402
from ser.models.speech_encoders import FAMILIES  # noqa: E402
from tests.conftest import FAST, compose, run_script  # noqa: E402

TINY = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
            conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
TARGET = "ser.models.speech_net.build_speech_encoder_net"


def save_tiny(name: str, folder) -> str:
    config_cls, model_cls = FAMILIES[name].classes()
    torch.manual_seed(0)
    model_cls(config_cls(**TINY)).save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tiny_encoders")
    return {name: save_tiny(name, root / name) for name in FAMILIES}


def build(folder: str, family: str, **options):
    from ser.models.builders import build_network

    return build_network({"_target_": TARGET, "name": family, "family": family,
                          "pretrained": folder, **options}, 4)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_layers_the_head_sees_are_the_models_own_hidden_states(tiny, family):
    _, model_cls = FAMILIES[family].classes()
    reference = model_cls.from_pretrained(tiny[family]).eval()
    blocks = torch.randn(3, 16000)
    with torch.no_grad():
        expected = torch.stack(reference(blocks, output_hidden_states=True).hidden_states, 1)
    assert expected.shape == (3, TINY["num_hidden_layers"] + 1, 49, 32)
    frozen = build(tiny[family], family).eval()
    tuned = build(tiny[family], family, trainable_from="encoder").eval()
    with torch.no_grad():
        torch.testing.assert_close(frozen.layer_states(blocks), expected)
        # fine-tuning: the trunk is the convolutional encoder; the tail runs the rest from it
        torch.testing.assert_close(tuned.layer_states(tuned.trunk(blocks)), expected)
        # frozen, mean pooling: the trunk hands on layer means, and the weighted sum commutes
        torch.testing.assert_close(frozen.trunk(blocks), expected.mean(2))
        torch.testing.assert_close(frozen.tail(frozen.trunk(blocks)), frozen.head(expected))


def test_what_trains_and_at_which_rate(tiny, tmp_path):
    from ser.models.optimizers import parameter_groups

    optim = {"lr": 1e-3, "head_weight_lr": 2e-3, "head_bias_lr": 3e-3, "decay_norm_and_bias": False}
    frozen = build(tiny["wavlm"], "wavlm")
    trained = {n.split(".")[0] for n, p in frozen.named_parameters() if p.requires_grad}
    assert trained == {"head"} and frozen.finetune_stages() == []
    names = {g["name"]: g["lr"] for g in parameter_groups(frozen, optim)}
    assert names == {"head_weight": 2e-3, "head_bias": 3e-3}  # layer weights: 1-d, bias group
    tuned = build(tiny["wavlm"], "wavlm", trainable_from="encoder.layers.1", encoder_lr=5e-5)
    fe = tuned.encoder.feature_extractor
    assert not any(p.requires_grad for p in fe.parameters())
    # as built: the fine-tuned layers in training mode (dropout, masks), frozen parts in eval
    assert tuned.encoder.encoder.layers[2].training and not fe.training
    assert not frozen.encoder.training and frozen.head.training
    assert not any(p.requires_grad for p in tuned.encoder.encoder.layers[0].parameters())
    assert all(p.requires_grad for p in tuned.encoder.encoder.layers[2].parameters())
    groups = parameter_groups(tuned, {**optim, "layer_decay": 0.5})
    lrs = {g["name"]: g["lr"] for g in groups}
    assert lrs["finetune.layers.2"] == 5e-5 and lrs["finetune.layers.1"] == 2.5e-5
    assert "finetune.layers.0" not in lrs
    grouped = {id(p) for g in groups for p in g["params"]}
    assert grouped == {id(p) for p in tuned.parameters() if p.requires_grad}  # each once, none left
    # Large checkpoints put the encoder's layer norm after the top layer: it trains with it
    config_cls, model_cls = FAMILIES["wav2vec2"].classes()
    large = tmp_path / "stable"
    model_cls(config_cls(**TINY, do_stable_layer_norm=True)).save_pretrained(str(large))
    for trainable_from in ("encoder", "encoder.layers.2"):
        net = build(str(large), "wav2vec2", trainable_from=trainable_from)
        assert net.encoder.encoder.layer_norm.weight.requires_grad
        groups = parameter_groups(net, {**optim, "layer_decay": 0.5})
        grouped = [id(p) for g in groups for p in g["params"]]
        assert sorted(grouped) == sorted(id(p) for p in net.parameters() if p.requires_grad)


def test_gradient_checkpointing_gives_the_same_gradients(tiny):
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)  # the same new head
        net = build(tiny["hubert"], "hubert", trainable_from="encoder", mask_time_prob=0.0,
                    head_dropout=0.0, gradient_checkpointing=checkpointing)
        assert net.encoder.is_gradient_checkpointing == checkpointing
        net.eval()  # no dropout: the two passes must see the same network
        net.encoder.encoder.train()  # checkpointing acts in training mode only
        for m in net.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        torch.manual_seed(1)
        net(torch.randn(2, 16000)).sum().backward()
        grads.append(net.encoder.encoder.layers[0].attention.k_proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_a_hub_id_offline_without_a_copy_is_one_paragraph_and_exit_2(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    result = run_script("train.py", ["model=wavlm", "logger=none", f"hydra.run.dir={tmp_path / 'run'}"],
                        cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    err = " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert "microsoft/wavlm-base-plus" in err and str(tmp_path / "hub") in err
    assert "models--microsoft--wavlm-base-plus" in err and "save_pretrained" in err


def test_wrong_family_missing_folder_and_image_augmentation_are_refused(tiny, tmp_path):
    with pytest.raises(SerError, match="hubert"):
        build(tiny["hubert"], "wavlm")
    with pytest.raises(SerError, match="config.json"):
        build(str(tmp_path / "nowhere"), "wavlm")
    with pytest.raises(SerError, match="trainable_from"):
        build(tiny["wavlm"], "wavlm", trainable_from="encoder.layers.9")
    from ser.models.module import EmotionClassifier

    cfg = compose(["model=wavlm", f"model.pretrained={tiny['wavlm']}", "augment=recipe"])
    with pytest.raises(SerError, match="augment=none"):
        EmotionClassifier(["a", "b", "c", "d"], cfg.model, cfg.optim, cfg.features, augment=cfg.augment)


def test_configs_compose_the_waveform_front_end_and_no_image_augmentation():
    for family in FAMILIES:
        cfg = compose([f"model={family}"])
        assert cfg.features._target_ == "ser.features.waveform.Waveform"
        assert cfg.augment.specaugment is None
        assert cfg.model.pretrained == FAMILIES[family].default_id
    assert compose(["model=wavlm", "features=logmel"]).features._target_.endswith("LogMel")


SMALL = [*FAST, "logger=csv", "snr=clean", "data.test_snrs=[15]"]


def train_run(tmp_path, name: str, overrides: list[str]) -> dict:
    from ser.training.runner import train

    cfg = compose([*SMALL, *overrides, f"+run_dir={tmp_path / name}",
                   f"dataset.out_dir={tmp_path / 'corpus'}"])
    return train(cfg)


@pytest.mark.slow
def test_frozen_encoder_trunk_cache_then_evaluate_without_the_pretrained_folder(tiny, tmp_path):
    from ser.evaluation.runs import find_checkpoint, load_classifier

    folder = shutil.copytree(tiny["hubert"], tmp_path / "hubert")
    # whole epochs of a tiny corpus, clean training: epochs 2 and 3 come from the cache
    run = ["model=hubert", f"model.pretrained={folder}", "trainer.max_epochs=3",
           "trainer.limit_train_batches=1.0", "trainer.limit_val_batches=1.0", "select.patience=null",
           "+dataset.n_speakers=4", "+dataset.utterances_per_class=3"]
    plain = train_run(tmp_path, "plain", [*run, "trunk_cache.enabled=false"])
    metrics = train_run(tmp_path, "run", run)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    cache = record["training"]["trunk_cache"]
    assert cache["training"]["batches_from_cache"] > 0 and cache["validation"]["batches_from_cache"] > 0
    assert metrics == plain
    shares = record["training"]["layer_weights"]
    assert len(shares) == TINY["num_hidden_layers"] + 1 and abs(sum(shares) - 1) < 1e-5
    logged = (tmp_path / "run").rglob("metrics.csv")
    assert any("layers/00" in f.read_text().splitlines()[0] for f in logged)
    shutil.rmtree(folder)  # the checkpoint alone rebuilds the network
    model, hp = load_classifier(find_checkpoint(tmp_path / "run"))
    assert hp["model"]["encoder_config"]["num_hidden_layers"] == TINY["num_hidden_layers"]
    assert type(model.net.encoder).__name__ == "HubertModel"
    blocks = torch.randn(5, 16000) * 0.1
    probs = model.predict_blocks(blocks)
    assert probs.shape == (5, 4) and torch.allclose(probs.sum(1), torch.ones(5))
    # a recording at another rate, through evaluate.py audio=: a timeline per recording
    import soundfile as sf

    from tests.test_evaluate import evaluate_in_process

    sf.write(tmp_path / "talk.wav", (0.1 * torch.randn(2 * 22050)).numpy(), 22050)
    code, out, err = evaluate_in_process([f"ckpt={tmp_path / 'run'}", f"audio={tmp_path / 'talk.wav'}",
                                          f"out_dir={tmp_path / 'audio'}"])
    assert code == 0, err
    assert (tmp_path / "audio" / "talk.timeline.csv").is_file()
    # the two runs as a sweep: tables, and the layer weights of each group drawn
    code, out, err = evaluate_in_process([f"sweep={tmp_path}", f"out_dir={tmp_path / 'summary'}"])
    assert code == 0, err
    summary = json.loads((tmp_path / "summary" / "summary.json").read_text())
    assert len(summary["layer_weights"]) == 2 and "layer_weights.png" in out
    first = next(iter(summary["layer_weights"].values()))
    assert first["mean"] == pytest.approx(shares) and first["n"] == 1
    assert (tmp_path / "summary" / "layer_weights.png").stat().st_size > 10_000


@pytest.mark.slow
def test_fine_tuning_resumes_and_bf16_trains(tiny, tmp_path):
    from ser.models.checkpoints import find_checkpoint

    run = ["model=wav2vec2", f"model.pretrained={tiny['wav2vec2']}", "model.trainable_from=encoder",
           "model.mask_time_prob=0.2"]
    first = train_run(tmp_path, "run", [*run, "trainer.max_epochs=1"])
    (tmp_path / "run" / "metrics.json").unlink()
    again = train_run(tmp_path, "run", [*run, "trainer.max_epochs=2", "resume=true"])
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 4 and set(again) == set(first)
    assert find_checkpoint(tmp_path / "run").is_file()
    half = train_run(tmp_path, "bf16", ["model=wavlm", f"model.pretrained={tiny['wavlm']}",
                                        "trainer.precision=bf16-mixed"])
    assert half["clean"]["n_blocks"] > 0


@pytest.mark.slow
def test_fine_tuned_encoder_trains_on_two_ddp_processes_and_exports_to_onnx(tiny, tmp_path, capsys):
    """Every trained parameter gets a gradient on every process (no LayerDrop, masks only
    where masked_spec_embed trains), and the exported graph gives the checkpoint's predictions."""
    pytest.importorskip("onnxruntime")
    from ser.inference.onnx_predictor import OnnxPredictor
    from ser.evaluation.runs import find_checkpoint, load_classifier
    from tests.test_export import export

    ddp = [o for o in SMALL if o != "trainer=epochs"] + [
        "trainer=ddp", "trainer.max_steps=-1", "trainer.min_steps=null", "trainer.val_check_interval=1.0",
        "trainer.check_val_every_n_epoch=1",
        "trainer.devices=2", "trainer.accelerator=cpu", "data.batch_size=4"]
    result = run_script("train.py", [*ddp, "model=wavlm", f"model.pretrained={tiny['wavlm']}",
                                     "model.trainable_from=encoder", f"hydra.run.dir={tmp_path / 'run'}"],
                        cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Starting with 2 processes" in result.stdout + result.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["clean"]["n_blocks"] > 0
    ckpt = find_checkpoint(tmp_path / "run")
    code, err = export(ckpt, tmp_path / "wavlm.onnx", capsys)
    assert code == 0, err
    model, _ = load_classifier(ckpt)
    blocks = (torch.randn(6, 16000) * 0.1).numpy()
    ref = model.predict_blocks(blocks).numpy()
    got = OnnxPredictor(tmp_path / "wavlm.onnx").predict_blocks(blocks)
    assert got.shape == ref.shape and abs(got - ref).max() < 1e-4
