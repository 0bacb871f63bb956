"""No stale read after a write returns, ever: two `packyard serve` processes, one database.

A writer changes a bucket through either server and publishes the number of each write
once it has returned. Readers hammer both servers (so both hold the bucket in their
response cache) and check every answer against the last write published *before* they
sent their request: seeing anything older would be a stale read.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.robust import admin_token
from tests.support.serve_process import ServeProcess, plain_http_server

WRITES = 120
READERS = 4
PAUSE_S = 0.03  # long enough for each server to see, store and then serve a hit


@dataclass
class Observed:
    lock: threading.Lock = field(default_factory=threading.Lock)
    published: int = 0  # the newest write that has returned to the writer
    reads: int = 0
    hits: int = 0
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
            time.sleep(PAUSE_S)  # let the readers refill and hit the caches in between
    finally:
        done.set()


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


def race(base_urls: list[str], token: str, org: str, project: str) -> Observed:
    """Writer and readers spread over ``base_urls``; returns what the readers saw."""
    headers = {"Authorization": f"Bearer {token}"}
    prefix = f"/packer/2023-01-01/organizations/{org}/projects/{project}"
    clients = [
        httpx.Client(base_url=url + prefix, headers=headers, timeout=30) for url in base_urls
    ]
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
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    finally:
        for client in clients:
            client.close()
    return seen


def assert_never_stale(seen: Observed) -> None:
    assert seen.published == WRITES
    assert seen.stale == []
    # The race was real: the caches answered many of the reads.
    assert seen.reads > 2 * WRITES, seen.reads
    assert seen.hits > WRITES, (seen.hits, seen.reads)


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
