"""The write path with a dead webhook receiver: Packer pushes while a webhook subscribed to
every event points at a receiver that never answers, against the same pushes with no webhook.

Deliveries are sent by a background worker from a queue the write transaction fills, so a dead
receiver should cost a push only the delivery rows its events add. The receiver answers the
webhook's verification (a webhook is stored enabled only once its endpoint answered 2xx), then
dies as a black hole: it accepts every connection and never reads nor answers, so each delivery
attempt holds the worker until ``PACKYARD_WEBHOOK_TIMEOUT_S`` (10 s) and is retried with backoff.
"""

from __future__ import annotations

import socket
import statistics
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from bench.push import PushResult

WEBHOOK_API = "/2023-05-31"
HOOK_NAME = "bench-dead-receiver"
# The server must be allowed to call a loopback receiver.
SERVER_ENV = {"PACKYARD_WEBHOOK_ALLOW_PRIVATE": "1"}
_VERIFIED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\n{}"
)


class DeadReceiver:
    """A loopback HTTP endpoint that answers 200 until :meth:`die`, then accepts connections
    and holds them without reading or answering (until :meth:`close`)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.answered = 0  # requests answered while alive (the verification)
        self.held = 0  # connections accepted once dead: delivery attempts that got nowhere
        self._dead = threading.Event()
        self._closed = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name="dead-receiver", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._listener.settimeout(0.2)
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._dead.is_set():
                self._held.append(conn)  # a black hole: never read, never answered
                self.held += 1
                continue
            with conn:
                conn.settimeout(5)
                request = b""
                try:
                    while b"\r\n\r\n" not in request:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        request += chunk
                    head, _, body = request.partition(b"\r\n\r\n")
                    length = _content_length(head)
                    while len(body) < length:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        body += chunk
                    # Counted before the answer leaves: whoever has read it sees it counted.
                    self.answered += 1
                    conn.sendall(_VERIFIED)
                except OSError:
                    pass

    def die(self) -> None:
        self._dead.set()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for conn in self._held:
            conn.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip() or 0)
    return 0


@contextmanager
def dead_webhook(base_url: str, token: str, project_id: str) -> Iterator[DeadReceiver]:
    """A webhook subscribed to every event (``*``/``*``), enabled (verified while its receiver
    was alive), whose receiver is dead for the duration of the block; deleted afterwards."""
    receiver = DeadReceiver()
    headers = {"Authorization": f"Bearer {token}"}
    hooks = f"{WEBHOOK_API}/webhook/project/{project_id}/webhooks"
    hook = f"{WEBHOOK_API}/webhook/project/{project_id}/geo/us/webhook/{HOOK_NAME}"
    try:
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
            created = client.post(
                hooks,
                json={
                    "name": HOOK_NAME,
                    "config": {"url": receiver.url, "hmac_key": "bench-hmac-key"},
                    "enabled": True,
                    "subscriptions": [{"events": [{"source": "*", "action": "*"}]}],
                },
            )
            if created.status_code != 200:
                raise RuntimeError(
                    f"creating the webhook: HTTP {created.status_code} {created.text[:300]}"
                )
            receiver.die()
            try:
                yield receiver
            finally:
                # Its queued deliveries go with it, so the next baseline round has no backlog.
                client.delete(hook)
    finally:
        receiver.close()


Push = Callable[[], PushResult]


def compare(
    push: Push, start_hook: Callable[[], Any], *, rounds: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """``rounds`` pairs of a push run without a webhook and one with the dead receiver's
    webhook (``start_hook()``: a context manager), in ABBA order so that a drift of the
    machine over the runs weighs on both alike; medians and their ratio."""
    without: list[PushResult] = []
    with_hook: list[PushResult] = []
    held = 0

    def dead() -> PushResult:
        nonlocal held
        with start_hook() as receiver:
            result = push()
            held += receiver.held
        with_hook.append(result)
        return result

    def baseline() -> PushResult:
        result = push()
        without.append(result)
        return result

    for i in range(max(1, rounds)):
        if i % 2 == 0:
            a, b = baseline(), dead()
        else:
            b, a = dead(), baseline()
        log(
            f"round {i + 1}: {a.versions_per_s:.1f} versions/s without a webhook, "
            f"{b.versions_per_s:.1f} with a dead receiver" + (" (dead first)" if i % 2 else "")
        )
    rate_without = statistics.median(r.versions_per_s for r in without)
    rate_with = statistics.median(r.versions_per_s for r in with_hook)
    return {
        "pushers": without[0].pushers,
        "rounds": len(without),
        "versions_per_s_without": round(rate_without, 2),
        "versions_per_s_dead_receiver": round(rate_with, 2),
        "ratio": round(rate_with / rate_without, 4) if rate_without else None,
        "delivery_attempts_swallowed": held,
        "failures": sum(r.failures for r in [*without, *with_hook]),
        "p50_ms_without": round(statistics.median(r.version_p50_ms for r in without), 1),
        "p50_ms_dead_receiver": round(statistics.median(r.version_p50_ms for r in with_hook), 1),
        "runs_without": [r.to_json() for r in without],
        "runs_dead_receiver": [r.to_json() for r in with_hook],
    }
