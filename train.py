"""Train a colorizer: ``python train.py model=cnn colorspace=lab data=sample trainer=cpu``.

Composes `conf/train.yaml`, trains and tests, and returns the metric named by
``optimized_metric`` so that Hydra sweepers (e.g. Optuna) can optimize it.
"""

import hydra
from omegaconf import DictConfig

from colorization.tasks import apply_to_loggers, hydra_job, run_task
from colorization.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    apply_to_loggers(cfg, hydra_job("train.py"))
    metrics = run_task(lambda: train(cfg))
    name = cfg.get("optimized_metric")
    return metrics.get(name) if name else None


if __name__ == "__main__":
    main()
