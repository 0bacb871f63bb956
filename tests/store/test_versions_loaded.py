"""Versions read with their builds, artifacts and parent edges as JSON columns of one
statement (``VersionRepo.get_loaded``, ``hydrate``, ``get_with_builds``) hold exactly what
the tables hold, on both backends and for every kind of scope."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import Any

import pytest
from sqlalchemy import Connection, event, select

from packyard.domain.access import RestrictedScope
from packyard.domain.enums import BuildStatus, Role, TemplateType
from packyard.domain.models import Version
from packyard.domain.rules import aggregate_status
from packyard.services.builds import ArtifactInput, BuildChanges
from packyard.services.container import Services
from packyard.services.views import hide_unseen_descendants
from packyard.store.ancestry import LineageRepo
from packyard.store.channels import ChannelRepo
from packyard.store.engine import Store
from packyard.store.schema import artifacts, builds
from packyard.store.versions import BuildRepo, VersionRepo
from tests.support.bucket_reads import Scene, build_scene, move_b_gold_on
from tests.support.factories import TenantFixture, unique

# Values JSON aggregation could bend: text beyond ASCII, the widest integers accepted (which
# must not become floats), a float, nesting, nulls and booleans.
_LABELS = {"ünï": "cödé ✓", "quote": 'a "b" \\ c'}
_METADATA = {
    "big": 18446744073709551615,
    "low": -9223372036854775808,
    "ratio": 1.5,
    "nested": {"list": [1, None, True, "x"], "empty": {}},
}


@pytest.fixture
def scene(services: Services, tenant: TenantFixture) -> Scene:
    return build_scene(services, tenant)


@pytest.fixture
def rich(services: Services, tenant: TenantFixture, scene: Scene) -> str:
    """A version of ``scene.app`` with two builds: one with unusual labels and metadata and
    three artifacts, one without metadata or artifacts; returns its id."""
    admin = tenant.caller(Role.ADMIN)
    bucket, fp = scene.app.name, unique("fp")
    version = services.versions.create(admin, bucket, fp, TemplateType.HCL2)
    first = services.builds.create(admin, bucket, fp, "amazon-ebs.first", BuildChanges())
    services.builds.create(admin, bucket, fp, "docker.second", BuildChanges())
    services.builds.update(
        admin,
        bucket,
        fp,
        first.id,
        BuildChanges(
            status=BuildStatus.DONE,
            platform="aws",
            labels=_LABELS,
            metadata=_METADATA,
            artifacts=[ArtifactInput(f"ami-{i}", region) for i, region in enumerate("cab")],
            parent_version_id=scene.a1.id,
            parent_channel_id=scene.a_gold.id,
        ),
    )
    return version.id


def _tables(conn: Connection, version_id: str) -> list[dict[str, Any]]:
    """The version's builds and their artifacts as the tables hold them, in display order."""
    found = []
    for b in conn.execute(
        select(builds).where(builds.c.version_id == version_id).order_by(builds.c.created_at)
    ):
        arts = conn.execute(
            select(artifacts.c.id, artifacts.c.external_identifier, artifacts.c.region)
            .where(artifacts.c.build_id == b.id)
            .order_by(artifacts.c.created_at, artifacts.c.id)
        )
        found.append({**b._asdict(), "artifacts": [tuple(a) for a in arts]})
    return found


def _as_read(version: Version) -> list[dict[str, Any]]:
    return [
        {
            "id": b.id,
            "version_id": b.version_id,
            "component_type": b.component_type,
            "packer_run_uuid": b.packer_run_uuid,
            "platform": b.platform,
            "status": b.status.value,
            "source_external_identifier": b.source_external_identifier,
            "labels": b.labels,
            "metadata": b.metadata,
            "parent_version_id": b.parent_version_id,
            "parent_channel_id": b.parent_channel_id,
            "created_at": b.created_at,
            "updated_at": b.updated_at,
            "artifacts": [(a.id, a.external_identifier, a.region) for a in b.artifacts],
        }
        for b in version.builds
    ]


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def test_a_loaded_version_holds_what_the_tables_hold(services: Services, rich: str) -> None:
    with services.store.read() as conn:
        expected = _tables(conn, rich)
        with _statements(services.store) as seen:
            loaded = VersionRepo(conn).get_loaded([rich], include_restricted=True)[rich]
        with_builds = VersionRepo(conn).get_with_builds([rich])[rich]
        by_build_repo = BuildRepo(conn).for_version(rich)
    assert len(seen) == 1
    assert _as_read(loaded) == expected
    assert loaded.builds == with_builds.builds == by_build_repo
    first, second = loaded.builds
    assert first.labels == _LABELS and first.metadata == _METADATA
    assert isinstance(first.metadata["big"], int)
    assert sorted(a.region for a in first.artifacts) == ["a", "b", "c"]
    assert first.created_at.tzinfo is UTC and first.artifacts[0].created_at.tzinfo is UTC
    assert second.metadata is None and second.artifacts == [] and second.labels == {}


