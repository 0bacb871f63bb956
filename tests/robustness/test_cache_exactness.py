"""No stale read after a write returns, ever: two `packyard serve` processes, one database.

A writer changes a bucket through either server and publishes the number of each write
once it has returned. Readers hammer both servers (so both hold the bucket in their
response cache) and check every answer against the last write published *before* they
sent their request: seeing anything older would be a stale read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.robust import admin_token
from tests.support.serve_process import ServeProcess, plain_http_server

WRITES = 120
READERS = 4
SETTLE_S = 10.0  # at most this long for the readers to answer after each write


@dataclass
class Observed:
    lock: threading.Lock = field(default_factory=threading.Lock)
    published: int = 0  # the newest write that has returned to the writer
    reads: int = 0
    hits: int = 0
    unsettled: int = 0  # writes after which no reader was served from a cache in SETTLE_S
    stale: list[tuple[int, int]] = field(default_factory=list)  # (expected >=, got)


def write_loop(clients: list[httpx.Client], path: str, seen: Observed, done: threading.Event):
    try:
        for n in range(1, WRITES + 1):
            client = clients[n % len(clients)]
            body = {"description": f"write {n}", "update_mask": "description"}
            response = client.patch(path, json=body)
            assert response.status_code == 200, response.text
            with seen.lock:
                seen.published = n
            # The caches refill and serve a hit between two writes, however slow the machine.
            if not settle(seen.lock, lambda: (seen.hits,)):
                seen.unsettled += 1
    finally:
        done.set()


def settle(lock: threading.Lock, counters: Callable[[], tuple[int, ...]]) -> bool:
    """Wait (at most SETTLE_S) until the readers have moved every one of ``counters`` on;
    whether they did."""
    with lock:
        before = counters()
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        with lock:
            now = counters()
        if all(a > b for a, b in zip(now, before, strict=True)):
            return True
        time.sleep(0.002)
    return False


def read_loop(clients: list[httpx.Client], path: str, seen: Observed, done: threading.Event):
    turn = 0
    while not done.is_set():
        client = clients[turn % len(clients)]
        turn += 1
        with seen.lock:
            floor = seen.published
        response = client.get(path)
        assert response.status_code == 200, response.text
        described = response.json()["bucket"]["description"]
        got = int(described.removeprefix("write ")) if described else 0
        with seen.lock:
            seen.reads += 1
            seen.hits += response.headers.get("x-packyard-cache") == "hit"
            if got < floor:
                seen.stale.append((floor, got))


def _project_clients(
    base_urls: list[str], token: str, org: str, project: str
) -> list[httpx.Client]:
    """One client per server, on the project's API path, with the token."""
    headers = {"Authorization": f"Bearer {token}"}
    prefix = f"/packer/2023-01-01/organizations/{org}/projects/{project}"
    return [httpx.Client(base_url=url + prefix, headers=headers, timeout=30) for url in base_urls]


def race(base_urls: list[str], token: str, org: str, project: str) -> Observed:
    """Writer and readers spread over ``base_urls``; returns what the readers saw."""
    clients = _project_clients(base_urls, token, org, project)
    seen = Observed()
    try:
        assert clients[0].put("/buckets", json={"name": "hot"}).status_code == 200
        path = "/buckets/hot"
        done = threading.Event()
        threads = [
            threading.Thread(target=read_loop, args=(clients, path, seen, done))
            for _ in range(READERS)
        ]
        threads.append(threading.Thread(target=write_loop, args=(clients, path, seen, done)))
        run_together(threads)
    finally:
        for client in clients:
            client.close()
    return seen


def run_together(threads: list[threading.Thread]) -> None:
    """Start every thread, then wait for all of them (five minutes at most each)."""
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)


def assert_never_stale(seen: Observed) -> None:
    assert seen.published == WRITES
    assert seen.stale == []
    # The race was real: the caches answered a read after every write.
    assert seen.unsettled == 0, seen.unsettled
    assert seen.reads > 2 * WRITES, seen.reads
    assert seen.hits >= WRITES, (seen.hits, seen.reads)


