"""Fuzz a live server from two schemas: HashiCorp's published swagger (restricted to the
operations Packyard serves) and Packyard's own /openapi.json.

One test per backend fuzzes both and asserts zero 5xx (bar deliberate 501/12), a
google.rpc.Status on every non-200, every 200 body valid against its schema, and at least
1,000 generated cases in total.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema
import pytest

from packyard.services.check import check_store
from packyard.services.container import Services
from tests.support import swagger
from tests.support.factories import Api
from tests.support.fuzz import FuzzStats, fuzz, pin_location

# Examples per operation and strategy; ~30 operations x 3-4 strategies each.
EXAMPLES = 7
MIN_CASES = 1000  # per run (per backend): both schemas together

# Not fuzzed from our document: the OAuth2 token endpoint answers errors in the RFC 6749
# format ({error, error_description}), not google.rpc.Status, by design.
NOT_STATUS = {"OAuth2_Token"}


@pytest.fixture
def pinned(api: Api) -> list[dict[str, str]]:
    """Existing resources the fuzzer can aim at, so it reaches 200s and not only 404s."""
    api.create_bucket("golden", description="fuzz target", labels={"team": "fuzz"})
    done = api.complete_version("golden", "fp-1", components=("amazon-ebs.a", "docker.b"))
    api.ok(api.post("/buckets/golden/channels", {"name": "prod", "version_fingerprint": "fp-1"}))
    api.create_version("golden", "fp-open")
    open_build = api.create_build("golden", "fp-open", "a.open", status="BUILD_RUNNING")
    return [
        {
            "bucket_name": "golden",
            "fingerprint": "fp-1",
            "build_id": done["builds"][0]["id"],
            "channel_name": "prod",
        },
        {
            "bucket_name": "golden",
            "fingerprint": "fp-open",
            "build_id": open_build["id"],
            "channel_name": "latest",
        },
    ]


def _served(api: Api) -> dict[str, Any]:
    response = api.http.get("/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def _ids(doc: dict[str, Any]) -> set[str]:
    return {
        op["operationId"]
        for ops in doc["paths"].values()
        for op in ops.values()
        if isinstance(op, dict) and "operationId" in op
    }


@cache
def _hcp_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(swagger.PACKER_SPEC.read_text())
    return spec


def _report(stats: FuzzStats) -> str:
    return stats.summary() + "\n" + "\n".join(stats.failures)


def fuzz_hcp_swagger(api: Api, pinned: list[dict[str, str]]) -> FuzzStats:
    """(a) HashiCorp's swagger, restricted to the operations this server serves."""
    served = _ids(_served(api))
    hcp = _hcp_spec()
    keep = _ids(hcp) & served
    assert len(keep) >= 20, keep
    pins = {
        "location.organization_id": api.tenant.organization_id,
        "location.project_id": api.tenant.project_id,
    }
    stats = FuzzStats()
    fuzz(
        pin_location(hcp, pins, keep),
        base_url=api.base_url,
        token=api.headers()["Authorization"].removeprefix("Bearer "),
        validate_200=swagger.validate,
        examples=EXAMPLES,
        pinned=pinned,
        stats=stats,
    )
    assert set(stats.by_operation) == keep
    return stats


def _own_validator(doc: dict[str, Any]) -> Any:
    responses: dict[str, Any] = {}
    for ops in doc["paths"].values():
        for op in ops.values():
            if isinstance(op, dict) and "operationId" in op:
                content = op["responses"]["200"]["content"]["application/json"]
                responses[op["operationId"]] = content["schema"]

    def validate(operation_id: str, body: Any) -> None:
        schema = {**responses[operation_id], "components": doc["components"]}
        jsonschema.Draft202012Validator(schema).validate(body)

    return validate


def fuzz_own_openapi(api: Api, pinned: list[dict[str, str]]) -> FuzzStats:
    """(b) The document this server publishes at /openapi.json."""
    doc = _served(api)
    keep = _ids(doc) - NOT_STATUS
    pins = {"organization_id": api.tenant.organization_id, "project_id": api.tenant.project_id}
    stats = FuzzStats()
    fuzz(
        pin_location(doc, pins, keep),
        base_url=api.base_url,
        token=api.headers()["Authorization"].removeprefix("Bearer "),
        validate_200=_own_validator(doc),
        examples=EXAMPLES,
        pinned=pinned,
        stats=stats,
    )
    return stats


def test_fuzz(api: Api, services: Services, pinned: list[dict[str, str]]) -> None:
    swagger.require()
    hcp = fuzz_hcp_swagger(api, pinned)
    own = fuzz_own_openapi(api, pinned)
    report = f"HCP swagger: {_report(hcp)}\nown openapi: {_report(own)}"
    assert not hcp.failures, report
    assert not own.failures, report
    assert hcp.cases + own.cases >= MIN_CASES, report
    for stats in (hcp, own):
        assert stats.cases >= MIN_CASES // 3, report
        assert stats.by_status[200] > 40, report  # the pinned resources were reached
    # Whatever the fuzzer managed to change, it could not break an invariant.
    assert check_store(services.store).violations == []


def test_own_openapi_declares_every_body(api: Api) -> None:
    """Every Packer operation documents a real 200 schema and a google.rpc.Status default."""
    doc = _served(api)
    for path, ops in doc["paths"].items():
        for op in ops.values():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            assert "422" not in op["responses"], path
            default = op["responses"]["default"]["content"]["application/json"]["schema"]
            assert default == {"$ref": "#/components/schemas/Status"}
            if path.startswith("/packer/"):
                ok = op["responses"]["200"]["content"]["application/json"]["schema"]
                assert ok.get("$ref"), (path, op["operationId"])
