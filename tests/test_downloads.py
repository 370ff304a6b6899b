"""Weights by name: the real downloader against an HTTP server on 127.0.0.1 that the test starts."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorization.colorize import colorize_paths
from colorization.errors import ConfigError, DataError
from colorization.files import downloads
from colorization.files.atomic import temp_path
from colorization.inference.loading import load_colorizer, resolve
from colorization.inference.releases import RELEASES
from colorization.inference.zhang import ECCV16Colorizer
from colorization.modules.zhang import ECCV16Module
from tests.helpers.configs import REPO
from tests.helpers.entry_points import error_lines, file_hashes, without_permission_override
from tests.helpers.http_server import publish
from tests.helpers.weights import random_release_state


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


# --- downloads without a published digest, killed downloads, unwritable caches (issue 23) ---------------


def test_an_error_page_served_for_a_ddcolor_release_is_never_kept(server, cache, monkeypatch):
    release = RELEASES["ddcolor_paper_tiny"]
    assert not release.sha256_prefix and release.size is None, "the hub publishes neither"
    page = b"<!DOCTYPE html><html><body>Service unavailable</body></html>"
    server.files["/pytorch_model.bin"] = page
    monkeypatch.setitem(RELEASES, release.name, replace(release, url=server.url("/pytorch_model.bin")))
    for attempt in (1, 2):
        with pytest.raises(DataError, match=r"not a DDColorColorizer release file \(not a readable PyTorch file"):
            resolve(release.name, progress=False)
        assert no_leftovers(cache), "nothing is kept, so the next run downloads again"
        assert len(server.requests) == attempt


def test_a_download_without_a_digest_is_kept_once_it_loads_and_its_digest_is_checked_later(server, cache, monkeypatch):
    body = release_bytes("eccv16")
    release = replace(publish(server, monkeypatch, "nodigest", body), size=None, sha256_prefix="")
    monkeypatch.setitem(RELEASES, "nodigest", release)
    cache.mkdir()
    (cache / release.filename).write_bytes(b"<html>what an older version kept</html>")  # no record: checked

    path = resolve("nodigest", progress=False)
    assert path.read_bytes() == body and len(server.requests) == 1, "the unloadable file was downloaded again"
    record = cache / f"{release.filename}{downloads.DIGEST_SUFFIX}"
    assert record.read_text() == f"{hashlib.sha256(body).hexdigest()}  {release.filename}\n"
    assert resolve("nodigest") == path and len(server.requests) == 1, "a file that matches its record is used"

    path.write_bytes(body[:-1] + b"x")  # damaged after it was kept
    assert resolve("nodigest", progress=False).read_bytes() == body and len(server.requests) == 2
    path.write_bytes(b"x")
    with pytest.raises(DataError, match="damaged or changed since it was downloaded .* downloads are off"):
        resolve("nodigest", offline=True)
    assert path.read_bytes() == b"x", "offline, nothing is deleted"


class Stalling(BaseHTTPRequestHandler):
    """Announces `LENGTH` bytes, sends half and then nothing: a download that a kill stops midway."""

    LENGTH = 4000

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        self.send_response(200)
        self.send_header("Content-Length", str(self.LENGTH))
        self.end_headers()
        self.wfile.write(b"h" * (self.LENGTH // 2))
        self.wfile.flush()
        time.sleep(60)

    def log_message(self, *args) -> None:
        pass


KILLED_DOWNLOAD = """
import sys
from colorization.inference.loading import resolve
from colorization.inference.releases import RELEASES, Release
from colorization.inference.zhang import ECCV16Colorizer
RELEASES["tiny"] = Release("tiny", sys.argv[1], "tiny-0123abcd.pth", ECCV16Colorizer, "test", 4000, "0123abcd")
resolve("tiny", progress=False)
"""


def test_a_killed_download_leaves_one_hidden_temporary_that_the_next_start_removes(server, cache, monkeypatch):
    stalling = ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    threading.Thread(target=stalling.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{stalling.server_address[1]}/tiny-0123abcd.pth"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_DOWNLOAD, url], cwd=REPO, env={**os.environ, downloads.CACHE_ENV: str(cache)}
    )
    try:
        partial = temp_path(cache / "tiny-0123abcd.pth", str(process.pid))
        deadline = time.monotonic() + 60
        while not partial.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert partial.exists(), "the download started"
        time.sleep(0.5)  # receiving
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        process.kill()
        stalling.shutdown()
        stalling.server_close()
    assert os.listdir(cache) == [partial.name], "one hidden temporary, named by the one writer's scheme"

    release = publish(server, monkeypatch, "tiny", b"w" * 3000)
    resolve("tiny", progress=False)
    assert os.listdir(cache) == [release.filename], "the next start removed the killed download's remains"


def test_a_cache_folder_that_cannot_be_written_is_named_before_anything_is_fetched(server, cache, monkeypatch):
    publish(server, monkeypatch, "tiny", b"z" * 100)
    cache.parent.mkdir(exist_ok=True)
    cache.write_text("a file where the cache folder should be")
    monkeypatch.setenv(downloads.CACHE_ENV, str(cache / "weights"))
    with pytest.raises(
        ConfigError, match=r"COLORIZATION_CACHE='.*weights' is not writable \(.*cache is not a directory\)"
    ):
        resolve("tiny", progress=False)
    assert server.requests == []


@pytest.mark.slow
@pytest.mark.parametrize("where", ["a file", "read-only"])
def test_colorize_with_a_cache_it_cannot_create_says_so_in_one_line(where, tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((20, 30), 128, np.uint8)).save(photo)
    blocked = tmp_path / "blocked"
    if where == "a file":
        blocked.write_text("a file where the cache folder should be")
    else:
        blocked.mkdir(mode=0o555)
    before = file_hashes(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "colorization.colorize",
            str(photo),
            "--model",
            "eccv16",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, downloads.CACHE_ENV: str(blocked / "cache"), "OMP_NUM_THREADS": "1"},
        preexec_fn=without_permission_override,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = error_lines(result)
    assert len(lines) == 1 and f"COLORIZATION_CACHE='{blocked / 'cache'}' is not writable" in lines[0], result.stderr
    assert file_hashes(tmp_path) == before
