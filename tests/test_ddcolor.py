"""DDColorModule: release files load strictly, inference as the authors run it, and the GAN recipe trains."""

from __future__ import annotations

import logging
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from colorization.color.spaces import gray_rgb
from colorization.colorize import colorize_paths
from colorization.data.sample import write_sample_dataset
from colorization.errors import ConfigError, DataError
from colorization.inference.ddcolor import DDColorColorizer, release_size
from colorization.inference.loading import load_colorizer
from colorization.inference.releases import identify
from colorization.jobs.evaluate import evaluate
from colorization.jobs.train import train
from colorization.modules.ddcolor import DDColorModule, enhance_saturation
from colorization.networks.ddcolor import DDColorNet
from colorization.networks.unet_discriminator import UNetDiscriminator
from tests.helpers.configs import compose_config, evaluate_config, tiny_overrides
from tests.helpers.http_server import publish
from tests.helpers.trainers import cpu_trainer
from tests.helpers.weights import torchvision_vgg16_bn_layout

SIZE = 64  # training crops: the discriminator's minimum


@pytest.fixture(scope="module")
def release_state() -> dict[str, torch.Tensor]:
    """Random DDColor-T weights in the release's layout."""
    torch.manual_seed(1)
    return DDColorNet("tiny").state_dict()


@pytest.fixture(scope="module")
def release_file(release_state, tmp_path_factory) -> Path:
    """A release file as BasicSR writes it: ``{"params": state_dict}``, here without the constant mean/std."""
    path = tmp_path_factory.mktemp("release") / "pytorch_model.pt"
    torch.save({"params": {k: v for k, v in release_state.items() if k not in ("mean", "std")}}, path)
    return path


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vgg") / "vgg16_bn.pth"
    torch.save(torchvision_vgg16_bn_layout(), path)
    return path


def module(**kwargs) -> DDColorModule:
    """DDColor-T with the authors' losses and optimizers (narrow discriminator for speed)."""
    options = {
        "discriminator": partial(UNetDiscriminator, nf=8),
        "input_size": SIZE,
    }
    return DDColorModule(**(options | kwargs))


