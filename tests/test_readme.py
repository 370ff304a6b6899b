"""The README's Python examples run as written, and `colorize_full` refuses input it would colorize wrongly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from colorization.errors import ConfigError, DataError
from colorization.jobs.train_report import RunSummary, SavedCheckpoints, Score, format_summary
from colorization.modules.build import build_module
from tests.conftest import REPO, compose_config

OFFICIAL_FILES = {
    "colorization_release_v2-9b330a0b.pth": "eccv16",
    "siggraph17-df00044c.pth": "siggraph17",
    "ddcolor_paper_tiny.pt": "ddcolor_tiny",
}
"""The official weight files the README names: nothing is downloaded here, so the test runs the
README's code on files of the same format holding random weights (`readme_files`)."""


@pytest.fixture(scope="module")
def readme_files(release_files, tmp_path_factory) -> dict[str, Path]:
    """Zhang et al.'s `release_files` plus a DDColor-T release (BasicSR's ``{"params": ...}`` wrapper)."""
    from colorization.networks.ddcolor import DDColorNet

    path = tmp_path_factory.mktemp("ddcolor") / "pytorch_model.pt"
    torch.save({"params": DDColorNet("tiny").state_dict()}, path)
    return {**release_files, "ddcolor_tiny": path}


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL)


@pytest.mark.slow
def test_the_readmes_python_blocks_run_in_order(readme_files, tmp_path, monkeypatch):
    blocks = readme_python_blocks()
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for number, block in enumerate(blocks, start=1):
        for name, family in OFFICIAL_FILES.items():
            block = block.replace(f'"{name}"', repr(str(readme_files[family])))
        exec(compile(block, f"README.md python block {number}", "exec"), namespace)  # noqa: S102
    lab, l = namespace["lab"], namespace["l"]
    assert lab.shape == (1, 3, *l.shape[-2:]) and torch.equal(lab[:, :1], l)


@pytest.fixture(scope="module")
def cnn():
    return build_module(compose_config("train", ["model=cnn"]).model, "lab", "cnn").eval()


@pytest.mark.parametrize(
    ("l", "message"),
    [
        (torch.rand(1, 16, 16) * 100, r"expected L of shape \(B, 1, H, W\); got \(1, 16, 16\); add the batch"),
        (torch.rand(2, 3, 16, 16) * 100, r"got \(2, 3, 16, 16\)"),
        (
            (torch.rand(1, 1, 16, 16) * 255).to(torch.uint8),
            r"got torch.uint8 \(uint8 0..255: use l.float\(\) \* 100 / 255\)",
        ),
        (torch.rand(1, 1, 16, 16) * 255, r"expected L in \[0, 100\]; got values in \[.*, 2\d\d.*\]"),
        (torch.full((1, 1, 16, 16), float("nan")), "NaN"),
        ([[0.0]], "expected L as a torch.Tensor"),
    ],
)
def test_colorize_full_refuses_bad_input_in_one_line(cnn, l, message):
    with pytest.raises(DataError, match=message) as error:
        cnn.colorize_full(l)
    assert "\n" not in str(error.value)


def test_colorize_full_takes_good_input_and_black_photos(cnn):
    assert cnn.colorize_full(torch.rand(2, 1, 16, 16) * 100).shape == (2, 3, 16, 16)
    assert cnn.colorize_full(torch.zeros(1, 1, 16, 16)).shape == (1, 3, 16, 16)  # an all-black photo


def test_l_in_zero_to_one_gets_a_warning_with_the_fix(cnn):
    with pytest.warns(UserWarning, match=r"L in \[0, 1\] given for \[0, 100\] \(then use l \* 100\)"):
        assert cnn.colorize_full(torch.rand(1, 1, 16, 16)).shape == (1, 3, 16, 16)


def test_hints_for_a_model_that_reads_none_are_a_config_error(cnn):
    with pytest.raises(ConfigError, match=r"cnn takes no hints= keyword \(only SIGGRAPH17 reads hints\)"):
        cnn.colorize_full(torch.rand(1, 1, 16, 16) * 100, hints=object())


def test_a_model_is_named_after_its_config_and_colour_space():
    model = build_module(compose_config("train", ["model=model2"]).model, "hls", "model2")
    assert model.display_name == "model2 (hls)"
    unnamed = build_module(compose_config("train", ["model=cnn"]).model, "lab")
    assert unnamed.display_name == "StudyCNN"


def test_the_readmes_make_train_excerpt_is_what_the_summary_prints_today():
    block = re.search(r"```\n\$ make train\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL).group(1)
    lines = block.splitlines()
    assert re.fullmatch(
        r"cnn on data/sample \(\d+ train, \d+ val, \d+ test images\): batch size: 16 per device x 1 device\(s\) "
        r"x 1 node\(s\) = 16 global, cpu, 5 epoch\(s\)",
        lines[1],
    )
    excerpt = lines[next(i for i, line in enumerate(lines) if line.startswith("Run directory: ")) :]
    run = REPO / excerpt[0].removeprefix("Run directory: ")
    best, last = (int(e) for e in re.findall(r"\(epoch (\d+)\)", excerpt[1]))
    scores = {
        split: Score(model=float(model), gray=float(gray), images=int(images), which=which)
        for split, model, gray, images, which in re.findall(
            r"(val|test)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+\((.+)\)", block
        )
    }
    summary = RunSummary(
        run_dir=run,
        saved=SavedCheckpoints(
            run / f"checkpoints/best_epoch{best:03d}.ckpt", best, run / "checkpoints/last.ckpt", last
        ),
        sample_sheet=run / f"samples/epoch_{last:03d}.png",
        scores=scores,
        builtin_photos=True,
        wandb=excerpt[6].split("W&B", 1)[1].strip(),
    )
    assert format_summary(summary, cwd=REPO).splitlines() == excerpt
