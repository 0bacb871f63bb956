"""A small registry for bucket-aware read tests: two parent buckets with a restricted
channel each, a child bucket built from both, and another child of the first.

    a (gold, restricted) ──► app1 ◄── b (gold, restricted)
             └─────────────► other1
"""

from __future__ import annotations

from dataclasses import dataclass

from packyard.domain.enums import BuildStatus, Role, TemplateType
from packyard.domain.models import Bucket, Caller, Channel
from packyard.services.builds import ArtifactInput, BuildChanges
from packyard.services.container import Services
from tests.support.factories import TenantFixture, unique


@dataclass
class Pushed:
    bucket: Bucket
    fingerprint: str
    id: str
    ami: str


@dataclass
class Scene:
    a: Bucket
    b: Bucket
    app: Bucket
    other: Bucket
    a_gold: Channel
    b_gold: Channel
    a1: Pushed
    b1: Pushed
    app1: Pushed
    other1: Pushed


def push(
    services: Services,
    caller: Caller,
    bucket: Bucket,
    parents: list[tuple[str | None, str | None]] | None = None,
) -> Pushed:
    """A complete version of ``bucket``: one build per parent (version id, channel id),
    or one build without a parent; every artifact has the same fresh image id."""
    fp, ami = unique("fp"), unique("ami")
    version = services.versions.create(caller, bucket.name, fp, TemplateType.HCL2)
    wanted = parents or [(None, None)]
    made = [
        services.builds.create(caller, bucket.name, fp, f"null.b{i}", BuildChanges())
        for i in range(len(wanted))
    ]
    for build, parent in zip(made, wanted, strict=True):
        services.builds.update(
            caller,
            bucket.name,
            fp,
            build.id,
            BuildChanges(
                status=BuildStatus.DONE,
                platform="aws",
                artifacts=[ArtifactInput(ami, "us-east-1")],
                metadata={"packer": {}},
                parent_version_id=parent[0],
                parent_channel_id=parent[1],
            ),
        )
    return Pushed(bucket, fp, version.id, ami)


def build_scene(services: Services, tenant: TenantFixture) -> Scene:
    admin = tenant.caller(Role.ADMIN)
    made = {
        key: services.buckets.create(admin, unique(key), None, None)
        for key in ("a", "b", "app", "other")
    }
    a1 = push(services, admin, made["a"])
    b1 = push(services, admin, made["b"])
    a_gold = services.channels.create(admin, made["a"].name, "gold", a1.fingerprint, True)
    b_gold = services.channels.create(admin, made["b"].name, "gold", b1.fingerprint, True)
    app1 = push(services, admin, made["app"], [(a1.id, a_gold.id), (b1.id, b_gold.id)])
    other1 = push(services, admin, made["other"], [(a1.id, a_gold.id)])
    return Scene(
        a=made["a"],
        b=made["b"],
        app=made["app"],
        other=made["other"],
        a_gold=a_gold,
        b_gold=b_gold,
        a1=a1,
        b1=b1,
        app1=app1,
        other1=other1,
    )


def move_b_gold_on(services: Services, caller: Caller, scene: Scene) -> Pushed:
    """Push a new version of b and move b's `gold` channel to it: app1 is then out of date
    for whoever sees that (restricted) channel. Returns the new version."""
    b2 = push(services, caller, scene.b)
    services.channels.update(
        caller,
        scene.b.name,
        "gold",
        fingerprint=b2.fingerprint,
        restricted=None,
        update_mask="versionFingerprint",
    )
    return b2


def granted(
    tenant: TenantFixture, role: Role | None, grants: dict[str, Role], name: str = "granted"
) -> Caller:
    """A caller with project role ``role`` (``None``: none) and these bucket grants."""
    return Caller(
        principal_id=unique("sp"),
        name=name,
        organization_id=tenant.organization_id,
        project_id=tenant.project_id,
        role=role,
        bucket_roles=dict(grants),
    )


__all__ = ["Pushed", "Scene", "build_scene", "granted", "move_b_gold_on", "push"]