def batches(count: int, batch: int = 2, seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    data = [
        {
            "l": torch.rand(batch, 1, SIZE, SIZE, generator=generator) * 100,
            "ab": (torch.rand(batch, 2, SIZE, SIZE, generator=generator) - 0.5) * 80,
        }
        for _ in range(count)
    ]
    return DataLoader(data, batch_size=None)


def fit(model: DDColorModule, steps: int) -> dict[str, float]:
    trainer = cpu_trainer(max_epochs=1)
    trainer.fit(model, batches(steps))
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


# ---- weights ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_release_file_loads_strictly_with_wrapper_and_without_the_constant_buffers(release_file, release_state):
    model = module(weights=str(release_file))
    for key, value in model.net.state_dict().items():
        torch.testing.assert_close(value, release_state[key], msg=key)
    assert release_size(release_state) == "tiny"


@pytest.mark.slow
def test_release_of_the_other_size_names_model_size(release_file):
    with pytest.raises(ConfigError, match=r"a DDColor-tiny file, but model.size='large'; set model.size=tiny"):
        DDColorModule(size="large", weights=str(release_file), lambda_adv=0)


def test_release_file_that_does_not_fit_stops_with_one_line_naming_the_keys(release_state, tmp_path):
    state = dict(release_state)
    state.pop("refine_net.0.0.weight_orig")
    state["decoder.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "broken.pt")
    with pytest.raises(DataError) as error:
        module(weights=str(tmp_path / "broken.pt"))
    message = str(error.value)
    assert "missing keys: refine_net.0.0.weight_orig" in message and "unexpected keys: decoder.extra.weight" in message
    assert "\n" not in message and str(tmp_path / "broken.pt") in message


@pytest.mark.slow
def test_imagenet_convnext_file_initialises_the_encoder(tmp_path):
    imagenet = {k: torch.randn(v.shape) for k, v in DDColorNet("tiny").encoder["arch"].state_dict().items()}
    imagenet = {k: v for k, v in imagenet.items() if not k.startswith("norm") or k.startswith("norm.")}
    imagenet |= {"head.weight": torch.zeros(1000, 768), "head.bias": torch.zeros(1000)}
    torch.save({"model": imagenet}, tmp_path / "convnext_tiny_22k_224.pth")
    model = module(encoder_weights=str(tmp_path / "convnext_tiny_22k_224.pth"))
    encoder = model.net.encoder["arch"]
    torch.testing.assert_close(encoder.stages[2][8].pwconv1.weight, imagenet["stages.2.8.pwconv1.weight"])
    assert torch.equal(encoder.norm0.weight, torch.ones(96))  # DDColor's own norms start fresh

    imagenet.pop("stages.0.0.gamma")
    torch.save(imagenet, tmp_path / "cut.pth")
    with pytest.raises(DataError, match=r"cut.pth: does not fit ConvNeXt; missing keys: stages.0.0.gamma \(1 in all\)"):
        module(encoder_weights=str(tmp_path / "cut.pth"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": "huge"}, r"model.size='huge' is unknown"),
        ({"input_size": 500}, r"model.input_size=500: expected a multiple of 32"),
        ({"lambda_l1": -1.0}, r"model.lambda_l1=-1.0: expected a weight >= 0"),
        ({"colorspace": "rgb"}, r"colorspace.name='rgb': DDColor predicts ab"),
        pytest.param(
            {"perceptual": {"weights": "missing.pth"}},
            r"model.perceptual.weights=missing.pth: file not found",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            {"perceptual": {"path": "x"}}, r"model.perceptual has unknown keys \['path'\]", marks=pytest.mark.slow
        ),
        ({"weights": "missing.pt"}, r"missing.pt: weights file not found"),
        ({"weights": "a.pt", "encoder_weights": "b.pth"}, r"model.weights and model.encoder_weights are both set"),
    ],
)
def test_bad_settings_are_one_line_config_errors(kwargs, message):
    with pytest.raises((ConfigError, DataError), match=message):
        module(**kwargs)


# ---- inference -------------------------------------------------------------------------------


def test_inference_feeds_the_gray_rgb_of_l_and_returns_ab_joined_to_l():
    model = module().eval()
    seen = []
    model.net.register_forward_pre_hook(lambda net, args: seen.append(args[0]))
    l = torch.rand(1, 1, SIZE, SIZE) * 100
    with torch.no_grad():
        lab = model.colorize(l)
    torch.testing.assert_close(seen[0], gray_rgb(l))
    assert torch.equal(seen[0][:, 0], seen[0][:, 1]) and torch.equal(seen[0][:, 1], seen[0][:, 2])
    assert torch.equal(lab[:, :1], l) and lab.shape == (1, 3, SIZE, SIZE)


def test_colorize_full_runs_at_input_size_and_keeps_the_full_resolution_l():
    model = module(input_size=64).eval()
    sizes = []
    model.net.register_forward_pre_hook(lambda net, args: sizes.append(tuple(args[0].shape[-2:])))
    l = torch.rand(2, 1, 90, 130) * 100
    lab = model.colorize_full(l)
    assert sizes == [(64, 64)]
    assert lab.shape == (2, 3, 90, 130) and torch.equal(lab[:, :1], l)
    assert torch.isfinite(lab).all() and lab[:, 1:].abs().max() < 128  # ab in Lab units


def test_enhance_saturation_scales_chroma_about_gray():
    rgb = torch.tensor([0.2, 0.5, 0.4]).view(1, 3, 1, 1)
    gray = 0.2989 * 0.2 + 0.587 * 0.5 + 0.114 * 0.4
    torch.testing.assert_close(enhance_saturation(rgb, 1.2), (gray + 1.2 * (rgb - gray)).clamp(0, 1))
    assert torch.equal(enhance_saturation(rgb, 1.0), rgb)


# ---- training --------------------------------------------------------------------------------

TERMS = ("l1", "perceptual", "adv", "colorfulness")


@pytest.mark.slow
@pytest.mark.parametrize("off", [None, *TERMS])
def test_each_loss_term_trains_logs_and_switches_off_at_weight_zero(off, vgg_file):
    torch.manual_seed(0)
    model = module(perceptual={"weights": str(vgg_file)}, **({f"lambda_{off}": 0.0} if off else {}))
    d_before = [p.detach().clone() for p in model.discriminator.parameters()]
    g_before = model.net.refine_net[0][0].weight_orig.detach().clone()
    metrics = fit(model, steps=2)
    for term in TERMS:
        assert (f"train/g_{term}" in metrics) == (term != off), term
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert not torch.equal(model.net.refine_net[0][0].weight_orig, g_before)
    d_trained = any(not torch.equal(a, b) for a, b in zip(d_before, model.discriminator.parameters(), strict=True))
    assert d_trained == (off != "adv") and ("train/d_loss" in metrics) == (off != "adv")


@pytest.mark.slow
def test_without_vgg_weights_the_perceptual_term_is_off_with_one_log_line(caplog):
    model = module()
    with caplog.at_level(logging.WARNING, logger="colorization.modules.ddcolor"):
        metrics = fit(model, steps=1)
    lines = [r.getMessage() for r in caplog.records if "perceptual" in r.getMessage()]
    assert len(lines) == 1 and "model.perceptual.weights is not set" in lines[0]
    assert "train/g_perceptual" not in metrics and "train/g_l1" in metrics


@pytest.mark.slow
def test_generator_gradient_follows_the_discriminators_verdict():
    """Adversarial: another discriminator changes G's gradient; without the GAN term only the other terms remain."""
    torch.manual_seed(0)
    model = module(lambda_colorfulness=0.0).eval()  # eval: BatchNorm statistics fixed between the passes
    l, ab = next(iter(batches(1)))["l"], next(iter(batches(1)))["ab"]
    target = enhance_saturation(gray_rgb(l), 1.2)
    params = list(model.net.parameters())

    def grads(key: str = "g_loss") -> list[torch.Tensor]:
        losses, _ = model.generator_losses(l, ab, target)
        return torch.autograd.grad(losses[key], params, allow_unused=True)

    first = grads()
    assert all(torch.isfinite(g).all() for g in first if g is not None)
    with torch.no_grad():
        for p in model.discriminator.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    second = grads()
    assert any(a is not None and not torch.allclose(a, b) for a, b in zip(first, second, strict=True))
    model.lambdas["adv"] = 0.0
    plain, l1 = grads(), grads("g_l1")
    for a, b in zip(plain, l1, strict=True):  # lambda_adv = 0 leaves exactly lambda_l1 * L1
        if a is not None:
            torch.testing.assert_close(a, 0.1 * b)


def test_discriminator_steps_rank_real_above_fake():
    torch.manual_seed(0)
    model = module()
    real = torch.rand(4, 3, SIZE, SIZE) * 0.5 + 0.5
    fake = torch.rand(4, 3, SIZE, SIZE) * 0.5
    optimizer = torch.optim.Adam(model.discriminator.parameters(), lr=1e-3)
    for _ in range(15):
        loss = model.adversarial.discriminator_loss(model.discriminator, real, fake)["d_loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        assert model.discriminator(real).min() > model.discriminator(fake).max()


# ---- through the project's loaders and entry points ------------------------------------------


@pytest.mark.slow
def test_release_files_are_recognised_through_the_release_table(release_file, release_state):
    model = load_colorizer(release_file)
    assert isinstance(model, DDColorColorizer) and not model.training and model.display_name == "DDColor-T"
    for key, value in model.net.state_dict().items():
        torch.testing.assert_close(value, release_state[key], msg=key)
    lab = model.colorize_full(torch.rand(1, 1, 40, 56) * 100)
    assert lab.shape == (1, 3, 40, 56)
    with torch.device("meta"):
        large = DDColorNet("large").state_dict()
    assert identify(large) == (DDColorColorizer, {"size": "large"})
    assert identify(release_state) == (DDColorColorizer, {"size": "tiny"})
    assert identify({"params": release_state}) == (DDColorColorizer, {"size": "tiny"})


@pytest.fixture(scope="module")
def photos_64(tmp_path_factory) -> Path:
    """The built-in photos as 64-px images (DDColor's discriminator needs 64-px crops)."""
    root = tmp_path_factory.mktemp("data64") / "sample"
    write_sample_dataset(root, 64, 2, 1, seed=0)
    return root


def ddcolor_overrides(root: Path, run: Path) -> list[str]:
    return [
        *(item for item in tiny_overrides(None, run)),
        f"paths.data_dir={root.parent}",
        "data.image_size=64",
        "data.train_crops_per_photo=2",
        "data.test_crops_per_photo=1",
        "data.crop_size=64",
        "data.batch_size=4",
        "+trainer.limit_train_batches=2",
        "model=ddcolor",
        "++model.input_size=64",
        "++model.discriminator.nf=8",
    ]


@pytest.mark.slow
def test_train_py_fine_tunes_a_release_and_its_checkpoint_needs_no_start_up_file(photos_64, release_file, tmp_path):
    start = tmp_path / "pytorch_model.pt"
    shutil.copy(release_file, start)
    metrics = train(
        compose_config("train", [*ddcolor_overrides(photos_64, tmp_path / "run"), f"++model.weights={start}"])
    )
    assert {
        "train/g_l1_epoch",
        "train/g_adv_epoch",
        "train/g_colorfulness_epoch",
        "train/d_loss_epoch",
    } <= metrics.keys()
    assert "train/g_perceptual_epoch" not in metrics and "test/cie76" in metrics
    start.unlink()  # the checkpoint holds the fine-tuned network
    model = load_colorizer(tmp_path / "run" / "checkpoints" / "last.ckpt")
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert isinstance(model, DDColorColorizer) and len(checkpoint["optimizer_states"]) == 2
    torch.testing.assert_close(
        model.net.refine_net[0][0].weight_orig, checkpoint["state_dict"]["net.refine_net.0.0.weight_orig"]
    )
    assert not any(key.startswith("perceptual.") for key in checkpoint["state_dict"])


@pytest.mark.slow
def test_evaluate_scores_a_release_file(sample_root, release_file, tmp_path):
    cfg = evaluate_config(sample_root, tmp_path / "eval", f"checkpoints={{ddcolor: {release_file}}}", "data.limit=2")
    rows = evaluate(cfg)
    (row,) = [r for r in rows if r["model"] == "ddcolor"]
    assert row["images"] == 2 and row["cie76"] > 0


@pytest.mark.slow
def test_a_release_name_downloads_once_and_colorizes(release_file, server, cache, monkeypatch, tmp_path):  # noqa: F811
    # the local server stands in for the model hub: the same download, check and cache code
    publish(server, monkeypatch, "ddcolor_tiny", release_file.read_bytes())
    assert isinstance(load_colorizer("ddcolor_tiny"), DDColorColorizer)
    Image.fromarray(np.full((40, 70), 128, np.uint8)).save(tmp_path / "gray.png")
    summary = colorize_paths([tmp_path / "gray.png"], "ddcolor_tiny", tmp_path / "out", workers=0)
    assert summary.done == 1 and Image.open(tmp_path / "out" / "gray.png").size == (70, 40)
    assert len(server.requests) == 1, "downloaded once, then read from the cache"


def test_the_model_summary_counts_flops_of_a_training_run():
    # train.py's model summary runs the model under torch's FLOP counter, which hooks every module
    from lightning.pytorch.utilities.model_summary import summarize

    model = DDColorModule(input_size=64)
    model.example_input_array = torch.zeros(1, 1, 64, 64)
    assert summarize(model, max_depth=1).total_flops > 0
