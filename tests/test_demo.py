"""`colorize-demo`'s server without a browser: the catalog, uploads, colorize/palette/hints requests, the CLI.

The page's results must be exactly what `colorize_image` makes (one colorization path), so
several tests compare the server's PNG with the Python API's output pixel for pixel.
"""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata
from starlette.testclient import TestClient

from colorization.color.hints import hint_points
from colorization.colorize import colorize_image
from colorization.colorize.model import Plan
from colorization.demo.catalog import EXAMPLE_PHOTOS, Catalog
from colorization.demo.cli import main
from colorization.demo.palette import hex_colour, likely_bins
from colorization.demo.server import STATIC, Demo, create_app, host_warning, listen
from colorization.errors import ConfigError
from colorization.files.photos import IMAGE_SUFFIXES, photo_from_image
from tests.helpers.configs import REPO
from tests.helpers.demo_models import NOT_A_MODEL, ab_of, make_models_dir

ORIENTATION = 0x0112
ROTATE_90_CW = 6


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("models")
    return root, make_models_dir(root)


@pytest.fixture(scope="module")
def catalog(models) -> Catalog:
    return Catalog.scan(models[0], torch.device("cpu"), warn=lambda line: None)


@pytest.fixture
def client(catalog) -> TestClient:
    return TestClient(create_app(Demo(catalog, max_megapixels=1.0)))


def png_bytes(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def chelsea() -> Image.Image:
    return Image.fromarray(skdata.chelsea())


def upload(client: TestClient, data: bytes, name: str) -> dict:
    response = client.post("/api/photos", params={"name": name}, content=data)
    assert response.status_code == 200, response.text
    return response.json()


def colorize(client: TestClient, **request) -> Image.Image:
    response = client.post("/api/colorize", json=request)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


# ---- the catalog ----------------------------------------------------------------------------------


def test_the_catalog_lists_what_loads_and_skips_the_rest_with_one_line_each(models):
    root, keys = models
    skipped = []
    catalog = Catalog.scan(root, torch.device("cpu"), warn=skipped.append)
    entries = catalog.entries
    assert sorted(entries) == sorted(keys.values())
    assert len(skipped) == 1 and NOT_A_MODEL in skipped[0] and skipped[0].startswith("skipped: ")
    siggraph, eccv, cnn = (entries[keys[kind]] for kind in ("siggraph17", "eccv16", "cnn"))
    assert (siggraph.hints, siggraph.palette, eccv.hints, cnn.hints) == (True, True, False, False)
    assert eccv.temperature == 1.0, "ECCV16's release decodes with T = 1"
    assert siggraph.temperature is None and cnn.temperature is None, "no slider for models that regress colours"
    assert siggraph.name.lower().startswith("siggraph17") and eccv.name.lower().startswith("eccv16")
    assert len({entry.name for entry in entries.values()}) == 3, "display names are unique"
    assert len(catalog._loaded) <= catalog.kept
    # a model that left the cache comes back loaded from its file, the same model
    first = catalog.model(keys["cnn"])
    for kind in ("siggraph17", "eccv16"):
        catalog.model(keys[kind])
    assert keys["cnn"] not in catalog._loaded
    again = catalog.model(keys["cnn"])
    assert again is not first
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), again.parameters(), strict=True))
    with pytest.raises(ConfigError, match="'nope.pth' is not offered"):
        catalog.model("nope.pth")


def test_a_missing_or_empty_models_folder_stops_before_serving(tmp_path, capsys):
    for folder, message in ((tmp_path / "missing", "no such folder"), (tmp_path, "no colorizer found")):
        (tmp_path / "junk.ckpt").write_bytes(b"\x00")
        with pytest.raises(SystemExit) as stop:
            main(["--models", str(folder), "--port", "0"])
        assert stop.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines[-1].startswith("error: --models ") and message in lines[-1]
    with pytest.raises(SystemExit):
        main(["--models", str(tmp_path), "--max-megapixels", "0"])
    assert "--max-megapixels=0.0: expected a number > 0" in capsys.readouterr().err


