"""The playground page: served statically and offline, and driven in a real headless Chromium against the demo.

The browser test starts :func:`costroute.serve.demo_app` (tiny models collected and fitted on
the spot) behind a real uvicorn server on a free loopback port, with an API key, and drives
the page with Selenium and Debian's ``chromium`` + ``chromium-driver``: a request without the
key shows the server's 401 in the page; with the key it shows the returned image and every
candidate, whose generators, scores and costs must be those of the JSON response to the same
request; the λ slider's far end sends a large ``cost_penalty`` and the cascade stays on the
cheap generator. It is skipped, naming what to install, where Chromium, its driver or
Selenium is missing.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
from pathlib import Path

import httpx
import pytest

from costroute.serve import create_app, demo_app
from costroute.serve._page import CONTENT_SECURITY_POLICY, PAGE_FILES

from ._helpers import ServerThread, make_cascade

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "costroute" / "serve" / "static"
KEY = "playground-test-key"
INSTALL = (
    "the browser test needs Chromium and its WebDriver (Debian: apt-get install chromium chromium-driver) "
    "and Selenium (pip install selenium)"
)


# ---------------------------------------------------------------- the page over plain HTTP
@pytest.fixture(scope="module")
def keyed_server():
    with ServerThread(create_app(make_cascade(), api_key=KEY, seed=0)) as server:
        yield server


def test_the_page_is_served_without_the_key_while_the_api_needs_it(keyed_server):
    page = httpx.get(f"{keyed_server.url}/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    html = page.text
    for element in ('id="prompt"', 'id="penalty-slider"', 'id="generate"', 'id="api-key"', 'id="candidates"'):
        assert element in html
    for path, (_, media_type) in PAGE_FILES.items():
        response = httpx.get(f"{keyed_server.url}{path}", timeout=10)
        assert response.status_code == 200 and response.headers["content-type"] == media_type
    assert httpx.get(f"{keyed_server.url}/v1/models", timeout=10).status_code == 401


def test_the_page_loads_nothing_from_another_origin():
    for name, _ in PAGE_FILES.values():
        text = (STATIC / name).read_text()
        assert not re.search(r"https?:|//[\w.-]+\.[a-z]{2,}|@import|url\(", text, re.I), name
    html = (STATIC / "playground.html").read_text()
    references = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sorted(references) == ["playground.css", "playground.js"]
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY and "connect-src 'self'" in CONTENT_SECURITY_POLICY


def test_the_wheel_carries_the_pages_files():
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    globs = package_data["costroute"]
    for path in STATIC.iterdir():
        relative = path.relative_to(ROOT / "costroute").as_posix()
        assert any(fnmatch.fnmatch(relative, g) for g in globs), f"{relative} is not in the package data"


# ---------------------------------------------------------------- the page in a real browser
def _browser_or_skip():
    webdriver = pytest.importorskip("selenium.webdriver", reason=INSTALL)
    binary = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip(f"{INSTALL}; missing: {'chromium' if binary is None else 'chromedriver'}")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",  # as root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))


@pytest.fixture(scope="module")
def browser():
    driver = _browser_or_skip()
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    with ServerThread(demo_app(tmp_path_factory.mktemp("demo"), api_key=KEY, seed=0)) as server:
        yield server


def _wait(driver, condition, seconds: float, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.1).until(condition, message=f"waited {seconds} s for {what}")


def _number(text: str) -> float:
    """The first number of a cell's text (``"2.389e+8 flops"`` -> 238900000.0)."""
    return float(re.match(r"\s*(-?[\d.]+(?:e[+-]?\d+)?)", text).group(1))


def _shown_candidates(driver) -> list[dict]:
    from selenium.webdriver.common.by import By

    rows = []
    for tr in driver.find_elements(By.CSS_SELECTOR, "#candidates tbody tr.candidate"):
        scores = {}
        text = tr.find_element(By.CSS_SELECTOR, "td.scores").text
        for line in [] if text == "not scored" else text.splitlines():
            name, _, value = line.partition(": ")
            scores[name] = _number(value)
        image = tr.find_element(By.CSS_SELECTOR, "td.image img").get_attribute("src")
        rows.append(
            {
                "generator": tr.find_element(By.CSS_SELECTOR, "td.generator .name").text,
                "returned": "returned" in tr.get_attribute("class").split(),
                "scores": scores,
                "cost": _number(tr.find_element(By.CSS_SELECTOR, "td.cost").text),
                "normalized_cost": _number(tr.find_element(By.CSS_SELECTOR, "td.normalized-cost").text),
                "b64_json": image.removeprefix("data:image/png;base64,"),
            }
        )
    return rows


