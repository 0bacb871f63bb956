"""The console's read models of versions (both backends): filtered listings, a version's
relations, comparisons, SBOM links and a bucket's whole lineage, each in a fixed number
of statements whatever the data."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import zstandard

from packyard.api.render import version_status
from packyard.domain.compare import ChangeKind, compare_versions
from packyard.domain.enums import AncestryStatus, BuildStatus, Role, VersionStatus
from packyard.domain.lineage import MAX_LINEAGE_NODES
from packyard.domain.paging import PageRequest
from packyard.domain.rules import utcnow
from packyard.errors import ApiError, Code
from packyard.services.container import Services
from packyard.store.forest import seed_forest
from tests.support.factories import Api, TenantFixture
from tests.support.querycount import count_statements


def _channel(api: Api, bucket: str, name: str, fingerprint: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "version_fingerprint": fingerprint, **extra}
    return api.ok(api.post(f"/buckets/{bucket}/channels", body))["channel"]


def _push(
    api: Api,
    bucket: str,
    fingerprint: str,
    *,
    parent: tuple[str, str | None] | None = None,
    commit: str = "aaaaaaa",
    images: tuple[str, ...] = ("us-east-1",),
) -> dict[str, Any]:
    """A complete one-build version with Packer-shaped metadata."""
    api.create_version(bucket, fingerprint)
    build = api.create_build(bucket, fingerprint, "amazon-ebs.base")
    extra: dict[str, Any] = {}
    if parent is not None:
        extra["parent_version_id"] = parent[0]
        if parent[1]:
            extra["parent_channel_id"] = parent[1]
    api.ok(
        api.update_build(
            bucket,
            fingerprint,
            build["id"],
            status="BUILD_DONE",
            platform="aws",
            labels={"os": "ubuntu"},
            artifacts=[
                {"external_identifier": f"ami-{fingerprint}-{region}", "region": region}
                for region in images
            ],
            metadata={
                "packer": {"version": "1.16.0", "plugins": [{"name": "amazon", "version": "1.3"}]},
                "vcs": {"type": "git", "details": {"commit": commit, "ref": "main"}},
            },
            **extra,
        )
    )
    return api.ok(api.get(f"/buckets/{bucket}/versions/{fingerprint}"))["version"]


def _chain(api: Api, prefix: str, depth: int) -> list[str]:
    """``depth`` buckets, each one's v1 built from the previous one's v1 (via `latest`)."""
    names = [f"{prefix}-{i}" for i in range(depth)]
    parent: tuple[str, str | None] | None = None
    for name in names:
        api.create_bucket(name)
        version = _push(api, name, f"{name}-fp", parent=parent)
        latest = api.ok(api.get(f"/buckets/{name}/channels/latest"))["channel"]
        parent = (version["id"], latest["id"])
    return names


def test_lineage_follows_every_hop_across_buckets(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    caller = tenant.caller(Role.ADMIN)
    api.create_bucket("base")
    base_v1 = _push(api, "base", "base-1")
    staging = _channel(api, "base", "staging", "base-1")
    api.create_bucket("app")
    app_v1 = _push(api, "app", "app-1", parent=(base_v1["id"], staging["id"]))
    release = _channel(api, "app", "release", "app-1")
    api.create_bucket("worker")
    worker = _push(api, "worker", "worker-1", parent=(app_v1["id"], release["id"]))
    _push(api, "base", "base-2")  # no relation: not in anyone's lineage
    api.ok(
        api.patch(
            "/buckets/base/channels/staging",
            {"version_fingerprint": "base-2", "update_mask": "versionFingerprint"},
        )
    )
    expected = {base_v1["id"], app_v1["id"], worker["id"]}
    for bucket in ("base", "app", "worker"):
        lineage = services.ancestry.lineage(caller, bucket)
        assert set(lineage.nodes) == expected, bucket
        assert not lineage.truncated
        statuses = {(e.parent_id, e.child_id): e.status for e in lineage.edges}
        assert statuses == {
            (base_v1["id"], app_v1["id"]): AncestryStatus.OUT_OF_DATE,
            (app_v1["id"], worker["id"]): AncestryStatus.UP_TO_DATE,
        }
        columns = [[v.bucket_name for v in column] for column in lineage.generations()]
        assert columns == [["base"], ["app"], ["worker"]]
    assert services.ancestry.lineage(caller, "base").bucket_name == "base"


def test_lineage_statements_do_not_grow_with_depth(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    caller = tenant.caller(Role.ADMIN)
    short = _chain(api, "short", 2)
    deep = _chain(api, "deep", 7)
    assert len(services.ancestry.lineage(caller, deep[0]).nodes) == 7
    counts = []
    for names in (short, deep):
        for bucket in (names[0], names[len(names) // 2], names[-1]):
            with count_statements(services.store.engine) as log:
                lineage = services.ancestry.lineage(caller, bucket)
            assert len(lineage.nodes) == len(names)
            assert len(lineage.generations()) == len(names)
            counts.append(log.count)
    assert len(set(counts)) == 1, counts
    assert counts[0] <= 6


def test_a_large_lineage_is_cut_nearest_first(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    caller = tenant.caller(Role.ADMIN)
    names = _chain(api, "long", 5)
    lineage = services.ancestry.lineage(caller, names[2], max_nodes=3)
    assert lineage.truncated
    assert sorted(v.bucket_name for v in lineage.nodes.values()) == sorted(names[1:4])
    assert all(e.parent_id in lineage.nodes and e.child_id in lineage.nodes for e in lineage.edges)
    whole = services.ancestry.lineage(caller, names[2])
    assert not whole.truncated and len(whole.nodes) == 5
    with pytest.raises(ApiError) as missing:
        services.ancestry.lineage(caller, "no-such-bucket")
    assert missing.value.code is Code.NOT_FOUND


@pytest.mark.slow
def test_a_huge_lineage_is_cut_at_the_cap_in_the_same_statements(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    caller = tenant.caller(Role.ADMIN)
    small = _chain(api, "small", 3)
    forest = seed_forest(services.store, tenant.project_id, descendants=1500, buckets_count=3)
    counts = []
    for bucket in (small[1], forest.root_bucket, forest.bucket_names[2]):
        with count_statements(services.store.engine) as log:
            lineage = services.ancestry.lineage(caller, bucket)
        counts.append(log.count)
    assert len(set(counts)) == 1, counts
    assert lineage.truncated
    assert len(lineage.nodes) == MAX_LINEAGE_NODES
    # the bucket's newest versions take half the places, their relations the rest
    own = [v for v in lineage.nodes.values() if v.bucket_name == forest.bucket_names[2]]
    assert MAX_LINEAGE_NODES // 2 <= len(own) < MAX_LINEAGE_NODES
    assert lineage.edges and all(
        e.parent_id in lineage.nodes and e.child_id in lineage.nodes for e in lineage.edges
    )
    assert len(lineage.generations()) >= 2


def test_viewers_see_no_restricted_channel_in_relations(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    api.create_bucket("base")
    base = _push(api, "base", "base-1")
    hidden = _channel(api, "base", "canary", "base-1", restricted=True)
    api.create_bucket("app")
    app = _push(api, "app", "app-1", parent=(base["id"], hidden["id"]))
    admin, viewer = tenant.caller(Role.ADMIN), tenant.caller(Role.VIEWER)

    seen = services.ancestry.lineage(admin, "app").edges
    assert [(e.channel_name, e.status) for e in seen] == [("canary", AncestryStatus.UP_TO_DATE)]
    unseen = services.ancestry.lineage(viewer, "app").edges
    assert [(e.channel_name, e.status) for e in unseen] == [("", AncestryStatus.UNDETERMINED)]

    parents = services.versions.detail(viewer, "app", "app-1").relations.parents
    assert [(r.version.id, r.channel_name) for r in parents] == [(base["id"], "")]
    detail = services.versions.detail(viewer, "base", "base-1")
    assert [c.name for c in detail.channels] == []  # `latest` and canary are restricted
    assert [c.name for c in services.versions.detail(admin, "base", "base-1").channels] == [
        "latest",
        "canary",
    ]
    assert [r.version.id for r in detail.relations.children] == [app["id"]]


def test_status_filter_agrees_with_derived_statuses(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    caller = tenant.caller(Role.ADMIN)
    api.create_bucket("mixed")
    for fp in ("active", "revoked", "scheduled"):
        _push(api, "mixed", fp)
    api.ok(api.patch("/buckets/mixed/versions/revoked", {"revoke_in": "0s"}))
    api.ok(api.patch("/buckets/mixed/versions/scheduled", {"revoke_in": "30d"}))
    outcomes = {
        "running": "BUILD_RUNNING",
        "failed": "BUILD_FAILED",
        "cancelled": "BUILD_CANCELLED",
    }
    for fp, status in outcomes.items():
        api.create_version("mixed", fp)
        build = api.create_build("mixed", fp, "null.a")
        api.create_build("mixed", fp, "null.b")
        api.ok(api.update_build("mixed", fp, build["id"], status=status))
    api.create_version("mixed", "empty")  # no build yet: running
    api.create_version("mixed", "unset")
    api.create_build("mixed", "unset", "null.a")  # a build never started: incomplete

    expected = {
        VersionStatus.ACTIVE: {"active"},
        VersionStatus.REVOKED: {"revoked"},
        VersionStatus.REVOCATION_SCHEDULED: {"scheduled"},
        VersionStatus.RUNNING: {"running", "empty"},
        VersionStatus.FAILED: {"failed"},
        VersionStatus.CANCELLED: {"cancelled"},
        VersionStatus.INCOMPLETE: {"unset"},
        VersionStatus.UNSET: set(),
    }
    now = utcnow()
    for status, fingerprints in expected.items():
        listing = services.versions.listing(caller, "mixed", PageRequest(size=50), status=status)
        assert {v.fingerprint for v in listing.page.items} == fingerprints, status
        assert all(version_status(v, now) == status.value for v in listing.page.items)
    everything = services.versions.listing(caller, "mixed", PageRequest(size=50))
    assert len(everything.page.items) == 8
    served = {
        v.fingerprint: [c.name for c in everything.channels.get(v.id, [])]
        for v in everything.page.items
    }
    assert served == {fp: (["latest"] if fp == "scheduled" else []) for fp in served}


def test_filtered_pages_walk_every_version_once(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    caller = tenant.caller(Role.ADMIN)
    api.create_bucket("paged")
    for i in range(5):
        _push(api, "paged", f"fp-{i}")
    api.ok(api.patch("/buckets/paged/versions/fp-4", {"revoke_in": "0s"}))
    seen: list[str] = []
    token: str | None = None
    sizes = []
    while True:
        listing = services.versions.listing(
            caller, "paged", PageRequest(size=2, next_token=token), status=VersionStatus.ACTIVE
        )
        seen += [v.fingerprint for v in listing.page.items]
        sizes.append(len(listing.page.items))
        token = listing.page.next_token or None
        if token is None:
            break
    assert seen == ["fp-3", "fp-2", "fp-1", "fp-0"]
    assert sizes == [2, 2]
    # A token of the filtered listing is refused by the unfiltered one.
    first = services.versions.listing(
        caller, "paged", PageRequest(size=1), status=VersionStatus.ACTIVE
    )
    with pytest.raises(ApiError) as refused:
        services.versions.listing(
            caller, "paged", PageRequest(size=1, next_token=first.page.next_token)
        )
    assert refused.value.code is Code.INVALID_ARGUMENT


def test_detail_loads_relations_in_constant_statements(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    caller = tenant.caller(Role.ADMIN)
    api.create_bucket("root")
    root = _push(api, "root", "root-1")
    latest = api.ok(api.get("/buckets/root/channels/latest"))["channel"]
    api.create_bucket("kids")

    def measure() -> int:
        services.versions.detail(caller, "root", "root-1")
        with count_statements(services.store.engine) as log:
            services.versions.detail(caller, "root", "root-1")
        return log.count

    _push(api, "kids", "kid-0", parent=(root["id"], latest["id"]))
    few = measure()
    for i in range(1, 6):
        _push(api, "kids", f"kid-{i}", parent=(root["id"], latest["id"]), images=("a", "b", "c"))
    detail = services.versions.detail(caller, "root", "root-1")
    assert detail.relations.children_total == 6
    assert detail.relations.children[0].version.fingerprint == "kid-5"
    assert {r.status for r in detail.relations.children} == {AncestryStatus.UP_TO_DATE}
    assert [c.name for c in detail.channels] == ["latest"]
    assert measure() == few
    kid = services.versions.detail(caller, "kids", "kid-3")
    assert [(r.version.bucket_name, r.channel_name) for r in kid.relations.parents] == [
        ("root", "latest")
    ]
    with pytest.raises(ApiError) as missing:
        services.versions.detail(caller, "root", "no-such-fingerprint")
    assert missing.value.code is Code.NOT_FOUND


def test_compare_defaults_to_latest_and_the_one_before(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    admin, viewer = tenant.caller(Role.ADMIN), tenant.caller(Role.VIEWER)
    api.create_bucket("base")
    base_1 = _push(api, "base", "base-1")
    base_2 = _push(api, "base", "base-2")
    api.create_bucket("golden")
    _push(api, "golden", "g-1", parent=(base_1["id"], None), commit="1111111")
    _push(
        api,
        "golden",
        "g-2",
        parent=(base_2["id"], None),
        commit="2222222",
        images=("us-east-1", "eu-west-1"),
    )
    _push(api, "golden", "g-3", commit="3333333")
    api.ok(api.patch("/buckets/golden/versions/g-3", {"revoke_in": "0s"}))  # latest: back to g-2

    chosen = services.versions.compare(admin, "golden", None, None)
    assert (chosen.a and chosen.a.fingerprint, chosen.b and chosen.b.fingerprint) == ("g-1", "g-2")
    # A viewer may not see `latest`: the newest complete version instead.
    shown = services.versions.compare(viewer, "golden", None, None)
    assert (shown.a and shown.a.fingerprint, shown.b and shown.b.fingerprint) == ("g-2", "g-3")
    assert [o.fingerprint for o in shown.options] == ["g-3", "g-2", "g-1"]

    assert chosen.a is not None and chosen.b is not None
    sections = {
        s.key: s
        for s in compare_versions(
            chosen.a, chosen.b, chosen.parents[chosen.a.id], chosen.parents[chosen.b.id]
        )
    }
    artifacts = {(c.subject, c.kind) for c in sections["artifacts"].rows}
    assert artifacts == {
        ("aws · us-east-1", ChangeKind.CHANGED),
        ("aws · eu-west-1", ChangeKind.ADDED),
    }
    commit = next(c for c in sections["source-control"].rows if c.subject == "Git commit")
    assert (commit.before, commit.after, commit.kind) == ("1111111", "2222222", ChangeKind.CHANGED)
    parents = sections["parents"].rows
    assert [(c.subject, c.kind) for c in parents] == [("base", ChangeKind.CHANGED)]
    assert "v1 (base-1)" in parents[0].before and "v2 (base-2)" in parents[0].after
    assert [c.kind for c in sections["labels"].rows] == [ChangeKind.UNCHANGED]
    assert sections["packer"].changed == []

    missing = services.versions.compare(admin, "golden", "nope", "g-3")
    assert missing.a is None and missing.asked_a == "nope"
    assert missing.b is not None and missing.b.fingerprint == "g-3"


def test_sbom_links_download_the_documents(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    caller = tenant.caller(Role.VIEWER)
    api.create_bucket("sbom")
    api.create_version("sbom", "fp")
    build = api.create_build("sbom", "fp", "amazon-ebs.a")
    other = api.create_build("sbom", "fp", "amazon-ebs.b")
    api.ok(api.update_build("sbom", "fp", build["id"], status="BUILD_RUNNING"))
    document = {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}
    compressed = zstandard.ZstdCompressor().compress(orjson.dumps(document))
    api.ok(
        api.put(
            f"/buckets/sbom/versions/fp/builds/{build['id']}/sboms",
            {
                "compressed_sbom": base64.b64encode(compressed).decode(),
                "format": "CYCLONEDX",
                "name": "os-packages",
            },
        )
    )
    links = services.sboms.links_for_version(caller, "sbom", "fp")
    assert list(links) == [build["id"]] and other["id"] not in links
    [link] = links[build["id"]]
    assert link.sbom.name == "os-packages"
    url = urlsplit(link.path)
    query = parse_qs(url.query)
    sbom_id = url.path.rsplit("/", 1)[-1]
    content = services.sboms.download(sbom_id, int(query["expires"][0]), query["signature"][0])
    assert orjson.loads(content) == document
    expires = int(query["expires"][0])
    assert expires - utcnow().timestamp() <= timedelta(minutes=15).total_seconds() + 5
    with pytest.raises(ApiError) as missing:
        services.sboms.links_for_version(caller, "sbom", "nope")
    assert missing.value.code is Code.NOT_FOUND


def test_incomplete_relations_carry_their_build_statuses(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    caller = tenant.caller(Role.ADMIN)
    api.create_bucket("base")
    base = _push(api, "base", "base-1")
    api.create_bucket("app")
    api.create_version("app", "wip")
    build = api.create_build("app", "wip", "null.a")
    api.ok(
        api.update_build(
            "app", "wip", build["id"], status="BUILD_FAILED", parent_version_id=base["id"]
        )
    )
    [child] = services.versions.detail(caller, "base", "base-1").relations.children
    assert child.version.build_statuses == (BuildStatus.FAILED,)
    assert child.version.status(utcnow()) is VersionStatus.FAILED
    assert child.version.name == "v0"
