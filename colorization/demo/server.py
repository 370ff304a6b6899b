"""``colorize-demo --models DIR``: a local web page that colorizes photos and short films with the colorizers in DIR.

The app is Starlette (ASGI, served by uvicorn) around the project's own code: models come from
`colorization.inference.sources` (`catalog`), every colour result from `colorization.colorize.colorize_image`
(hints in the format ``colorize --hints`` reads, parsed by `colorization.color.hints`), so the page
shows exactly what the command line writes. The page (``static/``) is plain HTML, CSS and
JavaScript served from here: nothing is fetched from elsewhere, it works offline.

API (JSON unless said; errors are ``{"error": "..."}`` with status 400, and the server goes on):

- ``GET /api/models``: the colorizers, the example photos, the upload limit.
- ``GET /api/examples/NAME``: a built-in photo (PNG).
- ``POST /api/photos?name=FILE`` (body: the file): ``{"id", "name", "width", "height"}``.
- ``GET /api/photos/ID``: the uploaded photo, upright, as PNG (its preview: longer side at most 1280 px).
- ``POST /api/colorize`` ``{"photo", "model", "hints": [...], "temperature", "full"}``: the colorized
  preview as PNG, or with ``"full": true`` the full-resolution PNG. Hints are in the photo's pixels.
- ``POST /api/palette`` ``{"photo", "model", "x", "y", "hints"}``: ``{"colors": [...]}`` likeliest first.
- ``POST /api/hints?photo=ID&name=FILE`` (body: a hints file): ``{"hints": [...]}``.
- ``POST /api/films?name=FILE`` (body: a clip): ``{"id", "name", "width", "height", "seconds", "frames"}``.
- ``GET /api/films/ID/original``: the clip as browsers play it (MP4).
- ``POST /api/films/ID/colorize`` ``{"model", "deflicker"}``: starts colorizing it; ``{"job", ...}`` (`films.FilmJob`).
- ``GET /api/films/ID/jobs/JOB``: its progress ``{"frames", "total", "frames_per_s", "eta_s", "done", "error"}``.
- ``GET /api/films/ID/jobs/JOB/playable``: the colorized clip as the page plays it; ``.../film``: as
  ``colorize`` writes it (the download).
"""

from __future__ import annotations

import argparse
import io
import logging
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from colorization.color.hints import Hints, parse_hints
from colorization.colorize.photos import colorize_image
from colorization.demo import DEFAULT_MAX_FILM_SECONDS, DEFAULT_MAX_MEGAPIXELS
from colorization.demo.catalog import EXAMPLE_PHOTOS, Catalog, example_png
from colorization.demo.films import FilmJob, FilmStore
from colorization.demo.palette import hint_records, scale_hints, suggest_colours
from colorization.demo.uploads import (
    PREVIEW_SIDE,
    PhotoStore,
    max_upload_bytes,
    open_upload,
)
from colorization.errors import ColorizationError, ConfigError, DataError
from colorization.files.photos import IMAGE_SUFFIXES
from colorization.inference.runtime import resolve_device
from colorization.video import FILTERS, VIDEO_SUFFIXES

STATIC = Path(__file__).parent / "static"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_HINTS_BYTES = 1 << 20
PNG_COMPRESSION = 1
"""zlib level of result PNGs: fast to write for large photos (they stay lossless)."""

log = logging.getLogger(__name__)


