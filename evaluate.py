"""Evaluate colorizers: ``python evaluate.py 'checkpoints=[a.ckpt,b.ckpt]' data=sample``.

Composes `conf/evaluate.yaml`, scores every checkpoint plus the reference rows ``gray`` and
``ground truth`` on one data split, and writes results.md/.csv/.json and comparison.png into a
new run directory (see `colorization.evaluation`).
"""

import shlex

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from colorization.evaluation import evaluate
from colorization.tasks import run_task


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    # results.md quotes the command line, so that the table can be re-made
    command = " ".join(["python evaluate.py", *(shlex.quote(o) for o in HydraConfig.get().overrides.task)])
    run_task(lambda: evaluate(cfg, command))


if __name__ == "__main__":
    main()
