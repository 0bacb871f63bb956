"""The console's pages need no inline code, so its Content-Security-Policy can forbid it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from packyard.web import console
from tests.support.console import Seeded

TEMPLATES = Path(console.__file__).parent / "templates"


def test_templates_hold_no_inline_script_or_style() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert not re.search(r"\sstyle\s*=", text), template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name  # onclick=…
        assert "<style" not in text, template.name


def test_pages_forbid_inline_code_and_framing(console: Seeded) -> None:
    with httpx.Client(base_url=console.base_url, verify=False) as http:
        page = http.get("/sign-in")
        policy = dict(
            part.strip().split(" ", 1)
            for part in page.headers["content-security-policy"].split(";")
        )
        assert policy["script-src"] == "'self'"
        assert policy["style-src"] == "'self'"
        assert policy["frame-ancestors"] == "'none'"
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        static = http.get("/static/packyard.css")
        assert static.status_code == 200
        assert "max-age" in static.headers["cache-control"]
        for escape in ("/static/%2e%2e/server.json", "/static/..%2fserver.json"):
            assert http.get(escape).status_code in (400, 404), escape
