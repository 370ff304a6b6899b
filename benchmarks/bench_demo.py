"""How fast the demo page recolours a photo after a hint: one request through the app vs the network alone.

SIGGRAPH17 (random weights in the release layout; speed does not depend on the values) at its
256-px working size. Variants, interleaved in each round: the network's forward pass on a
256x256 L with one hint; a ``POST /api/colorize`` with one hint (decode, shrink, network,
full-resolution Lab -> sRGB, PNG) for a 451x300 photo and for a 3000x2000 (6 MP) one; and a
``POST /api/palette`` (suggested colours at a point).
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
from PIL import Image
from skimage import data as skdata

from benchmarks.timing import SMOKE

ROUNDS = 1 if SMOKE else 3
HINT = {"x": 300, "y": 120, "color": "#00ff00"}


def run() -> str:
    with warnings.catch_warnings():  # starlette's notice that its test client will move to httpx2
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient

    from colorization.color.hints import Hints, hint_points
    from colorization.demo.catalog import Catalog
    from colorization.demo.server import Demo, create_app
    from colorization.networks.zhang import SIGGRAPH17Net

    with tempfile.TemporaryDirectory() as folder:
        torch.save(SIGGRAPH17Net().state_dict(), Path(folder) / "siggraph17.pth")
        catalog = Catalog.scan(folder, torch.device("cpu"), warn=print)
    key = next(iter(catalog.entries))
    model = catalog.model(key)
    client = TestClient(create_app(Demo(catalog)))
    photos = {}
    for label, size in (("451x300", (451, 300)), ("3000x2000", (3000, 2000))):
        buffer = io.BytesIO()
        Image.fromarray(skdata.chelsea()).resize(size).save(buffer, format="PNG")
        photos[label] = client.post("/api/photos", params={"name": f"{label}.png"}, content=buffer.getvalue()).json()
    l = torch.rand(1, 1, 256, 256) * 100
    hints = Hints.from_points([hint_points([HINT])], size=(300, 451))

    def network() -> None:
        with torch.inference_mode():
            model.colorize(l, hints=hints)

    def recolour(label: str):
        def request() -> None:
            body = {"photo": photos[label]["id"], "model": key, "hints": [HINT]}
            assert client.post("/api/colorize", json=body).status_code == 200

        return request

    def palette() -> None:
        body = {"photo": photos["451x300"]["id"], "model": key, "x": 300, "y": 120}
        assert client.post("/api/palette", json=body).status_code == 200

    variants = {
        "network forward, 256x256 + 1 hint": network,
        "POST /api/colorize, 451x300 photo, 1 hint": recolour("451x300"),
        "POST /api/colorize, 3000x2000 photo, 1 hint": recolour("3000x2000"),
        "POST /api/palette, 451x300 photo": palette,
    }
    for step in variants.values():  # warm-up: first-call allocations, oneDNN kernels
        step()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, step in variants.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["network forward, 256x256 + 1 hint"])
    lines = [
        f"## Demo recolour latency (SIGGRAPH17 at 256 px, {torch.get_num_threads()} threads, median of {ROUNDS})",
        "",
        "| step | seconds | vs network |",
        "|---|---|---|",
    ]
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median:.2f} | {median / base:.2f}x |")
    return "\n".join(lines)
