"""Web page latency: how long the demo page takes to recolour a photo after a hint, against the network alone.

SIGGRAPH17 (random weights in the release layout; speed does not depend on the values) at its
256-px working size, through the app (`colorization.demo.server.create_app`) with Starlette's test
client, so HTTP parsing and JSON count but no socket does. Interleaved in each round: the network's
forward pass on a 256x256 L with one hint; ``POST /api/colorize`` with one hint for a 451x300 photo
and for a 3000x2000 (6 MP) one (decode, shrink, network, Lab -> sRGB of the page's preview, whose
longer side is at most 1280 px, PNG); the same for the 6 MP photo at full resolution (``"full": true``,
the download); and ``POST /api/palette`` (the colours suggested at a point).
"""

from __future__ import annotations

import io
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from skimage import data as skdata

from benchmarks.sections import Section, Summary
from benchmarks.timing import interleave, rate, table

HINT = {"x": 300, "y": 120, "color": "#00ff00"}
NETWORK = "network forward, 256x256 + 1 hint"
RECOLOUR = "POST /api/colorize, 451x300 photo, 1 hint"
PREVIEW_6MP = "POST /api/colorize, 3000x2000 photo, 1 hint (preview)"
FULL_6MP = "POST /api/colorize, 3000x2000 photo, 1 hint, full resolution"


def run() -> Section:
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
    colorizer = catalog.model(key)
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
            colorizer.colorize(l, hints=hints)

    def post(path: str, **body) -> Callable[[], None]:
        def request() -> None:
            response = client.post(path, json={"model": key, **body})
            assert response.status_code == 200, response.text

        return request

    calls = {
        NETWORK: network,
        RECOLOUR: post("/api/colorize", photo=photos["451x300"]["id"], hints=[HINT]),
        PREVIEW_6MP: post("/api/colorize", photo=photos["3000x2000"]["id"], hints=[HINT]),
        FULL_6MP: post("/api/colorize", photo=photos["3000x2000"]["id"], hints=[HINT], full=True),
        "POST /api/palette, 451x300 photo": post("/api/palette", photo=photos["451x300"]["id"], x=300, y=120),
    }
    # timed as calls per second, so that `interleave` pairs them per round; the table shows the inverse, seconds
    measured = interleave(
        {name: rate(call, 1) for name, call in calls.items()}, "demo", budget_s=30, max_rounds=6, unit="calls/s"
    )
    rows = [
        [name, measured.rates[name].reciprocal().cell("{:.2f}"), measured.ratios[name].reciprocal().cell(suffix="x")]
        for name in measured.names
    ]

    def seconds_at(name: str) -> float:
        return measured.rates[name].reciprocal().median

    recolour_s = seconds_at(RECOLOUR)
    recolour_ratio = measured.ratios[RECOLOUR].reciprocal().median
    return Section(
        title="Web page: recolour latency of the demo",
        body=(
            f"SIGGRAPH17 at 256 px, CPU, {torch.get_num_threads()} thread(s). Seconds per call, median (min-max) "
            "over interleaved rounds; `vs network` paired per round.\n\n"
            + table(["step", "seconds", "vs network"], rows)
        ),
        conclusion=(
            f"A recolour after a hint takes {recolour_s:.2f} s for a small photo, {recolour_ratio:.2f}x the network's "
            f"own time, {seconds_at(PREVIEW_6MP):.2f} s for a 6 MP photo's preview, and its full-resolution download "
            f"{seconds_at(FULL_6MP):.2f} s."
        ),
        summary=Summary(
            "Web page: recolour after a hint (SIGGRAPH17, CPU)",
            f"{recolour_s:.2f} s, {recolour_ratio:.2f}x the network alone",
        ),
    )
