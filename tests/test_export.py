"""Export every family to ONNX (and TorchScript) and check the exported graph against PyTorch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorization.colorize import colorize_paths
from colorization.export import export
from colorization.inference.loading import load_colorizer
from colorization.modules.build import build_module
from tests.helpers.configs import REPO, compose_config
from tests.helpers.datasets import photo
from tests.helpers.entry_points import error_lines, without_permission_override
from tests.helpers.marks import with_slow
from tests.helpers.weights import CNN_CONFIG, RELEASE_NAMES, random_release_state, save_checkpoint, save_release_style

onnxruntime = pytest.importorskip(
    "onnxruntime", reason="onnxruntime is not installed (pip install -e '.[onnx]'; make install does it)"
)
from colorization.inference.onnx import OnnxColorizer  # noqa: E402

TOLERANCE_AB = 1e-4
"""Max |Δab| between onnxruntime and PyTorch on the same input (both float32)."""
FAMILIES = {
    "cnn": [],
    "model2": [],
    "pix2pix": ["++model.generator.ngf=8"],
    "cwgan": ["++model.generator.ngf=8"],
    "eccv16": [],
    "siggraph17": [],
}
"""Every model config family (small widths where the width does not change the graph's kind)."""


def family_model(name: str, tmp_path: Path):
    """A freshly built colorizer of family `name`; Zhang's come from release-style files, as users load them."""
    torch.manual_seed(0)
    if name in RELEASE_NAMES:
        return load_colorizer(save_release_style(random_release_state(name), tmp_path, RELEASE_NAMES[name]))
    cfg = compose_config("train", [f"model={name}", *FAMILIES[name]])
    return build_module(cfg.model, cfg.colorspace.name).colorizer.eval()


@pytest.mark.parametrize("name", with_slow(sorted(FAMILIES), ["cwgan", "eccv16", "pix2pix", "siggraph17"]))
def test_onnx_export_matches_pytorch_at_any_size(name, tmp_path):
    model = family_model(name, tmp_path)
    exported = OnnxColorizer(export(model, tmp_path / f"{name}.onnx"))
    assert (exported.native_size, exported.size_multiple) == (model.native_size, model.size_multiple)
    generator = torch.Generator().manual_seed(1)
    for shape in [(1, 1, 64, 80), (3, 1, 45, 71)]:  # sizes other than the traced example's
        l = torch.rand(*shape, generator=generator) * 100
        ours, theirs = model.colorize_full(l), exported.colorize_full(l)
        assert theirs.shape == ours.shape
        assert torch.equal(theirs[:, :1], l), "L passes through untouched"
        assert (theirs[:, 1:] - ours[:, 1:]).abs().max() < TOLERANCE_AB, name


@pytest.mark.parametrize("name", with_slow(["eccv16", "pix2pix"], ["eccv16"]))
def test_torchscript_export_matches_pytorch(name, tmp_path):
    model = family_model(name, tmp_path)
    traced = torch.jit.load(str(export(model, tmp_path / f"{name}.pt", "torchscript")))
    l = torch.rand(2, 1, 70, 90) * 100
    assert (traced(l) - model.colorize_full(l)).abs().max() < TOLERANCE_AB


@pytest.mark.slow
def test_export_command_then_colorize_with_onnxruntime(tmp_path):
    torch.manual_seed(0)
    checkpoint = save_checkpoint(build_module(CNN_CONFIG, "lab"), tmp_path / "cnn.ckpt")
    onnx_file = tmp_path / "cnn.onnx"
    command = [sys.executable, "-m", "colorization.export", "--model", str(checkpoint), "--out", str(onnx_file)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {onnx_file} (onnx,")
    again = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert (
        again.returncode == 2
        and again.stderr.strip() == f"error: --out {onnx_file} already exists; pass --overwrite to replace it"
    )

    scans = tmp_path / "scans"
    scans.mkdir()
    for i, (height, width) in enumerate([(40, 64), (33, 21), (40, 64)]):
        Image.fromarray(photo(height, width)).save(scans / f"p{i}.png")
    by_onnx = colorize_paths([scans], str(onnx_file), tmp_path / "onnx", workers=0)
    by_torch = colorize_paths([scans], str(checkpoint), tmp_path / "torch", workers=0)
    assert by_onnx.done == by_torch.done == 3
    for i in range(3):
        a = np.asarray(Image.open(tmp_path / "onnx" / f"p{i}.png"), dtype=int)
        b = np.asarray(Image.open(tmp_path / "torch" / f"p{i}.png"), dtype=int)
        assert np.abs(a - b).max() <= 1


def test_an_onnx_file_from_elsewhere_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from colorization.errors import DataError

    graph = helper.make_graph(
        [helper.make_node("Identity", ["l"], ["lab"])],
        "foreign",
        [helper.make_tensor_value_info("l", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("lab", TensorProto.FLOAT, None)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "foreign.onnx")
    with pytest.raises(DataError, match="foreign.onnx: not an export of this project"):
        OnnxColorizer(tmp_path / "foreign.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(DataError, match="junk.onnx: not a readable ONNX model"):
        OnnxColorizer(tmp_path / "junk.onnx")


# --- where --out cannot be written (issue 23) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "flags", "message"),
    [
        ("read-only folder", [], "folder='{parent}' is not writable"),
        ("a folder", ["--overwrite"], "is a folder; expected the file to write"),
        ("a folder", [], "is a folder; expected the file to write"),
    ],
)
def test_export_to_where_it_cannot_write_is_one_error_line(where, flags, message, tmp_path):
    checkpoint = save_checkpoint(build_module(CNN_CONFIG, "lab"), tmp_path / "cnn.ckpt")
    if where == "a folder":
        out = tmp_path / "exports"
        out.mkdir()
        (out / "keep.onnx").write_bytes(b"an earlier export")
    else:
        (tmp_path / "locked").mkdir(mode=0o555)
        out = tmp_path / "locked" / "cnn.pt"
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    result = subprocess.run(
        [sys.executable, "-m", "colorization.export", "--model", str(checkpoint), "--format", "torchscript"]
        + ["--out", str(out), *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        preexec_fn=without_permission_override,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = error_lines(result)
    assert len(lines) == 1 and message.format(parent=out.parent) in lines[0], result.stderr[-3000:]
    assert str(out) in lines[0]
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


def test_a_photo_too_small_for_an_exported_graph_fails_alone(tmp_path):
    model = family_model("cnn", tmp_path)  # valid padding: no side under 5 pixels
    exported = export(model, tmp_path / "cnn.onnx")
    scans = tmp_path / "scans"
    scans.mkdir()
    for name, (height, width) in {"dot.png": (1, 1), "a.png": (20, 24), "b.png": (31, 17), "c.png": (8, 9)}.items():
        Image.fromarray(photo(height, width)).save(scans / name)
    tally = colorize_paths([scans], str(exported), tmp_path / "out", workers=0)
    assert tally.done == 3
    assert [path for path, _ in tally.failed] == [str(scans / "dot.png")]
    assert tally.failed[0][1].startswith(f"{scans / 'dot.png'}: cannot colorize (")
