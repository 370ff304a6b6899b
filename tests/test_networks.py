"""The networks, plain nn.Modules: the input sizes each states, the study's CNN, pix2pix's U-Net and PatchGAN,
the study's residual U-Net, Zhang et al.'s official layouts. DDColor's networks are tested in
test_ddcolor_network.py, FID's InceptionV3 in test_fid.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from colorization.color.spaces import COLORSPACES
from colorization.errors import ConfigError
from colorization.modules.build import build_module
from colorization.networks import Network, PatchDiscriminator, ResUNetGenerator, StudyCNN, UNetGenerator
from tests.helpers.configs import MODEL_CONFIGS, REPO, compose_config
from tests.helpers.weights import ZHANG_NETWORKS

# ---- the input sizes every network states --------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_every_network_states_the_input_sizes_it_takes(name, tmp_path: Path):
    cfg = compose_config("train", [f"model={name}", f"paths.root_dir={tmp_path}"])
    model = build_module(cfg.model, cfg.colorspace.name)
    networks = {key: net for key, net in model.named_children() if isinstance(net, Network)}
    assert networks, "a model's networks subclass colorization.networks.Network"
    for net in networks.values():
        assert net.fits(net.min_size + (-net.min_size) % net.size_multiple)
        assert not net.fits(net.min_size - 1)


# ---- the study's CNN -----------------------------------------------------------------------------


def test_cnn_size_limits_follow_its_stride_and_are_checked_on_tensors():
    net = StudyCNN(2, (-1, 1), stride=2)
    assert (net.min_size, net.size_multiple, net.size_setting) == (7, 1, "stride")
    with pytest.raises(ValueError, match=r"input of 6x9 pixels does not fit: sides must be >= 7"):
        net(torch.zeros(1, 1, 6, 9))


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("space", sorted(COLORSPACES))
def test_cnn_output_is_full_size_for_every_variant(stride, padding, space):
    channels = COLORSPACES[space].channels
    net = StudyCNN(channels, COLORSPACES[space].output_range, stride=stride, padding=padding)
    for height, width in [(224, 224), (64, 48), (33, 35)]:
        assert net(torch.zeros(1, 1, height, width)).shape == (1, channels, height, width)


def test_cnn_valid_padding_follows_the_study_224_222_220_222_224():
    net = StudyCNN(2, (-1, 1))
    x = torch.zeros(1, 1, 224, 224)
    sizes = []
    for layer in (net.down1, net.down2, net.up1):
        x = layer(x)
        sizes.append(x.shape[-1])
    assert sizes == [222, 220, 222]


def test_cnn_has_the_studys_3279_parameters_with_its_3_channel_input():
    net = StudyCNN(3, (0, 1), in_channels=3)
    assert sum(p.numel() for p in net.parameters()) == 3279


@pytest.mark.parametrize("space", sorted(COLORSPACES))
def test_cnn_output_activation_reaches_both_ends_of_the_target_range(space):
    low, high = COLORSPACES[space].output_range
    net = StudyCNN(COLORSPACES[space].channels, (low, high))
    assert net.out(torch.tensor([-50.0])).item() == pytest.approx(low, abs=1e-6)
    assert net.out(torch.tensor([50.0])).item() == pytest.approx(high, abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stride": 0}, r"model.net.stride=0 is out of range; expected an integer in 1..4"),
        ({"stride": 5}, r"model.net.stride=5 is out of range"),
        ({"filters": 0}, r"model.net.filters=0 is out of range; expected an integer in 1..1024"),
        ({"padding": "full"}, r"model.net.padding='full' is unknown"),
    ],
)
def test_cnn_rejects_out_of_range_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        StudyCNN(2, (-1, 1), **kwargs)


# ---- pix2pix's U-Net and PatchGAN, the study's residual U-Net ------------------------------------


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


NETWORKS = [  # (factory, input shape, output shape, parameter count)
    pytest.param(
        lambda: UNetGenerator(2, (-1, 1), num_downs=8, ngf=64), (1, 1, 256, 256), (1, 2, 256, 256), 54_409_858,
        id="unet_256 (pix2pix)",
    ),
    pytest.param(
        lambda: UNetGenerator(3, (0, 1), num_downs=5, ngf=8), (2, 1, 64, 32), (2, 3, 64, 32), 261_459,
        id="unet narrow, rgb",
    ),
    pytest.param(
        lambda: ResUNetGenerator(2, (-1, 1)), (1, 1, 40, 56), (1, 2, 40, 56), 8_216_194,
        id="resunet (study)",
    ),
    pytest.param(
        lambda: ResUNetGenerator(3, (0, 1), num_downs=2, ngf=8), (2, 1, 37, 45), (2, 3, 37, 45), 31_483,
        id="resunet narrow, odd size",
    ),
    pytest.param(
        lambda: PatchDiscriminator(3), (2, 3, 256, 256), (2, 1, 30, 30), 2_765_633,
        id="patchgan batch (pix2pix)",
    ),
    pytest.param(
        lambda: PatchDiscriminator(3, norm="none"), (2, 3, 64, 64), (2, 1, 6, 6), 2_764_737,
        id="patchgan none",
    ),
    pytest.param(
        lambda: PatchDiscriminator(3, norm="instance"), (2, 3, 64, 64), (2, 1, 6, 6), 2_765_633,
        id="patchgan instance",
    ),
    pytest.param(
        lambda: PatchDiscriminator(4, norm="layer"), (2, 4, 32, 32), (2, 1, 2, 2), 2_766_657,
        id="patchgan layer, 4 channels",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("factory", "in_shape", "out_shape", "count"), NETWORKS)
def test_network_shapes_and_parameter_counts(factory, in_shape, out_shape, count):
    net = factory().eval()
    assert n_params(net) == count
    with torch.no_grad():
        out = net(torch.rand(in_shape) * 2 - 1)
    assert out.shape == out_shape
    if isinstance(net, (UNetGenerator, ResUNetGenerator)):  # generators reach, and stay in, the target range
        low, high = (-1, 1) if out_shape[1] == 2 else (0, 1)
        assert low <= out.min() and out.max() <= high


def test_resunet_passes_the_gradient_down_its_main_path():
    # the study's ResBlocks detached their input: the first block would get no gradient from the bottleneck
    net = ResUNetGenerator(2, (-1, 1), num_downs=2, ngf=4)
    bottleneck = []
    net.encoder[-1].register_forward_hook(lambda module, inputs, output: bottleneck.append(output))
    x = torch.randn(2, 1, 16, 16, requires_grad=True)
    net(x)
    bottleneck[0].square().sum().backward()
    assert net.encoder[0].main[0].weight.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0
    # and within a block, the input gradient is more than the shortcut's alone
    block, y = net.encoder[1], torch.randn(2, 4, 8, 8, requires_grad=True)
    (through_block,) = torch.autograd.grad(block(y).sum(), y)
    (through_shortcut,) = torch.autograd.grad(block.shortcut(y).sum(), y)
    assert not torch.allclose(through_block, through_shortcut)


def test_patchgan_sees_70x70_patches():
    net = PatchDiscriminator(3, norm="none").double()
    x = torch.randn(1, 3, 128, 128, dtype=torch.float64, requires_grad=True)
    out = net(x)
    out[0, 0, out.shape[-2] // 2, out.shape[-1] // 2].backward()  # an interior patch: no padding in view
    rows, cols = (x.grad.abs().sum(1)[0] > 0).nonzero(as_tuple=True)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (70, 70)


def test_unet_input_size_its_depth_cannot_divide_is_a_value_error():
    net = UNetGenerator(2, (-1, 1), num_downs=5, ngf=8)
    assert (net.size_multiple, net.min_size) == (32, 32)
    with pytest.raises(ValueError, match=r"input of 48x48 pixels does not fit: sides must be a multiple of 32"):
        net(torch.zeros(1, 1, 48, 48))


# ---- Zhang et al.'s networks ---------------------------------------------------------------------


# key/shape tables of the official weight files (copied from the project's shared reference material)
REFERENCE = REPO / "tests" / "reference"


PARAMETERS = {"eccv16": 32_236_011, "siggraph17": 34_187_027}


def reference_table(name: str) -> dict[str, tuple[int, ...]]:
    """key -> shape from tests/reference/<name>_state_dict.tsv."""
    path = REFERENCE / f"{name}_state_dict.tsv"
    table = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape, _dtype = line.split("\t")
            table[key] = tuple(int(n) for n in shape.strip("()").split(",") if n.strip())
    return table


@pytest.mark.parametrize("name", sorted(ZHANG_NETWORKS))
def test_state_dict_keys_and_shapes_equal_the_official_tables(name):
    net = ZHANG_NETWORKS[name]()
    ours = {key: tuple(value.shape) for key, value in net.state_dict().items()}
    assert ours == reference_table(name)
    assert list(ours) == list(reference_table(name)), "same order as the release"
    assert sum(p.numel() for p in net.parameters()) == PARAMETERS[name]
