"""What every change records (both backends): its audit entries (description, status) and its
webhook events (actions), exactly; the events' payloads against HCP's documented examples;
and atomicity (no record, no change)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from packyard.domain.enums import BuildStatus, Role, RunTaskBehaviour, TemplateType
from packyard.domain.events import AuditAction, Change
from packyard.domain.models import Caller, Operator
from packyard.domain.rules import utcnow
from packyard.errors import ApiError, Code
from packyard.services.builds import ArtifactInput, BuildChanges
from packyard.services.container import Services
from packyard.services.journal import record_failure
from packyard.store.journal import JournalRepo
from packyard.store.schema import audit_events, buckets, events
from tests.support.factories import TenantFixture, unique
from tests.support.revocation import Pushed, new_buckets, push_version, request

EXAMPLES = Path(__file__).parent / "fixtures" / "hcp_webhook_examples.json"


@dataclass
class World:
    """``base``: a1 then a2 (`latest` a2), channel prod on a1, and a3 still running (one
    build, RUNNING); ``child``: c1 built on a2 (`latest` c1)."""

    caller: Caller
    tenant: TenantFixture
    base: str
    child: str
    a1: Pushed
    a2: Pushed
    a3: str
    a3_build: str
    c1: Pushed


def world(services: Services, tenant: TenantFixture) -> World:
    caller = tenant.caller(Role.ADMIN)
    base, child = new_buckets(services, caller, "base", "child")
    a1 = push_version(services, caller, base)
    a2 = push_version(services, caller, base)
    services.channels.create(caller, base, "prod", a1.fingerprint, False)
    a3 = unique("fp")
    services.versions.create(caller, base, a3, TemplateType.HCL2)
    build = services.builds.create(
        caller, base, a3, "null.a", BuildChanges(status=BuildStatus.RUNNING)
    )
    c1 = push_version(services, caller, child, parent_id=a2.id)
    return World(caller, tenant, base, child, a1, a2, a3, build.id, c1)


@dataclass
class Recorded:
    audit: list[tuple[str, str]]
    records: list[dict[str, Any]]
    actors: list[str]
    events: list[str]
    bodies: list[dict[str, Any]]


class Journal:
    """The records of one project made after :meth:`mark`."""

    def __init__(self, services: Services, project_id: str) -> None:
        self.services = services
        self.project_id = project_id
        self.audit_seq = self.event_seq = 0

    def mark(self) -> None:
        with self.services.store.read() as conn:
            self.audit_seq = conn.execute(
                select(func.coalesce(func.max(audit_events.c.seq), 0)).where(
                    audit_events.c.scope == self.project_id
                )
            ).scalar_one()
            self.event_seq = conn.execute(
                select(func.coalesce(func.max(events.c.seq), 0)).where(
                    events.c.project_id == self.project_id
                )
            ).scalar_one()

    def since(self) -> Recorded:
        with self.services.store.read() as conn:
            audit = conn.execute(
                select(audit_events)
                .where(audit_events.c.scope == self.project_id, audit_events.c.seq > self.audit_seq)
                .order_by(audit_events.c.seq)
            ).all()
            found = conn.execute(
                select(events)
                .where(events.c.project_id == self.project_id, events.c.seq > self.event_seq)
                .order_by(events.c.seq)
            ).all()
        return Recorded(
            audit=[(r.description, r.status) for r in audit],
            records=[dict(r.record) for r in audit],
            actors=[r.actor_type for r in audit],
            events=[r.action for r in found],
            bodies=[dict(r.body) for r in found],
        )


Op = Callable[[Services, World], Any]


def _noop(services: Services, w: World) -> None:
    return None


def _done(w: World) -> BuildChanges:
    return BuildChanges(
        status=BuildStatus.DONE,
        platform="aws",
        artifacts=[ArtifactInput(unique("ami"), "us-east-1")],
    )


def _assign(fingerprint: str | None) -> Op:
    def act(services: Services, w: World) -> None:
        services.channels.update(
            w.caller,
            w.base,
            "prod",
            fingerprint=fingerprint and getattr(w, fingerprint).fingerprint,
            restricted=None,
            update_mask="versionFingerprint",
        )

    return act


def _schedule(services: Services, w: World) -> None:
    at = utcnow() + timedelta(hours=1)
    services.revocation.update(w.caller, w.base, w.a2.fingerprint, request(revoke_at=at))


def _revoke_now(services: Services, w: World) -> None:
    services.revocation.update(w.caller, w.base, w.a2.fingerprint, request(revoke_in="0s"))


def _org(w: World) -> tuple[str, str]:
    return w.tenant.organization_id, w.tenant.project_id


def _principal(services: Services, w: World) -> str:
    org, project = _org(w)
    created = services.principals.create(Operator(), org, project, name="ci-bot", role=Role.VIEWER)
    return created.principal.id


def _user(services: Services, w: World) -> str:
    org, project = _org(w)
    created = services.users.create(
        w.caller, org, project, email="ann@example.com", role=Role.VIEWER
    )
    return created.record.user.id


def _principal_lifecycle(services: Services, w: World) -> None:
    org, project = _org(w)
    ref = _principal(services, w)
    services.principals.update(w.caller, org, project, ref, role=Role.CONTRIBUTOR)
    services.principals.rotate_secret(w.caller, org, project, ref)
    services.principals.delete(w.caller, org, project, ref)


def _user_lifecycle(services: Services, w: World) -> None:
    org, project = _org(w)
    ref = _user(services, w)
    services.users.update(w.caller, org, project, ref, role=Role.CONTRIBUTOR)
    services.users.reset_password(w.caller, org, project, ref)


def _access_lifecycle(services: Services, w: World) -> None:
    org, project = _org(w)
    ref = _principal(services, w)
    services.access.grant(w.caller, org, project, ref, Role.CONTRIBUTOR, w.base)
    services.access.revoke(w.caller, org, project, ref, w.base)


ROWS: list[tuple[str, Op, Op, list[tuple[str, str]], list[str]]] = [
    (
        "create bucket",
        _noop,
        lambda s, w: s.buckets.create(w.caller, unique("b"), None, {"os": "linux"}),
        [("Created bucket", "OK")],
        [],
    ),
    (
        "update bucket",
        _noop,
        lambda s, w: s.buckets.update(w.caller, w.base, "golden", {"os": "linux"}),
        [("Updated bucket", "OK")],
        [],
    ),
    (
        "delete bucket",
        _noop,
        lambda s, w: s.buckets.delete(w.caller, w.child),
        [("Deleted bucket", "OK")],
        [],
    ),
    (
        "create version",
        _noop,
        lambda s, w: s.versions.create(w.caller, w.base, unique("fp"), TemplateType.HCL2),
        [("Created version", "OK")],
        ["create"],
    ),
    (
        "create build",
        lambda s, w: s.builds.delete(w.caller, w.base, w.a3, w.a3_build),
        lambda s, w: s.builds.create(w.caller, w.base, w.a3, "null.b", BuildChanges()),
        [("Created build", "OK")],
        [],
    ),
    (
        "update build",
        _noop,
        lambda s, w: s.builds.update(
            w.caller, w.base, w.a3, w.a3_build, BuildChanges(labels={"os": "linux"})
        ),
        [("Updated build", "OK")],
        [],
    ),
    (
        "update build completes the version, latest moves",
        _noop,
        lambda s, w: s.builds.update(w.caller, w.base, w.a3, w.a3_build, _done(w)),
        [("Updated build", "OK"), ("Completed version", "OK")],
        ["complete", "assign"],
    ),
    (
        "create a DONE build completes the version",
        lambda s, w: s.builds.delete(w.caller, w.base, w.a3, w.a3_build),
        lambda s, w: s.builds.create(w.caller, w.base, w.a3, "null.b", _done(w)),
        [("Created build", "OK"), ("Completed version", "OK")],
        ["complete", "assign"],
    ),
    (
        "force complete",
        lambda s, w: s.builds.create(w.caller, w.base, w.a3, "null.b", _done(w)),
        lambda s, w: s.versions.force_complete(w.caller, w.base, w.a3),
        [("Completed version", "OK")],
        ["complete", "assign"],
    ),
    (
        "delete build",
        _noop,
        lambda s, w: s.builds.delete(w.caller, w.base, w.a3, w.a3_build),
        [("Deleted build", "OK")],
        [],
    ),
    (
        "delete version rolls its channel back",
        _noop,
        lambda s, w: s.versions.delete(w.caller, w.base, w.a1.fingerprint, rollback_channels=True),
        [("Deleted version", "OK")],
        ["delete", "assign"],
    ),
    (
        "create channel with a version",
        _noop,
        lambda s, w: s.channels.create(w.caller, w.base, "qa", w.a2.fingerprint, False),
        [("Created channel", "OK")],
        ["assign"],
    ),
    (
        "create channel without a version",
        _noop,
        lambda s, w: s.channels.create(w.caller, w.base, "qa", None, True),
        [("Created channel", "OK")],
        [],
    ),
    (
        "assign",
        _noop,
        _assign("a2"),
        [("Assigned version to channel", "OK")],
        ["assign"],
    ),
    (
        "unassign",
        _noop,
        _assign(None),
        [("Assigned version to channel", "OK")],
        ["assign"],
    ),
    (
        "restrict channel",
        _noop,
        lambda s, w: s.channels.update(
            w.caller, w.base, "prod", fingerprint=None, restricted=True, update_mask="restricted"
        ),
        [("Updated channel", "OK")],
        [],
    ),
    (
        "promote",
        _noop,
        lambda s, w: s.channels.promote(w.caller, w.base, "latest", "prod"),
        [("Assigned version to channel", "OK")],
        ["assign"],
    ),
    (
        "delete channel",
        _noop,
        lambda s, w: s.channels.delete(w.caller, w.base, "prod"),
        [("Deleted channel", "OK")],
        [],
    ),
    (
        # a2 and c1 (inherited) revoked; `latest` of base back to a1, of child unassigned.
        "revoke now, cascade and rollback",
        _noop,
        _revoke_now,
        [("Revoked version", "OK")],
        ["revoke", "revoke", "assign", "assign"],
    ),
    (
        "revoke now, descendants skipped",
        _noop,
        lambda s, w: s.revocation.update(
            w.caller, w.base, w.a2.fingerprint, request(revoke_in="0s", skip_descendants=True)
        ),
        [("Revoked version", "OK")],
        ["revoke", "assign"],
    ),
    (
        "schedule revocation",
        _noop,
        _schedule,
        [("Scheduled version revocation", "OK")],
        ["schedule-revocation", "schedule-revocation"],
    ),
    (
        "scheduler applies a due revocation",
        _schedule,
        lambda s, w: s.scheduler.apply_due(utcnow() + timedelta(hours=2)),
        [("Revoked version", "OK")],
        ["revoke", "revoke", "assign", "assign"],
    ),
    (
        "restore",
        _revoke_now,
        lambda s, w: s.revocation.update(w.caller, w.base, w.a2.fingerprint, request(restore=True)),
        [("Restored version", "OK")],
        ["restore", "restore"],
    ),
    (
        "cancel a scheduled revocation",
        _schedule,
        lambda s, w: s.revocation.update(w.caller, w.base, w.a2.fingerprint, request(restore=True)),
        [("Cancelled version revocation", "OK")],
        ["cancel-revocation", "cancel-revocation"],
    ),
    (
        "update registry",
        _noop,
        lambda s, w: s.registry.update(
            w.caller, tier=None, activated=True, update_mask="activated"
        ),
        [("Updated registry", "OK")],
        [],
    ),
    (
        "run task configuration",
        _noop,
        lambda s, w: s.runtasks.update_config(w.caller, RunTaskBehaviour.FAIL),
        [("Updated run task configuration", "OK")],
        [],
    ),
    (
        "run task HMAC key",
        _noop,
        lambda s, w: s.runtasks.regenerate_hmac(w.caller),
        [("Regenerated run task HMAC key", "OK")],
        [],
    ),
    (
        "create principal (operator)",
        _noop,
        _principal,
        [("Created service principal", "OK")],
        [],
    ),
    (
        "update, rotate and delete a principal",
        _noop,
        _principal_lifecycle,
        [
            ("Created service principal", "OK"),
            ("Updated service principal", "OK"),
            ("Rotated service principal secret", "OK"),
            ("Deleted service principal", "OK"),
        ],
        [],
    ),
    (
        "create, update and reset a user",
        _noop,
        _user_lifecycle,
        [("Created user", "OK"), ("Updated user", "OK"), ("Reset user password", "OK")],
        [],
    ),
    (
        "grant and revoke bucket access",
        _noop,
        _access_lifecycle,
        [
            ("Created service principal", "OK"),
            ("Granted access", "OK"),
            ("Revoked access", "OK"),
        ],
        [],
    ),
]


@pytest.mark.parametrize(
    ("prepare", "act", "audit", "actions"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_every_change_records_exactly(
    services: Services,
    tenant: TenantFixture,
    prepare: Op,
    act: Op,
    audit: list[tuple[str, str]],
    actions: list[str],
) -> None:
    w = world(services, tenant)
    prepare(services, w)
    journal = Journal(services, tenant.project_id)
    journal.mark()
    act(services, w)
    got = journal.since()
    assert got.audit == audit
    assert got.events == actions
    for body in got.bodies:
        assert body["event_source"] == "hashicorp.packer.version"
        assert body["event_payload"]["project_id"] == tenant.project_id


def test_the_revocation_cascade_names_every_version_and_channel(
    services: Services, tenant: TenantFixture
) -> None:
    w = world(services, tenant)
    journal = Journal(services, tenant.project_id)
    journal.mark()
    _revoke_now(services, w)
    got = journal.since()
    revoked = [b["event_payload"] for b in got.bodies if b["event_action"] == "revoke"]
    assert [(p["bucket"]["name"], p["version"]["id"]) for p in revoked] == [
        (w.base, w.a2.id),
        (w.child, w.c1.id),
    ]
    assert {p["version"]["status"] for p in revoked} == {"REVOKED"}
    assert {p["skip_descendants_revocation"] for p in revoked} == {False}
    moved = {
        (b["event_payload"]["bucket"]["name"], b["event_payload"]["channel"]["name"]): b[
            "event_payload"
        ]
        for b in got.bodies
        if b["event_action"] == "assign"
    }
    assert set(moved) == {(w.base, "latest"), (w.child, "latest")}
    assert moved[(w.base, "latest")]["version"]["id"] == w.a1.id
    assert moved[(w.base, "latest")]["previous_version"]["id"] == w.a2.id
    assert "version" not in moved[(w.child, "latest")]  # unassigned: nothing valid is left
    assert moved[(w.child, "latest")]["previous_version"]["id"] == w.c1.id
    assert got.records[0]["skip_descendants_revocation"] is False
    assert got.records[0]["version"]["status"] == "REVOKED"


def test_the_scheduler_records_as_the_registry(services: Services, tenant: TenantFixture) -> None:
    w = world(services, tenant)
    _schedule(services, w)
    journal = Journal(services, tenant.project_id)
    journal.mark()
    services.scheduler.apply_due(utcnow() + timedelta(hours=2))
    got = journal.since()
    assert got.actors == ["TYPE_INTERNAL_OPERATOR"]
    assert {b["event_payload"]["actor"]["type"] for b in got.bodies} == {"TYPE_INTERNAL_OPERATOR"}


def test_the_scheduler_records_each_origin_with_its_own_descendants(
    services: Services, tenant: TenantFixture
) -> None:
    """Several revocations taking effect in one pass: each origin's audit entry, then its
    ``revoke`` event followed by those of the descendants that copied it (read by origin
    from one statement), and an origin no descendant copied alone."""
    caller = tenant.caller(Role.ADMIN)
    base, child = new_buckets(services, caller, "base", "child")
    origins = [push_version(services, caller, base) for _ in range(3)]
    copies = {
        origins[0].id: [push_version(services, caller, child, parent_id=origins[0].id).id],
        origins[1].id: [
            push_version(services, caller, child, parent_id=origins[1].id).id for _ in range(2)
        ],
        origins[2].id: [],
    }
    at = utcnow() + timedelta(hours=1)
    for origin in origins:
        services.revocation.update(caller, base, origin.fingerprint, request(revoke_at=at))
    journal = Journal(services, tenant.project_id)
    journal.mark()
    services.scheduler.apply_due(at + timedelta(minutes=1))
    got = journal.since()
    audited = [r["version"]["id"] for r in got.records]
    assert sorted(audited) == sorted(copies)
    revoked = [
        b["event_payload"]["version"]["id"] for b in got.bodies if b["event_action"] == "revoke"
    ]
    assert revoked == [vid for origin in audited for vid in (origin, *copies[origin])]


def test_operator_changes_are_by_the_internal_operator(
    services: Services, tenant: TenantFixture
) -> None:
    w = world(services, tenant)
    journal = Journal(services, tenant.project_id)
    journal.mark()
    _principal(services, w)
    got = journal.since()
    assert got.actors == ["TYPE_INTERNAL_OPERATOR"]
    assert "client_secret" not in json.dumps(got.records)


def test_a_refused_change_is_one_failed_record(services: Services, tenant: TenantFixture) -> None:
    """What the API and the console do with a refusal: the change's own transaction rolled
    back, one FAILED record in a transaction of its own, no event."""
    w = world(services, tenant)
    viewer = tenant.caller(Role.VIEWER)
    journal = Journal(services, tenant.project_id)
    journal.mark()
    with pytest.raises(ApiError) as refused:
        services.buckets.update(viewer, w.base, "mine now", None)
    assert refused.value.code is Code.PERMISSION_DENIED
    assert journal.since().audit == []
    change = Change(AuditAction.UPDATE, "Updated bucket", {"bucket": {"name": w.base}}, w.base)
    record_failure(services.store, tenant.project_id, viewer, change, refused.value)
    got = journal.since()
    assert got.audit == [("Updated bucket", "FAILED")]
    assert got.events == []
    assert got.records[0]["error"].startswith("code = PERMISSION_DENIED desc = ")


def test_no_record_no_change(
    services: Services, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caller = tenant.caller(Role.ADMIN)

    def broken(self: JournalRepo, row: Any) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(JournalRepo, "add_audit", broken)
    name = unique("b")
    with pytest.raises(RuntimeError):
        services.buckets.create(caller, name, None, None)
    with services.store.read() as conn:
        assert conn.execute(select(buckets.c.id).where(buckets.c.name == name)).first() is None


# --- payloads against HCP's documented examples ---------------------------------------------


def _shape(value: Any) -> Any:
    """The structure of a JSON value: keys (recursively), list element shapes, leaf types;
    ``labels`` are a map of anyone's keys."""
    if isinstance(value, dict):
        return {k: "map" if k == "labels" else _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return "bool" if isinstance(value, bool) else type(value).__name__


def _example(action: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(EXAMPLES.read_text())[action]
    return found


def test_complete_event_has_hcps_shape(services: Services, tenant: TenantFixture) -> None:
    w = world(services, tenant)
    journal = Journal(services, tenant.project_id)
    journal.mark()
    services.builds.update(w.caller, w.base, w.a3, w.a3_build, _done(w))
    body = next(b for b in journal.since().bodies if b["event_action"] == "complete")
    expected = _shape(_example("complete"))
    got = _shape(body)
    # A service principal acted: HCP's `service` block where the example has its `user`.
    del expected["event_payload"]["actor"]["user"]
    assert got["event_payload"]["actor"].pop("service") == {
        "id": "str",
        "name": "str",
        "user_managed": "bool",
    }
    assert got == expected
    assert body["event_payload"]["version"]["status"] == "ACTIVE"
    assert body["event_payload"]["version"]["revoke_at"] == ""
    assert body["event_id"].startswith("packer.event:")


def test_assign_event_has_hcps_shape(services: Services, tenant: TenantFixture) -> None:
    w = world(services, tenant)
    journal = Journal(services, tenant.project_id)
    journal.mark()
    services.builds.update(w.caller, w.base, w.a3, w.a3_build, _done(w))
    body = next(b for b in journal.since().bodies if b["event_action"] == "assign")
    expected = _shape(_example("assign"))
    got = _shape(body)
    del expected["event_payload"]["actor"]["user"]
    got["event_payload"]["actor"].pop("service")
    assert got == expected
    channel = body["event_payload"]["channel"]
    assert (channel["name"], channel["author_id"], channel["managed"]) == (
        "latest",
        "HCP Packer",
        True,
    )
    assert body["event_payload"]["previous_version"]["id"] == w.a2.id


def test_create_event_has_no_builds(services: Services, tenant: TenantFixture) -> None:
    w = world(services, tenant)
    journal = Journal(services, tenant.project_id)
    journal.mark()
    services.versions.create(w.caller, w.base, unique("fp"), TemplateType.HCL2)
    payload = journal.since().bodies[0]["event_payload"]
    assert "builds" not in payload
    assert (payload["version"]["name"], payload["version"]["status"]) == ("v0", "RUNNING")