@pytest.mark.parametrize("visible_key", [None, "a", "a+b", "b"])
@pytest.mark.parametrize("scope_key", ["all", "none", "a", "b", "empty"])
def test_one_statement_loads_what_two_steps_load(
    services: Services,
    tenant: TenantFixture,
    scene: Scene,
    rich: str,
    scope_key: str,
    visible_key: str | None,
) -> None:
    # b's gold moves on: app1 is out of date for whoever sees that channel.
    admin = tenant.caller(Role.ADMIN)
    move_b_gold_on(services, admin, scene)
    scopes: dict[str, RestrictedScope] = {
        "all": True,
        "none": False,
        "a": frozenset({scene.a.id}),
        "b": frozenset({scene.b.id}),
        "empty": frozenset(),
    }
    # "b" hides app: b1's only descendant (app1) is then unseen.
    visibles = {
        "a": {scene.a.id, scene.app.id},
        "a+b": {scene.a.id, scene.b.id, scene.app.id},
        "b": {scene.b.id},
    }
    scope = scopes[scope_key]
    visible = None if visible_key is None else frozenset(visibles[visible_key])
    ids = [rich, scene.app1.id, scene.other1.id, scene.a1.id, scene.b1.id]
    with services.store.read() as conn:
        repo = VersionRepo(conn)
        loaded = repo.get_loaded(ids, include_restricted=scope, visible=visible)
        stepwise = repo.get_many(ids)
        repo.hydrate(list(stepwise.values()), include_restricted=scope, visible=visible)
        hide_unseen_descendants(conn, stepwise.values(), visible)
        # The ancestry listing computes each edge's status with statements of its own.
        listed = {
            vid: LineageRepo(conn).relations(vid, include_restricted=scope, visible=visible)
            for vid in ids
        }
        # The one-statement reads of GetChannel and GetVersion load as get_loaded does.
        in_channel = ChannelRepo(conn).find_loaded(
            tenant.project_id, scene.a.name, "gold", include_restricted=scope, visible=visible
        )
        in_bucket = repo.find_loaded_in_bucket(
            tenant.project_id,
            scene.app.name,
            scene.app1.fingerprint,
            include_restricted=scope,
            visible=visible,
        )
    assert loaded == stepwise
    assert set(loaded) == set(ids)
    assert loaded[scene.b1.id].has_descendants is (visible_key != "b")
    assert in_channel is not None and in_channel[1] is not None
    assert in_channel[1].version == loaded[scene.a1.id]
    assert in_bucket is not None and in_bucket[0].id == scene.app.id
    assert in_bucket[1] == loaded[scene.app1.id]
    for vid, relations in listed.items():
        statuses = [r.status for r in relations.parents]
        assert loaded[vid].parents_status == (aggregate_status(statuses) if statuses else None)


def test_one_statement_reads_answer_what_is_missing(
    services: Services, tenant: TenantFixture, scene: Scene
) -> None:
    admin = tenant.caller(Role.ADMIN)
    services.channels.create(admin, scene.a.name, "empty", None, False)
    project = tenant.project_id
    with services.store.read_statement() as conn, _statements(services.store) as seen:
        channels, versions = ChannelRepo(conn), VersionRepo(conn)
        no_bucket = channels.find_loaded(project, "nope", "gold", include_restricted=True)
        no_channel = channels.find_loaded(project, scene.a.name, "nope", include_restricted=True)
        unassigned = channels.find_loaded(project, scene.a.name, "empty", include_restricted=True)
        no_version = versions.find_loaded_in_bucket(
            project, scene.a.name, "nope", include_restricted=True
        )
        other_bucket = versions.find_loaded_in_bucket(
            project, scene.a.name, scene.b1.fingerprint, include_restricted=True
        )
    assert len(seen) == 5
    assert no_bucket is None
    for found in (no_channel, no_version, other_bucket):
        assert found is not None and found[0].id == scene.a.id and found[1] is None
    assert unassigned is not None and unassigned[1] is not None
    assert unassigned[1].name == "empty" and unassigned[1].version is None


def test_no_versions_need_no_statement(services: Services) -> None:
    with services.store.read() as conn, _statements(services.store) as seen:
        repo = VersionRepo(conn)
        assert repo.get_loaded([], include_restricted=True) == {}
        assert repo.get_with_builds([]) == {}
        repo.hydrate([], include_restricted=True)
    assert seen == []
