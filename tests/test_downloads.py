"""Weights by name: the real downloader against an HTTP server on 127.0.0.1 that the test starts."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorization.colorize import colorize_paths
from colorization.errors import DataError
from colorization.files import downloads
from colorization.files.atomic import temp_path
from colorization.inference.loading import load_colorizer, resolve
from colorization.inference.zhang import ECCV16Colorizer
from colorization.modules.zhang import ECCV16Module
from tests.helpers.http_server import Server, publish
from tests.helpers.weights import random_release_state


def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv(downloads.CACHE_ENV, str(directory))
    monkeypatch.delenv(downloads.OFFLINE_ENV, raising=False)
    return directory


def no_leftovers(cache: Path) -> bool:
    return not cache.exists() or not any(cache.iterdir())


def test_a_release_is_downloaded_once_checked_and_cached(server, cache, monkeypatch):
    body = np.random.default_rng(0).bytes(3 * downloads.CHUNK_BYTES + 17)
    release = publish(server, monkeypatch, "tiny", body)
    path = resolve("tiny", progress=False)
    assert path == cache / release.filename and path.read_bytes() == body
    assert resolve("tiny") == path and len(server.requests) == 1, "the second call uses the cache"
    assert sorted(p.name for p in cache.iterdir()) == [release.filename]


def test_a_download_first_removes_what_killed_downloads_left_in_the_cache(server, cache, monkeypatch):
    release = publish(server, monkeypatch, "tiny", b"w" * 3000)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cache.mkdir()
    leftover = temp_path(cache / "other-0123abcd.pth", str(dead.pid))
    leftover.write_bytes(b"half")
    resolve("tiny", progress=False)
    assert sorted(p.name for p in cache.iterdir()) == [release.filename]


def test_a_wrong_digest_leaves_nothing_and_says_how_to_fetch_by_hand(server, cache, monkeypatch):
    release = publish(server, monkeypatch, "tiny", b"x" * 1000, digest="00000000")
    with pytest.raises(DataError, match="does not start with 00000000") as error:
        resolve("tiny", progress=False)
    assert f"curl -L -o {cache / release.filename} {release.url}" in str(error.value)
    assert no_leftovers(cache)


def test_a_truncated_transfer_leaves_nothing(server, cache, monkeypatch):
    release = publish(server, monkeypatch, "tiny", b"y" * 5000)
    server.truncate.add(f"/{release.filename}")
    with pytest.raises(DataError, match="downloading the 'tiny' weights failed"):
        resolve("tiny", progress=False)
    assert no_leftovers(cache)


def test_a_server_that_is_down_is_a_one_line_error(server, cache, monkeypatch):
    publish(server, monkeypatch, "tiny", b"z" * 100)
    server.close()
    with pytest.raises(DataError, match=r"downloading the 'tiny' weights failed .*curl -L") as error:
        resolve("tiny", progress=False)
    assert "\n" not in str(error.value)
    assert no_leftovers(cache)


def test_offline_never_tries(server, cache, monkeypatch):
    publish(server, monkeypatch, "tiny", b"z" * 100)
    with pytest.raises(DataError, match="not in the cache and downloads are off"):
        resolve("tiny", offline=True)
    monkeypatch.setenv(downloads.OFFLINE_ENV, "1")
    with pytest.raises(DataError, match="downloads are off"):
        resolve("tiny")
    assert server.requests == []


def release_bytes(name: str) -> bytes:
    buffer = io.BytesIO()
    torch.save(random_release_state(name), buffer)
    return buffer.getvalue()


@pytest.mark.slow
def test_model_weights_and_colorize_model_take_the_name(server, cache, monkeypatch, tmp_path):
    # stand in for the real eccv16 entry: same code path, a file this server holds
    publish(server, monkeypatch, "eccv16", release_bytes("eccv16"))
    model = ECCV16Module(weights="eccv16")
    assert torch.equal(model.net.model8[6].weight, random_release_state("eccv16")["model8.6.weight"])
    assert isinstance(load_colorizer("eccv16"), ECCV16Colorizer)  # evaluate.py's checkpoints take names too
    Image.fromarray(np.full((20, 30), 128, np.uint8)).save(tmp_path / "gray.png")
    summary = colorize_paths([tmp_path / "gray.png"], "eccv16", tmp_path / "out", workers=0)
    assert summary.done == 1 and Image.open(tmp_path / "out" / "gray.png").size == (30, 20)
    assert len(server.requests) == 1
