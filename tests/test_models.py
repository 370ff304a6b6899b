"""Every model config (conf/model/*.yaml) builds, runs and trains one step; CNN specifics."""

from pathlib import Path

import pytest
import torch

from colorization.color.spaces import COLORSPACES
from colorization.errors import ConfigError
from colorization.modules.build import build_module
from colorization.networks import Network, StudyCNN
from tests.helpers.configs import MODEL_CONFIGS, SMOKE_SIZE, compose_config

DEFAULT_SMOKE_SIZE = 32


def smoke_batch(size: int, batch: int = 2) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    l = torch.rand(batch, 1, size, size, generator=generator) * 100
    ab = (torch.rand(batch, 2, size, size, generator=generator) - 0.5) * 100
    return {"l": l, "ab": ab, "index": torch.arange(batch)}


@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_every_model_config_colorizes_and_trains_a_step(name, tmp_path: Path):
    cfg = compose_config("train", [f"model={name}", f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}"])
    model = build_module(cfg.model, cfg.colorspace.name)
    size = SMOKE_SIZE.get(name, DEFAULT_SMOKE_SIZE)
    batch = smoke_batch(size)
    lab = model.colorize(batch["l"])
    assert lab.shape == (2, 3, size, size)
    assert torch.equal(lab[:, :1], batch["l"]), "the prediction must carry the input L"
    full = model.colorize_full(torch.rand(1, 1, size + 7, size + 3) * 100)
    assert full.shape == (1, 3, size + 7, size + 3)
    import lightning as L

    trainer = L.Trainer(
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        accelerator="cpu",
    )
    loader = torch.utils.data.DataLoader([{k: v[i] for k, v in batch.items()} for i in range(2)], batch_size=2)
    before = [p.detach().clone() for p in model.parameters()]
    trainer.fit(model, train_dataloaders=loader)
    changed = any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True))
    assert changed, "one training step must update the weights"


@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_every_network_states_the_input_sizes_it_takes(name, tmp_path: Path):
    cfg = compose_config("train", [f"model={name}", f"paths.root_dir={tmp_path}"])
    model = build_module(cfg.model, cfg.colorspace.name)
    networks = {key: net for key, net in model.named_children() if isinstance(net, Network)}
    assert networks, "a model's networks subclass colorization.networks.Network"
    for net in networks.values():
        assert net.fits(net.min_size + (-net.min_size) % net.size_multiple)
        assert not net.fits(net.min_size - 1)


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


def test_loading_skips_random_init_only_while_building_and_restores_it_after_an_error():
    from colorization.inference.loading import random_init_skipped

    normal = torch.nn.init.normal_
    weights = torch.zeros(4)
    with pytest.raises(RuntimeError, match="inside"), random_init_skipped():
        torch.nn.init.normal_(weights)
        assert torch.equal(weights, torch.zeros(4)), "nothing is drawn while a strict load follows"
        raise RuntimeError("inside")
    assert torch.nn.init.normal_ is normal
    torch.nn.init.normal_(weights)
    assert not torch.equal(weights, torch.zeros(4))