def test_no_server_serves_a_response_older_than_a_returned_write(
    tmp_path: Path, db_url: str
) -> None:
    first = plain_http_server(tmp_path / "a", db_url)
    second = ServeProcess(tmp_path / "b", *first.args)
    with first, second:  # entered in turn: the first has bootstrapped when the second starts
        token, org, project = admin_token(first.base_url, tmp_path / "a")
        seen = race([first.base_url, second.base_url], token, org, project)
    assert_never_stale(seen)


def test_worker_processes_of_one_server_never_serve_stale_responses(
    tmp_path: Path, db_url: str
) -> None:
    """``packyard serve --workers 2``: each worker has its own cache; connections spread."""
    with plain_http_server(tmp_path / "a", db_url, "--workers", "2") as server:
        token, org, project = admin_token(server.base_url, tmp_path / "a")
        seen = race([server.base_url] * 3, token, org, project)
    assert_never_stale(seen)


# --- per-bucket keys: cross-bucket dependencies across processes ------------------------


def push(client: httpx.Client, bucket: str, fp: str, parent: tuple[str, str] | None = None) -> Any:
    """A whole Packer push (version, one build, BUILD_DONE); returns the version's JSON."""
    versions = f"/buckets/{bucket}/versions"
    body = {"fingerprint": fp, "template_type": "HCL2"}
    assert client.post(versions, json=body).status_code == 200
    build_body = {"component_type": "null.a", "status": "BUILD_UNSET"}
    build = client.post(f"{versions}/{fp}/builds", json=build_body).json()["build"]
    done: dict[str, Any] = {
        "status": "BUILD_DONE",
        "platform": "aws",
        "artifacts": [{"external_identifier": f"ami-{bucket}-{fp}", "region": "us-east-1"}],
    }
    if parent is not None:
        done["parent_version_id"], done["parent_channel_id"] = parent
    response = client.patch(f"{versions}/{fp}/builds/{build['id']}", json=done)
    assert response.status_code == 200, response.text
    return client.get(f"{versions}/{fp}").json()["version"]


def assign(client: httpx.Client, bucket: str, channel: str, fp: str) -> None:
    body = {"version_fingerprint": fp, "update_mask": "versionFingerprint"}
    response = client.patch(f"/buckets/{bucket}/channels/{channel}", json=body)
    assert response.status_code == 200, response.text


