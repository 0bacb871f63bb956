"""List-shaped request parameters are bounded: sort keys, page tokens, field masks.

Every sort key adds a term to the keyset condition of every key after it, so a
request repeating one key a few hundred times with a page token occupied a worker
for minutes (and, on SQLite, every request queued behind it). Each sortable field
may now be named once; stock clients' shapes keep working.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson
import pytest

from packyard.domain.paging import MAX_ORDER_KEYS, parse_order_by
from packyard.errors import ApiError
from tests.support.factories import Api, assert_status
from tests.support.wire import ok

ORDER = "sorting.order_by"


def violation(body: dict[str, Any]) -> str:
    field: str = body["details"][0]["field_violations"][0]["field"]
    return field


# Each paginated listing with its operation and one sortable field.
LISTINGS = [
    ("/buckets", "PackerService_ListBuckets", "name"),
    ("/buckets/a-golden/versions", "PackerService_ListVersions", "created_at"),
    ("/buckets/a-golden/versions/fp-3/builds", "PackerService_ListBuilds", "component_type"),
    (
        "/buckets/a-golden/channels/latest/history",
        "PackerService_ListChannelAssignmentHistory",
        "assigned_at",
    ),
]


@pytest.fixture
def golden(api: Api) -> None:
    """Three buckets, three versions, two builds, two assignments: more than one page each."""
    for name in ("a-golden", "b-golden", "c-golden"):
        api.create_bucket(name)
    for i in (1, 2):
        api.complete_version("a-golden", f"fp-{i}")
    api.create_version("a-golden", "fp-3")
    for component in ("null.a", "null.b"):
        api.create_build("a-golden", "fp-3", component)


def next_token(api: Api, path: str, operation: str, params: list[tuple[str, str]]) -> str:
    body = ok(api.get(path, params=[*params, ("pagination.page_size", "1")]), operation)
    token: str = body["pagination"]["next_page_token"]
    return token


def test_repeated_sort_keys_are_refused(api: Api, golden: None) -> None:
    for path, operation, field in LISTINGS:
        token = next_token(api, path, operation, [(ORDER, field)])
        assert token
        for params in (
            [(ORDER, field), (ORDER, field)],
            [(ORDER, f"{field},{field} desc")],
            [(ORDER, field)] * 64 + [("pagination.next_page_token", token)],
            [(ORDER, ",".join([field] * 2100))],
        ):
            body = assert_status(api.get(path, params=params), 400, 3)
            assert violation(body) == ORDER


def test_stock_sort_shapes_still_work(api: Api, golden: None) -> None:
    # terraform-provider-hcp's ListBuckets loop: `sorting.order_by=name`, no page size.
    names = [
        b["name"]
        for b in ok(api.get("/buckets", params={ORDER: "name"}), "PackerService_ListBuckets")[
            "buckets"
        ]
    ]
    assert names == ["a-golden", "b-golden", "c-golden"]
    for value in ("name desc", "name DESC,created_at", "created_at asc, name desc"):
        got = ok(api.get("/buckets", params={ORDER: value}), "PackerService_ListBuckets")
        assert len(got["buckets"]) == 3
    # Repeated parameters naming different fields, walked page by page.
    params = [(ORDER, "updated_at desc"), (ORDER, "created_at"), (ORDER, "name")]
    seen = []
    token = ""
    while True:
        page = [*params, ("pagination.page_size", "1")]
        if token:
            page.append(("pagination.next_page_token", token))
        body = ok(api.get("/buckets", params=page), "PackerService_ListBuckets")
        seen += [b["name"] for b in body["buckets"]]
        token = body["pagination"]["next_page_token"]
        if not token:
            break
    assert sorted(seen) == names and len(seen) == 3
    # Every sortable field of a listing at once.
    versions = ok(
        api.get(
            "/buckets/a-golden/versions",
            params={ORDER: "name desc,fingerprint,created_at,updated_at"},
        ),
        "PackerService_ListVersions",
    )["versions"]
    assert [v["name"] for v in versions] == ["v2", "v1", "v0"]


def test_fixed_order_listings_refuse_any_sort_key(api: Api, golden: None) -> None:
    body = assert_status(api.get("/buckets/a-golden/ancestry", params={ORDER: "kind"}), 400, 3)
    assert violation(body) == ORDER


def test_a_forged_token_cannot_carry_more_keys_than_the_request(api: Api, golden: None) -> None:
    """The token MAC's key is not secret: a token is checked against the request's own order."""
    real = next_token(api, "/buckets", "PackerService_ListBuckets", [(ORDER, "name")])
    payload = orjson.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4))[12:])
    for forged in (
        {**payload, "k": payload["k"] * 1000},  # many cursor values for one key
        {**payload, "s": payload["s"] + ",name:0" * 1000},  # a signature of many keys
        {**payload, "k": ["x" * 9000, payload["k"][-1]]},  # an oversized token
    ):
        body = orjson.dumps(forged)
        mac = hmac.new(b"packyard-page-token-v1", body, hashlib.sha256).digest()[:12]
        token = base64.urlsafe_b64encode(mac + body).decode().rstrip("=")
        response = api.get("/buckets", params={ORDER: "name", "pagination.next_page_token": token})
        assert violation(assert_status(response, 400, 3)) == "pagination.next_page_token"


def test_too_many_distinct_keys_are_refused() -> None:
    allowed = {f"f{i}" for i in range(MAX_ORDER_KEYS + 2)}
    assert (
        len(parse_order_by([",".join(sorted(allowed)[:MAX_ORDER_KEYS])], allowed)) == MAX_ORDER_KEYS
    )
    with pytest.raises(ApiError) as refused:
        parse_order_by([",".join(sorted(allowed))], allowed)
    assert refused.value.details[0]["field_violations"][0]["field"] == ORDER


def test_update_masks_are_bounded(api: Api) -> None:
    api.create_bucket("golden")
    api.ok(api.post("/buckets/golden/channels", {"name": "dev"}))
    path = "/buckets/golden/channels/dev"
    # Every accepted path, each spelling, is still fine.
    api.ok(api.patch(path, {"update_mask": "versionFingerprint,version_fingerprint,restricted"}))
    for mask in (",".join(["restricted"] * 200), "restricted," + " " * 5000):
        body = assert_status(api.patch(path, {"update_mask": mask}), 400, 3)
        assert violation(body) == "body.update_mask"
