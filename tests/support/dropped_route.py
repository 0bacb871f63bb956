"""A PostgreSQL host whose route drops while Packyard's connections wait on it.

Run as ``unshare -n python -m tests.support.dropped_route UNIX_SOCKET DATABASE`` (root):
in a network namespace of its own, the program reaches PostgreSQL over TCP through that
namespace's loopback (a proxy to the cluster's Unix socket), then takes the loopback down,
so that nothing it sends is acknowledged and nothing comes back, as when a database's
primary fails over or a firewall forgets a connection. It prints one JSON object: how long
a read in flight and the response cache's probe waited before failing, and whether both
worked again once the route was back. The connections' liveness bound is shortened to
``DEAD_PEER_S`` so that the program takes seconds.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from packyard.store import engine
from packyard.store.engine import Store
from packyard.store.probe import GenerationProbe, open_probe
from tests.support.tcp_proxy import freezable_proxy

DEAD_PEER_S = 2
DROP_AFTER_S = 0.3  # into the read in flight
PROJECT = "dropped-route"


def _loopback(state: str) -> None:
    subprocess.run(["ip", "link", "set", "lo", state], check=True)


def _read_in_flight(store: Store) -> tuple[str | None, float]:
    """The read's error (the driver's exception's name, ``None`` if it succeeded) and when
    it ended."""
    try:
        with store.read() as conn:
            conn.execute(text("SELECT pg_sleep(1)"))
        error = None
    except OperationalError as exc:
        error = type(exc.orig).__name__
    return error, time.monotonic()


def _read_one(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(text("SELECT 1")).scalar_one())


async def _scenario(store: Store, probe: GenerationProbe) -> dict[str, Any]:
    before = [await asyncio.to_thread(_read_one, store), await probe.generation(PROJECT, None)]
    reader = asyncio.create_task(asyncio.to_thread(_read_in_flight, store))
    await asyncio.sleep(DROP_AFTER_S)
    _loopback("down")
    dropped_at = time.monotonic()
    probed = await probe.generation(PROJECT, None)  # idle till now: its query goes unanswered
    probe_waited_s = time.monotonic() - dropped_at
    read_error, read_ended_at = await reader
    _loopback("up")
    after = [await asyncio.to_thread(_read_one, store), await probe.generation(PROJECT, None)]
    await probe.aclose()
    return {
        "before": before,
        "read_error": read_error,
        "read_waited_s": read_ended_at - dropped_at,
        "probe": probed,
        "probe_waited_s": probe_waited_s,
        "after": after,
    }


def main(unix_socket: str, database: str) -> dict[str, Any]:
    _loopback("up")
    engine.PG_DEAD_PEER_S, engine.PG_KEEPALIVE_IDLE_S = DEAD_PEER_S, 1
    with freezable_proxy(unix_socket) as proxy:
        store = Store(f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{database}")
        probe = open_probe(store)
        assert probe is not None
        try:
            return asyncio.run(_scenario(store, probe))
        finally:
            store.dispose()


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:])))