class Demo:
    """The state behind the page: the catalog of colorizers, the uploaded photos, the limits.

    Model work is serialised by one lock: the models are shared, a temperature is set on the
    model for the length of one call, and the CPU is the bottleneck anyway.
    """

    def __init__(
        self,
        catalog: Catalog,
        max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
        preview_side: int = PREVIEW_SIDE,
        max_film_seconds: float = DEFAULT_MAX_FILM_SECONDS,
    ) -> None:
        self.catalog, self.max_megapixels = catalog, max_megapixels
        self.photos = PhotoStore(preview_side=preview_side)
        self.films = FilmStore(max_film_seconds)
        self.model_lock = threading.Lock()

    def upload(self, data: bytes, name: str) -> dict:
        image = open_upload(data, name, self.max_megapixels)
        key, stored = self.photos.add(image, name)
        width, height = stored.size
        preview_width, preview_height = stored.preview.size
        return {
            "id": key,
            "name": name,
            "width": width,
            "height": height,
            "preview_width": preview_width,
            "preview_height": preview_height,
        }

    def colorize(self, request: dict) -> tuple[bytes, float]:
        """The PNG of a colorize request and the seconds the colorization took.

        ``"full": true`` colorizes the photo itself; otherwise its preview (the same photo when
        it is no larger than the preview side), with the hints moved onto the preview.
        """
        stored = self.photos.get(_field(request, "photo", str))
        hints, temperature = _hint_records(request) or None, request.get("temperature")
        if temperature is not None and (not isinstance(temperature, (int, float)) or isinstance(temperature, bool)):
            raise ConfigError(f"temperature={temperature!r}: expected a number")
        image = stored.image
        if not request.get("full") and stored.preview.size != stored.size:
            image, hints = stored.preview, scale_hints(hints, stored.scale) if hints else None
        with self.model_lock:
            model = self.catalog.model(_field(request, "model", str))
            start = time.perf_counter()
            image = colorize_image(image, model, hints=hints, temperature=temperature, device=self.device)
            seconds = time.perf_counter() - start
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESSION)
        return buffer.getvalue(), seconds

    def palette(self, request: dict) -> dict:
        stored = self.photos.get(_field(request, "photo", str))
        x, y = _field(request, "x", (int, float)), _field(request, "y", (int, float))
        key = _field(request, "model", str)
        entry = self.catalog.entries.get(key)
        if entry is not None and not entry.palette:
            raise ConfigError(f"model {key!r} suggests no colours; only hint-taking models (SIGGRAPH17) do")
        width, height = stored.size
        if not (0 <= x < width and 0 <= y < height):
            raise DataError(f"point ({x}, {y}) lies outside the {width}x{height} photo")
        (scale_x, scale_y), hints = stored.scale, scale_hints(_hint_records(request), stored.scale)
        with self.model_lock:
            model = self.catalog.model(key)
            colours = suggest_colours(model, stored.preview_photo, x * scale_x, y * scale_y, hints, self.device)
        return {"colors": colours}

    def read_hints(self, text: str, name: str, photo_key: str) -> dict:
        """The hints of an uploaded hints file, checked against the photo they are for."""
        stored = self.photos.get(photo_key)
        points = parse_hints(text, name)
        width, height = stored.size
        Hints.from_points([points], size=(height, width), source=name)  # refuses points outside the photo
        return {"hints": hint_records(points, stored.preview_photo, stored.scale)}

    def upload_film(self, data: bytes, name: str) -> dict:
        return self.films.add(data, name, self.max_megapixels).describe()

    def colorize_film(self, film_key: str, request: dict) -> dict:
        """Start colorizing an uploaded clip with the request's model and filter; the job's first state."""
        stored = self.films.get(film_key)
        key = _field(request, "model", str)
        self.catalog.model(key)  # an unknown model is refused now, not later in the job
        deflicker = request.get("deflicker", FILTERS[0])
        job = self.films.colorize(stored, lambda: self.catalog.model(key), deflicker, self.device, self.model_lock)
        return job.describe()

    def film_job(self, film_key: str, job_key: str) -> FilmJob:
        job = self.films.get(film_key).jobs.get(job_key)
        if job is None:
            raise DataError(f"colorization {job_key!r} of film {film_key!r} is not on the server")
        return job

    @property
    def device(self) -> torch.device:
        return self.catalog.device


def _field(request: dict, key: str, kind: type | tuple[type, ...]) -> Any:
    value = request.get(key) if isinstance(request, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"request field {key!r}={value!r} is missing or of the wrong type")
    return value


def _hint_records(request: dict) -> list:
    """The request's hint records: a list (a string would name a file on the server, which a page may not)."""
    hints = request.get("hints") or []
    if not isinstance(hints, list):
        raise ConfigError(f"request field 'hints'={hints!r}: expected a list of hint records")
    return hints


