"""The bucket-level access matrix over real HTTP: caller kind x operation x bucket.

One registry per backend, built once for the module: buckets ``A`` (on which the granted
callers hold their grant) and ``B`` (granted to nobody), each with a complete version ``v1``
on a public channel ``pub`` and a restricted channel ``sec``, plus ancestry edges
A→B, B→A and A→A; ``Z`` names a bucket that does not exist. Eight callers, each its own
service principal with a token from ``/oauth2/token``:

===========  ============  ===========
caller       project role  grant on A
===========  ============  ===========
pv           viewer        -
pc           contributor   -
pa           admin         -
pv_ac        viewer        contributor
pv_aa        viewer        admin
only_av      -             viewer
only_ac      -             contributor
only_aa      -             admin
===========  ============  ===========

The expected answer of every cell comes from the product's rules, restated here on their
own (:class:`Kind` and the ``rule_*`` functions), not from the code under test:

- on a bucket the higher of the project role and the grant applies;
- a bucket's readers are the callers with any role on it; a caller with no project role sees
  only its granted buckets, and the others answer exactly as a missing bucket does (column
  ``Z``): 404/5, or 403/7 for a write by a caller that may write nowhere (refused before any
  bucket is looked up, whatever its name);
- writes to a bucket (versions, builds, channels, revocation, its description) need
  contributor or admin on it, else 403/7;
- creating and deleting buckets and changing the registry need a project contributor/admin
  role: a bucket grant never suffices (403/7);
- restricted channels exist for the bucket's writers only: others get 403/7 from GetChannel
  and do not see them listed;
- GetIamPolicy: whoever sees the bucket; SetIamPolicy and a bucket's access list: its admins
  (project admins, or admins of that bucket); the whole project's access list: project admins.

Writes act on scratch objects (a version, a build, a channel, a bucket with the same grant
as ``A``) so that the module's registry stays as built. Refused writes are checked to have
changed nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from packyard.api import iam_wire
from packyard.api.app import create_app
from packyard.domain.enums import BuildStatus, Role, TemplateType
from packyard.domain.models import Caller
from packyard.services import auth as auth_module
from packyard.services.auth import ROLE_CACHE_TTL_S, RoleCache
from packyard.services.builds import ArtifactInput, BuildChanges
from packyard.services.container import Services
from packyard.services.revocation import RevocationRequest
from packyard.store.engine import Store
from packyard.store.migrate import upgrade
from tests.conftest import BACKENDS, database_url
from tests.support.factories import Api, TenantFixture, assert_status, make_tenant, unique
from tests.support.server import serving_app
from tests.support.wire import fetch_token

HIT = "x-packyard-cache"
PACKYARD = "/packyard/2026-12-01/organizations/{org}/projects/{project}"
IAM_POLICY = "/2019-12-10/resource-manager/resources/iam-policy"
MISSING_BUCKET = "zz-no-such-bucket"

Outcome = tuple[int, int | None]
OK: Outcome = (200, None)
DENIED: Outcome = (403, 7)
MISSING: Outcome = (404, 5)


# --- who the callers are, and what the rules give them ---------------------------------

_RANK = {Role.VIEWER: 1, Role.CONTRIBUTOR: 2, Role.ADMIN: 3}


@dataclass(frozen=True)
class Kind:
    project: Role | None
    grant_a: Role | None

    def role_on(self, bucket: str) -> Role | None:
        """``bucket`` is ``A``, ``B`` or ``Z`` (missing)."""
        if bucket == "Z":
            return None
        roles = [self.project] + ([self.grant_a] if bucket == "A" else [])
        held = [r for r in roles if r is not None]
        return max(held, key=_RANK.__getitem__) if held else None

    def sees(self, bucket: str) -> bool:
        return self.role_on(bucket) is not None

    def writes(self, bucket: str) -> bool:
        return self.role_on(bucket) in (Role.CONTRIBUTOR, Role.ADMIN)

    @property
    def project_writer(self) -> bool:
        return self.project in (Role.CONTRIBUTOR, Role.ADMIN)

    @property
    def writes_anywhere(self) -> bool:
        return self.project_writer or self.grant_a in (Role.CONTRIBUTOR, Role.ADMIN)


KINDS: dict[str, Kind] = {
    "pv": Kind(Role.VIEWER, None),
    "pc": Kind(Role.CONTRIBUTOR, None),
    "pa": Kind(Role.ADMIN, None),
    "pv_ac": Kind(Role.VIEWER, Role.CONTRIBUTOR),
    "pv_aa": Kind(Role.VIEWER, Role.ADMIN),
    "only_av": Kind(None, Role.VIEWER),
    "only_ac": Kind(None, Role.CONTRIBUTOR),
    "only_aa": Kind(None, Role.ADMIN),
}
BUCKETS = ("A", "B", "Z")


def rule_any(k: Kind, b: str) -> Outcome:
    return OK


def rule_read(k: Kind, b: str) -> Outcome:
    return OK if k.sees(b) else MISSING


def rule_write(k: Kind, b: str) -> Outcome:
    if not k.writes_anywhere:
        return DENIED
    if not k.sees(b):
        return MISSING
    return OK if k.writes(b) else DENIED


def rule_restricted_read(k: Kind, b: str) -> Outcome:
    if not k.sees(b):
        return MISSING
    return OK if k.writes(b) else DENIED


def rule_project_write(k: Kind, b: str) -> Outcome:
    return OK if k.project_writer else DENIED


def rule_delete_bucket(k: Kind, b: str) -> Outcome:
    if not k.project_writer:
        return DENIED
    return OK if k.sees(b) else MISSING


def rule_bucket_admin(k: Kind, b: str) -> Outcome:
    if not k.sees(b):
        return MISSING
    return OK if k.role_on(b) is Role.ADMIN else DENIED


def rule_project_admin(k: Kind, b: str) -> Outcome:
    return OK if k.project is Role.ADMIN else DENIED


# --- the registry the module works on ------------------------------------------------------


class Member(Api):
    """An API client holding one principal's token; absolute paths of every API family."""

    def __init__(self, base_url: str, tenant: TenantFixture, token: str) -> None:
        super().__init__(base_url, tenant)
        self.token = token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        if path.startswith(("/2019-12-10/", "/iam/")):
            return self.http.request(method, path, json=json, headers=self.headers(), **kw)
        return super().request(method, path, json, **kw)


@dataclass
class Principal:
    id: str
    client_id: str
    client: Member


@dataclass
class World:
    services: Services
    tenant: TenantFixture
    base_url: str
    admin: Caller  # the builder, at the service layer
    root: Member  # the builder, over HTTP
    names: dict[str, str]  # A / B / Z -> bucket name
    v1: dict[str, str]  # A / B -> fingerprint of the version on pub and sec
    ami: dict[str, str]  # A / B -> image id of v1
    ancestry: dict[str, str]  # version key -> fingerprint (a_kid, b_kid, a_in)
    v1_id: dict[str, str]  # A / B -> id of v1
    pub_id: dict[str, str]  # A / B -> id of channel pub
    target: Principal | None = None  # a project viewer whose grants the callers change
    callers: dict[str, Principal] = field(default_factory=dict)
    granted: dict[str, set[str]] = field(default_factory=dict)  # kind -> granted bucket names

    @property
    def packyard(self) -> str:
        t = self.tenant
        return PACKYARD.format(org=t.organization_id, project=t.project_id)

    def resource(self, bucket_name: str) -> str:
        return f"packer/project/{self.tenant.project_id}/bucket/{bucket_name}"

    def forget_roles(self) -> None:
        """Every server-side role lookup starts afresh (as ROLE_CACHE_TTL_S after a change)."""
        self.services.auth.roles = RoleCache(ROLE_CACHE_TTL_S, 10_000)

    def grant(self, kind: str, role: Role, bucket_name: str) -> None:
        body = {"role": role.value, "bucket": bucket_name}
        self.root.ok(self.root.put(f"{self.packyard}/access/{self.callers[kind].id}", body))
        self.granted[kind].add(bucket_name)


