"""Enforced blocks over real HTTP: every 2023-01-01 operation, every 200 body validated
against the swagger, and the one call Packer 1.16 makes read exactly as Packer reads it."""

from __future__ import annotations

from typing import Any

import hcl2
import pytest
from sqlalchemy import select

from packyard.domain.enums import Role
from packyard.services.container import Services
from packyard.store.schema import audit_events
from tests.support import swagger
from tests.support.factories import Api, TenantFixture, assert_status, make_member, unique

HCL = 'provisioner "shell-local" {\n  inline = ["echo enforced > marker"]\n}\n'
LEGACY = '{"provisioners": [{"type": "shell-local", "inline": ["echo legacy"]}]}'


def ok(api: Api, response: Any, operation_id: str) -> dict[str, Any]:
    body = api.ok(response)
    swagger.validate(operation_id, body)
    return body


def create(api: Api, name: str, content: str = HCL, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "template_type": "HCL2", "block_content": content, **fields}
    block: dict[str, Any] = ok(
        api, api.put("/enforced_blocks", body), "PackerService_CreateEnforcedBlock"
    )["enforced_block"]
    return block


def packer_reads(body: dict[str, Any]) -> list[dict[str, str]]:
    """``types.bucket.go:182-203`` of Packer 1.16: entries with a version, six fields."""
    out = []
    for detail in body.get("enforced_block_detail") or []:
        if detail is None or detail.get("version") is None:
            continue
        v = detail["version"]
        out.append(
            {
                "ID": detail["id"],
                "Name": detail["name"],
                "BlockContent": v["block_content"],
                "VersionID": v["id"],
                "Version": v["version"],
                "TemplateType": v["template_type"],
            }
        )
    return out


