"""Which W&B run a job logs to, decided without Lightning or wandb loaded: online or offline, the group
of a multirun's jobs, the tags of the chosen options, and closing the run at the end.

Kept apart from `loggers` (Lightning's logger classes) so that the entry points' task wrapper
(`tasks`) and ``python train.py --help`` start without importing Lightning.
"""

from __future__ import annotations

import netrc
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

from colorization.errors import check_choice

WANDB_MODES = ("online", "offline", "disabled")
DEFAULT_WANDB_HOST = "https://api.wandb.ai"
# config groups whose chosen option becomes a W&B tag
TAG_GROUPS = ("model", "colorspace")


def wandb_credentials_available() -> bool:
    """True when W&B can authenticate without asking: ``WANDB_API_KEY`` is set, or ``wandb login``
    stored a key for the W&B host in the netrc file (``$NETRC`` or ``~/.netrc``). Never uses the network."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", DEFAULT_WANDB_HOST)).hostname
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return path.is_file() and netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_wandb_mode(mode: str | None = None) -> str:
    """The W&B mode of a run: `mode` if given, else ``$WANDB_MODE``, else online when credentials
    are available and offline otherwise (so a run never stops to ask for a login)."""
    source = "logger.wandb.mode" if mode else "WANDB_MODE"
    chosen = mode or os.environ.get("WANDB_MODE") or ("online" if wandb_credentials_available() else "offline")
    # wandb also accepts "dryrun" (= offline) and "run" (= online) in $WANDB_MODE
    chosen = {"dryrun": "offline", "run": "online"}.get(chosen, chosen)
    check_choice(source, chosen, WANDB_MODES)
    return chosen


def multirun_group(task_name: str, sweep_dir: str | Path) -> str:
    """The W&B group shared by the jobs of one Hydra multirun: ``<task>-<sweep dir name>``."""
    return f"{task_name}-{Path(sweep_dir).name}"


def run_tags(tags: list[str] | None, choices: list[str | None] = ()) -> list[str]:
    """`choices` (the options chosen for the `TAG_GROUPS`, e.g. ``model2``, ``hls``) plus `tags`,
    without empty or repeated entries."""
    return list(dict.fromkeys(str(tag) for tag in [*choices, *(tags or [])] if tag))


def finish_wandb() -> None:
    """Close the current W&B run, if any (wandb keeps one run per process until finished)."""
    wandb = sys.modules.get("wandb")  # only loaded when a W&B logger was used
    if wandb is not None and wandb.run is not None:
        wandb.finish()