def push(
    services: Services,
    admin: Caller,
    bucket: str,
    parent: tuple[str, str | None] | None = None,
) -> tuple[str, str, str]:
    """A complete one-build version pushed by the builder: (fingerprint, id, image id)."""
    fp, ami = unique("fp"), unique("ami")
    version = services.versions.create(admin, bucket, fp, TemplateType.HCL2)
    build = services.builds.create(admin, bucket, fp, "amazon-ebs.a", BuildChanges())
    services.builds.update(
        admin,
        bucket,
        fp,
        build.id,
        BuildChanges(
            status=BuildStatus.DONE,
            platform="aws",
            artifacts=[ArtifactInput(ami, "us-east-1")],
            metadata={"packer": {}},
            parent_version_id=parent[0] if parent else None,
            parent_channel_id=parent[1] if parent else None,
        ),
    )
    return fp, version.id, ami


def revoke_now(services: Services, admin: Caller, bucket: str, fp: str) -> None:
    services.revocation.update(
        admin,
        bucket,
        fp,
        RevocationRequest(
            revoke_at=datetime.now(UTC) - timedelta(minutes=1),
            revoke_in=None,
            message="scratch",
            restore=False,
            skip_descendants=False,
            disable_rollback=False,
        ),
    )


def _new_principal(root: Member, packyard: str, name: str, role: Role) -> Principal:
    body = root.ok(root.post(f"{packyard}/principals", {"name": name, "role": role.value}))
    p = body["principal"]
    token = fetch_token(root.http, p["client_id"], body["client_secret"])
    return Principal(p["id"], p["client_id"], Member(root.base_url, root.tenant, token))


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    backend = str(request.param)
    cluster = request.getfixturevalue("pg_cluster") if backend == "postgresql" else None
    store = Store(database_url(backend, tmp_path_factory.mktemp("access-matrix"), cluster))
    upgrade(store)
    services = Services.create(store)
    tenant = make_tenant(services)
    admin = tenant.caller(Role.ADMIN)
    # No background jobs: only requests change what a read answers (cache hits are exact).
    app = create_app(services, background_jobs=False)
    try:
        with serving_app(app) as url:
            root = Member(url, tenant, tenant.identities[Role.ADMIN].token)
            names = {"A": unique("a"), "B": unique("b"), "Z": MISSING_BUCKET}
            v1: dict[str, str] = {}
            ami: dict[str, str] = {}
            pub: dict[str, str] = {}
            sec: dict[str, str] = {}
            ids: dict[str, str] = {}
            for key in ("A", "B"):
                root.create_bucket(names[key])
                v1[key], ids[key], ami[key] = push(services, admin, names[key])
                pub[key] = services.channels.create(admin, names[key], "pub", v1[key], False).id
                sec[key] = services.channels.create(admin, names[key], "sec", v1[key], True).id
            a, b = names["A"], names["B"]
            ancestry = {  # edges A→B, A→B through A's restricted channel, B→A, A→A
                "b_kid": push(services, admin, b, (ids["A"], pub["A"]))[0],
                "b_sec_kid": push(services, admin, b, (ids["A"], sec["A"]))[0],
                "a_kid": push(services, admin, a, (ids["B"], pub["B"]))[0],
                "a_in": push(services, admin, a, (ids["A"], None))[0],
            }
            w = World(services, tenant, url, admin, root, names, v1, ami, ancestry, ids, pub)
            for kind, k in KINDS.items():
                w.callers[kind] = _new_principal(root, w.packyard, kind, k.project or Role.VIEWER)
                w.granted[kind] = set()
                if k.grant_a is not None:
                    w.grant(kind, k.grant_a, a)
                if k.project is None:
                    root.ok(root.delete(f"{w.packyard}/access/{w.callers[kind].id}"))
            w.target = _new_principal(root, w.packyard, "target", Role.VIEWER)
            yield w
            w.target.client.close()
            for p in w.callers.values():
                p.client.close()
            root.close()
    finally:
        store.dispose()


# --- one cell of the matrix ---------------------------------------------------------------


@dataclass
class Case:
    w: World
    kind: str
    bucket: str  # A, B or Z
    scratch: dict[str, Any] = field(default_factory=dict)

    @property
    def k(self) -> Kind:
        return KINDS[self.kind]

    @property
    def client(self) -> Member:
        return self.w.callers[self.kind].client

    @property
    def name(self) -> str:
        return self.w.names[self.bucket]

    @property
    def exists(self) -> bool:
        return self.bucket != "Z"

    def scratch_version(self) -> str:
        """A fresh complete version in the bucket (a made-up fingerprint in Z)."""
        if not self.exists:
            return "fp-missing"
        return push(self.w.services, self.w.admin, self.name)[0]

    def scratch_channel(self) -> str:
        channel = unique("ch")
        if self.exists:
            self.w.services.channels.create(self.w.admin, self.name, channel, None, False)
        return channel

    def admin_get(self, path: str) -> httpx.Response:
        return self.w.root.get(path)


Step = Callable[[Case], None]
Run = Callable[[Case], httpx.Response]
Verify = Callable[[Case, dict[str, Any]], None]


def _nothing(case: Case) -> None:
    return None


