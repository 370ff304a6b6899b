"""`colorize-demo`'s page in a real browser: headless Debian Chromium driven by Selenium.

The server runs in this process (uvicorn in a thread, on a free local port) with the test
models of `tests.helpers.demo_models`. `.ci/run` installs ``chromium`` and ``chromium-driver`` with apt;
without them these tests are skipped with one line saying so. Set ``DEMO_SCREENSHOT=PATH`` to
save a screenshot of the page with a hinted result (README's picture).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from colorization.colorize import colorize_image
from colorization.demo.catalog import Catalog
from colorization.demo.server import Demo, create_app, listen
from colorization.demo.uploads import PREVIEW_SIDE
from tests.helpers.demo_models import ab_of, make_models_dir

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
WAIT_S = 120
"""Longest wait for one page step: SIGGRAPH17 at 256 px on a loaded 2-core CPU takes several seconds."""

pytestmark = pytest.mark.browser

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        f"browser tests need {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver; .ci/run does)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402  (after the skip: only needed with a browser)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Catalog, dict[str, str]]:
    root = tmp_path_factory.mktemp("models")
    keys = make_models_dir(root)
    return Catalog.scan(root, torch.device("cpu"), warn=lambda line: None), keys


@pytest.fixture(scope="module")
def server(models) -> Iterator[str]:
    """The page's URL, served from this process until the module's tests are done."""
    import uvicorn

    sock = listen("127.0.0.1", 0)
    app = create_app(Demo(models[0], max_megapixels=2.0))
    uvicorn_server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uvicorn_server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    uvicorn_server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, downloads: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    # the driver is the Debian package's: Selenium must not look for (or fetch) one of its own
    os.environ.setdefault("SE_OFFLINE", "true")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, server):
    browser.get(server)
    wait_for(browser, lambda d: d.execute_script("return document.body.dataset.state") == "idle")
    return browser


def wait_for(driver, condition, timeout: float = WAIT_S):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def state(driver) -> str:
    return driver.execute_script("return document.body.dataset.state")


def result_request(driver) -> int:
    return int(driver.execute_script("return Number(document.getElementById('result').dataset.request || 0)"))


def wait_for_result(driver, after: int) -> int:
    """Wait until a result newer than request `after` is shown and nothing is pending; its request number."""
    wait_for(driver, lambda d: result_request(d) > after and state(d) == "ready")
    return result_request(driver)


def choose_model(driver, key: str) -> None:
    Select(driver.find_element(By.ID, "model")).select_by_value(key)


def upload(driver, path: Path) -> None:
    driver.find_element(By.ID, "file").send_keys(str(path))


def download(driver, button_id: str, folder: Path, suffix: str) -> Path:
    """Click `button_id`, wait for the browser to finish writing the file, return it (the folder is emptied)."""
    for old in folder.iterdir():
        old.unlink()
    driver.find_element(By.ID, button_id).click()

    def finished(_) -> Path | bool:
        files = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        return files[0] if files and not any(p.suffix == ".crdownload" for p in folder.iterdir()) else False

    return wait_for(driver, finished)


def set_colour(driver, colour: str) -> None:
    """Choose `colour` in the page's colour picker, as a person would (the picker's own dialog is not scriptable)."""
    driver.execute_script(
        "const c = document.getElementById('colour'); c.value = arguments[0]; c.dispatchEvent(new Event('input'));",
        colour,
    )


def click_at(driver, element, dx: float, dy: float) -> None:
    """Click `element` at (dx, dy) times its size away from its centre."""
    width, height = element.size["width"], element.size["height"]
    ActionChains(driver).move_to_element_with_offset(element, int(width * dx), int(height * dy)).click().perform()


def chelsea_png(folder: Path) -> Path:
    path = folder / "chelsea.png"
    Image.fromarray(skdata.chelsea()).save(path)
    return path


def test_an_uploaded_photo_comes_back_colorized_at_its_own_size(page, models, tmp_path, downloads):
    photo = chelsea_png(tmp_path)
    choose_model(page, models[1]["cnn"])
    upload(page, photo)
    wait_for_result(page, 0)
    natural = page.execute_script(
        "const r = document.getElementById('result'); const o = document.getElementById('original');"
        "return [r.naturalWidth, r.naturalHeight, o.naturalWidth, o.naturalHeight]"
    )
    assert natural == [451, 300, 451, 300]
    saved = download(page, "download", downloads, ".png")
    assert saved.name == "chelsea-colorized.png"
    with Image.open(saved) as image:
        assert image.size == (451, 300)
    assert not page.find_element(By.ID, "message").is_displayed()


def test_a_photo_larger_than_the_preview_is_shown_small_and_downloaded_whole(page, models, tmp_path, downloads):
    path = tmp_path / "big.png"
    Image.fromarray(skdata.chelsea()).resize((1600, 1064)).save(path)
    choose_model(page, models[1]["cnn"])
    upload(page, path)
    wait_for_result(page, 0)
    assert page.execute_script("return document.getElementById('result').naturalWidth") == PREVIEW_SIDE
    saved = download(page, "download", downloads, ".png")
    with Image.open(saved) as image:
        assert image.size == (1600, 1064)


def test_a_hint_in_a_chosen_colour_recolours_the_photo_near_the_point(page, models, tmp_path, downloads):
    catalog, keys = models
    photo = chelsea_png(tmp_path)
    choose_model(page, keys["siggraph17"])
    upload(page, photo)
    before = wait_for_result(page, 0)
    plain = ab_of(Image.open(download(page, "download", downloads, ".png")))

    set_colour(page, "#00ff00")  # no point is selected yet: the next point gets this colour
    original = page.find_element(By.ID, "original")
    click_at(page, original, 0.25, -0.1)  # 3/4 across and 2/5 down: pixel (338, 120) of the 451x300 photo
    wait_for(page, lambda d: d.execute_script("return document.getElementById('result').dataset.hints") == "1")
    wait_for_result(page, before)
    assert len(page.find_elements(By.CSS_SELECTOR, "#markers .marker")) == 1
    wait_for(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#palette button")) > 0)
    suggested = [b.get_attribute("data-color") for b in page.find_elements(By.CSS_SELECTOR, "#palette button")]
    assert all(len(colour) == 7 and colour.startswith("#") for colour in suggested)

    hinted_path = download(page, "download", downloads, ".png")
    hinted_image = Image.open(hinted_path)
    hinted_image.load()
    hints_path = download(page, "save-hints", downloads, "-hints.json")
    (hint,) = json.loads(hints_path.read_text())
    assert hint["color"] == "#00ff00"
    assert abs(hint["x"] - 0.75 * 451) <= 3 and abs(hint["y"] - 0.4 * 300) <= 3, hint

    change = np.linalg.norm(ab_of(hinted_image) - plain, axis=2)
    rows, cols = np.mgrid[:300, :451]
    distance = np.hypot(rows - hint["y"], cols - hint["x"])
    near, far = change[distance < 8].mean(), change[distance > 80].mean()
    assert near > 5.0 and near > 3 * far, (near, far)
    # the saved hints file is one `colorize --hints` reads, and gives exactly the page's result
    expected = colorize_image(Image.open(photo), catalog.model(keys["siggraph17"]), hints=hints_path)
    np.testing.assert_array_equal(np.asarray(hinted_image), np.asarray(expected))

    if os.environ.get("DEMO_SCREENSHOT"):  # README's picture: two more points, each given its colour after the click
        for count, (colour, dx, dy) in enumerate((("#ff8800", -0.3, 0.3), ("#3366ff", -0.05, -0.4)), start=2):
            click_at(page, original, dx, dy)
            wait_for(page, lambda d, n=count: len(d.find_elements(By.CSS_SELECTOR, "#markers .marker")) == n)
            set_colour(page, colour)
            wait_for(
                page,
                lambda d, n=count: d.execute_script("return document.getElementById('result').dataset.hints") == str(n),
            )
            wait_for(page, lambda d: state(d) == "ready")
        page.execute_script(  # the before/after slider half-way
            "const w = document.getElementById('wipe'); w.value = 50; w.dispatchEvent(new Event('input'));"
            "window.scrollTo(0, 0);"
        )
        page.save_screenshot(os.environ["DEMO_SCREENSHOT"])


def test_a_text_file_shows_the_error_and_the_next_upload_still_works(page, models, tmp_path):
    choose_model(page, models[1]["cnn"])
    text = tmp_path / "notes.png"
    text.write_text("these are notes, not a photo\n")
    upload(page, text)
    message = page.find_element(By.ID, "message")
    wait_for(page, lambda d: message.is_displayed())
    assert message.text.startswith("notes.png: not an image; expected")
    assert state(page) == "error"
    upload(page, chelsea_png(tmp_path))
    wait_for_result(page, 0)
    assert not message.is_displayed()
    assert page.execute_script("return document.getElementById('result').naturalWidth") == 451


def test_the_built_in_examples_are_offered_and_load(page, models):
    choose_model(page, models[1]["cnn"])
    buttons = page.find_elements(By.CSS_SELECTOR, "#examples button")
    assert [b.text for b in buttons] == ["camera", "chelsea", "rocket"]
    buttons[0].click()
    wait_for_result(page, 0)
    assert page.execute_script("return document.getElementById('result').naturalWidth") == 512


def test_no_request_leaves_this_machine(browser, server):
    """Every resource the page loaded came from the local server (no CDN, no analytics)."""
    browser.get(server)
    wait_for(browser, lambda d: state(d) == "idle")
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(url.startswith(server) for url in urls), urls


def test_a_clip_is_colorized_and_played_beside_its_original(page, models, tmp_path, downloads):
    from tests.helpers.clips import film_clip, write_film

    choose_model(page, models[1]["cnn"])
    upload(page, write_film(tmp_path / "reel.mp4", film_clip(24).gray))  # 1 s, 96x72, with a tone
    wait_for(page, lambda d: state(d) == "ready" and d.find_element(By.ID, "film-result").get_attribute("src"))
    videos = """
        const wait = (v) => (v.readyState >= 2 ? null : new Promise((r) => v.addEventListener('loadeddata', r)));
        const [o, c] = ['film-original', 'film-result'].map((id) => document.getElementById(id));
        await Promise.all([wait(o), wait(c)]);
        return [o, c].map((v) => [v.videoWidth, v.videoHeight, Math.round(v.duration * 10) / 10, v.error]);
    """
    assert page.execute_script(videos) == [[96, 72, 1.0, None], [96, 72, 1.0, None]]  # both decode in the browser
    assert page.find_element(By.ID, "film-status").text.startswith("· 24 of 24 frames")
    assert not page.find_element(By.ID, "viewer").is_displayed()  # the photo viewer makes way
    # playing the original plays the colorized film with it, at the same time
    # (muted: a page may play sound only after a click, and a script's play() is not one)
    page.execute_script("const o = document.getElementById('film-original'); o.muted = true; o.play();")
    wait_for(page, lambda d: d.execute_script("return document.getElementById('film-original').currentTime") > 0.3)
    both = "const o = document.getElementById('film-original'), c = document.getElementById('film-result');"
    original_time, colorized_time, paused = page.execute_script(
        both + "return [o.currentTime, c.currentTime, c.paused]"
    )
    assert abs(original_time - colorized_time) < 0.3 and not paused
    page.execute_script(both + "o.pause();")
    wait_for(page, lambda d: d.execute_script("return document.getElementById('film-result').paused"))
    saved = download(page, "film-download", downloads, ".mp4")
    assert saved.name == "reel-colorized.mp4" and saved.stat().st_size > 1000
