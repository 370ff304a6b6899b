"""Read weight files strictly: official releases and the networks inside our own checkpoints.

A file holds a plain state dict, or one nested under ``params`` (BasicSR trainers, as DDColor's
releases may be) or ``model`` (ConvNeXt's ImageNet files). Zhang et al.'s official files are plain
state dicts whose names carry the first 8 hex digits of their sha256
(``colorization_release_v2-9b330a0b.pth``, ``siggraph17-df00044c.pth``), as PyTorch's hub
convention has it; that prefix is checked when present. Loading is strict: every key must be
there with its shape, except the BatchNorm ``num_batches_tracked`` counters that files saved by
older PyTorch lack. Any other mismatch stops with one line naming the first offending keys.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from colorization.errors import DataError

HASH_IN_NAME = re.compile(r"-([0-9a-f]{8})\.pth$")
"""``name-<8 hex digits>.pth``: the digits are the start of the file's sha256."""
TOLERATED_MISSING = "num_batches_tracked"
SHOW_KEYS = 3
"""How many offending keys an error message names."""
WRAPPERS = ("params", "model")
"""Keys under which some trainers nest the state dict in the file."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def require_file(path: Path, expected: str, missing: str = "file not found") -> None:
    """Refuse (`DataError`) a `path` that is a folder, saying that `expected` (a kind of file) was, or that
    does not exist (``<path>: <missing>``)."""
    if path.is_dir():
        raise DataError(f"{path}: a folder; expected {expected}")
    if not path.is_file():
        raise DataError(f"{path}: {missing}")


REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
"""How torch's weights-only unpickler names the Python object a file asked for."""
PROTOCOL_WARNING = "Detected pickle protocol"
"""The start of the warning torch's weights-only unpickler gives for a pickle of protocol 3 or more."""


def safe_load(path: str | Path, map_location: Any = "cpu", mmap: bool = False) -> Any:
    """The content of a PyTorch file, read with ``weights_only=True``: tensors and plain values only.

    The one way this project reads a ``.pth``/``.ckpt`` file it did not write in this process (a
    checkpoint, a release file): a file that asks to build any other Python object is refused,
    so a malicious file cannot run code. `mmap`: map the tensors instead of reading them (cheap
    when only the plain entries are needed). Raises `DataError` naming the file.
    """
    path = Path(path)
    require_file(path, "a checkpoint or weight file")
    try:
        with warnings.catch_warnings():
            # torch warns about any pickle protocol above 2 before it reads (or refuses) the file; the
            # refusal of a foreign pickle must be the only line a user sees, and a readable file needs no warning
            warnings.filterwarnings("ignore", message=PROTOCOL_WARNING, category=UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        refused = REFUSED_GLOBAL.search(str(error))
        if refused is None:  # not a pickle torch can read at all: a foreign or truncated file
            raise DataError(f"{path}: not a readable PyTorch file (UnpicklingError)") from None
        raise DataError(
            f"{path}: refused to load: the file asks to create a Python object ({refused.group(1)}), which a "
            "weights or checkpoint file never needs; it may be malicious"
        ) from None
    except Exception as error:  # torch raises many types for foreign or truncated files
        raise DataError(f"{path}: not a readable PyTorch file ({type(error).__name__})") from None


def check_digest_in_name(path: Path) -> None:
    """Refuse a file whose name carries the start of its sha256 (``name-9b330a0b.pth``) when its content
    does not match it (a corrupt or foreign download). Raises `DataError`."""
    match = HASH_IN_NAME.search(path.name)
    if match and not sha256_of(path).startswith(match.group(1)):
        raise DataError(
            f"{path}: sha256 does not start with {match.group(1)} as its name says; the file is corrupt or "
            "not the official release (download it again)"
        )


def state_dict_of(content: Any, source: str | Path, prefix: str = "") -> dict[str, Tensor]:
    """The state dict in a loaded file's `content`: a plain state dict (possibly nested under `WRAPPERS`),
    or the entries of a checkpoint's ``state_dict`` whose names start with `prefix` (e.g. ``net.``),
    with it removed. Raises `DataError` naming `source` when there is none."""
    if isinstance(content, dict) and isinstance(content.get("state_dict"), dict):
        # a training checkpoint: the module's state dict, whose network's entries carry a prefix
        content = {k.removeprefix(prefix): v for k, v in content["state_dict"].items() if k.startswith(prefix)}
    for wrapper in WRAPPERS:
        # files written by BasicSR-style trainers ({"params": ...}) or ImageNet releases ({"model": ...})
        if isinstance(content, dict) and isinstance(content.get(wrapper), dict):
            content = content[wrapper]
            break
    if not isinstance(content, dict) or not content or not all(isinstance(v, Tensor) for v in content.values()):
        raise DataError(f"{source}: expected a state dict (parameter name -> tensor)")
    return content


def read_state_dict(path: str | Path, prefix: str = "") -> dict[str, Tensor]:
    """The state dict stored in the file at `path` (`state_dict_of`), after `check_digest_in_name`.

    Raises `DataError` for a missing, corrupt or unrecognised file. Takes a path only: resolving a
    release name (and downloading it) happens where loading starts (`colorization.inference.loading`).
    """
    path = Path(path)
    require_file(path, "a weight file (.pth) or checkpoint", missing="weights file not found")
    check_digest_in_name(path)
    return state_dict_of(safe_load(path), path, prefix)


def load_strict(
    net: nn.Module,
    state_dict: dict[str, Tensor],
    source: str | Path,
    optional: Callable[[str], bool] | None = None,
    unused: Callable[[str], bool] | None = None,
) -> None:
    """Load `state_dict` into `net`, requiring exactly its keys and shapes (``num_batches_tracked`` may be missing).

    `optional` names keys of `net` the file may lack (they keep their current value); `unused`
    names keys of the file that are not `net`'s and are skipped (e.g. a classifier head). Raises
    `DataError` naming the first wrong, missing and unexpected keys.
    """
    expected = net.state_dict()
    if unused is not None:
        state_dict = {k: v for k, v in state_dict.items() if k in expected or not unused(k)}
    may_miss = optional or (lambda key: False)
    missing = [k for k in expected if k not in state_dict and not k.endswith(TOLERATED_MISSING) and not may_miss(k)]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [
        f"{k} {tuple(state_dict[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    problems = [
        f"{label}: {', '.join(keys[:SHOW_KEYS])}{' ...' if len(keys) > SHOW_KEYS else ''} ({len(keys)} in all)"
        for label, keys in (("wrong shapes", wrong), ("missing keys", missing), ("unexpected keys", unexpected))
        if keys
    ]
    if problems:
        raise DataError(f"{source}: does not fit {type(net).__name__}; " + "; ".join(problems))
    # counters absent from old files and optional entries keep their value; everything else is replaced
    net.load_state_dict({**expected, **state_dict}, strict=True)