def test_every_operation(api: Api) -> None:
    swagger.require()
    a, b = (unique("bucket") for _ in range(2))
    api.create_bucket(a)
    api.create_bucket(b)
    block = create(
        api, "cis", labels={"team": "sec"}, version="2024.1", additional_description="CIS L1"
    )
    assert block["latest_version"]["version"] == "2024.1"
    assert block["latest_version"]["template_type"] == "HCL2"
    assert block["location"]["project_id"] == api.tenant.project_id
    block_id = block["id"]

    listed = ok(
        api,
        api.get("/enforced_blocks", params={"pagination.page_size": "10"}),
        "PackerService_ListEnforcedBlocks",
    )
    assert [x["id"] for x in listed["enforced_blocks"]] == [block_id]
    assert listed["enforced_blocks"][0]["latest_version"] is None  # only when fetched by id
    got = ok(api, api.get(f"/enforced_blocks/{block_id}"), "PackerService_GetEnforcedBlock")
    assert got["enforced_block"]["latest_version"]["block_content"] == HCL

    updated = ok(
        api,
        api.patch(
            f"/enforced_blocks/{block_id}", {"labels": {"team": "x"}, "update_mask": "labels"}
        ),
        "PackerService_UpdateEnforcedBlock",
    )["enforced_block"]
    assert updated["labels"] == {"team": "x"} and updated["name"] == "cis"

    v2 = ok(
        api,
        api.put(
            f"/enforced_blocks/{block_id}/versions",
            {"version": "2024.2", "template_type": "JSON", "block_content": LEGACY},
        ),
        "PackerService_CreateEnforcedBlockVersion",
    )["enforced_block_version"]
    assert v2["enforced_block_id"] == block_id and v2["template_type"] == "JSON"
    versions = ok(
        api,
        api.get(f"/enforced_blocks/{block_id}/versions"),
        "PackerService_GetEnforcedBlockVersions",
    )
    assert [d["version"]["version"] for d in versions["enforced_block_detail"]] == [
        "2024.2",
        "2024.1",
    ]
    assert {d["id"] for d in versions["enforced_block_detail"]} == {block_id}
    v1_id = versions["enforced_block_detail"][1]["version"]["id"]

    described = ok(
        api,
        api.patch(
            f"/enforced_blocks/{block_id}/versions/{v2['id']}",
            {"additional_description": "legacy form", "update_mask": "additional_description"},
        ),
        "PackerService_UpdateEnforcedBlockVersion",
    )["enforced_block_version"]
    assert described["additional_description"] == "legacy form"

    manage = f"/enforced_blocks/{block_id}/versions/{v1_id}/buckets"
    links = ok(
        api,
        api.post(manage, {"bucket_names": [a, b]}),
        "PackerService_ManageEnforcedBlockLinkedBuckets",
    )
    assert sorted(x["enforced_block_version_id"] for x in links["enforced_block_buckets"]) == [
        v1_id,
        v1_id,
    ]
    linked = ok(api, api.get(manage), "PackerService_GetEnforcedBlockLinkedBuckets")[
        "linked_buckets"
    ]
    assert sorted(x["bucket"]["name"] for x in linked) == sorted([a, b])
    # Linking b to v2 moves it off v1.
    ok(
        api,
        api.post(f"/enforced_blocks/{block_id}/versions/{v2['id']}/buckets", {"bucket_names": [b]}),
        "PackerService_ManageEnforcedBlockLinkedBuckets",
    )
    assert [
        x["bucket"]["name"]
        for x in ok(api, api.get(manage), "PackerService_GetEnforcedBlockLinkedBuckets")[
            "linked_buckets"
        ]
    ] == [a]

    by_bucket = ok(
        api, api.get(f"/enforced_blocks/bucket/{b}"), "PackerService_GetEnforcedBlocksByBucket"
    )
    assert [d["version"]["id"] for d in by_bucket["enforced_block_detail"]] == [v2["id"]]

    # Refusals while linked, then clean up: null is the empty set (hcp-sdk-go sends it).
    assert_status(api.delete(f"/enforced_blocks/{block_id}/versions/{v1_id}"), 400, 9)
    assert_status(api.delete(f"/enforced_blocks/{block_id}"), 400, 9)
    for vid in (v1_id, v2["id"]):
        cleared = ok(
            api,
            api.post(f"/enforced_blocks/{block_id}/versions/{vid}/buckets", {"bucket_names": None}),
            "PackerService_ManageEnforcedBlockLinkedBuckets",
        )
        assert cleared == {"enforced_block_buckets": []}
    assert (
        ok(
            api,
            api.delete(f"/enforced_blocks/{block_id}/versions/{v1_id}"),
            "PackerService_DeleteEnforcedBlockVersion",
        )
        == {}
    )
    assert (
        ok(api, api.delete(f"/enforced_blocks/{block_id}"), "PackerService_DeleteEnforcedBlock")
        == {}
    )
    assert_status(api.get(f"/enforced_blocks/{block_id}"), 404, 5)


def test_bad_content_is_400_3_naming_block_content(api: Api) -> None:
    response = api.put(
        "/enforced_blocks",
        {
            "name": "bad",
            "template_type": "HCL2",
            "block_content": 'provisioner "shell" {\n  inline = [\n',
        },
    )
    body = assert_status(response, 400, 3)
    violation = body["details"][0]["field_violations"][0]
    assert violation["field"] == "block_content"
    assert "line 3, column 1" in body["message"]
    assert ok(api, api.get("/enforced_blocks"), "PackerService_ListEnforcedBlocks") == {
        "enforced_blocks": []
    }


def test_unknown_bucket_in_a_link_is_404_5_naming_it(api: Api) -> None:
    block = create(api, unique("b"))
    vid = block["latest_version"]["id"]
    body = assert_status(
        api.post(
            f"/enforced_blocks/{block['id']}/versions/{vid}/buckets", {"bucket_names": ["nope"]}
        ),
        404,
        5,
    )
    assert "nope" in body["message"]


