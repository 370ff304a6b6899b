"""Films on `colorize-demo`'s page, without a browser: upload, the copies a browser plays, colorizing in the
background with progress, the result equal to what `colorize_video` writes, and every bad clip in one message."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from starlette.testclient import TestClient

from colorization.colorize import colorize_video
from colorization.colorize import video as films
from colorization.demo import films as demo_films
from colorization.demo.catalog import Catalog
from colorization.demo.films import Cancelled, FilmJob
from colorization.demo.server import Demo, create_app
from colorization.inference.films import Progress
from colorization.modules.build import build_module
from colorization.video.io import open_film, probe
from tests.helpers.clips import film_clip, write_film
from tests.helpers.weights import CNN_CONFIG

WAIT_S = 120


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """A models folder holding one small study CNN (random weights)."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    model = build_module(CNN_CONFIG, "lab")
    checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, root / "cnn.ckpt")
    return Catalog.scan(root, torch.device("cpu"), warn=lambda line: None)


@pytest.fixture
def demo(catalog):
    demo = Demo(catalog, max_megapixels=1.0, max_film_seconds=2.0)
    yield demo
    demo.films.close()


@pytest.fixture
def client(demo) -> TestClient:
    return TestClient(create_app(demo))


def upload(client: TestClient, path: Path) -> dict:
    response = client.post("/api/films", params={"name": path.name}, content=path.read_bytes())
    assert response.status_code == 200, response.text
    return response.json()


def finished(client: TestClient, film: str, job: str) -> dict:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        progress = client.get(f"/api/films/{film}/jobs/{job}").json()
        if progress["done"]:
            return progress
        time.sleep(0.05)
    raise AssertionError("the colorization did not finish")


def fetched(client: TestClient, url: str, folder: Path, name: str) -> Path:
    response = client.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4", response.text
    path = folder / name
    path.write_bytes(response.content)
    return path


def planes(path: Path) -> np.ndarray:
    """(T, H, W, 3) the decoded frames as players show them."""
    with open_film(path) as film:
        return np.stack([frame.rgb for frame in film.frames(rgb=True)])


def test_a_clip_is_played_beside_what_colorize_video_makes_of_it(client, demo, catalog, tmp_path, monkeypatch):
    calls = []

    def recorded(*args, **kwargs):
        calls.append((args, kwargs))
        return films.colorize_video(*args, **kwargs)

    monkeypatch.setattr(demo_films, "colorize_video", recorded)
    source = write_film(tmp_path / "clip.mp4", film_clip(24).gray)  # 1 s, 96x72, with a tone
    film = upload(client, source)
    assert (film["name"], film["width"], film["height"], film["frames"]) == ("clip.mp4", 96, 72, 24)
    assert film["seconds"] == pytest.approx(1.0)
    original = probe(fetched(client, f"/api/films/{film['id']}/original", tmp_path, "original.mp4"))
    assert (original.width, original.height, original.pix_fmt, original.frame_count) == (96, 72, "yuv420p", 24)
    assert [s.kind for s in original.other_streams] == ["audio"]

    (model,) = catalog.entries
    started = client.post(f"/api/films/{film['id']}/colorize", json={"model": model, "deflicker": "flow"}).json()
    progress = finished(client, film["id"], started["job"])
    assert progress["error"] is None and (progress["frames"], progress["total"]) == (24, 24)
    base = f"/api/films/{film['id']}/jobs/{started['job']}"
    shown = fetched(client, f"{base}/playable", tmp_path, "shown.mp4")
    download = client.get(f"{base}/film")
    assert "clip-colorized.mp4" in download.headers["content-disposition"]
    # the page shows what colorize writes: the film colorize_video made, with the page's model and filter
    ((args, kwargs),) = calls
    assert args[1] is catalog.model(model) and kwargs["deflicker"] == "flow" and shown.read_bytes() == download.content
    expected = colorize_video(source, catalog.model(model), tmp_path / "expected.mp4", device="cpu")
    squared = ((planes(shown).astype(float) - planes(expected.target)) ** 2).mean()
    assert squared == 0 or 10 * np.log10(255**2 / squared) > 35  # libx264 here does not repeat its bits exactly