def _generate_in_page(driver) -> None:
    from selenium.webdriver.common.by import By

    driver.execute_script("document.getElementById('status').textContent = ''")
    driver.find_element(By.ID, "generate").click()
    _wait(driver, lambda d: d.find_element(By.ID, "status").text not in ("", "generating…"), 120, "an answer")
    assert driver.find_element(By.ID, "generate").is_enabled()


def _json_answer(server, prompt: str, seed: int, cost_penalty: float | None = None) -> dict:
    extension = {"seed": seed, "candidates": True}
    if cost_penalty is not None:
        extension["cost_penalty"] = cost_penalty
    response = httpx.post(
        f"{server.url}/v1/images/generations",
        json={"model": "auto", "prompt": prompt, "response_format": "b64_json", "costroute": extension},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _assert_shown_as_answered(shown: list[dict], answer: dict) -> None:
    ext = answer["data"][0]["costroute"]
    assert [c["generator"] for c in shown] == [c["generator"] for c in ext["candidates"]]
    for row, expected in zip(shown, ext["candidates"]):
        assert row["returned"] == expected["returned"]
        assert row["scores"].keys() == expected["scores"].keys()
        for name, value in expected["scores"].items():
            assert row["scores"][name] == pytest.approx(value, rel=1e-3, abs=1e-4)
        assert row["cost"] == pytest.approx(expected["cost"], rel=1e-3)
        assert row["normalized_cost"] == pytest.approx(expected["normalized_cost"], rel=1e-3, abs=1e-4)
        assert row["b64_json"] == expected["b64_json"]  # the same pixels, PNG-encoded alike


def test_the_playground_shows_every_candidate_with_its_scores_and_costs(browser, demo_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver, url = browser, demo_server.url
    prompt, seed = "a red kite over a beach at dusk", 5
    driver.get(f"{url}/")
    _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", 30, "the page")
    loaded = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(name.startswith(f"{url}/") for name in loaded), loaded  # nothing from elsewhere

    box = driver.find_element(By.ID, "prompt")
    box.clear()
    box.send_keys(prompt)
    driver.find_element(By.ID, "seed").send_keys(str(seed))

    # without the key: the server's 401, shown in the page
    _generate_in_page(driver)
    error = driver.find_element(By.ID, "error")
    assert error.is_displayed() and "401" in error.text and "missing API key" in error.text
    assert "invalid_api_key" in error.text and not driver.find_element(By.ID, "result").is_displayed()

    # with the key: the image and every candidate the cascade made (its own λ = 0: it tries both)
    driver.find_element(By.ID, "api-key").send_keys(KEY)
    _generate_in_page(driver)
    assert not driver.find_element(By.ID, "error").is_displayed()
    assert driver.find_element(By.ID, "status").text.startswith("done in")
    answer = _json_answer(demo_server, prompt, seed)
    shown = _shown_candidates(driver)
    _assert_shown_as_answered(shown, answer)
    assert len(shown) == 2 and sum(c["returned"] for c in shown) == 1
    returned = driver.find_element(By.ID, "returned-image").get_attribute("src")
    assert returned == "data:image/png;base64," + answer["data"][0]["b64_json"]
    assert driver.execute_script("return document.getElementById('returned-image').naturalWidth") == 64
    screenshot = tmp_path / "playground.png"
    chrome = driver.execute_script("return window.outerHeight - window.innerHeight")
    driver.set_window_size(1280, driver.execute_script("return document.documentElement.scrollHeight") + chrome)
    assert driver.save_screenshot(str(screenshot))  # the whole page
    assert screenshot.stat().st_size > 10_000 and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the slider's far end: λ = 1000, sent as cost_penalty; the cascade stays on the cheap generator
    slider = driver.find_element(By.ID, "penalty-slider")
    slider.send_keys(Keys.END)
    assert float(driver.find_element(By.ID, "penalty").get_attribute("value")) == pytest.approx(1000)
    assert not driver.find_element(By.ID, "server-penalty").is_selected()
    _generate_in_page(driver)
    cheap = _json_answer(demo_server, prompt, seed, cost_penalty=1000.0)
    shown = _shown_candidates(driver)
    _assert_shown_as_answered(shown, cheap)
    assert [c["generator"] for c in shown] == ["sd-2steps"] and shown[0]["scores"] == {}  # not worth a scoring
    summary = driver.find_element(By.ID, "summary").text
    assert "λ used" in summary and "1000" in summary
