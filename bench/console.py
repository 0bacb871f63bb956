"""The console's main pages in the benchmark: SQL statements per page, server time, throughput.

A console user (admin of the seeded project, so every page is open to it) is made through
the services, signs in over HTTP as a browser would (``GET /sign-in`` for the sign-in form's
CSRF cookie, then ``POST /sign-in``), and asks for each page with its session cookie:

* **statements per page**, in-process with the store's counter (as ``bench/sqlcount.py``
  counts the API's reads): one warm-up, then the average of three;
* **server time**: ``requests`` sequential requests on one keep-alive connection after a
  warm-up, timed by the client on loopback (an upper bound of the server's own time: the
  client's share is a few tenths of a millisecond); median, p95, p99, max;
* **throughput** with ``wrk`` carrying the session cookie, at one connection count.

A page that is not there yet (the console's "There is no such page" 404, or a 501 from the
API's unknown-route answer) is reported as *missing* and skipped, so the harness works while
pages are being written; any other answer than 200 is an *error* of that page.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from bench.seed import Targets
from bench.sqlcount import Endpoint, count_request
from packyard.domain.enums import Role
from packyard.domain.models import Operator
from packyard.services.container import Services
from packyard.store.engine import StatementCounter

EMAIL = "bench-console@localhost"
SESSION_COOKIES = ("packyard-session", "__Host-packyard-session")
NO_SUCH_PAGE = b"There is no such page"
TARGET_MS = 50.0  # every page, median server time, at size L
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ConsolePage:
    name: str
    path: str  # absolute, with query string


PAGE_NAMES = (
    "Registry home",
    "Bucket",
    "Versions",
    "Version",
    "Channel",
    "Ancestry",
    "Compare",
    "Find an image",
    "Connect",
    "Access",
)


def console_pages(targets: Targets) -> list[ConsolePage]:
    """The console's main pages, addressed at the seeded targets (what people open most), in
    the order of :data:`PAGE_NAMES`."""
    project = f"/p/{quote(targets.project_id, safe='')}"
    bucket = f"{project}/buckets/{quote(targets.bucket, safe='')}"
    version = quote(targets.version_fingerprint, safe="")
    other = targets.latest_fingerprint or targets.version_fingerprint
    compare = urlencode({"a": targets.version_fingerprint, "b": other})
    find = urlencode({"id": targets.external_identifier})
    return [
        ConsolePage("Registry home", project),
        ConsolePage("Bucket", bucket),
        ConsolePage("Versions", f"{bucket}/versions"),
        ConsolePage("Version", f"{bucket}/versions/{version}"),
        ConsolePage("Channel", f"{bucket}/channels/{quote(targets.channel, safe='')}"),
        ConsolePage("Ancestry", f"{bucket}/ancestry"),
        ConsolePage("Compare", f"{bucket}/compare?{compare}"),
        ConsolePage("Find an image", f"{project}/find?{find}"),
        ConsolePage("Connect", f"{project}/connect"),
        ConsolePage("Access", f"{project}/access"),
    ]


def create_user(services: Services, organization_id: str, project_id: str) -> tuple[str, str]:
    """An admin of the project who signs in to the console: (email, password)."""
    made = services.users.create(
        Operator(), organization_id, project_id, email=EMAIL, role=Role.ADMIN
    )
    return made.record.user.email, made.password


def sign_in(client: httpx.Client, email: str, password: str) -> str:
    """Sign ``client`` in as a browser does; returns the ``Cookie`` header of the session."""
    form = client.get("/sign-in")
    form.raise_for_status()
    token = _CSRF.search(form.text)
    if token is None:
        raise RuntimeError("the sign-in page has no CSRF token")
    answer = client.post(
        "/sign-in",
        data={"csrf_token": token.group(1), "email": email, "password": password, "next": "/"},
        follow_redirects=False,
    )
    if answer.status_code != 303:
        raise RuntimeError(f"signing in to the console failed: HTTP {answer.status_code}")
    for name in SESSION_COOKIES:
        value = client.cookies.get(name)
        if value:
            return f"{name}={value}"
    raise RuntimeError("signing in to the console set no session cookie")


def state_of(response: httpx.Response) -> str:
    """``ok``, ``missing`` (the page is not written yet) or ``error``."""
    if response.status_code == 200:
        return "ok"
    if response.status_code in (405, 501) or (
        response.status_code == 404 and NO_SUCH_PAGE in response.content
    ):
        return "missing"
    return "error"


@dataclass(slots=True)
class PageCount:
    """Statements and transactions per request of one page (``state`` as in :func:`state_of`)."""

    state: str
    status: int
    statements: float | None = None
    transactions: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def count_page(
    client: httpx.Client, counter: StatementCounter, page: ConsolePage, *, repeat: int = 3
) -> PageCount:
    """Statements per request of one page, or why there is no count (missing, error)."""
    first = client.get(page.path)
    state = state_of(first)
    if state != "ok":
        return PageCount(state=state, status=first.status_code)
    got = count_request(client, counter, Endpoint(page.name, "GET", page.path), repeat=repeat)
    if got.status != 200:
        return PageCount(state="error", status=got.status)
    return PageCount(
        state="ok", status=200, statements=got.statements, transactions=got.transactions
    )


def measure_sql(
    services: Services, counter: StatementCounter, targets: Targets, email: str, password: str
) -> dict[str, dict[str, Any]]:
    """Statements per console page, counted in-process (the app on a loopback thread)."""
    from tests.support.server import running_server

    out: dict[str, dict[str, Any]] = {}
    with (
        running_server(services, response_cache=False) as base_url,
        httpx.Client(base_url=base_url, timeout=60) as client,
    ):
        sign_in(client, email, password)
        for page in console_pages(targets):
            try:
                out[page.name] = count_page(client, counter, page).to_json()
            except httpx.HTTPError as exc:
                out[page.name] = {"state": "error", "status": 0, "detail": str(exc)[:200]}
    return out


def _quantile(sorted_ms: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted values, by linear interpolation."""
    if len(sorted_ms) == 1:
        return sorted_ms[0]
    pos = q * (len(sorted_ms) - 1)
    low = int(pos)
    high = min(low + 1, len(sorted_ms) - 1)
    return sorted_ms[low] + (sorted_ms[high] - sorted_ms[low]) * (pos - low)


