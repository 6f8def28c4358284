"""The playground page: served statically, without the key, loading nothing from another origin."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import httpx
import pytest

from costroute.serve import create_app
from costroute.serve._page import CONTENT_SECURITY_POLICY, PAGE_FILES

from ._helpers import ServerThread, make_cascade

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "costroute" / "serve" / "static"
KEY = "playground-test-key"


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
