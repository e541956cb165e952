"""`/docs` and `/redoc` work without the internet: every file they load is served here."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import make_settings

# What a page loads: <script src>, <link href> and the OpenAPI document of each UI.
LOADED = re.compile(r"""(?:src|href|spec-url)="([^"]*)"|url: '([^']*)'""")
CONTENT_TYPES = {
    ".js": "javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


def loaded_urls(page: str) -> list[str]:
    return [first or second for first, second in LOADED.findall(page)]


@pytest.mark.parametrize(("page", "expected"), [("/docs", 4), ("/redoc", 3)])
def test_the_docs_pages_load_only_files_this_service_serves(
    client: TestClient, page: str, expected: int
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "://" not in response.text, "the page names another origin"
    urls = loaded_urls(response.text)
    assert len(urls) == expected, urls  # script, style (Swagger UI), icon, the document
    for url in urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert CONTENT_TYPES[suffix] in asset.headers["content-type"], url
        assert len(asset.content) > 100, url


def test_swagger_ui_fetches_no_validator_badge(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


def test_the_oauth2_redirect_page_is_served_here_too(client: TestClient) -> None:
    response = client.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert "://" not in response.text


def test_behind_a_proxy_the_pages_ask_for_the_files_under_its_root_path() -> None:
    with TestClient(create_app(make_settings()), root_path="/ai") as client:
        for page in ("/docs", "/redoc"):
            urls = loaded_urls(client.get(page).text)
            assert urls, page
            assert all(url.startswith("/ai/") for url in urls), urls
