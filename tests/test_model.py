import pytest
import torch
import torchvision

from ser.errors import SerError
from ser.models.backbones import build_backbone
from ser.models.checkpoints import check_classes, read_checkpoint
from ser.models.metrics import score_test_set, utterance_votes
from ser.models.module import EmotionClassifier
from tests.conftest import compose


def make_module(classes=("anger", "happy", "sad", "neutral"), **optim):
    cfg = compose(["model=alexnet", "optim=sgd", "features=paper", "model.pretrained=false", *(f"optim.{k}={v}" for k, v in optim.items())])
    return EmotionClassifier(list(classes), cfg.model, cfg.optim, cfg.features), cfg


def test_only_conv5_and_fc_layers_get_gradients():
    module, _ = make_module()
    module.train()
    images = torch.randn(2, 3, 256, 256)
    module(images).sum().backward()
    net = module.net
    assert all(p.grad is None and not p.requires_grad for p in net.frozen.parameters())
    assert all(p.grad is not None for p in net.finetune.parameters())
    assert all(p.grad is not None for p in net.head.parameters())
    # Conv1-Conv4 frozen: 4 conv layers, each weight + bias; Conv5 + FC6 + FC7 fine-tuned
    assert len(list(net.frozen.parameters())) == 8 and len(list(net.finetune.parameters())) == 6
    assert net.head.out_features == 4 and net.head.in_features == 4096
    assert not net.frozen.training  # frozen layers stay in inference mode while training


def test_parameter_groups_have_the_configured_learning_rates():
    module, cfg = make_module(lr=0.0004, head_weight_lr=0.01, head_bias_lr=0.02)
    opt_cfg = module.configure_optimizers()
    opt, sched = opt_cfg["optimizer"], opt_cfg["lr_scheduler"]["scheduler"]
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == {"finetune": 0.0004, "head_weight": 0.01, "head_bias": 0.02}
    assert all(g["momentum"] == 0.9 and g["weight_decay"] == 0.0004 for g in opt.param_groups)
    frozen_ids = {id(p) for p in module.net.frozen.parameters()}
    assert not frozen_ids & {id(p) for g in opt.param_groups for p in g["params"]}
    assert sched.step_size == 2 and sched.gamma == 0.2


def test_state_dict_file_given_as_path_is_really_loaded(tmp_path):
    torch.manual_seed(123)
    reference = torchvision.models.alexnet(weights=None)
    path = tmp_path / "alexnet.pth"
    torch.save(reference.state_dict(), path)
    net = build_backbone("alexnet", 4, str(path))
    assert torch.equal(net.frozen[0].weight, reference.features[0].weight)
    assert torch.equal(net.finetune[0].weight, reference.features[10].weight)
    assert torch.equal(net.finetune[-2].weight, reference.classifier[4].weight)


def test_weights_that_do_not_fit_or_run_code_are_refused(tmp_path):
    bad = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), bad)
    with pytest.raises(SerError, match="do not fit"):
        build_backbone("alexnet", 4, str(bad))
    with pytest.raises(SerError, match="not found"):
        build_backbone("alexnet", 4, str(tmp_path / "missing.pth"))

    class Payload:
        def __reduce__(self):
            return (print, ("pickled code ran",))
    crafted = tmp_path / "crafted.pth"
    torch.save({"x": Payload()}, crafted)
    with pytest.raises(SerError, match="Refusing"):
        build_backbone("alexnet", 4, str(crafted))
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(crafted.read_bytes()[:40])
    with pytest.raises(SerError, match="truncated|Cannot read"):
        read_checkpoint(truncated)


def test_offline_pretrained_true_names_the_file(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def no_network(*a, **k):
        raise OSError("network unreachable")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(SerError, match="alexnet-owt-7be5be79.pth"):
        build_backbone("alexnet", 4, True)


def test_class_set_mismatch_is_explained():
    with pytest.raises(SerError, match="excitement"):
        check_classes(["anger", "excitement", "sad", "neutral"], ["anger", "happy", "sad", "neutral"], "x.ckpt")


def test_metrics_and_utterance_votes():
    # 3 utterances: u0 blocks predict 0,0,1 (true 0); u1 predicts 1,2 tie (true 2) broken by mass
    probs = torch.tensor([[.9, .1, 0], [.8, .2, 0], [.1, .9, 0], [0, .51, .49], [0, .3, .7], [0, 0, 1.]])
    target = torch.tensor([0, 0, 0, 2, 2, 2])
    utt = torch.tensor([0, 0, 0, 1, 1, 2])
    pred, true = utterance_votes(probs, target, utt)
    assert pred.tolist() == [0, 2, 2] and true.tolist() == [0, 2, 2]
    m = score_test_set(probs, target, utt)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["utterance_accuracy"] == 1.0
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 0, 0], [0, 1, 2]]
    # UA over the classes the test set has: class 1 is absent (though predicted once), so it is
    # the mean of two recalls, not of three with an undefined one counted as 0
    assert m["ua"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    f1 = 2 * 1 * (2 / 3) / (1 + 2 / 3)  # classes 0 and 2: precision 1, recall 2/3
    assert m["macro_f1"] == pytest.approx(f1)


def test_model_compile_wraps_the_forward_and_keeps_checkpoint_names(monkeypatch):
    compiled = []

    def fake_compile(net):  # compiling the real network is too slow for the suite: check the wiring
        compiled.append(net)
        return lambda images: net(images) * 0.0

    monkeypatch.setattr(torch, "compile", fake_compile)
    plain, _ = make_module()
    cfg = compose(["model=alexnet", "optim=sgd", "features=paper", "model.pretrained=false", "model.compile=true"])
    module = EmotionClassifier(["anger", "happy", "sad", "neutral"], cfg.model, cfg.optim,
                               cfg.features)
    images = torch.randn(2, 3, 256, 256)
    assert torch.count_nonzero(module(images)) == 0 and compiled == [module.net]
    module(images)
    assert len(compiled) == 1  # compiled once, then reused
    assert list(module.state_dict()) == list(plain.state_dict())
    assert torch.count_nonzero(plain(images)) > 0 and len(compiled) == 1


def test_precision_auto_is_bf16_only_on_gpus_that_have_it(monkeypatch):
    from omegaconf import OmegaConf

    from ser.training.precision import trainer_precision

    def trainer(**values):
        return OmegaConf.create({"precision": "auto", "accelerator": "auto", **values})

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert trainer_precision(trainer()) == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert trainer_precision(trainer()) == "bf16-mixed"
    assert trainer_precision(trainer(accelerator="cpu")) == "32-true"
    assert trainer_precision(trainer(precision="16-mixed")) == "16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert trainer_precision(trainer()) == "32-true"
