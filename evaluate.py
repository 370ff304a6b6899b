"""Evaluate colorizers: ``python evaluate.py 'checkpoints=[a.ckpt,b.ckpt]' data=sample``.

Composes `conf/evaluate.yaml`, scores every checkpoint plus the reference rows ``gray`` and
``ground truth`` on one data split, prints the table and writes results.md/.csv/.json and
comparison.jpg into a new run directory (see `colorization.jobs.evaluate`).
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


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    # the job (and with it torch and Lightning) loads once Hydra has parsed the command line, so that
    # --help and a refused override answer in a second or two
    from colorization.jobs.evaluate import evaluate

    quiet_libraries()
    job = hydra_job("evaluate.py")
    apply_to_loggers(cfg, job)
    run_task(lambda: evaluate(cfg, job.command), run_dir=job.output_dir)


if __name__ == "__main__":
    answer_help(sys.argv[1:], CONF_DIR, "evaluate")
    check_overrides(sys.argv[1:], CONF_DIR, "evaluate")
    main()
