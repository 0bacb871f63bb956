"""Crash safety: `kill -9` a server in the middle of a burst of writes, restart it on the same
data, and every invariant still holds; the interrupted pushes then resume and complete."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.support.robust import Pusher, admin_token, run_check_cli
from tests.support.serve_process import ServeProcess, plain_http_server

WRITERS = 4
COMPONENTS = ("amazon-ebs.a", "googlecompute.b", "docker.c")


def burst_then_kill(server: ServeProcess, data_dir: Path) -> list[str]:
    """Push versions from several threads; kill the server once writes are in full flow.

    Returns every fingerprint a writer started (some complete, some cut off mid-push).
    """
    token, org, project = admin_token(server.base_url, data_dir)
    pushers = [Pusher(server.base_url, token, org, project) for _ in range(WRITERS)]
    pushers[0].call("PUT", "/buckets", {"name": "crash"})
    pushers[0].call("POST", "/buckets/crash/channels", {"name": "prod"})
    started: list[str] = []
    completed: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def writer(n: int, pusher: Pusher) -> None:
        i = 0
        while not stop.is_set() and i < 200:
            fingerprint = f"crash-{n}-{i}"
            with lock:
                started.append(fingerprint)
            try:
                pusher.push("crash", fingerprint, COMPONENTS)
                body = {"version_fingerprint": fingerprint, "update_mask": "versionFingerprint"}
                pusher.call("PATCH", "/buckets/crash/channels/prod", body)
            except (httpx.TransportError, AssertionError, ValueError):
                return  # the server died under us (a cut connection, or half an answer)
            with lock:
                completed.append(fingerprint)
            i += 1

    threads = [
        threading.Thread(target=writer, args=(n, p), daemon=True) for n, p in enumerate(pushers)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(completed) < 2 * WRITERS and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)  # well inside the next round of writes
    server.kill()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    for p in pushers:
        p.close()
    assert len(completed) >= 2 * WRITERS, "the burst never got going"
    assert len(started) > len(completed), "the kill landed between pushes, not during one"
    return started


def recover(data_dir: Path, database_url: str | None, started: list[str]) -> None:
    """Restart on the same data, check, finish the interrupted pushes, check again."""
    first = run_check_cli(data_dir=data_dir, database_url=database_url)
    assert first.returncode == 0, first.stdout + first.stderr
    with plain_http_server(data_dir, database_url) as again:
        token, org, project = admin_token(again.base_url, data_dir)
        pusher = Pusher(again.base_url, token, org, project)
        try:
            for fingerprint in started:  # `packer build` rerun with the same fingerprint
                pusher.push("crash", fingerprint, COMPONENTS)
            versions = pusher.call(
                "GET", "/buckets/crash/versions", None
            )  # the first page is enough to see the numbering
            names = sorted(int(v["name"][1:]) for v in versions["versions"])
            assert 0 not in names
            bucket = pusher.call("GET", "/buckets/crash")["bucket"]
            assert int(bucket["version_count"]) == len(set(started))
            assert bucket["latest_version"]["name"] == f"v{len(set(started))}"
            pusher.push("crash", "after-restart", COMPONENTS)
        finally:
            pusher.close()
    final = run_check_cli(data_dir=data_dir, database_url=database_url, as_json=True)
    assert final.returncode == 0, final.stdout
    assert final.json()["checked"]["versions"] == len(set(started)) + 1


def test_kill_9_during_writes_sqlite(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with plain_http_server(data_dir) as server:
        started = burst_then_kill(server, data_dir)
    recover(data_dir, None, started)


def test_kill_9_during_writes_postgresql(tmp_path: Path, empty_pg_url: str) -> None:
    data_dir = tmp_path / "data"
    with plain_http_server(data_dir, empty_pg_url) as server:
        started = burst_then_kill(server, data_dir)
    recover(data_dir, empty_pg_url, started)