def test_ctrl_c_stops_the_server_with_exit_code_0(tmp_path, monkeypatch, capsys):
    def interrupted(args) -> None:  # what uvicorn does after its graceful shutdown on Ctrl+C
        raise KeyboardInterrupt

    monkeypatch.setattr("colorization.demo.server.serve", interrupted)
    assert main(["--models", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "stopped\n"


def test_only_a_local_address_is_served_without_a_warning_and_a_taken_port_is_one_line():
    assert host_warning("127.0.0.1") is None and host_warning("localhost") is None
    assert "shares the page with every machine" in host_warning("0.0.0.0")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"--host 127.0.0.1 --port {port}: cannot listen there"):
            listen("127.0.0.1", port)
    with pytest.raises(ConfigError, match="--port=70000: expected 0..65535"):
        listen("127.0.0.1", 70000)


# ---- uploads ----------------------------------------------------------------------------------------


def test_every_accepted_format_comes_back_upright_and_colorized_at_full_size(client, models):
    photo = chelsea().resize((150, 100))
    gray16 = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    rotated = photo.copy()
    exif = rotated.getexif()
    exif[ORIENTATION] = ROTATE_90_CW
    files = {
        "a.jpg": (png_bytes(photo, "JPEG", quality=90), (150, 100)),
        "b.png": (png_bytes(photo.convert("LA")), (150, 100)),
        "c.tif": (png_bytes(gray16, "TIFF"), (150, 100)),
        "d.webp": (png_bytes(photo, "WEBP", quality=90), (150, 100)),
        "turned.jpg": (png_bytes(rotated, "JPEG", exif=exif), (100, 150)),
    }
    for name, (data, size) in files.items():
        info = upload(client, data, name)
        assert (info["width"], info["height"]) == size, name
        original = client.get(f"/api/photos/{info['id']}")
        assert original.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(original.content)).size == size, name
        result = colorize(client, photo=info["id"], model=models[1]["cnn"])
        assert result.size == size, name