def test_bucket_named_versions_routes_to_the_bucket_lookup(api: Api) -> None:
    api.create_bucket("versions")
    body = ok(
        api, api.get("/enforced_blocks/bucket/versions"), "PackerService_GetEnforcedBlocksByBucket"
    )
    assert body == {"enforced_block_detail": []}


@pytest.mark.parametrize("content", [HCL, LEGACY])
def test_what_packer_injects_parses_as_packer_parses_it(api: Api, content: str) -> None:
    """The detail body read field by field as Packer 1.16 does, and its content parsed by a
    real HCL parser the way Packer tries (HCL, then HCL-JSON, then legacy JSON)."""
    bucket = unique("golden")
    api.create_bucket(bucket)
    kind = "HCL2" if content == HCL else "JSON"
    block = create(api, unique("hardening"), content, template_type=kind)
    vid = block["latest_version"]["id"]
    api.ok(
        api.post(
            f"/enforced_blocks/{block['id']}/versions/{vid}/buckets", {"bucket_names": [bucket]}
        )
    )
    body = ok(
        api, api.get(f"/enforced_blocks/bucket/{bucket}"), "PackerService_GetEnforcedBlocksByBucket"
    )
    [injected] = packer_reads(body)
    assert injected["ID"] == block["id"] and injected["VersionID"] == vid
    assert injected["TemplateType"] == kind and injected["BlockContent"] == content
    if kind == "HCL2":
        parsed = hcl2.loads(injected["BlockContent"])
        assert set(parsed) == {"provisioner"}
        assert [next(iter(p)) for p in parsed["provisioner"]] == ['"shell-local"']
    else:
        import json

        legacy = json.loads(injected["BlockContent"])
        assert [p["type"] for p in legacy["provisioners"]] == ["shell-local"]


def test_roles(api: Api, services: Services, tenant: TenantFixture) -> None:
    bucket, other = unique("granted"), unique("other")
    api.create_bucket(bucket)
    api.create_bucket(other)
    block = create(api, unique("b"))
    vid = block["latest_version"]["id"]
    api.ok(
        api.post(
            f"/enforced_blocks/{block['id']}/versions/{vid}/buckets",
            {"bucket_names": [bucket, other]},
        )
    )

    viewer = api.as_role(Role.VIEWER)
    ok(viewer, viewer.get("/enforced_blocks"), "PackerService_ListEnforcedBlocks")
    ok(viewer, viewer.get(f"/enforced_blocks/{block['id']}"), "PackerService_GetEnforcedBlock")
    assert_status(
        viewer.put(
            "/enforced_blocks", {"name": "x", "template_type": "HCL2", "block_content": HCL}
        ),
        403,
        7,
    )
    assert_status(viewer.delete(f"/enforced_blocks/{block['id']}"), 403, 7)

    contributor = api.as_role(Role.CONTRIBUTOR)
    create(contributor, unique("by-contributor"))

    granted = api.as_identity(
        make_member(services, tenant, project_role=None, buckets={bucket: Role.ADMIN})
    )
    ok(
        granted,
        granted.get(f"/enforced_blocks/bucket/{bucket}"),
        "PackerService_GetEnforcedBlocksByBucket",
    )
    assert_status(granted.get(f"/enforced_blocks/bucket/{other}"), 404, 5)
    assert_status(granted.get("/enforced_blocks"), 403, 7)
    assert_status(
        granted.post(
            f"/enforced_blocks/{block['id']}/versions/{vid}/buckets", {"bucket_names": [bucket]}
        ),
        403,
        7,
    )
    # The refused write is in the audit log, as every refused write is.
    with services.store.read() as conn:
        failed = (
            conn.execute(
                select(audit_events.c.description).where(
                    audit_events.c.scope == tenant.project_id, audit_events.c.status == "FAILED"
                )
            )
            .scalars()
            .all()
        )
    assert "Linked enforced block to buckets" in failed and "Created enforced block" in failed