def test_an_odd_sized_clip_plays_as_an_even_copy_and_downloads_whole(client, catalog, tmp_path):
    source = write_film(tmp_path / "odd.mkv", film_clip(6, 41, 57).gray, pix_fmt="yuv444p", audio="pcm_s16le")
    film = upload(client, source)
    original = probe(fetched(client, f"/api/films/{film['id']}/original", tmp_path, "original.mp4"))
    assert (original.width, original.height, original.pix_fmt) == (56, 40, "yuv420p")
    (model,) = catalog.entries
    job = client.post(f"/api/films/{film['id']}/colorize", json={"model": model, "deflicker": "none"}).json()["job"]
    assert finished(client, film["id"], job)["error"] is None
    base = f"/api/films/{film['id']}/jobs/{job}"
    shown = probe(fetched(client, f"{base}/playable", tmp_path, "shown.mp4"))
    whole = probe(fetched(client, f"{base}/film", tmp_path, "whole.mp4"))
    assert (shown.width, shown.height, shown.pix_fmt) == (56, 40, "yuv420p")
    assert (whole.width, whole.height, whole.pix_fmt) == (57, 41, "yuv444p")


def test_a_newer_colorization_stops_the_one_waiting_before_it(client, demo, catalog, tmp_path):
    film = upload(client, write_film(tmp_path / "clip.mp4", film_clip(8).gray, audio=None))
    (model,) = catalog.entries
    with demo.model_lock:  # both wait for the model; the first is replaced before it starts
        first = client.post(f"/api/films/{film['id']}/colorize", json={"model": model}).json()["job"]
        second = client.post(f"/api/films/{film['id']}/colorize", json={"model": model}).json()["job"]
    assert finished(client, film["id"], first)["error"].startswith("stopped: a newer colorization")
    assert finished(client, film["id"], second)["error"] is None
    assert client.get(f"/api/films/{film['id']}/jobs/{first}/playable").status_code == 400

    job = FilmJob("k", tmp_path / "a.mp4", tmp_path / "a.mp4")
    job.report(Progress(tmp_path, 3, 8, 1.0))
    assert (job.frames, job.total, job.frames_per_s) == (3, 8, 3.0)
    job.cancelled.set()
    with pytest.raises(Cancelled):
        job.report(Progress(tmp_path, 4, 8, 1.0))


def test_bad_clips_and_requests_are_one_message_and_the_server_goes_on(client, catalog, tmp_path):
    (model,) = catalog.entries
    long = write_film(tmp_path / "long.mp4", film_clip(72).gray, audio=None)  # 3 s, over the 2 s allowed
    big = write_film(tmp_path / "big.mp4", film_clip(3, 720, 1440).gray, audio=None)  # 1.04 megapixels
    cases = {
        ("notes.mp4", b"these are notes"): "notes.mp4: cannot read it",
        ("empty.mov", b""): "empty.mov: the file is empty",
        ("photo.png", b"\x89PNG"): "photo.png: not a film; expected one of .avi, .m4v",
        ("long.mp4", long.read_bytes()): "long.mp4: 3.0 s is longer than the 2 s this page takes",
        ("big.mp4", big.read_bytes()): "big.mp4: 1440x720 frames are 1.0 megapixels, more than the 1",
    }
    for (name, data), message in cases.items():
        response = client.post("/api/films", params={"name": name}, content=data)
        assert response.status_code == 400 and response.json()["error"].startswith(message), response.text
        assert "\n" not in response.json()["error"]
    film = upload(client, write_film(tmp_path / "fine.mp4", film_clip(6).gray, audio=None))["id"]
    requests = {
        f"/api/films/{film}/colorize": ({"model": "nope.pth"}, "model 'nope.pth' is not offered"),
        f"/api/films/{film}/colorize ": ({"model": model, "deflicker": "blur"}, "deflicker='blur' is unknown"),
        "/api/films/gone/colorize": ({"model": model}, "film 'gone' is no longer on the server"),
    }
    for url, (body, message) in requests.items():
        response = client.post(url.strip(), json=body)
        assert response.status_code == 400 and message in response.json()["error"], response.text
    assert client.get(f"/api/films/{film}/jobs/nope").status_code == 400
    job = client.post(f"/api/films/{film}/colorize", json={"model": model}).json()["job"]
    assert finished(client, film, job)["error"] is None
    assert client.get(f"/api/films/{film}/jobs/{job}/other").status_code == 400
    assert client.get("/api/models").json()["film_suffixes"] == [".avi", ".m4v", ".mkv", ".mov", ".mp4", ".webm"]
