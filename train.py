"""Train a colorizer: ``python train.py model=cnn colorspace=lab data=sample trainer=cpu``.

Composes `conf/train.yaml`, trains and tests, and returns the metric named by
``optimized_metric`` so that Hydra sweepers (e.g. Optuna) can optimize it.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from colorization.jobs.quiet import quiet_libraries
from colorization.jobs.run_dirs import register_resolvers
from colorization.jobs.tasks import answer_help, apply_to_loggers, check_overrides, hydra_job, run_task

CONF_DIR = Path(__file__).parent / "conf"

register_resolvers()  # ${run_name:...} names the run directory (conf/hydra/default.yaml)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    # the job (and with it torch and Lightning) loads once Hydra has parsed the command line, so that
    # --help and a refused override answer in a second or two
    from colorization.jobs.train import train

    quiet_libraries()
    job = hydra_job("train.py")
    apply_to_loggers(cfg, job)
    metrics = run_task(lambda: train(cfg, model_name=job.choices.get("model")), run_dir=job.output_dir)
    name = cfg.get("optimized_metric")
    return metrics.get(name) if name else None


if __name__ == "__main__":
    answer_help(sys.argv[1:], CONF_DIR, "train")
    check_overrides(sys.argv[1:], CONF_DIR, "train")
    main()
