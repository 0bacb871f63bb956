"""Events survive `kill -9`: a real server with a webhook is killed in the middle of a burst of
writes from several threads, then restarted on the same database.

Afterwards: every answered write has its audit entries; the journal matches the store (each
version has exactly one create event, each completed one exactly one complete event, its
revoke/restore events alternate and end in its state, the channels serve what their last
assign event says); events and audit entries are numbered without gap or repeat; and the
receiver got every event, a repeat only ever the same event (same id, same bytes), with the
first deliveries in event order and every signature valid.

The receiver holds the first delivery unanswered, so the kill always lands while one is in
flight: that event must arrive again after the restart (same id, same bytes). The killed
server's claim on it would hold for the delivery lease (120 s); while the server is down the
test moves the lease's end to now, the one liberty it takes, to stay under a minute.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from packyard.domain.rules import utcnow
from packyard.store.engine import Store, sqlite_url
from packyard.store.schema import (
    audit_events,
    buckets,
    builds,
    channels,
    events,
    versions,
    webhook_deliveries,
    webhooks,
)
from tests.support.receiver import Received, Receiver, receiving
from tests.support.robust import admin_token
from tests.support.serve_process import ServeProcess

WRITERS = 4
BUCKET = "events"
CHANNEL = "prod"
COMPONENTS = ("amazon-ebs.a", "docker.c")
HOOK = "robustness"
HOOK_KEY = "robustness-hmac-key"
SOURCE = "hashicorp.packer.version"
ENVELOPE = {
    "resource_id",
    "resource_name",
    "event_id",
    "event_action",
    "event_description",
    "event_source",
    "event_version",
    "event_payload",
}
# Each writer runs at least this many rounds before the kill, so revocations and restores
# (rounds 1 and 2) are in the burst too.
ROUNDS_BEFORE_KILL = 3
DELIVERY_DEADLINE_S = 25.0


class Cut(Exception):
    """The server died under a request: no answer, or half of one."""


class Refused(Exception):
    """The server answered a write with an error (recorded; the checks report it)."""


@dataclass(frozen=True)
class Outcome:
    """One write the burst sent: ``status`` None when it was cut."""

    kind: str  # create | build | running | done | assign | revoke | restore
    fingerprint: str
    status: int | None
    request_id: str
    detail: str = ""


@dataclass
class Writer:
    """One thread of the burst: Packer-style pushes, channel moves, revokes and restores."""

    base_url: str
    token: str
    organization_id: str
    project_id: str
    n: int
    outcomes: list[Outcome] = field(default_factory=list)
    rounds: int = 0

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.base_url, timeout=30, headers={"Authorization": f"Bearer {self.token}"}
        )
        self.prefix = (
            f"/packer/2023-01-01/organizations/{self.organization_id}/projects/{self.project_id}"
            f"/buckets/{BUCKET}"
        )

    def close(self) -> None:
        self.http.close()

    def write(self, kind: str, fingerprint: str, method: str, path: str, body: Any) -> Any:
        try:
            response = self.http.request(method, self.prefix + path, json=body)
            payload = response.json()
        except (httpx.TransportError, ValueError) as exc:
            self.outcomes.append(Outcome(kind, fingerprint, None, ""))
            raise Cut from exc
        request_id = response.headers.get("x-request-id", "")
        detail = "" if response.status_code == 200 else f"{method} {path}: {payload}"
        self.outcomes.append(Outcome(kind, fingerprint, response.status_code, request_id, detail))
        if response.status_code != 200:
            raise Refused(detail)
        return payload

    def push(self, fingerprint: str) -> None:
        version = f"/versions/{fingerprint}"
        body = {"fingerprint": fingerprint, "template_type": "HCL2"}
        self.write("create", fingerprint, "POST", "/versions", body)
        ids = []
        for component in COMPONENTS:
            build = {"component_type": component, "status": "BUILD_UNSET", "artifacts": None}
            created = self.write("build", fingerprint, "POST", version + "/builds", build)
            ids.append(created["build"]["id"])
        for build_id, component in zip(ids, COMPONENTS, strict=True):
            path = f"{version}/builds/{build_id}"
            self.write("running", fingerprint, "PATCH", path, {"status": "BUILD_RUNNING"})
            done = {
                "status": "BUILD_DONE",
                "platform": "aws",
                "artifacts": [
                    {"external_identifier": f"ami-{fingerprint}-{component}", "region": "eu-1"}
                ],
            }
            self.write("done", fingerprint, "PATCH", path, done)

    def run(self, stop: threading.Event) -> None:
        try:
            for i in range(200):
                if stop.is_set():
                    return
                fingerprint = f"ev-{self.n}-{i}"
                self.push(fingerprint)
                assign = {"version_fingerprint": fingerprint, "update_mask": "versionFingerprint"}
                self.write("assign", fingerprint, "PATCH", f"/channels/{CHANNEL}", assign)
                if i % 2 == 1:  # revoke the previous round's version (prod may roll back)
                    earlier = f"ev-{self.n}-{i - 1}"
                    revoke = {"revoke_in": "0s", "revocation_message": "burst"}
                    self.write("revoke", earlier, "PATCH", f"/versions/{earlier}", revoke)
                elif i >= 2:  # and restore it one round later
                    earlier = f"ev-{self.n}-{i - 2}"
                    restore = {"restore": True}
                    self.write("restore", earlier, "PATCH", f"/versions/{earlier}", restore)
                self.rounds += 1
        except (Cut, Refused):
            return


def serve(data_dir: Path, database_url: str | None) -> ServeProcess:
    database = ["--database-url", database_url] if database_url else []
    return ServeProcess(
        data_dir,
        "--no-tls",
        "--log-level",
        "warning",
        *database,
        env={"PACKYARD_WEBHOOK_ALLOW_PRIVATE": "1"},
    )


def set_up(server: ServeProcess, data_dir: Path, receiver: Receiver) -> tuple[str, str, str]:
    token, org, project = admin_token(server.base_url, data_dir)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
        packer = f"/packer/2023-01-01/organizations/{org}/projects/{project}"
        assert http.put(packer + "/buckets", json={"name": BUCKET}).status_code == 200
        channel = {"name": CHANNEL}
        assert http.post(f"{packer}/buckets/{BUCKET}/channels", json=channel).status_code == 200
        hook = {
            "name": HOOK,
            "config": {"url": receiver.url, "hmac_key": HOOK_KEY},
            "enabled": True,
            "subscriptions": [{"events": [{"source": SOURCE, "action": "*"}]}],
        }
        created = http.post(f"/2023-05-31/webhook/project/{project}/webhooks", json=hook)
        assert created.status_code == 200, created.text
    return token, org, project


def burst_then_kill(
    server: ServeProcess, receiver: Receiver, token: str, org: str, project: str
) -> list[Outcome]:
    """Kill the server once every writer ran a few rounds and deliveries are under way."""
    writers = [Writer(server.base_url, token, org, project, n) for n in range(WRITERS)]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,), daemon=True) for w in writers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        min(w.rounds for w in writers) < ROUNDS_BEFORE_KILL
        or len(receiver.requests) < 2  # the verification, then the first event
    ):
        time.sleep(0.01)
    time.sleep(0.03)  # inside the next round's writes
    server.kill()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    for w in writers:
        w.close()
    outcomes = [o for w in writers for o in w.outcomes]
    refused = [o.detail for o in outcomes if o.detail]
    assert min(w.rounds for w in writers) >= ROUNDS_BEFORE_KILL, ("no burst", refused)
    assert len(receiver.requests) == 2, "no delivery before the kill"
    assert any(o.status is None for o in outcomes), "the kill landed between writes"
    return outcomes


def expire_dead_claims(store: Store) -> int:
    """The killed server's claim on the delivery it was sending holds for its lease (120 s);
    move that moment to now, as if the lease had run out, so the test stays short. How many
    deliveries were in flight."""
    with store.write(affects_reads=False) as conn:
        return int(
            conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.state == "running")
                .values(next_attempt_at=utcnow())
            ).rowcount
        )


def wait_delivered(store: Store, receiver: Receiver) -> None:
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while True:
        with store.read() as conn:
            states = Counter(conn.execute(select(webhook_deliveries.c.state)).scalars().all())
        if set(states) <= {"delivered"}:
            return
        assert time.monotonic() < deadline, (states, len(receiver.requests))
        time.sleep(0.2)


@dataclass
class Journal:
    """The store and its journal, as the database holds them after recovery."""

    versions: dict[str, dict[str, Any]]  # id -> row
    fingerprints: dict[str, str]  # fingerprint -> id
    build_ids: set[str]
    prod_version: str | None
    latest_version: str | None
    events: list[dict[str, Any]]  # in seq order: id, seq, action, body
    audit: list[dict[str, Any]]  # in seq order
    deliveries: list[dict[str, Any]]

    @classmethod
    def read(cls, store: Store, project_id: str) -> Journal:
        with store.read() as conn:
            bucket = conn.execute(
                select(buckets.c.id, buckets.c.latest_version_id).where(buckets.c.name == BUCKET)
            ).one()
            rows = conn.execute(
                select(versions).where(versions.c.bucket_id == bucket.id)
            ).mappings()
            found = {r["id"]: dict(r) for r in rows}
            build_ids = set(
                conn.execute(
                    select(builds.c.id).where(builds.c.version_id.in_(list(found)))
                ).scalars()
            )
            prod = conn.execute(
                select(channels.c.version_id).where(
                    channels.c.bucket_id == bucket.id, channels.c.name == CHANNEL
                )
            ).scalar_one()
            journal = [
                dict(r)
                for r in conn.execute(
                    select(events.c.id, events.c.seq, events.c.action, events.c.body)
                    .where(events.c.project_id == project_id)
                    .order_by(events.c.seq)
                ).mappings()
            ]
            audit = [
                dict(r)
                for r in conn.execute(
                    select(audit_events)
                    .where(audit_events.c.scope == project_id)
                    .order_by(audit_events.c.seq)
                ).mappings()
            ]
            hook_id = conn.execute(
                select(webhooks.c.id).where(webhooks.c.name == HOOK)
            ).scalar_one()
            deliveries = [
                dict(r)
                for r in conn.execute(
                    select(webhook_deliveries).where(webhook_deliveries.c.webhook_id == hook_id)
                ).mappings()
            ]
        return cls(
            versions=found,
            fingerprints={r["fingerprint"]: i for i, r in found.items()},
            build_ids=build_ids,
            prod_version=prod,
            latest_version=bucket.latest_version_id,
            events=journal,
            audit=audit,
            deliveries=deliveries,
        )

    def of_version(self, action: str) -> Counter[str]:
        """How many ``action`` events each version id has."""
        return Counter(
            e["body"]["event_payload"]["version"]["id"]
            for e in self.events
            if e["action"] == action
        )

    def audited(self, description: str, block: str) -> Counter[str]:
        """How many OK audit entries ``description`` name each ``block`` id."""
        return Counter(
            a["record"][block]["id"]
            for a in self.audit
            if a["description"] == description and a["status"] == "OK"
        )


def check_numbering(journal: Journal) -> None:
    assert [e["seq"] for e in journal.events] == list(range(1, len(journal.events) + 1))
    assert [a["seq"] for a in journal.audit] == list(range(1, len(journal.audit) + 1))
    for e in journal.events:
        body = e["body"]
        assert set(body) == ENVELOPE
        assert (body["event_id"], body["event_action"], body["event_source"]) == (
            e["id"],
            e["action"],
            SOURCE,
        )


def check_answered_writes(journal: Journal, outcomes: list[Outcome]) -> None:
    """Every answered write has its audit entries (OK for a 200), and the events the writes
    that committed must have produced, no more (a cut write may or may not have committed)."""
    by_request: defaultdict[str, set[str]] = defaultdict(set)
    for a in journal.audit:
        by_request[a["request_id"]].add(a["status"])
    answered = [o for o in outcomes if o.status is not None]
    assert all(o.request_id for o in answered)
    for o in answered:
        assert by_request[o.request_id] == ({"OK"} if o.status == 200 else {"FAILED"}), o
    actions = {"create": "create", "revoke": "revoke", "restore": "restore"}
    for kind, action in actions.items():
        recorded = Counter(
            e["body"]["event_payload"]["version"]["fingerprint"]
            for e in journal.events
            if e["action"] == action
        )
        ok = Counter(o.fingerprint for o in outcomes if o.kind == kind and o.status == 200)
        cut = Counter(o.fingerprint for o in outcomes if o.kind == kind and o.status is None)
        for fingerprint in set(recorded) | set(ok):
            assert ok[fingerprint] <= recorded[fingerprint] <= ok[fingerprint] + cut[fingerprint], (
                kind,
                fingerprint,
            )
    done = Counter(o.fingerprint for o in outcomes if o.kind == "done" and o.status == 200)
    completes = journal.of_version("complete")
    for fingerprint, builds_done in done.items():
        if builds_done == len(COMPONENTS):
            assert completes[journal.fingerprints[fingerprint]] == 1, fingerprint
    # Each writer works on its own versions: no write has a reason to be refused.
    assert [o for o in answered if o.status != 200] == []


def check_store_matches_journal(journal: Journal) -> None:
    """A change and its records committed together or not at all."""
    ids = set(journal.versions)
    assert journal.of_version("create") == Counter(ids)
    completed = {i for i, v in journal.versions.items() if v["number"] is not None}
    assert journal.of_version("complete") == Counter(completed)
    assert journal.audited("Created version", "version") == Counter(ids)
    assert journal.audited("Completed version", "version") == Counter(completed)
    assert journal.audited("Created build", "build") == Counter(journal.build_ids)
    history: defaultdict[str, list[str]] = defaultdict(list)
    for e in journal.events:
        if e["action"] in ("revoke", "restore"):
            history[e["body"]["event_payload"]["version"]["id"]].append(e["action"])
    now = utcnow()
    for version_id, row in journal.versions.items():
        seen = history[version_id]
        assert seen == ["revoke", "restore"] * (len(seen) // 2) + ["revoke"] * (len(seen) % 2)
        revoked = row["revoke_at"] is not None and row["revoke_at"] <= now
        assert revoked == (len(seen) % 2 == 1), (row["fingerprint"], seen)
    served: dict[str, str | None] = {}
    for e in journal.events:
        if e["action"] == "assign":
            payload = e["body"]["event_payload"]
            served[payload["channel"]["name"]] = payload.get("version", {}).get("id")
    assert served.get(CHANNEL) == journal.prod_version
    assert served.get("latest") == journal.latest_version
    assert sorted(d["event_id"] for d in journal.deliveries) == sorted(
        e["id"] for e in journal.events
    )


def check_received(journal: Journal, received: list[Received]) -> None:
    """Every event arrived, signed; a repeat is the same event again; first deliveries in
    event order."""
    stored = {e["id"]: e for e in journal.events}
    first: dict[str, bytes] = {}
    order: list[int] = []
    for r in received:
        expected = hmac.new(HOOK_KEY.encode(), r.body, hashlib.sha512).hexdigest()
        assert r.headers.get("x-hcp-webhook-signature") == expected
        body = r.json()
        if body["event_source"] != SOURCE:  # the verification event of the webhook's creation
            continue
        event_id = body["event_id"]
        if event_id in first:
            assert r.body == first[event_id]  # a redelivery: the same event, byte for byte
            continue
        first[event_id] = r.body
        assert body == stored[event_id]["body"]
        order.append(stored[event_id]["seq"])
    assert set(first) == set(stored)
    assert order == sorted(order)
    # The delivery in flight at the kill was sent again after the restart.
    assert len(received) - 1 == len(stored) + 1


@contextmanager
def opened(url: str) -> Iterator[Store]:
    store = Store(url)
    try:
        yield store
    finally:
        store.dispose()


def kill_and_recover(tmp_path: Path, database_url: str | None) -> None:
    data_dir = tmp_path / "data"
    url = database_url or sqlite_url(str(data_dir / "packyard.db"))
    with receiving() as receiver:
        with serve(data_dir, database_url) as server:
            token, org, project = set_up(server, data_dir, receiver)
            receiver.delay_s = 30  # the first delivery is in flight when the server dies
            outcomes = burst_then_kill(server, receiver, token, org, project)
        receiver.delay_s = 0
        with opened(url) as store:
            assert expire_dead_claims(store) == 1
        with serve(data_dir, database_url), opened(url) as store:
            wait_delivered(store, receiver)
        with opened(url) as store:
            journal = Journal.read(store, project)
        received = list(receiver.requests)
    check_numbering(journal)
    check_answered_writes(journal, outcomes)
    check_store_matches_journal(journal)
    check_received(journal, received)


@pytest.mark.timeout(60)
def test_kill_9_during_writes_loses_no_event_sqlite(tmp_path: Path) -> None:
    kill_and_recover(tmp_path, None)


@pytest.mark.timeout(60)
def test_kill_9_during_writes_loses_no_event_postgresql(tmp_path: Path, empty_pg_url: str) -> None:
    kill_and_recover(tmp_path, empty_pg_url)
