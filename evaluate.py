"""Evaluate colorizers: ``python evaluate.py 'checkpoints=[a.ckpt,b.ckpt]' data=sample``.

Composes `conf/evaluate.yaml`, scores every checkpoint plus the reference rows ``gray`` and
``ground truth`` on one data split, and writes results.md/.csv/.json and comparison.png into a
new run directory (see `colorization.evaluation`).
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from colorization.evaluation import evaluate
from colorization.tasks import apply_to_loggers, check_group_options, hydra_job, run_task

CONF_DIR = Path(__file__).parent / "conf"


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    job = hydra_job("evaluate.py")
    apply_to_loggers(cfg, job)
    run_task(lambda: evaluate(cfg, job.command))


if __name__ == "__main__":
    check_group_options(sys.argv[1:], CONF_DIR)
    main()