def _no_check(case: Case, body: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class Op:
    name: str
    rule: Callable[[Kind, str], Outcome]
    run: Run
    setup: Step = _nothing
    verify: Verify = _no_check  # on success: the answer's fields
    unchanged: Step = _nothing  # on refusal: nothing changed
    cleanup: Step = _nothing


def _version(case: Case, fp: str) -> httpx.Response:
    return case.admin_get(f"/buckets/{case.name}/versions/{fp}")


# buckets


def _get_bucket(c: Case) -> httpx.Response:
    return c.client.get(f"/buckets/{c.name}")


def _verify_bucket(c: Case, body: dict[str, Any]) -> None:
    assert body["bucket"]["name"] == c.name
    assert body["bucket"]["resource_name"] == c.w.resource(c.name)
    # `latest` is restricted (as on HCP): its version is shown to the bucket's writers only
    assert (body["bucket"]["latest_version"] is not None) == c.k.writes(c.bucket)


def _update_bucket(c: Case) -> httpx.Response:
    c.scratch["description"] = unique(f"by-{c.kind}")
    return c.client.patch(f"/buckets/{c.name}", {"description": c.scratch["description"]})


def _verify_updated_bucket(c: Case, body: dict[str, Any]) -> None:
    assert body["bucket"]["description"] == c.scratch["description"]


def _bucket_kept_description(c: Case) -> None:
    if c.exists:
        got = c.w.root.ok(c.admin_get(f"/buckets/{c.name}"))["bucket"]
        assert got["description"] != c.scratch["description"]


def _setup_doomed_bucket(c: Case) -> None:
    """A scratch bucket standing for A (the caller holds the same grant on it) or B."""
    if not c.exists:
        c.scratch["bucket"] = MISSING_BUCKET
        return
    name = unique(f"doomed-{c.bucket.lower()}")
    c.w.root.create_bucket(name)
    c.scratch["bucket"] = name
    if c.bucket == "A" and c.k.grant_a is not None:
        c.w.grant(c.kind, c.k.grant_a, name)
        c.w.forget_roles()


def _delete_bucket(c: Case) -> httpx.Response:
    return c.client.delete(f"/buckets/{c.scratch['bucket']}")


def _bucket_gone(c: Case, body: dict[str, Any]) -> None:
    assert_status(c.admin_get(f"/buckets/{c.scratch['bucket']}"), 404, 5)
    c.w.granted[c.kind].discard(c.scratch["bucket"])


def _bucket_still_there(c: Case) -> None:
    if c.exists:
        c.w.root.ok(c.admin_get(f"/buckets/{c.scratch['bucket']}"))


def _drop_doomed_bucket(c: Case) -> None:
    name = c.scratch.get("bucket")
    if c.exists and name and c.admin_get(f"/buckets/{name}").status_code == 200:
        c.w.root.ok(c.w.root.delete(f"/buckets/{name}"))
        c.w.granted[c.kind].discard(name)


# versions and builds


def _list_versions(c: Case) -> httpx.Response:
    return c.client.get(f"/buckets/{c.name}/versions")


def _verify_versions(c: Case, body: dict[str, Any]) -> None:
    assert {v["bucket_name"] for v in body["versions"]} == {c.name}
    assert c.w.v1[c.bucket] in {v["fingerprint"] for v in body["versions"]}


def _get_version(c: Case) -> httpx.Response:
    fp = c.w.v1.get(c.bucket, "fp-missing")
    return c.client.get(f"/buckets/{c.name}/versions/{fp}")


def _verify_version(c: Case, body: dict[str, Any]) -> None:
    assert (body["version"]["bucket_name"], body["version"]["fingerprint"]) == (
        c.name,
        c.w.v1[c.bucket],
    )


def _create_version(c: Case) -> httpx.Response:
    c.scratch["fp"] = unique("fp-new")
    body = {"fingerprint": c.scratch["fp"], "template_type": "HCL2"}
    return c.client.post(f"/buckets/{c.name}/versions", body)


def _verify_created_version(c: Case, body: dict[str, Any]) -> None:
    assert body["version"]["fingerprint"] == c.scratch["fp"]
    assert body["version"]["status"] == "VERSION_RUNNING"
    c.w.root.ok(_version(c, c.scratch["fp"]))


def _no_such_version(c: Case) -> None:
    if c.exists:
        assert_status(_version(c, c.scratch["fp"]), 409, 10)


def _setup_open_version(c: Case) -> None:
    c.scratch["fp"] = unique("fp-open")
    if c.exists:
        c.w.services.versions.create(c.w.admin, c.name, c.scratch["fp"], TemplateType.HCL2)


def _create_build(c: Case) -> httpx.Response:
    body = {"component_type": "amazon-ebs.x", "status": "BUILD_UNSET", "artifacts": None}
    return c.client.post(f"/buckets/{c.name}/versions/{c.scratch['fp']}/builds", body)


def _verify_build(c: Case, body: dict[str, Any]) -> None:
    assert body["build"]["component_type"] == "amazon-ebs.x"


def _no_builds(c: Case) -> None:
    if c.exists:
        assert c.w.root.ok(_version(c, c.scratch["fp"]))["version"]["builds"] == []


def _setup_open_build(c: Case) -> None:
    _setup_open_version(c)
    c.scratch["build"] = "no-such-build"
    if c.exists:
        build = c.w.services.builds.create(
            c.w.admin, c.name, c.scratch["fp"], "amazon-ebs.y", BuildChanges()
        )
        c.scratch["build"] = build.id


def _update_build(c: Case) -> httpx.Response:
    path = f"/buckets/{c.name}/versions/{c.scratch['fp']}/builds/{c.scratch['build']}"
    return c.client.patch(path, {"status": "BUILD_RUNNING"})


def _verify_running_build(c: Case, body: dict[str, Any]) -> None:
    assert (body["build"]["id"], body["build"]["status"]) == (c.scratch["build"], "BUILD_RUNNING")


def _build_unset(c: Case) -> None:
    if c.exists:
        builds = c.w.root.ok(_version(c, c.scratch["fp"]))["version"]["builds"]
        assert [b["status"] for b in builds] == ["BUILD_UNSET"]


# channels


def _list_channels(c: Case) -> httpx.Response:
    return c.client.get(f"/buckets/{c.name}/channels")


def _verify_channels(c: Case, body: dict[str, Any]) -> None:
    listed = {ch["name"]: ch for ch in body["channels"]}
    assert "pub" in listed and not listed["pub"]["restricted"]
    every = c.w.root.ok(c.admin_get(f"/buckets/{c.name}/channels"))["channels"]
    restricted = {ch["name"] for ch in every if ch["restricted"]}
    assert "sec" in restricted
    if c.k.writes(c.bucket):
        assert set(listed) == {ch["name"] for ch in every}
    else:
        assert set(listed) == {ch["name"] for ch in every} - restricted
        assert not any(ch["restricted"] for ch in listed.values())


def _get_channel(name: str) -> Run:
    def run(c: Case) -> httpx.Response:
        return c.client.get(f"/buckets/{c.name}/channels/{name}")

    return run


def _verify_channel(name: str, restricted: bool) -> Verify:
    def verify(c: Case, body: dict[str, Any]) -> None:
        ch = body["channel"]
        assert (ch["name"], ch["bucket_name"], ch["restricted"]) == (name, c.name, restricted)
        assert ch["version"]["fingerprint"] == c.w.v1[c.bucket]

    return verify


def _history(name: str) -> Run:
    def run(c: Case) -> httpx.Response:
        return c.client.get(f"/buckets/{c.name}/channels/{name}/history")

    return run


def _verify_history(c: Case, body: dict[str, Any]) -> None:
    assert [h["version"]["fingerprint"] for h in body["history"]] == [c.w.v1[c.bucket]]


def _v1_build(c: Case) -> str:
    if not c.exists:
        return "no-such-build"
    builds = c.w.root.ok(_version(c, c.w.v1[c.bucket]))["version"]["builds"]
    return str(builds[0]["id"])


def _list_builds(c: Case) -> httpx.Response:
    fp = c.w.v1.get(c.bucket, "fp-missing")
    return c.client.get(f"/buckets/{c.name}/versions/{fp}/builds")


def _verify_builds(c: Case, body: dict[str, Any]) -> None:
    assert [b["id"] for b in body["builds"]] == [_v1_build(c)]


def _get_build(c: Case) -> httpx.Response:
    fp = c.w.v1.get(c.bucket, "fp-missing")
    return c.client.get(f"/buckets/{c.name}/versions/{fp}/builds/{_v1_build(c)}")


def _verify_one_build(c: Case, body: dict[str, Any]) -> None:
    assert (body["build"]["id"], body["build"]["status"]) == (_v1_build(c), "BUILD_DONE")


def _promote(c: Case) -> httpx.Response:
    body = {"source_channel": "pub", "target_channel": c.scratch["channel"]}
    return c.client.post(f"/buckets/{c.name}/channels/assign", body)


def _verify_promoted(c: Case, body: dict[str, Any]) -> None:
    assert body["fingerprint"] == c.w.v1[c.bucket]
    assert body["target_channel"]["name"] == c.scratch["channel"]
    _verify_assigned(c, {"channel": body["target_channel"]})


def _create_restricted_channel(c: Case) -> httpx.Response:
    c.scratch["channel"] = unique("ch-sec")
    body = {"name": c.scratch["channel"], "restricted": True}
    return c.client.post(f"/buckets/{c.name}/channels", body)


def _verify_restricted_channel(c: Case, body: dict[str, Any]) -> None:
    assert (body["channel"]["name"], body["channel"]["restricted"]) == (c.scratch["channel"], True)


def _restrict_channel(c: Case) -> httpx.Response:
    body = {"restricted": True, "update_mask": "restricted"}
    return c.client.patch(f"/buckets/{c.name}/channels/{c.scratch['channel']}", body)


def _verify_restricted(c: Case, body: dict[str, Any]) -> None:
    assert body["channel"]["restricted"] is True
    path = f"/buckets/{c.name}/channels/{c.scratch['channel']}"
    assert c.w.root.ok(c.admin_get(path))["channel"]["restricted"] is True


def _still_public(c: Case) -> None:
    if c.exists:
        path = f"/buckets/{c.name}/channels/{c.scratch['channel']}"
        assert c.w.root.ok(c.admin_get(path))["channel"]["restricted"] is False


def _restore_preview(c: Case) -> httpx.Response:
    path = f"{c.w.packyard}/buckets/{c.name}/versions/{c.scratch['fp']}/restore-preview"
    return c.client.get(path)


def _verify_restore_preview(c: Case, body: dict[str, Any]) -> None:
    assert body["version"]["version_fingerprint"] == c.scratch["fp"]
    assert (body["descendants"], body["hidden_descendants"]) == ([], 0)


def _create_channel(c: Case) -> httpx.Response:
    c.scratch["channel"] = unique("ch-new")
    body = {"name": c.scratch["channel"], "version_fingerprint": c.w.v1.get(c.bucket, "")}
    return c.client.post(f"/buckets/{c.name}/channels", body)


def _verify_created_channel(c: Case, body: dict[str, Any]) -> None:
    assert body["channel"]["name"] == c.scratch["channel"]
    assert body["channel"]["version"]["fingerprint"] == c.w.v1[c.bucket]


def _no_such_channel(c: Case) -> None:
    if c.exists:
        assert_status(c.admin_get(f"/buckets/{c.name}/channels/{c.scratch['channel']}"), 404, 5)


def _drop_channel(c: Case) -> None:
    path = f"/buckets/{c.name}/channels/{c.scratch.get('channel')}"
    if c.exists and c.admin_get(path).status_code == 200:
        c.w.root.ok(c.w.root.delete(path))


def _setup_channel(c: Case) -> None:
    c.scratch["channel"] = c.scratch_channel()


def _assign_channel(c: Case) -> httpx.Response:
    body = {
        "version_fingerprint": c.w.v1.get(c.bucket, "fp-missing"),
        "update_mask": "versionFingerprint",
    }
    return c.client.patch(f"/buckets/{c.name}/channels/{c.scratch['channel']}", body)


def _verify_assigned(c: Case, body: dict[str, Any]) -> None:
    assert body["channel"]["version"]["fingerprint"] == c.w.v1[c.bucket]


def _still_unassigned(c: Case) -> None:
    if c.exists:
        path = f"/buckets/{c.name}/channels/{c.scratch['channel']}"
        assert c.w.root.ok(c.admin_get(path))["channel"]["version"] is None


def _delete_channel(c: Case) -> httpx.Response:
    return c.client.delete(f"/buckets/{c.name}/channels/{c.scratch['channel']}")


def _channel_gone(c: Case, body: dict[str, Any]) -> None:
    _no_such_channel(c)


def _channel_still_there(c: Case) -> None:
    if c.exists:
        c.w.root.ok(c.admin_get(f"/buckets/{c.name}/channels/{c.scratch['channel']}"))


# revocation


def _setup_version(c: Case) -> None:
    c.scratch["fp"] = c.scratch_version()


def _setup_revoked_version(c: Case) -> None:
    _setup_version(c)
    if c.exists:
        revoke_now(c.w.services, c.w.admin, c.name, c.scratch["fp"])


def _update_version(**body: Any) -> Run:
    def run(c: Case) -> httpx.Response:
        return c.client.patch(f"/buckets/{c.name}/versions/{c.scratch['fp']}", body)

    return run


def _verify_status(status: str) -> Verify:
    def verify(c: Case, body: dict[str, Any]) -> None:
        assert body["version"]["fingerprint"] == c.scratch["fp"]
        assert body["version"]["status"] == status
        assert c.w.root.ok(_version(c, c.scratch["fp"]))["version"]["status"] == status

    return verify


def _status_is(status: str) -> Step:
    def check(c: Case) -> None:
        if c.exists:
            assert c.w.root.ok(_version(c, c.scratch["fp"]))["version"]["status"] == status

    return check


def _delete_version(c: Case) -> httpx.Response:
    return c.client.delete(f"/buckets/{c.name}/versions/{c.scratch['fp']}")


def _version_gone(c: Case, body: dict[str, Any]) -> None:
    assert_status(_version(c, c.scratch["fp"]), 409, 10)


def _preview_revocation(c: Case) -> httpx.Response:
    fp = c.w.v1.get(c.bucket, "fp-missing")
    path = f"{c.w.packyard}/buckets/{c.name}/versions/{fp}/revocation-preview"
    return c.client.get(path, params={"revoke_in": "1h"})


def _verify_preview(c: Case, body: dict[str, Any]) -> None:
    assert body["version"]["version_fingerprint"] == c.w.v1[c.bucket]
    assert body["immediate"] is False
    status = c.w.root.ok(_version(c, c.w.v1[c.bucket]))["version"]["status"]
    assert status == "VERSION_ACTIVE"


# ancestry and search


def _ancestry(c: Case) -> httpx.Response:
    return c.client.get(f"/buckets/{c.name}/ancestry")


def _verify_ancestry(c: Case, body: dict[str, Any]) -> None:
    seen = {c.w.names[b] for b in ("A", "B") if c.k.sees(b)}
    for r in body["relations"]:
        assert {r["parent"]["bucket_name"], r["child"]["bucket_name"]} <= seen, r
        assert c.name in (r["parent"]["bucket_name"], r["child"]["bucket_name"]), r
    assert body["total_count"] == len(body["relations"])
    assert body["relations"], "every bucket of the module has an edge the caller may see"


def _children_through_sec(c: Case) -> httpx.Response:
    params = {"type": "ANCESTRY_TYPE_CHILDREN", "channel_name": "sec"}
    return c.client.get(f"/buckets/{c.name}/ancestry", params=params)


def _verify_children_through_sec(c: Case, body: dict[str, Any]) -> None:
    edges = {
        (r["child"]["version_fingerprint"], r["parent"]["channel_name"]) for r in body["relations"]
    }
    # A's only child through `sec` is in B: edges to an unseen bucket are left out
    built = c.bucket == "A" and c.k.sees("B")
    assert edges == ({(c.w.ancestry["b_sec_kid"], "sec")} if built else set())


def _search(c: Case) -> httpx.Response:
    ami = c.w.ami.get(c.bucket, "ami-nowhere")
    return c.client.post("/_search/external_artifact", {"external_identifier": ami})


def _verify_search(c: Case, body: dict[str, Any]) -> None:
    found = [(a["bucket"]["name"], a["version"]["fingerprint"]) for a in body["artifacts"]]
    expected = [(c.name, c.w.v1[c.bucket])] if c.k.sees(c.bucket) else []
    assert found == expected


# IAM and access lists


def _get_policy(c: Case) -> httpx.Response:
    return c.client.get(IAM_POLICY, params={"resource_name": c.w.resource(c.name)})


def _bindings(policy: dict[str, Any]) -> dict[str, set[str]]:
    return {b["role_id"]: {m["member_id"] for m in b["members"]} for b in policy["bindings"]}


def _expected_bindings(w: World, bucket: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for kind, k in KINDS.items():
        if bucket == "A" and k.grant_a is not None:
            out.setdefault(f"roles/{k.grant_a.value}", set()).add(w.callers[kind].id)
    return out


def _verify_policy(c: Case, body: dict[str, Any]) -> None:
    assert _bindings(body["policy"]) == _expected_bindings(c.w, c.bucket)
    for b in body["policy"]["bindings"]:
        assert {m["member_type"] for m in b["members"]} == {"SERVICE_PRINCIPAL"}


def _admin_policy(c: Case) -> dict[str, Any]:
    if not c.exists:
        return {"bindings": [], "etag": ""}
    return iam_wire.policy(c.w.services.access.policy(c.w.admin, c.name))


def _setup_policy(c: Case) -> None:
    c.scratch["policy"] = _admin_policy(c)


def _set_policy(c: Case) -> httpx.Response:
    body = {"resource_name": c.w.resource(c.name), "policy": c.scratch["policy"]}
    return c.client.put(IAM_POLICY, body)


def _verify_set_policy(c: Case, body: dict[str, Any]) -> None:
    assert _bindings(body["policy"]) == _bindings(c.scratch["policy"])
    assert body["policy"]["etag"] not in ("", c.scratch["policy"]["etag"])
    assert _admin_policy(c)["etag"] == body["policy"]["etag"]


def _policy_unchanged(c: Case) -> None:
    assert _admin_policy(c) == c.scratch["policy"]


def _setup_policy_with_target(c: Case) -> None:
    """The current policy plus the target as a viewer, as a Terraform binding applies it."""
    assert c.w.target is not None
    _setup_policy(c)
    policy = c.scratch["policy"]
    wanted = {"member_id": c.w.target.id, "member_type": "SERVICE_PRINCIPAL"}
    bindings = [b for b in policy["bindings"] if b["role_id"] != "roles/viewer"]
    viewers = [b for b in policy["bindings"] if b["role_id"] == "roles/viewer"]
    members = [*(viewers[0]["members"] if viewers else []), wanted]
    c.scratch["wanted"] = {
        **policy,
        "bindings": [*bindings, {"role_id": "roles/viewer", "members": members}],
    }


def _set_policy_with_target(c: Case) -> httpx.Response:
    body = {"resource_name": c.w.resource(c.name), "policy": c.scratch["wanted"]}
    return c.client.put(IAM_POLICY, body)


def _verify_target_bound(c: Case, body: dict[str, Any]) -> None:
    assert _bindings(body["policy"]) == _bindings(c.scratch["wanted"])
    assert _target_grant(c) == "viewer"


def _list_bucket_access(c: Case) -> httpx.Response:
    return c.client.get(f"{c.w.packyard}/access", params={"bucket": c.name})


def _verify_bucket_access(c: Case, body: dict[str, Any]) -> None:
    assert {e["bucket"] for e in body["access"]} <= {c.name}
    got: dict[str, set[str]] = {}
    for e in body["access"]:
        assert e["member_type"] == "SERVICE_PRINCIPAL"
        got.setdefault(f"roles/{e['role']}", set()).add(e["member_id"])
    assert got == _expected_bindings(c.w, c.bucket)


def _target(c: Case) -> str:
    assert c.w.target is not None
    return f"{c.w.packyard}/access/{c.w.target.id}"


def _target_grant(c: Case) -> str | None:
    """The target's role on the bucket, as the bucket's policy says (``None``: none)."""
    if not c.exists:
        return None
    assert c.w.target is not None
    for role_id, members in _bindings(_admin_policy(c)).items():
        if c.w.target.id in members:
            return role_id.removeprefix("roles/")
    return None


def _grant(c: Case) -> httpx.Response:
    return c.client.put(_target(c), {"role": "viewer", "bucket": c.name})


def _verify_granted(c: Case, body: dict[str, Any]) -> None:
    entry = body["access"]
    assert c.w.target is not None
    assert (entry["member_id"], entry["bucket"], entry["role"]) == (
        c.w.target.id,
        c.name,
        "viewer",
    )
    assert _target_grant(c) == "viewer"


def _not_granted(c: Case) -> None:
    assert _target_grant(c) is None


def _setup_target_grant(c: Case) -> None:
    if c.exists:
        c.w.root.ok(c.w.root.put(_target(c), {"role": "viewer", "bucket": c.name}))


def _revoke_grant(c: Case) -> httpx.Response:
    return c.client.delete(_target(c), params={"bucket": c.name})


def _verify_revoked(c: Case, body: dict[str, Any]) -> None:
    assert body == {}
    assert _target_grant(c) is None


def _still_granted(c: Case) -> None:
    if c.exists:
        assert _target_grant(c) == "viewer"


def _drop_target_grant(c: Case) -> None:
    if _target_grant(c) is not None:
        c.w.root.ok(c.w.root.delete(_target(c), params={"bucket": c.name}))


BUCKET_OPS = [
    Op("GetBucket", rule_read, _get_bucket, verify=_verify_bucket),
    Op(
        "UpdateBucket",
        rule_write,
        _update_bucket,
        verify=_verify_updated_bucket,
        unchanged=_bucket_kept_description,
    ),
    Op(
        "DeleteBucket",
        rule_delete_bucket,
        _delete_bucket,
        setup=_setup_doomed_bucket,
        verify=_bucket_gone,
        unchanged=_bucket_still_there,
        cleanup=_drop_doomed_bucket,
    ),
    Op("ListVersions", rule_read, _list_versions, verify=_verify_versions),
    Op("GetVersion", rule_read, _get_version, verify=_verify_version),
    Op(
        "CreateVersion",
        rule_write,
        _create_version,
        verify=_verify_created_version,
        unchanged=_no_such_version,
    ),
    Op(
        "CreateBuild",
        rule_write,
        _create_build,
        setup=_setup_open_version,
        verify=_verify_build,
        unchanged=_no_builds,
    ),
    Op(
        "UpdateBuild",
        rule_write,
        _update_build,
        setup=_setup_open_build,
        verify=_verify_running_build,
        unchanged=_build_unset,
    ),
    Op("ListChannels", rule_read, _list_channels, verify=_verify_channels),
    Op("GetChannelPublic", rule_read, _get_channel("pub"), verify=_verify_channel("pub", False)),
    Op(
        "GetChannelRestricted",
        rule_restricted_read,
        _get_channel("sec"),
        verify=_verify_channel("sec", True),
    ),
    Op("ListChannelHistoryPublic", rule_read, _history("pub"), verify=_verify_history),
    Op(
        "ListChannelHistoryRestricted",
        rule_restricted_read,
        _history("sec"),
        verify=_verify_history,
    ),
    Op("ListBuilds", rule_read, _list_builds, verify=_verify_builds),
    Op("GetBuild", rule_read, _get_build, verify=_verify_one_build),
    Op(
        "AssignChannelVersion",
        rule_write,
        _promote,
        setup=_setup_channel,
        verify=_verify_promoted,
        unchanged=_still_unassigned,
        cleanup=_drop_channel,
    ),
    Op(
        "CreateRestrictedChannel",
        rule_write,
        _create_restricted_channel,
        verify=_verify_restricted_channel,
        unchanged=_no_such_channel,
        cleanup=_drop_channel,
    ),
    Op(
        "RestrictChannel",
        rule_write,
        _restrict_channel,
        setup=_setup_channel,
        verify=_verify_restricted,
        unchanged=_still_public,
        cleanup=_drop_channel,
    ),
    Op(
        "PreviewRestore",
        rule_write,
        _restore_preview,
        setup=_setup_revoked_version,
        verify=_verify_restore_preview,
        unchanged=_status_is("VERSION_REVOKED"),
    ),
    Op(
        "CreateChannel",
        rule_write,
        _create_channel,
        verify=_verify_created_channel,
        unchanged=_no_such_channel,
        cleanup=_drop_channel,
    ),
    Op(
        "UpdateChannel",
        rule_write,
        _assign_channel,
        setup=_setup_channel,
        verify=_verify_assigned,
        unchanged=_still_unassigned,
        cleanup=_drop_channel,
    ),
    Op(
        "DeleteChannel",
        rule_write,
        _delete_channel,
        setup=_setup_channel,
        verify=_channel_gone,
        unchanged=_channel_still_there,
        cleanup=_drop_channel,
    ),
    Op(
        "RevokeAt",
        rule_write,
        _update_version(revoke_at="2020-01-01T00:00:00Z", revocation_message="matrix"),
        setup=_setup_version,
        verify=_verify_status("VERSION_REVOKED"),
        unchanged=_status_is("VERSION_ACTIVE"),
    ),
    Op(
        "RevokeIn",
        rule_write,
        _update_version(revoke_in="1h"),
        setup=_setup_version,
        verify=_verify_status("VERSION_REVOCATION_SCHEDULED"),
        unchanged=_status_is("VERSION_ACTIVE"),
    ),
    Op(
        "Restore",
        rule_write,
        _update_version(restore=True),
        setup=_setup_revoked_version,
        verify=_verify_status("VERSION_ACTIVE"),
        unchanged=_status_is("VERSION_REVOKED"),
    ),
    Op(
        "DeleteVersion",
        rule_write,
        _delete_version,
        setup=_setup_version,
        verify=_version_gone,
        unchanged=_status_is("VERSION_ACTIVE"),
    ),
    Op("PreviewRevocation", rule_write, _preview_revocation, verify=_verify_preview),
    Op("ListBucketAncestry", rule_read, _ancestry, verify=_verify_ancestry),
    Op(
        "ListBucketAncestryThroughRestricted",
        rule_restricted_read,
        _children_through_sec,
        verify=_verify_children_through_sec,
    ),
    Op("SearchExternalArtifact", rule_any, _search, verify=_verify_search),
    Op("GetIamPolicy", rule_read, _get_policy, verify=_verify_policy),
    Op(
        "SetIamPolicy",
        rule_bucket_admin,
        _set_policy,
        setup=_setup_policy,
        verify=_verify_set_policy,
        unchanged=_policy_unchanged,
    ),
    Op(
        "SetIamPolicyAddingMember",
        rule_bucket_admin,
        _set_policy_with_target,
        setup=_setup_policy_with_target,
        verify=_verify_target_bound,
        unchanged=_policy_unchanged,
        cleanup=_drop_target_grant,
    ),
    Op("ListAccessOfBucket", rule_bucket_admin, _list_bucket_access, verify=_verify_bucket_access),
    Op(
        "GrantOnBucket",
        rule_bucket_admin,
        _grant,
        verify=_verify_granted,
        unchanged=_not_granted,
        cleanup=_drop_target_grant,
    ),
    Op(
        "RevokeGrantOnBucket",
        rule_bucket_admin,
        _revoke_grant,
        setup=_setup_target_grant,
        verify=_verify_revoked,
        unchanged=_still_granted,
        cleanup=_drop_target_grant,
    ),
]


# operations on the project (no bucket dimension)


def _get_registry(c: Case) -> httpx.Response:
    return c.client.get("/registry")


def _verify_registry(c: Case, body: dict[str, Any]) -> None:
    assert body["registry"]["config"]["activated"] is True
    assert body["registry"]["location"]["project_id"] == c.w.tenant.project_id


def _update_registry(c: Case) -> httpx.Response:
    return c.client.patch("/registry", {"activated": True, "update_mask": "activated"})


def _list_buckets(c: Case) -> httpx.Response:
    return c.client.get("/buckets")


def _verify_buckets(c: Case, body: dict[str, Any]) -> None:
    listed = {b["name"] for b in body["buckets"]}
    a, b = c.w.names["A"], c.w.names["B"]
    assert (a in listed, b in listed) == (c.k.sees("A"), c.k.sees("B"))
    for bucket in body["buckets"]:
        key = {a: "A", b: "B"}.get(bucket["name"])
        if key is not None:
            assert (bucket["latest_version"] is not None) == c.k.writes(key), key
    if c.k.project is None:
        assert listed == c.w.granted[c.kind]
    else:
        every = c.w.root.ok(c.w.root.get("/buckets"))["buckets"]
        assert listed == {x["name"] for x in every}


def _create_bucket(c: Case) -> httpx.Response:
    c.scratch["bucket"] = unique(f"new-{c.kind.replace('_', '-')}")
    return c.client.put("/buckets", {"name": c.scratch["bucket"]})


def _verify_created_bucket(c: Case, body: dict[str, Any]) -> None:
    assert body["bucket"]["name"] == c.scratch["bucket"]


def _no_new_bucket(c: Case) -> None:
    assert_status(c.admin_get(f"/buckets/{c.scratch['bucket']}"), 404, 5)


def _drop_new_bucket(c: Case) -> None:
    if c.admin_get(f"/buckets/{c.scratch['bucket']}").status_code == 200:
        c.w.root.ok(c.w.root.delete(f"/buckets/{c.scratch['bucket']}"))


def _list_access(c: Case) -> httpx.Response:
    return c.client.get(f"{c.w.packyard}/access")


def _verify_access(c: Case, body: dict[str, Any]) -> None:
    entries = {(e["member_id"], e["bucket"], e["role"]) for e in body["access"]}
    for kind, k in KINDS.items():
        pid = c.w.callers[kind].id
        project_entry = (pid, None, k.project.value if k.project else None)
        assert (project_entry in entries) == (k.project is not None), kind
        if k.grant_a is not None:
            assert (pid, c.w.names["A"], k.grant_a.value) in entries, kind


def _grant_on_project(c: Case) -> httpx.Response:
    return c.client.put(_target(c), {"role": "viewer"})


def _verify_project_grant(c: Case, body: dict[str, Any]) -> None:
    assert c.w.target is not None
    entry = body["access"]
    assert (entry["member_id"], entry["bucket"], entry["role"]) == (c.w.target.id, None, "viewer")


PROJECT_OPS = [
    Op("GetRegistry", rule_any, _get_registry, verify=_verify_registry),
    Op("UpdateRegistry", rule_project_write, _update_registry, verify=_verify_registry),
    Op("ListBuckets", rule_any, _list_buckets, verify=_verify_buckets),
    Op(
        "CreateBucket",
        rule_project_write,
        _create_bucket,
        verify=_verify_created_bucket,
        unchanged=_no_new_bucket,
        cleanup=_drop_new_bucket,
    ),
    Op("ListAccess", rule_project_admin, _list_access, verify=_verify_access),
    Op("GrantOnProject", rule_project_admin, _grant_on_project, verify=_verify_project_grant),
]

CELLS = [
    pytest.param(kind, op, bucket, id=f"{kind}-{op.name}-{bucket}")
    for kind in KINDS
    for op in BUCKET_OPS
    for bucket in BUCKETS
] + [pytest.param(kind, op, "A", id=f"{kind}-{op.name}") for kind in KINDS for op in PROJECT_OPS]


def assert_outcome(response: httpx.Response, expected: Outcome) -> dict[str, Any]:
    status, code = expected
    if code is None:
        assert response.status_code == status, (response.status_code, response.text)
        body: dict[str, Any] = response.json()
        return body
    return assert_status(response, status, code)


@pytest.mark.parametrize(("kind", "op", "bucket"), CELLS)
def test_matrix(world: World, kind: str, op: Op, bucket: str) -> None:
    case = Case(world, kind, bucket)
    expected = op.rule(case.k, bucket)
    op.setup(case)
    try:
        body = assert_outcome(op.run(case), expected)
        if expected == OK:
            op.verify(case, body)
        else:
            op.unchanged(case)
    finally:
        op.cleanup(case)


def test_the_matrix_covers_every_caller_operation_and_bucket() -> None:
    assert len(CELLS) == len(KINDS) * (len(BUCKET_OPS) * len(BUCKETS) + len(PROJECT_OPS))
    outcomes = {op.rule(k, b) for op in BUCKET_OPS for k in KINDS.values() for b in BUCKETS}
    assert outcomes == {OK, DENIED, MISSING}


# --- the response cache: each caller always gets its own view ------------------------------

CACHE_ROUNDS = 5  # a caller's role is cached on its 1st ask, its answer stored on the 3rd

CACHED_READS = [
    pytest.param("ListBuckets", "A", "pv", "only_ac", id="ListBuckets-pv-vs-only_ac"),
    pytest.param("ListBuckets", "A", "only_av", "pa", id="ListBuckets-only_av-vs-pa"),
    # the same buckets, but only writers see `latest` (restricted): latest_version differs
    pytest.param("ListBuckets", "A", "pv", "pc", id="ListBuckets-pv-vs-pc"),
    pytest.param("GetBucket", "A", "pv", "pv_ac", id="GetBucket-A-pv-vs-pv_ac"),
    pytest.param("GetBucket", "B", "pv", "only_ac", id="GetBucket-B-pv-vs-only_ac"),
    pytest.param("GetVersion", "B", "pa", "only_aa", id="GetVersion-B-pa-vs-only_aa"),
    pytest.param("ListChannels", "A", "pv", "pv_ac", id="ListChannels-A-pv-vs-pv_ac"),
    pytest.param("ListChannels", "A", "only_av", "only_ac", id="ListChannels-A-only_av-vs-only_ac"),
    pytest.param("ListChannels", "B", "pv_aa", "pc", id="ListChannels-B-pv_aa-vs-pc"),
    pytest.param(
        "ListChannelHistoryRestricted",
        "A",
        "only_aa",
        "pv",
        id="ListChannelHistoryRestricted-A-only_aa-vs-pv",
    ),
    pytest.param(
        "GetChannelRestricted", "A", "pv_ac", "pv", id="GetChannelRestricted-A-pv_ac-vs-pv"
    ),
    pytest.param(
        "GetChannelRestricted",
        "A",
        "only_ac",
        "only_av",
        id="GetChannelRestricted-A-only_ac-vs-only_av",
    ),
    pytest.param("SearchExternalArtifact", "B", "pc", "only_aa", id="Search-B-pc-vs-only_aa"),
    pytest.param("ListBucketAncestry", "A", "pv", "only_av", id="Ancestry-A-pv-vs-only_av"),
]
OPS_BY_NAME = {op.name: op for op in BUCKET_OPS + PROJECT_OPS}


@pytest.mark.parametrize(("op_name", "bucket", "first", "second"), CACHED_READS)
def test_cached_reads_never_cross_views(
    world: World, op_name: str, bucket: str, first: str, second: str
) -> None:
    op = OPS_BY_NAME[op_name]
    seen: dict[str, list[httpx.Response]] = {first: [], second: []}
    for _ in range(CACHE_ROUNDS):
        for kind in (first, second):
            case = Case(world, kind, bucket)
            response = op.run(case)
            body = assert_outcome(response, op.rule(case.k, bucket))
            if response.status_code == 200:
                op.verify(case, body)
            seen[kind].append(response)
    for kind, answers in seen.items():
        assert len({a.content for a in answers}) == 1, kind  # one view, asked five times
        if answers[0].status_code == 200:
            assert [a.headers.get(HIT) for a in answers[-2:]] == ["hit", "hit"], kind
        else:
            assert not any(HIT in a.headers for a in answers), kind
    ours, theirs = seen[first][0], seen[second][0]
    assert (ours.status_code, ours.content) != (theirs.status_code, theirs.content)


class _LaterClock:
    """``time`` for the role cache, ``offset`` seconds later (everything else unchanged)."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_a_changed_grant_applies_once_the_role_cache_expires(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running server applies a grant within ROLE_CACHE_TTL_S (the old view may be served
    until then, never after) — read and cached views included."""
    w, a = world, world.names["A"]
    late = _new_principal(w.root, w.packyard, "late", Role.VIEWER)
    member = f"{w.packyard}/access/{late.id}"
    channels, restricted = f"/buckets/{a}/channels", f"/buckets/{a}/channels/sec"

    def names() -> set[str]:
        return {c["name"] for c in late.client.ok(late.client.get(channels))["channels"]}

    def expire_roles(step: int) -> None:
        monkeypatch.setattr(auth_module, "time", _LaterClock(step * (ROLE_CACHE_TTL_S + 1)))

    for _ in range(CACHE_ROUNDS):
        assert "sec" not in names()
    assert late.client.get(channels).headers.get(HIT) == "hit"
    assert_status(late.client.get(restricted), 403, 7)

    w.root.ok(w.root.put(member, {"role": "contributor", "bucket": a}))
    expire_roles(1)
    answer = late.client.get(channels)
    assert HIT not in answer.headers
    assert "sec" in {c["name"] for c in late.client.ok(answer)["channels"]}
    assert late.client.ok(late.client.get(restricted))["channel"]["restricted"] is True

    w.root.ok(w.root.delete(member))  # the project role: only the grant on A is left
    expire_roles(2)
    listed = late.client.ok(late.client.get("/buckets"))["buckets"]
    assert [b["name"] for b in listed] == [a]
    assert_status(late.client.get(f"/buckets/{w.names['B']}"), 404, 5)

    w.root.ok(w.root.delete(member, params={"bucket": a}))  # nothing left on the project
    expire_roles(3)
    assert_status(late.client.get(f"/buckets/{a}"), 404, 5)
    assert_status(late.client.get("/buckets"), 404, 5)
    late.client.close()


# --- ancestry and revocation across buckets -----------------------------------------------


def _relations(client: Member, bucket: str, **params: str) -> dict[str, Any]:
    return client.ok(client.get(f"/buckets/{bucket}/ancestry", params=params))


def _edge(r: dict[str, Any]) -> tuple[str, str, str, str]:
    p, c = r["parent"], r["child"]
    return p["bucket_name"], p["version_fingerprint"], c["bucket_name"], c["version_fingerprint"]


ANCESTRY_QUERIES = [
    pytest.param({}, id="default"),
    pytest.param({"type": "ANCESTRY_TYPE_CHILDREN"}, id="children"),
    pytest.param({"type": "ANCESTRY_TYPE_PARENTS", "version_fingerprint": "a_kid"}, id="parents"),
]


@pytest.mark.parametrize("query", ANCESTRY_QUERIES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_ancestry_omits_edges_to_buckets_the_caller_cannot_see(
    world: World, kind: str, query: dict[str, str]
) -> None:
    w, k, a = world, KINDS[kind], world.names["A"]
    params = {key: w.ancestry.get(value, value) for key, value in query.items()}
    if params:
        full = _relations(w.root, a, **params)["relations"]
    else:
        push(w.services, w.admin, a, (w.v1_id["B"], w.pub_id["B"]))  # A's latest: from B
        # Parents of the version on `latest` (restricted, as on HCP: shown to A's writers
        # only), then the children.
        parents = _relations(w.root, a, type="ANCESTRY_TYPE_PARENTS")["relations"]
        children = _relations(w.root, a, type="ANCESTRY_TYPE_CHILDREN")["relations"]
        assert parents and children
        full = (parents if k.writes("A") else []) + children
    seen = {w.names[b] for b in ("A", "B") if k.sees(b)}
    got = _relations(w.callers[kind].client, a, **params)
    expected = [_edge(r) for r in full if {_edge(r)[0], _edge(r)[2]} <= seen]
    assert [_edge(r) for r in got["relations"]] == expected
    assert got["total_count"] == len(expected)  # nothing hidden is counted either
    if not k.sees("B"):
        assert len(expected) < len(full)  # the module has edges to B here
    for r in got["relations"]:  # an edge recorded through A's restricted channel
        if r["child"]["version_fingerprint"] == w.ancestry["b_sec_kid"]:
            assert r["parent"]["channel_name"] in (("sec",) if k.writes("A") else ("", None))


def _preview(client: Member, w: World, bucket: str, fp: str) -> httpx.Response:
    path = f"{w.packyard}/buckets/{bucket}/versions/{fp}/revocation-preview"
    return client.get(path, params={"revoke_at": "2020-01-01T00:00:00Z"})


def _named(preview: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["bucket_name"], c["channel_name"]) for c in preview["channels"]]


def test_revocation_by_a_bucket_contributor_cascades_into_buckets_it_cannot_write(
    world: World,
) -> None:
    """Revocation is a safety signal: revoking an A version revokes its descendants wherever
    they are, and rolls back their channels, even in buckets the revoker cannot write or see.
    The preview names only what the revoker may see and counts the rest."""
    w, svc, admin = world, world.services, world.admin
    a, b = w.names["A"], w.names["B"]
    parent_fp, parent_id, _ = push(svc, admin, a)
    before_fp = push(svc, admin, b)[0]
    public, restricted = unique("casc-pub"), unique("casc-sec")
    svc.channels.create(admin, b, public, before_fp, False)
    svc.channels.create(admin, b, restricted, before_fp, True)
    kid_fp = push(svc, admin, b, (parent_id, None))[0]
    for channel in (public, restricted):
        body = {"version_fingerprint": kid_fp, "update_mask": "versionFingerprint"}
        w.root.ok(w.root.patch(f"/buckets/{b}/channels/{channel}", body))

    full = w.root.ok(_preview(w.root, w, a, parent_fp))
    assert [(d["bucket_name"], d["version_fingerprint"]) for d in full["descendants"]] == [
        (b, kid_fp)
    ]
    assert {(b, public), (b, restricted)} <= set(_named(full))
    in_b = [c for c in full["channels"] if c["bucket_name"] == b]
    hidden_in_b = [(b, c["channel_name"]) for c in in_b if c["restricted"]]  # and `latest`
    assert (full["hidden_descendants"], full["hidden_channels"]) == (0, 0)

    blind = w.callers["only_ac"].client  # writes A, does not see B
    seen = blind.ok(_preview(blind, w, a, parent_fp))
    assert seen["descendants"] == []
    assert seen["hidden_descendants"] == 1
    assert _named(seen) == [n for n in _named(full) if n[0] == a]
    assert seen["hidden_channels"] == len(in_b)

    viewer = w.callers["pv_ac"].client  # writes A, sees B but not its restricted channels
    partial = viewer.ok(_preview(viewer, w, a, parent_fp))
    assert partial["descendants"] == full["descendants"]
    assert partial["hidden_descendants"] == 0
    assert (b, restricted) in hidden_in_b
    assert _named(partial) == [n for n in _named(full) if n not in hidden_in_b]
    assert partial["hidden_channels"] == len(hidden_in_b)

    for refused in ("pv", "only_av"):
        client = w.callers[refused].client
        assert_status(_preview(client, w, a, parent_fp), 403, 7)

    body = {"revoke_at": "2020-01-01T00:00:00Z", "revocation_message": "CVE"}
    revoked = blind.ok(blind.patch(f"/buckets/{a}/versions/{parent_fp}", body))["version"]
    assert revoked["status"] == "VERSION_REVOKED"
    kid = w.root.ok(w.root.get(f"/buckets/{b}/versions/{kid_fp}"))["version"]
    assert (kid["status"], kid["revocation_type"]) == ("VERSION_REVOKED", "INHERITED")
    origin = kid["revocation_inherited_from"]
    assert (origin["bucket_name"], origin["version_id"]) == (a, parent_id)
    for channel in (public, restricted):
        got = w.root.ok(w.root.get(f"/buckets/{b}/channels/{channel}"))["channel"]
        assert got["version"]["fingerprint"] == before_fp, channel
    assert_status(blind.get(f"/buckets/{b}/versions/{kid_fp}"), 404, 5)

    restore_path = f"{w.packyard}/buckets/{a}/versions/{parent_fp}/restore-preview"
    restore = blind.ok(blind.get(restore_path))
    assert (restore["descendants"], restore["hidden_descendants"]) == ([], 1)
    blind.ok(blind.patch(f"/buckets/{a}/versions/{parent_fp}", {"restore": True}))
    kid = w.root.ok(w.root.get(f"/buckets/{b}/versions/{kid_fp}"))["version"]
    assert (kid["status"], kid["revocation_inherited_from"]) == ("VERSION_ACTIVE", None)
    for channel in (public, restricted):  # a restore leaves channels where they were moved
        got = w.root.ok(w.root.get(f"/buckets/{b}/channels/{channel}"))["channel"]
        assert got["version"]["fingerprint"] == before_fp, channel


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_inherited_revocation_names_its_origin_only_to_who_sees_it(
    world: World, kind: str
) -> None:
    """A version of A revoked through its parent in B: revoked for everyone, the origin
    named only to callers who see B."""
    w, svc, admin = world, world.services, world.admin
    a, b = w.names["A"], w.names["B"]
    if "inherited" not in w.ancestry:
        parent_fp, parent_id, _ = push(svc, admin, b)
        w.ancestry["inherited"] = push(svc, admin, a, (parent_id, None))[0]
        revoke_now(svc, admin, b, parent_fp)
    client = w.callers[kind].client
    got = client.ok(client.get(f"/buckets/{a}/versions/{w.ancestry['inherited']}"))["version"]
    assert (got["status"], got["revocation_type"]) == ("VERSION_REVOKED", "INHERITED")
    origin = got["revocation_inherited_from"]
    if KINDS[kind].sees("B"):
        assert origin["bucket_name"] == b
    else:
        assert origin is None
