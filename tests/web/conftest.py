"""The console in a real browser: Debian's Chromium driven by Playwright, against a real
``packyard serve`` (SQLite, TLS) seeded the way Packer and Terraform would seed it.

One server and one browser serve the whole package in each test process (each pytest-xdist
worker seeds its own; tests create uniquely named buckets, so none depends on another). Every
page a test opens can be checked with axe-core (``accessible``), at 375 px (``fits_narrow``),
and photographed into ``$PACKYARD_SCREENSHOTS`` (default ``/tmp/packyard-screenshots``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.support.console import Seeded, seed_registry
from tests.support.serve_process import ServeProcess, run_cli

ROOT = Path(__file__).resolve().parents[2]
AXE = Path(
    os.environ.get(
        "PACKYARD_AXE_JS", ROOT / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
    )
)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("PACKYARD_SCREENSHOTS", "/tmp/packyard-screenshots"))

try:
    from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None  # type: ignore[assignment]


def _missing() -> str | None:
    if sync_playwright is None:
        return "Playwright for Python is not installed"
    if not Path(CHROMIUM).exists():
        return "Debian's chromium is not installed"
    if not AXE.exists():
        return f"axe-core is not installed at {AXE} (./dev test installs it)"
    return None


@pytest.fixture(scope="session")
def console_tools() -> None:
    missing = _missing()
    if missing:
        if IN_CI:
            pytest.fail(missing)
        pytest.skip(missing)


@pytest.fixture(scope="session")
def console(console_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A running server with a seeded registry and a user of each role."""
    root = tmp_path_factory.mktemp("console")
    data_dir = root / "data"
    with ServeProcess(data_dir, "--log-level", "warning") as server:
        banner = server.stdout
        password = re.search(r"^PACKYARD_CONSOLE_PASSWORD=(\S+)$", banner, re.M)
        assert password, banner
        users = {"admin": ("admin@localhost", password.group(1))}
        for role in ("viewer", "contributor"):
            made = run_cli(
                "user",
                "create",
                "--data-dir",
                str(data_dir),
                "--email",
                f"{role}@example.com",
                "--role",
                role,
                "--format",
                "json",
            )
            assert made.returncode == 0, made.stderr
            created = json.loads(made.stdout)
            users[role] = (created["email"], created["password"])
        yield seed_registry(server.base_url, data_dir, users)


@pytest.fixture(scope="session")
def browser(console_tools: None) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        launched.close()


def new_context(browser: Browser, width: int = 1280) -> BrowserContext:
    # bypass_csp: axe-core is injected as an inline script, which the console's CSP forbids
    # (test_csp.py checks the policy itself, and that no page needs inline code)
    return browser.new_context(
        ignore_https_errors=True,
        viewport={"width": width, "height": 900},
        color_scheme="light",
        bypass_csp=True,
    )


def sign_in(context: BrowserContext, console: Seeded, role: str, next_path: str = "/") -> Page:
    email, password = console.users[role]
    page = context.new_page()
    page.goto(f"{console.base_url}/sign-in?next={next_path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return page


@pytest.fixture
def admin(browser: Browser, console: Seeded) -> Iterator[Page]:
    context = new_context(browser)
    yield sign_in(context, console, "admin")
    context.close()


@pytest.fixture
def contributor(browser: Browser, console: Seeded) -> Iterator[Page]:
    context = new_context(browser)
    yield sign_in(context, console, "contributor")
    context.close()


@pytest.fixture
def viewer(browser: Browser, console: Seeded) -> Iterator[Page]:
    context = new_context(browser)
    yield sign_in(context, console, "viewer")
    context.close()


def accessible(page: Page) -> None:
    """Zero axe-core violations on the page as it is now."""
    page.add_script_tag(content=AXE.read_text())
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    violations = [
        (v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
    ]
    assert violations == [], violations


def fits_narrow(page: Page) -> None:
    """At 375 px wide the page does not scroll sideways (wide tables scroll in their box)."""
    page.set_viewport_size({"width": 375, "height": 800})
    width = page.evaluate("document.documentElement.scrollWidth")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert width <= 375, width


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def check_page(page: Page, name: str) -> None:
    """What every page must be: accessible, usable at 375 px, photographed (light and dark)."""
    accessible(page)
    fits_narrow(page)
    screenshot(page, name)
    page.emulate_media(color_scheme="dark")
    accessible(page)
    screenshot(page, f"{name}-dark")
    page.emulate_media(color_scheme="light")