def time_page(
    client: httpx.Client, page: ConsolePage, *, requests: int, warmup: int = 3
) -> dict[str, Any]:
    """Sequential requests of one page after a warm-up: latency in ms, status, size."""
    first = client.get(page.path)
    state = state_of(first)
    if state != "ok":
        return {"state": state, "status": first.status_code}
    for _ in range(max(0, warmup - 1)):
        client.get(page.path)
    samples: list[float] = []
    failed = 0
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(page.path)
        samples.append((time.perf_counter() - started) * 1000)
        failed += response.status_code != 200
    samples.sort()
    return {
        "state": "ok",
        "status": 200,
        "requests": requests,
        "failed": failed,
        "median_ms": round(statistics.median(samples), 2),
        "p95_ms": round(_quantile(samples, 0.95), 2),
        "p99_ms": round(_quantile(samples, 0.99), 2),
        "max_ms": round(samples[-1], 2),
        "bytes": len(first.content),
    }


def measure_server(
    base_url: str,
    targets: Targets,
    email: str,
    password: str,
    *,
    requests: int,
    wrk: Callable[[str, str], Any] | None,
    log: Log,
) -> dict[str, Any]:
    """Server time (sequential requests) and, with ``wrk``, throughput of each page on the
    running server. ``wrk(url, cookie)`` returns a ``WrkResult``."""
    pages: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=base_url, timeout=60) as client:
        cookie = sign_in(client, email, password)
        for page in console_pages(targets):
            try:
                got = time_page(client, page, requests=requests)
            except httpx.HTTPError as exc:
                got = {"state": "error", "status": 0, "detail": str(exc)[:200]}
            got["path"] = page.path
            if got["state"] == "ok" and wrk is not None:
                got["wrk"] = wrk(base_url + page.path, cookie).to_json()
            pages[page.name] = got
            log(_line(page.name, got))
    return {"user": email, "requests_per_page": requests, "pages": pages}


def _line(name: str, got: dict[str, Any]) -> str:
    if got["state"] != "ok":
        return f"console {name:<14} {got['state']} (HTTP {got['status']})"
    text = (
        f"console {name:<14} median {got['median_ms']:.1f} ms p95 {got['p95_ms']:.1f} ms "
        f"p99 {got['p99_ms']:.1f} ms"
    )
    if "wrk" in got:
        w = got["wrk"]
        text += f"; wrk c={w['connections']} {w['requests_per_s']:.1f} req/s"
        if w["errors"]:
            text += f" errors {w['errors']}"
    return text
