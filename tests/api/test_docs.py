"""/docs: Swagger UI served by Packyard itself, every file it needs allowed by its own policy."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from packyard.services.container import Services
from packyard.store.engine import Store, sqlite_url
from packyard.store.migrate import upgrade
from tests.conftest import IN_CI
from tests.support.server import running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # The page touches no stored data: one SQLite server serves the module.
    store = Store(sqlite_url(str(tmp_path_factory.mktemp("docs") / "packyard.db")))
    upgrade(store)
    with running_server(Services.create(store)) as url:
        yield url
    store.dispose()


class _Page(HTMLParser):
    """What a page loads (scripts, styles, icons) and the inline code it carries."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[tuple[str, str]] = []  # (CSP directive, URL)
        self.inline: list[str] = []
        self.openapi_url: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            if a.get("src"):
                self.loads.append(("script-src", a["src"] or ""))
            else:
                self.inline.append("<script>")
        elif tag == "link" and a.get("href"):
            rel = (a.get("rel") or "").split()
            if "stylesheet" in rel:
                self.loads.append(("style-src", a["href"] or ""))
            elif "icon" in rel:
                self.loads.append(("img-src", a["href"] or ""))
        elif tag == "style":
            self.inline.append("<style>")
        self.inline.extend(name for name in a if name == "style" or name.startswith("on"))
        if "data-openapi-url" in a:
            self.openapi_url = a["data-openapi-url"]


def _policy(header: str) -> dict[str, list[str]]:
    parts = (part.split() for part in header.split(";") if part.strip())
    return {words[0]: words[1:] for words in parts}


def _allows(policy: dict[str, list[str]], directive: str, url: str, page_url: str) -> bool:
    sources = policy.get(directive, policy.get("default-src", []))
    same_origin = urlsplit(urljoin(page_url, url))[:2] == urlsplit(page_url)[:2]
    return ("'self'" in sources and same_origin) or any(
        src not in ("'self'", "'none'") and url.startswith(src) for src in sources
    )


def test_docs_page_loads_only_what_its_policy_allows(server: str) -> None:
    with httpx.Client(base_url=server) as http:
        page = http.get("/docs")  # no token, no session: a public reference
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        policy = _policy(page.headers["content-security-policy"])
        assert policy["default-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        for directive in ("script-src", "style-src"):
            assert not {"'unsafe-inline'", "'unsafe-eval'"} & set(policy[directive])

        parsed = _Page()
        parsed.feed(page.text)
        assert parsed.inline == []
        assert {d for d, _ in parsed.loads} == {"script-src", "style-src", "img-src"}
        page_url = str(page.url)
        for directive, url in parsed.loads:
            assert _allows(policy, directive, url, page_url), (directive, url, policy)
            asset = http.get(url)
            assert asset.status_code == 200, url
            assert asset.content, url
            kind = asset.headers["content-type"].split(";")[0]
            expected = {"script-src": "text/javascript", "style-src": "text/css"}
            assert kind == expected.get(directive, "image/png"), url
            assert "max-age" in asset.headers["cache-control"], url
            assert http.head(url).status_code == 200, url

        assert parsed.openapi_url is not None
        assert _allows(policy, "connect-src", parsed.openapi_url, page_url)
        document = http.get(parsed.openapi_url)
        assert document.status_code == 200
        assert document.json()["paths"]
        # the page and its files are not operations of the API
        assert not any(path.startswith("/docs") for path in document.json()["paths"])


def test_only_the_named_files_are_served(server: str) -> None:
    with httpx.Client(base_url=server) as http:
        for path in ("/docs/swagger-ui.js", "/docs/index.html", "/docs/oauth2-redirect"):
            assert http.get(path).status_code >= 400, path


# -- in a browser, under the page's real policy ------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("PACKYARD_SCREENSHOTS", "/tmp/packyard-screenshots"))

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None  # type: ignore[assignment]

_RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
"""


@pytest.mark.browser
def test_docs_page_renders_every_operation_in_a_browser(server: str) -> None:
    missing = (
        "Playwright for Python is not installed"
        if sync_playwright is None
        else None
        if Path(CHROMIUM).exists()
        else "Debian's chromium is not installed"
    )
    if missing:
        if IN_CI:
            pytest.fail(missing)
        pytest.skip(missing)
    document = httpx.get(server + "/openapi.json").json()
    operations = sum(
        1 for ops in document["paths"].values() for op in ops.values() if isinstance(op, dict)
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_page()  # the CSP applies: no bypass_csp
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.add_init_script(_RECORD_VIOLATIONS)
            page.goto(server + "/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            assert page.locator(".opblock").count() == operations
            assert page.locator(".opblock .try-out").count() == 0  # a reference only
            assert page.evaluate("window.__violations") == []
            assert errors == []
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "api-docs.png"))
        finally:
            browser.close()
