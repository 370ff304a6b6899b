"""The command line before Hydra starts (`colorization.jobs.tasks.check_overrides`): what Hydra would
refuse with a page of text and exit code 1, or what would fail later for a reason it cannot name,
is one ``error:`` line naming the override and what to write instead, with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from colorization.jobs.tasks import MOVED_KEYS, check_overrides
from tests.helpers.configs import CONF_DIR, compose_config
from tests.helpers.entry_points import error_lines, run_script

REFUSED = {
    "a typo'd top-level key": (["foo=bar"], "foo=bar: the config has no key 'foo'; expected one of ['callbacks', "),
    "a typo'd nested key": (["trainer.max_epoch=3"], "did you mean trainer.max_epochs?"),
    "a group the chosen model has not": (
        ["model=cnn", "model/gan_loss=wgangp"],
        "model/gan_loss=wgangp: model=cnn has no model/gan_loss to choose; it is an option of model=cwgan, "
        "model=pix2pix",
    ),
    "a group spelt as a key": (
        ["model=pix2pix", "model.gan_loss=wgangp"],
        "model.gan_loss=wgangp: model.gan_loss is set by the config group model/gan_loss; use "
        "model/gan_loss=wgangp (options: lsgan, vanilla, wgangp)",
    ),
    "a moved key": (["model.filters=32"], "it moved to model.net.filters: use ++model.net.filters=32"),
    "a moved key the config names": (["model=cwgan", "model.lr=1e-4"], "use model.optimizer.lr=1e-4"),
    "a setting left to the code's default": (
        ["model=pix2pix", "model.lambda_l1=5"],
        "is set with ++model.lambda_l1=5",
    ),
    "a sweep without -m": (["model=cnn,model2"], "several values sweep only in a multirun; add -m"),
    "one bad job of a sweep": (["-m", "model=pix2pix,cnn", "model/gan_loss=wgangp"], "model=cnn has no"),
    "a key that is not there to delete": (["~foo"], "~foo: Could not delete from config. 'foo' does not exist."),
    "an unreadable override": (["seed=[1,"], "'seed=[1,' is not an override Hydra can read"),
    "a typo'd Hydra key": (["hydra.run.dirr=x"], "did you mean hydra.run.dir?"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_command_line_hydra_would_refuse_is_one_error_line(name, capsys):
    args, message = REFUSED[name]
    with pytest.raises(SystemExit) as stop:
        check_overrides(args, CONF_DIR, "train")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and err.startswith("error: ") and message in err, err


ACCEPTED = [
    [],
    ["--help"],
    ["model=pix2pix", "model/gan_loss=wgangp", "model.n_critic=2"],
    ["+model.unknown_key=3"],  # left to the model, which names the setting it does not take
    ["++model.net.filters=32", "++model.net.stride=2", "model.optimizer.lr=3e-4"],
    ["-m", "experiment=cnn_variants", "data=sample"],
    ["-m", "model=cnn", "++model.net.stride=1,2", "++model.net.filters=12,32"],
    ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model=model1,model2"],
    ["hparams_search=optuna", "hydra.sweeper.n_trials=50"],
    ["hparams_search=optuna", "++model.net.filters=8,16"],  # the config asks for a multirun: no -m needed
    ["resume=logs/train/runs/x"],
    ["-cn", "another_config", "whatever=1"],  # another config: Hydra's own business
]


@pytest.mark.parametrize("args", ACCEPTED, ids=lambda args: " ".join(args) or "nothing")
def test_command_lines_that_compose_pass(args):
    check_overrides(args, CONF_DIR, "train")


def test_every_moved_key_is_gone_and_its_new_home_exists():
    models = {name: compose_config("train", [f"model={name}"]) for name in ("cnn", "pix2pix", "cwgan", "eccv16")}
    for old, new in MOVED_KEYS.items():
        assert all(OmegaConf.select(cfg, old) is None for cfg in models.values()), old
        assert any(OmegaConf.select(cfg, new.rpartition(".")[0]) is not None for cfg in models.values()), new


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("train.py", ["foo=bar"], "the config has no key 'foo'"),
        ("train.py", ["model=cnn", "model/gan_loss=wgangp"], "model=cnn has no model/gan_loss to choose"),
        ("train.py", ["model=pix2pix", "model.gan_loss=wgangp"], "use model/gan_loss=wgangp"),
        ("evaluate.py", ["split=vall", "splitt=val"], "the config has no key 'splitt'; did you mean split?"),
    ],
)
def test_the_entry_points_check_their_command_line_first(script, args, message, tmp_path: Path):
    result = run_script(script, args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "HYDRA_FULL_ERROR" not in result.stderr
    lines = error_lines(result)
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == [], "nothing is written"
