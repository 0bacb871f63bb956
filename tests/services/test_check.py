"""`packyard check`: a healthy registry passes; each corruption is reported by its rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from packyard.domain.enums import Role
from packyard.services.check import (
    BucketRow,
    ChannelRow,
    Snapshot,
    VersionRow,
    find_violations,
)
from packyard.services.container import Services
from packyard.services.revocation import RevocationRequest
from packyard.store.engine import Store
from packyard.store.schema import artifacts, buckets, builds, versions
from tests.support.factories import TenantFixture
from tests.support.robust import check, execute, push_version, rules_broken, run_check_cli


@dataclass
class World:
    """bucket `base`: v1 (fp1), v2 (fp2), fp3 incomplete; `prod` -> v1; bucket `app` built
    from v1 (one ancestry edge)."""

    ids: dict[str, str]
    services: Services
    tenant: TenantFixture


@pytest.fixture
def world(services: Services, tenant: TenantFixture) -> World:
    caller = tenant.caller(Role.ADMIN)
    services.buckets.create(caller, "base", "", None)
    services.buckets.create(caller, "app", "", None)
    v1 = push_version(services, caller, "base", "fp1")
    v2 = push_version(services, caller, "base", "fp2", ("a.one", "b.two"))
    v3 = push_version(services, caller, "base", "fp3", ("a.one", "b.two"), finish=("a.one",))
    services.channels.create(caller, "base", "prod", "fp1", False)
    child = push_version(services, caller, "app", "app1", parent_version_id=v1.id)
    assert (v1.name, v2.name, v3.name, child.name) == ("v1", "v2", "v0", "v1")
    return World({"fp1": v1.id, "fp2": v2.id, "fp3": v3.id, "app1": child.id}, services, tenant)


def test_healthy_registry_passes(world: World, store: Store) -> None:
    report = check(store)
    assert report.violations == []
    assert (report.buckets, report.versions, report.channels) == (2, 4, 3)


def test_deletions_explain_gaps_and_missing_builds(world: World, store: Store) -> None:
    svc, caller = world.services, world.tenant.caller()
    # A gap in the middle (v2 deleted), then a reused top number, then an emptied version.
    svc.versions.delete(caller, "base", "fp2", rollback_channels=False)
    push_version(svc, caller, "base", "fp4")  # v2 again: max(surviving) + 1
    push_version(svc, caller, "base", "fp5")  # v3
    svc.versions.delete(caller, "base", "fp4", rollback_channels=False)
    v5 = svc.versions.get(caller, "base", "fp5")
    assert v5.name == "v3"
    for build in v5.builds:
        svc.builds.delete(caller, "base", "fp5", build.id)
    assert check(store).violations == []

    execute(store, "DELETE FROM deletions")
    broken = rules_broken(check(store))
    assert broken == {"version-gap", "version-builds"}


def test_lifecycle_keeps_every_invariant(world: World, store: Store) -> None:
    """Revoke (with rollback), restore, promote, delete with rollback: still clean."""
    svc, caller = world.services, world.tenant.caller()
    push_version(svc, caller, "base", "fp4")  # v3, now `latest`
    svc.channels.update(
        caller, "base", "prod", fingerprint="fp4", restricted=None, update_mask="versionFingerprint"
    )
    revoke = RevocationRequest(
        revoke_at=None,
        revoke_in="0s",
        message="bad image",
        restore=False,
        skip_descendants=False,
        disable_rollback=False,
    )
    svc.revocation.update(caller, "base", "fp1", revoke)  # v1 revoked: `app` inherits
    svc.revocation.update(caller, "base", "fp4", revoke)  # `latest` and `prod` roll back
    assert check(store).violations == []
    restore = RevocationRequest(None, None, "", True, False, False)
    svc.revocation.update(caller, "base", "fp4", restore)
    svc.channels.create(caller, "base", "beta", None, False)
    svc.channels.promote(caller, "base", "latest", "beta")
    assert check(store).violations == []
    svc.versions.delete(caller, "base", "fp2", rollback_channels=True)
    svc.versions.delete(caller, "base", "fp3", rollback_channels=True)
    assert check(store).violations == []


def _set(store: Store, sql: str, **params: object) -> set[str]:
    execute(store, sql, **params)
    return rules_broken(check(store))


def test_gap_in_numbering(world: World, store: Store) -> None:
    broken = _set(store, "UPDATE versions SET number = 5 WHERE id = :v", v=world.ids["fp2"])
    assert broken == {"version-gap"}
    report = check(store)
    assert "v3, v4" in report.violations[0].message


def test_number_below_one(world: World, store: Store) -> None:
    broken = _set(store, "UPDATE versions SET number = 0 WHERE id = :v", v=world.ids["fp1"])
    assert "version-number" in broken


def test_complete_version_without_builds(world: World, store: Store) -> None:
    broken = _set(store, "DELETE FROM builds WHERE version_id = :v", v=world.ids["fp2"])
    assert broken == {"version-builds"}


def test_complete_version_without_done_build(world: World, store: Store) -> None:
    execute(
        store,
        "DELETE FROM artifacts WHERE build_id IN (SELECT id FROM builds WHERE version_id = :v)",
        v=world.ids["fp1"],
    )
    broken = _set(
        store, "UPDATE builds SET status = 'BUILD_FAILED' WHERE version_id = :v", v=world.ids["fp1"]
    )
    assert broken == {"version-builds"}


def test_lost_completion(world: World, store: Store) -> None:
    broken = _set(
        store,
        "UPDATE builds SET status = 'BUILD_DONE', metadata = '{}' WHERE version_id = :v",
        v=world.ids["fp3"],
    )
    assert broken == {"version-incomplete"}


def test_unnumbered_version_on_a_channel(world: World, store: Store) -> None:
    broken = _set(store, "UPDATE versions SET number = NULL WHERE id = :v", v=world.ids["fp2"])
    # fp2 is `latest`: an incomplete version on a channel, and a lost completion.
    assert broken == {"version-incomplete", "channel-version"}


def test_missing_latest_channel(world: World, store: Store) -> None:
    broken = _set(store, "DELETE FROM channels WHERE name = 'latest' AND managed = :t", t=True)
    assert broken == {"latest-channel"}


def test_second_managed_channel(world: World, store: Store) -> None:
    broken = _set(store, "UPDATE channels SET managed = :t WHERE name = 'prod'", t=True)
    assert broken == {"latest-channel"}


def test_unmanaged_latest(world: World, store: Store) -> None:
    broken = _set(store, "UPDATE channels SET managed = :f WHERE name = 'latest'", f=False)
    assert broken == {"latest-channel"}


def test_bucket_mirror_of_latest(world: World, store: Store) -> None:
    broken = _set(store, "UPDATE buckets SET latest_version_id = NULL WHERE name = 'base'")
    assert broken == {"latest-mirror"}


def test_latest_on_deleted_version(world: World, store: Store) -> None:
    # Delete v2 behind the services' back (no rollback, no record, no count).
    execute(store, "DELETE FROM versions WHERE id = :v", v=world.ids["fp2"])
    report = check(store)
    assert rules_broken(report) == {"channel-version", "version-count"}
    assert any("missing version" in v.message for v in report.violations)


def test_channel_on_incomplete_version(world: World, store: Store) -> None:
    execute(
        store,
        "INSERT INTO channel_assignments (id, channel_id, seq, version_id, author_id, assigned_at)"
        " SELECT 'corrupt-1', id, 99, :v, 'x', created_at FROM channels WHERE name = 'prod'",
        v=world.ids["fp3"],
    )
    broken = _set(
        store, "UPDATE channels SET version_id = :v WHERE name = 'prod'", v=world.ids["fp3"]
    )
    assert broken == {"channel-version"}


def test_channel_on_other_buckets_version(world: World, store: Store) -> None:
    broken = _set(
        store, "UPDATE channels SET version_id = :v WHERE name = 'prod'", v=world.ids["app1"]
    )
    assert broken == {"channel-version", "channel-history"}


def test_channel_history_disagrees(world: World, store: Store) -> None:
    broken = _set(
        store, "UPDATE channels SET version_id = :v WHERE name = 'prod'", v=world.ids["fp2"]
    )
    assert broken == {"channel-history"}


def test_version_count(world: World, store: Store) -> None:
    broken = _set(store, "UPDATE buckets SET version_count = version_count + 1")
    assert broken == {"version-count"}


def test_edge_bucket_ids(world: World, store: Store) -> None:
    broken = _set(store, "UPDATE version_edges SET parent_bucket_id = 'elsewhere'")
    assert broken == {"edge-version"}


def test_edge_without_build(world: World, store: Store) -> None:
    broken = _set(store, "UPDATE builds SET parent_version_id = NULL")
    assert broken == {"edge-build"}


def test_build_parent_without_edge(world: World, store: Store) -> None:
    broken = _set(store, "DELETE FROM version_edges")
    assert broken == {"edge-build"}


def test_edge_across_projects(world: World, store: Store) -> None:
    other = world.services.tenancy.create_tenant("other-org", "other-project")
    broken = _set(
        store,
        "UPDATE buckets SET project_id = :p WHERE name = 'app'",
        p=other.project.id,
    )
    assert "edge-version" in broken
    assert "artifact-project" in broken


def test_artifact_on_unfinished_build(world: World, store: Store) -> None:
    with store.write() as conn:
        build_id = conn.execute(
            select(builds.c.id).where(
                builds.c.version_id == world.ids["fp3"], builds.c.status != "BUILD_DONE"
            )
        ).scalar_one()
        conn.execute(
            artifacts.insert().values(
                id="corrupt-artifact",
                build_id=build_id,
                project_id=world.tenant.project_id,
                external_identifier="ami-x",
                region="r",
                created_at=datetime.now(UTC),
            )
        )
    assert rules_broken(check(store)) == {"artifact-status"}


def test_artifact_project(world: World, store: Store) -> None:
    broken = _set(store, "UPDATE artifacts SET project_id = 'someone-else'")
    assert broken == {"artifact-project"}


@pytest.mark.slow
def test_cli_reports_one_line_per_violation(world: World, store: Store, db_url: str) -> None:
    ok = run_check_cli(database_url=db_url)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == ""
    assert "0 violations" in ok.stderr

    execute(store, "UPDATE buckets SET version_count = 7")
    execute(store, "UPDATE versions SET number = 9 WHERE id = :v", v=world.ids["fp2"])
    bad = run_check_cli(database_url=db_url)
    assert bad.returncode == 1
    header, *rows = (line.split(maxsplit=2) for line in bad.stdout.splitlines())
    assert header == ["RULE", "SUBJECT", "MESSAGE"]
    assert len(rows) == len(check(store).violations) == 3  # two counts, one gap
    assert sorted(rule for rule, _, _ in rows) == [
        "version-count",
        "version-count",
        "version-gap",
    ]

    as_json = run_check_cli(database_url=db_url, as_json=True)
    assert as_json.returncode == 1
    payload = as_json.json()
    assert payload["ok"] is False
    assert payload["checked"]["buckets"] == 2
    assert {v["rule"] for v in payload["violations"]} == {"version-count", "version-gap"}


def test_cli_without_database(tmp_path) -> None:
    missing = run_check_cli(data_dir=tmp_path / "nothing-here")
    assert missing.returncode == 2
    assert "no database" in missing.stderr


# --- values no response can render (stored before writes refused them) -------------------------


def _nested(depth: int) -> object:
    value: object = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def _builds_of(store: Store, version_id: str) -> list[str]:
    with store.read() as conn:
        query = select(builds.c.id).where(builds.c.version_id == version_id).order_by(builds.c.id)
        return list(conn.execute(query).scalars())


def test_unrenderable_json_is_reported_once_per_row(world: World, store: Store) -> None:
    """Written through the store, as the API stored them before it refused such values."""
    two_builds = _builds_of(store, world.ids["fp2"])
    (one_build,) = _builds_of(store, world.ids["fp1"])
    (child_build,) = _builds_of(store, world.ids["app1"])
    with store.write() as conn:
        # A build with two bad columns is still one violation.
        conn.execute(
            builds.update()
            .where(builds.c.id == two_builds[0])
            .values(metadata={"packer": {"n": 2**64}}, labels={"git_sha": "\ud800"})
        )
        conn.execute(
            builds.update()
            .where(builds.c.id == two_builds[1])
            .values(metadata={"vcs": {"deep": _nested(300)}})
        )
        conn.execute(
            builds.update()
            .where(builds.c.id == one_build)
            .values(metadata={"cicd": {"\udfff": "key"}})
        )
        conn.execute(buckets.update().where(buckets.c.name == "app").values(labels={"k": -(2**64)}))
        # Renderable, if beyond what writes accept today: not reported.
        conn.execute(
            builds.update()
            .where(builds.c.id == child_build)
            .values(metadata={"packer": {"deep": _nested(100), "big": "x" * 100_000}})
        )
    report = check(store)
    assert rules_broken(report) == {"renderable"}
    subjects = sorted(v.subject for v in report.violations)
    app = world.services.buckets.get(world.tenant.caller(), "app")
    expected = [f"build/{two_builds[0]}", f"build/{two_builds[1]}", f"build/{one_build}"]
    assert subjects == sorted([f"bucket/{app.id}", *expected])
    first = next(v for v in report.violations if v.subject == f"build/{two_builds[0]}")
    assert "labels" in first.message and "metadata" in first.message


def test_text_that_is_not_unicode_is_reported(world: World, store: Store, db_url: str) -> None:
    if not store.is_sqlite:
        pytest.skip("PostgreSQL stores only valid UTF-8 text: a surrogate cannot be stored")
    # SQLite stores the code point U+D800 as the bytes ED A0 80, which no read can decode.
    execute(store, "UPDATE buckets SET description = char(55296) WHERE name = 'base'")
    # A damaged name printed by another rule's violation is escaped, not written raw.
    execute(
        store,
        "UPDATE buckets SET name = 'app' || char(56320), version_count = 7 WHERE name = 'app'",
    )
    execute(
        store,
        "UPDATE versions SET revocation_message = 'bad ' || char(57343), author_id = char(55296)"
        " WHERE id = :v",
        v=world.ids["fp2"],
    )
    report = check(store)
    renderable = [v for v in report.violations if v.rule == "renderable"]
    assert rules_broken(report) == {"renderable", "version-count"}
    assert sorted(v.subject.split("/")[0] for v in renderable) == ["bucket", "bucket", "version"]
    version = next(v for v in renderable if v.subject.startswith("version"))
    assert "author_id" in version.message and "revocation_message" in version.message

    # The command prints one line per violation, even for rows it cannot decode.
    bad = run_check_cli(database_url=db_url)
    assert bad.returncode == 1, bad.stderr
    assert sorted(line.split()[0] for line in bad.stdout.splitlines()[1:]) == [
        "renderable",
        "renderable",
        "renderable",
        "version-count",
    ]
    as_json = run_check_cli(database_url=db_url, as_json=True)
    assert as_json.returncode == 1, as_json.stderr
    assert len(as_json.json()["violations"]) == 4


# --- rules the database itself enforces: exercised on snapshots directly ---------------------


def _bucket(bucket_id: str = "b") -> BucketRow:
    return BucketRow(bucket_id, "p", "base", 2, "v1")


def _latest(version_id: str | None = "v1") -> ChannelRow:
    return ChannelRow("c", "b", "latest", True, version_id)


def test_duplicate_numbers_snapshot() -> None:
    snap = Snapshot(
        buckets=[_bucket()],
        versions=[VersionRow("v1", "b", "fp1", 1), VersionRow("v2", "b", "fp2", 1)],
        channels=[_latest(None)],
    )
    snap.buckets[0] = BucketRow("b", "p", "base", 2, None)
    messages = [str(v) for v in find_violations(snap) if v.rule == "version-number"]
    assert messages == ["version-number: project/p/bucket/base: 2 versions are named v1"]


def test_orphans_snapshot() -> None:
    from packyard.services.check import ArtifactRow, AssignmentRow, BuildRow

    snap = Snapshot(
        buckets=[],
        versions=[VersionRow("v1", "gone", "fp1", None)],
        builds=[BuildRow("b1", "gone-version", "x", "BUILD_RUNNING", None)],
        artifacts=[ArtifactRow("a1", "gone-build", "p")],
        channels=[ChannelRow("c1", "gone", "prod", False, None)],
        assignments=[AssignmentRow("gone-channel", 1, None)],
    )
    orphans = [v for v in find_violations(snap) if v.rule == "orphan"]
    assert len(orphans) == 5


def test_versions_table_untouched_by_check(world: World, store: Store) -> None:
    with store.read() as conn:
        before = sorted(conn.execute(select(versions)).all())
    check(store)
    run_check_cli(database_url=store.url)
    with store.read() as conn:
        assert sorted(conn.execute(select(versions)).all()) == before
