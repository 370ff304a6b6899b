"""A checkpoint or a release weight file -> a ready colorizer, without the training stack.

A source is resolved once, where loading starts (`resolve`): an existing path as it is, a release
name (``eccv16``, `colorization.inference.releases`) as its cached file, downloaded on first use.
The file is then read with ``weights_only=True`` (never unpickled) and becomes:

- a checkpoint written by `train.py`: the colorizer its ``colorization.colorizer`` entry describes
  (a config naming the inference class and its networks, and which of the training module's
  networks hold its weights); a checkpoint written before that entry existed gets it from its
  training config (`colorization.inference.legacy`), its moved ``_target_``s followed;
- a release file: the family that recognises its keys (`releases.identify`), built as the authors
  run it.

Every ``_target_`` a file names is checked before anything is built (`check_stored_targets`).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class
from torch import nn

from colorization.errors import ConfigError, DataError
from colorization.files.downloads import by_hand, cache_dir, download, is_offline, record_digest, recorded_digest
from colorization.files.weights import check_digest_in_name, safe_load, sha256_of, state_dict_of
from colorization.inference import legacy, releases
from colorization.inference.base import Colorizer
from colorization.instantiate import current_target, instantiate, update_targets

log = logging.getLogger(__name__)

STORED_TARGETS: dict[str, tuple[type, ...]] = {
    "colorization.": (nn.Module,),
    "torch.optim.": (torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler),
}
"""Module prefixes a checkpoint's stored config may import from -> the classes allowed there
(this package's colorizers, networks, modules and losses; PyTorch's optimizers and schedulers)."""
TRAINING_TARGETS = ("colorization.modules.", "colorization.networks.", "torch.optim.")
"""Where the classes a stored training config names live (the families and their losses, networks, optimizers)."""


def resolve(source: str | Path, offline: bool = False, progress: bool = True, kind: str = "file") -> Path:
    """The file `source` means: an existing path as it is, or a release name's cached file.

    A release missing from the cache is downloaded (unless offline). A release published without a
    digest (DDColor's) is kept only once it loads strictly as its family's release format, and its
    digest is recorded then; a cached copy that no longer matches its record (or has none, and does
    not load) is downloaded again. Anything else raises a `DataError` (a path that does not exist:
    "<source>: <kind> not found") or a `ConfigError` listing the release names.
    """
    path = Path(source).expanduser()
    if path.is_file():
        return path
    release = releases.RELEASES.get(str(source))
    if release is None:
        if path.is_dir():
            raise DataError(f"{source}: a folder; expected a checkpoint or weight file")
        if path.suffix or "/" in str(source) or "\\" in str(source):
            raise DataError(f"{source}: {kind} not found")
        raise ConfigError(
            f"model {str(source)!r} is neither a file nor a known release name; expected a path or one of "
            f"{sorted(releases.RELEASES)}"
        )
    target = cache_dir() / release.filename
    problem = _cached_release_problem(target, release) if target.is_file() else "not in the cache"
    if problem is None:
        return target
    if offline or is_offline():
        raise DataError(
            f"{target}: the {release.name!r} weights are {problem} and downloads are off; "
            f"{by_hand(release.url, target)}"
        )
    if target.is_file():
        log.warning("%s: %s; downloading the %r weights again", target, problem, release.name)
    check = None if release.sha256_prefix else functools.partial(_check_release_file, release=release)
    digest = download(
        release.url, target, release.size, release.sha256_prefix, release.name, progress=progress, check=check
    )
    if not release.sha256_prefix:
        record_digest(target, digest)
    return target


def _cached_release_problem(target: Path, release: releases.Release) -> str | None:
    """What is wrong with the cached file of `release`, or None when it can be used.

    A release with a published digest carries it in its file name, checked whenever the file is
    read (`check_digest_in_name`). Without one, the file must still have the digest recorded when
    it was kept; a file without a record (fetched by hand, or by a version that did not check) is
    checked like a download once, and its digest recorded.
    """
    if release.sha256_prefix:
        return None
    recorded = recorded_digest(target)
    if recorded is not None:
        if sha256_of(target) != recorded:
            return "damaged or changed since it was downloaded (its sha256 is not the one recorded then)"
        return None
    try:
        _check_release_file(target, release)
    except DataError as error:
        return str(error).removeprefix(f"{target}: ")
    with suppress(OSError):  # a read-only cache: checked again next time
        record_digest(target, sha256_of(target))
    return None


def _check_release_file(path: Path, release: releases.Release) -> None:
    """Refuse (`DataError`) a file that does not load strictly as `release`'s family's release format."""
    try:
        colorizer = _from_release(safe_load(path), path)
    except DataError as error:
        # `path` may be a download's temporary, whose name means nothing to the user
        raise DataError(
            f"{path}: not a {release.family.__name__} release file ({str(error).removeprefix(f'{path}: ')})"
        ) from None
    if not isinstance(colorizer, release.family):
        raise DataError(f"{path}: a {type(colorizer).__name__} release file, not a {release.family.__name__} one")


def load_colorizer(
    source: str | Path, map_location: str | torch.device = "cpu", offline: bool = False, kind: str = "file"
) -> Colorizer:
    """A ready colorizer (weights loaded, eval mode) from a checkpoint, a release file or a release name.

    Raises `DataError` naming the file for anything else (see the module docstring); `kind` names
    what was expected when the file does not exist.
    """
    path = resolve(source, offline=offline, kind=kind)
    check_digest_in_name(path)
    content = safe_load(path, map_location=map_location)
    info = content.get("colorization") if isinstance(content, dict) else None
    if isinstance(info, dict) and info.get("model"):
        check_training_targets(info["model"], path)
        if not info.get("colorizer"):  # written before checkpoints described their colorizer
            info = {**info, "colorizer": legacy.colorizer_entry(info, content.get("state_dict") or {})}
        if not info["colorizer"]:
            raise DataError(f"{path}: a checkpoint of {info['model'].get('_target_')!r}, which names no colorizer")
        colorizer = _from_entry(content, info, path)
    else:
        colorizer = _from_release(content, path)
    return colorizer.to(map_location).eval()


def _from_entry(checkpoint: dict, info: dict, path: Path) -> Colorizer:
    """The colorizer a checkpoint's ``colorization.colorizer`` entry describes, its networks' weights loaded."""
    entry = info["colorizer"]
    config, networks = entry.get("config"), entry.get("networks")
    if not isinstance(config, dict) or not isinstance(networks, dict):
        raise DataError(f"{path}: its colorization.colorizer entry is not a config and a networks table")
    check_stored_targets(config, path, "colorizer")
    update_targets(config)
    with random_init_skipped():  # the strict load below overwrites every parameter
        colorizer = instantiate(config, key="colorizer")
    if not isinstance(colorizer, Colorizer):
        raise DataError(f"{path}: colorizer._target_={config.get('_target_')!r} is not a Colorizer")
    state_dict = {}
    for own, stored in networks.items():  # the colorizer's network -> the training module's name for it
        prefix = f"{stored}."
        state_dict |= {own + k[len(stored) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    try:
        colorizer.load_state_dict(state_dict)
    except RuntimeError as error:
        raise DataError(f"{path}: its weights do not fit {type(colorizer).__name__} ({error})") from None
    colorizer.config_name = info.get("name")
    colorizer.trained_size = info.get("trained_size")
    return colorizer


def _from_release(content: Any, path: Path) -> Colorizer:
    """A release file: the family that recognises its keys, as the authors run it."""
    found = releases.identify(content) if isinstance(content, dict) else None
    if found is None:
        raise DataError(
            f"{path}: neither a colorization checkpoint (no 'colorization' entry with the model config) "
            f"nor a recognised release state dict ({', '.join(releases.family_names())})"
        )
    family, settings = found
    with random_init_skipped():  # the strict load overwrites every parameter (a release may lack constants)
        colorizer = family(**settings)
    colorizer.load_network(state_dict_of(content, path), path)
    colorizer.config_name = family.release_name
    return colorizer


@contextmanager
def random_init_skipped() -> Iterator[None]:
    """Inside, `torch.nn.init`'s in-place initialisers (``normal_``, ``kaiming_uniform_``...) leave their
    tensor as it is, so layers keep the uninitialised memory `torch.empty` gave them.

    Only for a model whose every parameter a strict `load_state_dict` overwrites right after (a strict
    load refuses a state dict that misses one). Random initialisation was 0.22 s of the 0.23 s it took
    to build pix2pix (19 M parameters) on the development CPU: evaluation, `colorize` and the demo start
    that much sooner. Buffers do not come from these functions and are built as usual.
    """
    initialisers = {
        name: function
        for name, function in vars(nn.init).items()
        if name.endswith("_") and not name.startswith("_") and callable(function)
    }
    try:
        for name in initialisers:
            setattr(nn.init, name, _unchanged)
        yield
    finally:
        for name, function in initialisers.items():
            setattr(nn.init, name, function)


def _unchanged(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return tensor


def check_stored_targets(config: Any, source: str | Path, key: str = "model") -> None:
    """Refuse a stored config whose ``_target_``s name anything but PyTorch modules (colorizers,
    networks, losses, training modules) and PyTorch's optimizers and schedulers.

    A checkpoint's colorizer config is instantiated when the checkpoint is loaded, so without this
    check a file could call any function (``builtins.open``, ``os.system``) with arguments of its
    choice. A name is first followed to where its class lives now (`current_target`). Names under
    `STORED_TARGETS`' prefixes (this package, ``torch.optim``) are imported; any other name must be a
    class already loaded in this process (a network defined outside the package, whose module the
    caller imported), so reading a checkpoint never imports a module it names. Raises `DataError`.
    """
    for where, target in _targets(config, key):
        name = current_target(str(target))
        allowed = next((bases for prefix, bases in STORED_TARGETS.items() if name.startswith(prefix)), (nn.Module,))
        if any(name.startswith(prefix) for prefix in STORED_TARGETS):
            try:
                resolved = get_class(name)
            except Exception:  # not importable or not a class: refused below
                resolved = None
        else:
            resolved = _loaded_class(name)
        if not (isinstance(resolved, type) and issubclass(resolved, allowed)):
            _refuse(source, where, target)


def check_training_targets(config: Any, source: str | Path) -> None:
    """Refuse a stored training config (``colorization.model``) that names anything but this package's
    training families, networks and losses, PyTorch's optimizers, or a class already loaded.

    Loading a colorizer never builds the training config (resuming builds today's config and compares
    the stored one), so its names are checked without importing them: a file that names a foreign
    function there is corrupt or malicious, and refused like one, without importing Lightning.
    """
    allowed = tuple(base for bases in STORED_TARGETS.values() for base in bases)
    for where, target in _targets(config, "model"):
        name, loaded = current_target(str(target)), _loaded_class(current_target(str(target)))
        if not (name.startswith(TRAINING_TARGETS) or (isinstance(loaded, type) and issubclass(loaded, allowed))):
            _refuse(source, where, target)


def _loaded_class(name: str) -> Any:
    """The object `name` (``module.attribute``) names in an already imported module, else None."""
    module, _, attribute = name.rpartition(".")
    return getattr(sys.modules.get(module), attribute, None) if module else None


def _refuse(source: str | Path, where: str, target: Any) -> None:
    raise DataError(
        f"{source}: refused: its stored config sets {where}._target_={target!r}, which is not a loaded "
        "network, loss or optimizer class; a checkpoint may only name those (import the module that "
        "defines a network of your own before loading its checkpoint)"
    )


def _targets(node: Any, key: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, target) for every ``_target_`` in a nested config of dicts and lists."""
    if isinstance(node, dict):
        if "_target_" in node:
            yield key, node["_target_"]
        for name, value in node.items():
            yield from _targets(value, f"{key}.{name}")
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            yield from _targets(value, f"{key}[{index}]")