def test_bad_uploads_get_one_message_each_and_the_server_goes_on(client, models):
    good = png_bytes(chelsea().resize((60, 40)))
    large = png_bytes(Image.new("L", (1200, 1000)))  # 1.2 megapixels, over this server's 1.0
    bad = {
        "notes.txt": (b"just text\n", r"notes.txt: not an image; expected BMP, GIF, JPEG, PNG, TIFF, WebP"),
        "empty.png": (b"", r"empty.png: the file is empty"),
        "cut.png": (good[: len(good) // 2], r"cut.png: the PNG file is corrupt or truncated"),
        "big.png": (large, r"big.png: 1200x1000 is 1.2 megapixels, more than the 1 this server takes"),
        "photo.ico": (png_bytes(Image.new("RGB", (16, 16)), "ICO"), r"photo.ico: ICO images are not taken"),
    }
    for name, (data, message) in bad.items():
        response = client.post("/api/photos", params={"name": name}, content=data)
        assert response.status_code == 400, name
        assert re.match(message, response.json()["error"]), response.json()
    response = client.post("/api/colorize", json={"photo": "0" * 32, "model": models[1]["cnn"]})
    assert response.status_code == 400 and "is no longer on the server" in response.json()["error"]
    response = client.post("/api/colorize", content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"] == "the request body is not JSON"
    info = upload(client, good, "good.png")
    assert colorize(client, photo=info["id"], model=models[1]["cnn"]).size == (60, 40)


def test_an_upload_too_large_to_be_a_photo_is_refused_before_it_is_read(catalog):
    client = TestClient(create_app(Demo(catalog, max_megapixels=0.01)))
    response = client.post("/api/photos", params={"name": "huge.tif"}, content=b"\x00" * 2_000_000)
    assert response.status_code == 400
    assert response.json()["error"].startswith("huge.tif: the file is larger than the")


# ---- one colorization path ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_page_shows_exactly_what_colorize_image_makes(client, catalog, models, tmp_path):
    keys = models[1]
    photo = chelsea()
    info = upload(client, png_bytes(photo), "chelsea.png")
    hints = [{"x": 300, "y": 120, "color": "#00ff00"}, {"x": 40, "y": 250, "ab": [60.0, -20.0]}]
    cases = [
        ({"model": keys["siggraph17"], "hints": hints}, {"hints": hints}),
        ({"model": keys["eccv16"], "temperature": 0.2}, {"temperature": 0.2}),
        ({"model": keys["eccv16"]}, {}),
    ]
    for request, options in cases:
        shown = np.asarray(colorize(client, photo=info["id"], **request))
        expected = np.asarray(colorize_image(photo, catalog.model(request["model"]), **options))
        np.testing.assert_array_equal(shown, expected, err_msg=str(request))
    assert catalog.model(keys["eccv16"]).temperature == 1.0, "the model's own temperature is back"
    saved = tmp_path / "hints.json"
    saved.write_text(json.dumps(hints))
    from_file = colorize_image(photo, catalog.model(keys["siggraph17"]), hints=saved)
    shown = colorize(client, photo=info["id"], model=keys["siggraph17"], hints=hints)
    np.testing.assert_array_equal(np.asarray(shown), np.asarray(from_file))
    response = client.post("/api/colorize", json={"photo": info["id"], "model": keys["cnn"], "hints": hints})
    assert response.status_code == 400 and "takes no hints" in response.json()["error"]
    # a string is a file path to `colorize_image`: the page may not name files on the server
    request = {"photo": info["id"], "model": keys["siggraph17"], "hints": str(saved)}
    response = client.post("/api/colorize", json=request)
    assert response.status_code == 400 and "expected a list of hint records" in response.json()["error"]


def test_a_hint_changes_the_colour_near_its_point(client, models):
    info = upload(client, png_bytes(chelsea()), "chelsea.png")
    model = models[1]["siggraph17"]
    plain = ab_of(colorize(client, photo=info["id"], model=model))
    hinted = ab_of(colorize(client, photo=info["id"], model=model, hints=[{"x": 300, "y": 120, "color": "#00ff00"}]))
    change = np.linalg.norm(hinted - plain, axis=2)
    rows, cols = np.mgrid[: change.shape[0], : change.shape[1]]
    distance = np.hypot(rows - 120, cols - 300)
    near, far = change[distance < 8].mean(), change[distance > 80].mean()
    assert near > 5.0 and near > 3 * far, (near, far)


# ---- hints files and the palette ----------------------------------------------------------------------


def test_hints_files_of_both_formats_load_for_the_photo_and_bad_ones_are_named(client):
    info = upload(client, png_bytes(chelsea()), "chelsea.png")
    files = {
        "h.json": json.dumps([{"x": 10, "y": 20, "color": "#00ff00"}, {"x": 30, "y": 40, "ab": [50, -10]}]),
        "h.csv": "x,y,color\n10,20,#00ff00\n",
    }
    for name, text in files.items():
        response = client.post("/api/hints", params={"photo": info["id"], "name": name}, content=text.encode())
        assert response.status_code == 200, response.text
        loaded = response.json()["hints"]
        assert [(h["x"], h["y"]) for h in loaded][:1] == [(10, 20)]
        green = hint_points([{"x": 0, "y": 0, "color": "#00ff00"}])[0][2:]
        np.testing.assert_allclose(loaded[0]["ab"], green, atol=1e-4)
        assert re.fullmatch(r"#[0-9a-f]{6}", loaded[0]["swatch"])
        # what the page sends back is the same point
        np.testing.assert_allclose(hint_points(loaded)[0], hint_points([{"x": 10, "y": 20, "color": "#00ff00"}])[0])
    bad = {
        "far.csv": ("x,y,color\n1000,20,#00ff00\n", r"outside the 451x300 image"),
        "h.txt": ("x,y,color\n", r"h.txt: expected a .json or .csv hints file"),
        "h.json": ("{", r"h.json: not valid JSON"),
    }
    for name, (text, message) in bad.items():
        response = client.post("/api/hints", params={"photo": info["id"], "name": name}, content=text.encode())
        assert response.status_code == 400 and re.search(message, response.json()["error"]), response.json()


def test_non_finite_hints_get_400_on_every_route_and_the_server_goes_on(client, models):
    info = upload(client, png_bytes(chelsea()), "chelsea.png")
    model = models[1]["siggraph17"]
    for bad in ('{"x": 1, "y": 1, "ab": [NaN, 0]}', '{"x": 1, "y": 1, "ab": ["NaN", 0]}', '{"x": Infinity, "y": 1}'):
        hints = f"[{bad}]"
        requests = {
            "/api/colorize": f'{{"photo": "{info["id"]}", "model": "{model}", "hints": {hints}}}',
            "/api/palette": f'{{"photo": "{info["id"]}", "model": "{model}", "x": 5, "y": 5, "hints": {hints}}}',
        }
        for route, body in requests.items():
            response = client.post(route, content=body, headers={"content-type": "application/json"})
            assert response.status_code == 400, (route, bad, response.text)
            assert re.search(r"^hints: hint 1 .* must be finite numbers", response.json()["error"]), response.text
        response = client.post("/api/hints", params={"photo": info["id"], "name": "h.json"}, content=hints.encode())
        assert response.status_code == 400, (bad, response.text)
        assert re.search(r"^h\.json: hint 1 .* must be finite numbers", response.json()["error"]), response.text
    assert colorize(client, photo=info["id"], model=model).size == (451, 300), "the server goes on"


def test_likely_bins_take_the_peaks_in_order_and_skip_their_neighbours():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [50.0, 50.0], [-60.0, 20.0], [0.0, 10.0]])
    probabilities = torch.tensor([0.40, 0.30, 0.05, 0.20, 0.05])
    picked = likely_bins(probabilities, centres, count=3, separation=15.0)
    assert [(a, b) for a, b, _ in picked] == [(0.0, 0.0), (-60.0, 20.0), (50.0, 50.0)]
    assert [round(p, 2) for *_, p in picked] == [0.40, 0.20, 0.05]
    assert hex_colour(50.0, 0.0, 0.0) == "#777777"  # L* 50 gray is sRGB 119


@pytest.mark.slow
def test_the_palette_offers_the_class_heads_likeliest_colours_at_the_point(client, catalog, models):
    keys = models[1]
    photo = chelsea()
    info = upload(client, png_bytes(photo), "chelsea.png")
    response = client.post("/api/palette", json={"photo": info["id"], "model": keys["siggraph17"], "x": 300, "y": 120})
    assert response.status_code == 200, response.text
    colours = response.json()["colors"]
    assert 1 <= len(colours) <= 8 and all(re.fullmatch(r"#[0-9a-f]{6}", c["color"]) for c in colours)
    probabilities = [c["probability"] for c in colours]
    assert probabilities == sorted(probabilities, reverse=True)
    # the first is the most probable bin of the class head in the cell of the point
    model = catalog.model(keys["siggraph17"])
    small = Plan.of(model).shrink(photo_from_image(photo).l)[None]
    with torch.inference_mode():
        probabilities = model.colour_probabilities(small)[0]  # (529, 64, 64) for 256 px
    cell = probabilities[:, 120 * 64 // 300, 300 * 64 // 451]
    assert colours[0]["ab"] == model.quantizer.centres[cell.argmax()].tolist()
    assert colours[0]["probability"] == pytest.approx(float(cell.max()), abs=1e-4)
    hinted = client.post(
        "/api/palette",
        json={
            "photo": info["id"],
            "model": keys["siggraph17"],
            "x": 300,
            "y": 120,
            "hints": [{"x": 302, "y": 121, "color": "#0000ff"}],
        },
    ).json()["colors"]
    assert hinted != colours, "the hints already placed steer the suggestions"
    for request, message in (
        ({"model": keys["cnn"], "x": 1, "y": 1}, "suggests no colours"),
        ({"model": keys["siggraph17"], "x": 451, "y": 1}, r"point \(451, 1\) lies outside the 451x300 photo"),
        ({"model": keys["siggraph17"], "x": "a", "y": 1}, "request field 'x'='a'"),
    ):
        response = client.post("/api/palette", json={"photo": info["id"], **request})
        assert response.status_code == 400 and re.search(message, response.json()["error"]), response.json()


# ---- the page -----------------------------------------------------------------------------------------


def test_the_page_and_its_assets_come_from_this_server_only(client):
    page = client.get("/").text
    assert 'src="/static/demo.js"' in page and 'href="/static/demo.css"' in page
    for name in ("index.html", "demo.js", "demo.css"):
        text = (STATIC / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.IGNORECASE), name
        assert client.get(f"/static/{name}").status_code == 200
    catalog = client.get("/api/models").json()
    assert catalog["examples"] == list(EXAMPLE_PHOTOS) and catalog["max_megapixels"] == 1.0
    # the file picker offers the decoder's suffixes, from the one list (the page holds none of its own)
    assert catalog["photo_suffixes"] == list(IMAGE_SUFFIXES) and ".gif" in catalog["photo_suffixes"]
    assert not re.search(r"\.jpe?g\b", (STATIC / "index.html").read_text())
    for name in EXAMPLE_PHOTOS:
        example = client.get(f"/api/examples/{name}")
        assert Image.open(io.BytesIO(example.content)).format == "PNG"
    assert client.get("/api/examples/lena").status_code == 400


@pytest.mark.slow
def test_a_large_photo_is_edited_on_a_preview_and_downloaded_whole(catalog, models):
    keys = models[1]
    client = TestClient(create_app(Demo(catalog, preview_side=200)))
    photo = chelsea()
    info = upload(client, png_bytes(photo), "chelsea.png")
    assert (info["width"], info["height"], info["preview_width"], info["preview_height"]) == (451, 300, 200, 133)
    assert Image.open(io.BytesIO(client.get(f"/api/photos/{info['id']}").content)).size == (200, 133)
    hints = [{"x": 400, "y": 250, "color": "#00ff00"}]  # photo pixels, outside the preview's 200x133
    request = {"photo": info["id"], "model": keys["siggraph17"], "hints": hints}
    model = catalog.model(keys["siggraph17"])
    preview = Image.open(io.BytesIO(client.get(f"/api/photos/{info['id']}").content))
    shown = colorize(client, **request)
    moved = [{"x": 400 * 200 / 451, "y": 250 * 133 / 300, "color": "#00ff00"}]
    np.testing.assert_array_equal(np.asarray(shown), np.asarray(colorize_image(preview, model, hints=moved)))
    whole = colorize(client, **request, full=True)
    np.testing.assert_array_equal(np.asarray(whole), np.asarray(colorize_image(photo, model, hints=hints)))
    # the hint lands on the same place of both: compare the colour change it makes there
    plain = ab_of(colorize(client, photo=info["id"], model=keys["siggraph17"], full=True))
    change = np.linalg.norm(ab_of(whole) - plain, axis=2)
    assert np.hypot(*np.subtract(np.unravel_index(change.argmax(), change.shape), (250, 400))) < 12
    palette = client.post("/api/palette", json={"photo": info["id"], "model": keys["siggraph17"], "x": 400, "y": 250})
    assert palette.status_code == 200 and palette.json()["colors"]
    loaded = client.post("/api/hints", params={"photo": info["id"], "name": "h.json"}, content=json.dumps(hints))
    assert loaded.status_code == 200 and (loaded.json()["hints"][0]["x"], loaded.json()["hints"][0]["y"]) == (400, 250)


@pytest.mark.slow
def test_without_the_demo_extra_colorize_demo_names_what_to_install(tmp_path):
    # starlette and uvicorn made unimportable, as in an install without the extra
    blocked = "import sys; sys.modules['starlette'] = sys.modules['uvicorn'] = None; "
    start = "from colorization.demo.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", blocked + start, "--models", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.splitlines() == [
        "error: colorize-demo needs starlette, uvicorn: pip install 'bw-colorization[demo]' (make install installs "
        "every extra)"
    ]