async def _read_body(request: Request, limit: int, name: str) -> bytes:
    """The request body, refused (before reading it all) beyond `limit` bytes."""
    declared = request.headers.get("content-length")
    too_big = DataError(f"{name}: the file is larger than the {limit / 1e6:.0f} MB this server takes")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def _json(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise ConfigError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise ConfigError("the request body must be a JSON object")
    return body


def create_app(demo: Demo) -> Starlette:
    """The ASGI app serving the page and its API for `demo`."""

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def models(request: Request) -> Response:
        return JSONResponse(
            {
                "models": demo.catalog.describe(),
                "examples": list(EXAMPLE_PHOTOS),
                "max_megapixels": demo.max_megapixels,
                "photo_suffixes": list(IMAGE_SUFFIXES),  # the file picker offers what the decoder takes
                "film_suffixes": list(VIDEO_SUFFIXES),
                "max_film_seconds": demo.films.max_seconds,
            }
        )

    async def example(request: Request) -> Response:
        data = await run_in_threadpool(example_png, request.path_params["name"])
        return Response(data, media_type="image/png")

    async def upload(request: Request) -> Response:
        name = Path(request.query_params.get("name") or "upload").name
        data = await _read_body(request, max_upload_bytes(demo.max_megapixels), name)
        return JSONResponse(await run_in_threadpool(demo.upload, data, name))

    async def original(request: Request) -> Response:
        stored = demo.photos.get(request.path_params["key"])
        return Response(await run_in_threadpool(stored.preview_png), media_type="image/png")

    async def colorize(request: Request) -> Response:
        data, seconds = await run_in_threadpool(demo.colorize, await _json(request))
        return Response(data, media_type="image/png", headers={"X-Colorize-Seconds": f"{seconds:.3f}"})

    async def palette(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(demo.palette, await _json(request)))

    async def hints(request: Request) -> Response:
        name = Path(request.query_params.get("name") or "hints.json").name
        data = await _read_body(request, MAX_HINTS_BYTES, name)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{name}: not a text file; expected a .json or .csv hints file") from None
        return JSONResponse(await run_in_threadpool(demo.read_hints, text, name, request.query_params.get("photo", "")))

    async def upload_film(request: Request) -> Response:
        name = Path(request.query_params.get("name") or "upload.mp4").name
        data = await _read_body(request, max_upload_bytes(demo.max_megapixels), name)
        return JSONResponse(await run_in_threadpool(demo.upload_film, data, name))

    async def film_original(request: Request) -> Response:
        return FileResponse(demo.films.get(request.path_params["film"]).original, media_type="video/mp4")

    async def colorize_film(request: Request) -> Response:
        body = await _json(request)
        return JSONResponse(await run_in_threadpool(demo.colorize_film, request.path_params["film"], body))

    async def film_job(request: Request) -> Response:
        return JSONResponse(demo.film_job(request.path_params["film"], request.path_params["job"]).describe())

    async def film_result(request: Request) -> Response:
        stored = demo.films.get(request.path_params["film"])
        job = demo.film_job(stored.key, request.path_params["job"])
        if not job.done or job.error is not None:
            raise DataError(f"colorization {job.key!r} has no film: {job.error or 'it is still running'}")
        what = request.path_params["what"]
        if what == "playable":
            return FileResponse(job.playable, media_type="video/mp4")
        if what != "film":
            raise DataError(f"{request.url.path}: expected .../playable or .../film")
        return FileResponse(job.output, media_type="video/mp4", filename=f"{Path(stored.name).stem}-colorized.mp4")

    async def user_error(request: Request, error: Exception) -> Response:
        return JSONResponse({"error": str(error)}, status_code=400)

    async def bug(request: Request, error: Exception) -> Response:
        log.exception("request %s %s failed", request.method, request.url.path, exc_info=error)
        return JSONResponse({"error": f"internal error ({type(error).__name__}: {error})"}, status_code=500)

    routes = [
        Route("/", index),
        Route("/api/models", models),
        Route("/api/examples/{name}", example),
        Route("/api/photos", upload, methods=["POST"]),
        Route("/api/photos/{key}", original),
        Route("/api/colorize", colorize, methods=["POST"]),
        Route("/api/palette", palette, methods=["POST"]),
        Route("/api/hints", hints, methods=["POST"]),
        Route("/api/films", upload_film, methods=["POST"]),
        Route("/api/films/{film}/original", film_original),
        Route("/api/films/{film}/colorize", colorize_film, methods=["POST"]),
        Route("/api/films/{film}/jobs/{job}", film_job),
        Route("/api/films/{film}/jobs/{job}/{what:str}", film_result),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={ColorizationError: user_error, Exception: bug})


# ---- command line ---------------------------------------------------------------------------------


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port); `ConfigError` naming them if that is impossible."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port={port}: expected 0..65535")
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
    except OSError as error:
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({error.strerror or error})") from None
    return sock


def host_warning(host: str) -> str | None:
    """The warning printed when the page is served beyond this machine (None for a local address)."""
    if host in LOCAL_HOSTS:
        return None
    return (
        f"warning: --host {host} shares the page with every machine that can reach this one: anyone there can "
        "upload photos and use this computer's processor"
    )


def build_demo(
    models: str | Path, max_megapixels: float, device: str, max_film_seconds: float = DEFAULT_MAX_FILM_SECONDS
) -> Demo:
    """Everything the server needs, checked before it starts listening."""
    if not max_megapixels > 0:
        raise ConfigError(f"--max-megapixels={max_megapixels}: expected a number > 0")
    if not max_film_seconds > 0:
        raise ConfigError(f"--max-film-seconds={max_film_seconds}: expected a number > 0")
    catalog = Catalog.scan(models, resolve_device(device), warn=lambda line: print(line, file=sys.stderr))
    return Demo(catalog, max_megapixels, max_film_seconds=max_film_seconds)


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    demo = build_demo(args.models, args.max_megapixels, args.device, args.max_film_seconds)
    sock = listen(args.host, args.port)
    warning = host_warning(args.host)
    if warning:
        print(warning, file=sys.stderr)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    names = ", ".join(entry.name for entry in demo.catalog.entries.values())
    print(f"serving http://{shown}:{port} ({len(demo.catalog.entries)} colorizers: {names}); Ctrl+C stops")
    server = uvicorn.Server(uvicorn.Config(create_app(demo), log_level="warning"))
    try:
        server.run(sockets=[sock])
    finally:
        demo.films.close()  # the uploaded clips and their colorizations
