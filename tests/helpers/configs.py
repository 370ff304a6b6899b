"""The repository's configs, composed as the tests use them: real `conf/` options overridden to be tiny."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

REPO = Path(__file__).resolve().parents[2]
CONF_DIR = REPO / "conf"

MODEL_CONFIGS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
"""Every option of the model group."""
SMOKE_SIZE = {"ddcolor": 64}  # DDColor's discriminator needs 64 px
"""Input sides for a model whose networks need more pixels than the default smoke size (32) declares them."""

# small enough to train in seconds, big enough for every model's smallest input
TINY_SAMPLE = {
    "data.image_size": 48,
    "data.train_crops_per_photo": 6,
    "data.test_crops_per_photo": 4,
    "data.crop_size": 32,
    "data.batch_size": 8,
    "data.val_fraction": 0.2,
}


def compose_config(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose a real config from conf/ with Hydra's compose API."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides)
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


def tiny_overrides(sample_root: Path | None, run_dir: Path) -> list[str]:
    """Overrides that make `conf/train.yaml` train for seconds on the tiny photo set
    (`sample_root=None`: leave the data group alone, e.g. for ``data=kaggle``)."""
    data = (
        [f"paths.data_dir={sample_root.parent}", *(f"{k}={v}" for k, v in TINY_SAMPLE.items())] if sample_root else []
    )
    return [
        f"paths.root_dir={run_dir.parent}",
        f"paths.output_dir={run_dir}",
        *data,
        "trainer=cpu",
        "trainer.max_epochs=1",
        # the default adds W&B; tests that need it ask for it (starting wandb costs seconds per run)
        "logger=csv",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]


def evaluate_config(sample_root: Path, output_dir: Path, *overrides: str) -> DictConfig:
    """`conf/evaluate.yaml` on the tiny photo set, writing into `output_dir`."""
    data = [f"{key}={value}" for key, value in TINY_SAMPLE.items() if key.startswith("data.")]
    return compose_config(
        "evaluate",
        [
            f"paths.root_dir={output_dir.parent}",
            f"paths.data_dir={sample_root.parent}",
            f"paths.output_dir={output_dir}",
            *data,
            "device=cpu",
            *overrides,
        ],
    )


def kaggle_evaluate_config(tmp_path: Path, root: Path, *overrides: str):
    """`conf/evaluate.yaml` on Kaggle-layout arrays at `root`, writing into ``tmp_path/eval``."""
    return compose_config(
        "evaluate",
        [
            f"paths.root_dir={tmp_path}",
            f"paths.output_dir={tmp_path / 'eval'}",
            "data=kaggle",
            f"data.root={root}",
            *overrides,
        ],
    )