@dataclass
class Ancestry:
    """The writer moves `release` of ``base`` back and forth; ``app`` was built from it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    started: int = 0  # the newest write sent
    published: int = 0  # the newest write that has returned
    reads: int = 0
    checked: int = 0  # reads with no write in flight: their answer is known exactly
    hits: int = 0
    unsettled: int = 0  # writes whose answer no reader checked, or no cache served, in SETTLE_S
    stale: list[tuple[str, int, str]] = field(default_factory=list)  # (path, write, status)


def expected(write: int) -> str:
    # Odd writes point `release` at base-2: app-1 (built from base-1) is out of date.
    return "OUT_OF_DATE" if write % 2 else "UP_TO_DATE"


def app_status(path: str, body: dict[str, Any], app: str) -> str:
    if path.endswith("/versions/app-1"):
        status: str = body["version"]["parents"]["status"]
    elif path == "/buckets":
        status = next(b for b in body["buckets"] if b["name"] == app)["parents"]["status"]
    else:
        status = body["bucket"]["parents"]["status"]
    return status


def ancestry_writer(clients: list[httpx.Client], seen: Ancestry, done: threading.Event) -> None:
    try:
        for n in range(1, WRITES + 1):
            with seen.lock:
                seen.started = n
            assign(clients[n % len(clients)], "base", "release", "base-2" if n % 2 else "base-1")
            with seen.lock:
                seen.published = n
            # A reader has checked this write's answer, and a cache has served it.
            if not settle(seen.lock, lambda: (seen.checked, seen.hits)):
                seen.unsettled += 1
    finally:
        done.set()


def noise_pusher(clients: list[httpx.Client], done: threading.Event) -> None:
    """Pushes into an unrelated bucket all along: they must neither break nor empty the
    cache of ``app``."""
    n = 0
    while not done.is_set():
        n += 1
        push(clients[n % len(clients)], "noise", f"noise-{n}")


def ancestry_reader(
    clients: list[httpx.Client], paths: list[str], seen: Ancestry, done: threading.Event
) -> None:
    turn = 0
    while not done.is_set():
        client = clients[turn % len(clients)]
        path = paths[turn % len(paths)]
        turn += 1
        with seen.lock:
            floor = seen.published
        response = client.get(path)
        assert response.status_code == 200, response.text
        status = app_status(path, response.json(), "app")
        with seen.lock:
            seen.reads += 1
            seen.hits += response.headers.get("x-packyard-cache") == "hit"
            if seen.started == floor:  # nothing was written while the request ran
                seen.checked += 1
                if status != expected(floor):
                    seen.stale.append((path, floor, status))


def ancestry_race(base_urls: list[str], token: str, org: str, project: str) -> Ancestry:
    clients = _project_clients(base_urls, token, org, project)
    seen = Ancestry()
    try:
        first = clients[0]
        for name in ("base", "app", "noise"):
            assert first.put("/buckets", json={"name": name}).status_code == 200
        base1 = push(first, "base", "base-1")
        push(first, "base", "base-2")
        release = first.post(
            "/buckets/base/channels", json={"name": "release", "version_fingerprint": "base-1"}
        ).json()["channel"]
        push(first, "app", "app-1", parent=(base1["id"], release["id"]))
        paths = ["/buckets/app/versions/app-1", "/buckets/app", "/buckets"]
        done = threading.Event()
        threads = [
            threading.Thread(target=ancestry_reader, args=(clients, paths, seen, done))
            for _ in range(READERS)
        ]
        threads.append(threading.Thread(target=noise_pusher, args=(clients, done)))
        threads.append(threading.Thread(target=ancestry_writer, args=(clients, seen, done)))
        run_together(threads)
    finally:
        for client in clients:
            client.close()
    return seen


def test_a_parent_channel_move_is_seen_by_the_children_on_every_server(
    tmp_path: Path, db_url: str
) -> None:
    """The child bucket's responses (and ListBuckets) show the parent channel's state of the
    last returned write, on both servers, while another bucket is pushed to all along."""
    first = plain_http_server(tmp_path / "a", db_url)
    second = ServeProcess(tmp_path / "b", *first.args)
    with first, second:
        token, org, project = admin_token(first.base_url, tmp_path / "a")
        seen = ancestry_race([first.base_url, second.base_url], token, org, project)
    assert seen.published == WRITES
    assert seen.stale == []
    assert seen.unsettled == 0, seen.unsettled
    assert seen.checked >= WRITES, (seen.checked, seen.reads)
    assert seen.hits >= WRITES, (seen.hits, seen.reads)


def test_unrelated_pushes_keep_the_hits_on_every_server(tmp_path: Path, db_url: str) -> None:
    first = plain_http_server(tmp_path / "a", db_url)
    second = ServeProcess(tmp_path / "b", *first.args)
    with first, second:
        token, org, project = admin_token(first.base_url, tmp_path / "a")
        headers = {"Authorization": f"Bearer {token}"}
        prefix = f"/packer/2023-01-01/organizations/{org}/projects/{project}"
        a, b = (
            httpx.Client(base_url=s.base_url + prefix, headers=headers, timeout=30)
            for s in (first, second)
        )
        with a, b:
            for name in ("quiet", "busy"):
                assert a.put("/buckets", json={"name": name}).status_code == 200
            push(a, "quiet", "q-1")
            paths = [
                "/buckets/quiet",
                "/buckets/quiet/versions/q-1",
                "/buckets/quiet/channels/latest",
            ]
            for path in paths:
                for _ in range(3):
                    assert a.get(path).status_code == 200
            listing = [a.get("/buckets") for _ in range(3)][-1]
            assert listing.headers.get("x-packyard-cache") == "hit"
            push(b, "busy", "b-1")  # through the other server
            for path in paths:
                assert a.get(path).headers.get("x-packyard-cache") == "hit", path
            names = [x["name"] for x in a.get("/buckets").json()["buckets"]]
            assert "busy" in names and "quiet" in names
            assert (
                b.patch(
                    "/buckets/quiet", json={"description": "d", "update_mask": "description"}
                ).status_code
                == 200
            )
            got = a.get("/buckets/quiet")
            assert got.headers.get("x-packyard-cache") != "hit"
            assert got.json()["bucket"]["description"] == "d"
