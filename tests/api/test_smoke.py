from __future__ import annotations

from tests.support import swagger
from tests.support.factories import Api


def test_push_completes_version(api: Api) -> None:
    bucket = api.create_bucket("golden")
    swagger.validate("PackerService_CreateBucket", {"bucket": bucket})
    version = api.complete_version("golden", "fp-1", components=("null.a", "file.b"))
    assert version["name"] == "v1"
    assert version["status"] == "VERSION_ACTIVE"
    swagger.validate("PackerService_GetVersion", {"version": version})
    got = api.ok(api.get("/buckets/golden"))
    swagger.validate("PackerService_GetBucket", got)
    assert got["bucket"]["version_count"] == "1"
    assert got["bucket"]["latest_version"]["fingerprint"] == "fp-1"
