"""Hostile input: every refusal is a clear google.rpc.Status, and nothing changes.

Each test starts from the same small registry (bucket `golden` with v1 on channel
`prod`), sends one kind of hostile request, checks the answer, and then reads the
registry back to prove it is exactly as before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import orjson
import pytest

from packyard.api.app import MAX_BODY_BYTES
from packyard.domain.enums import Role
from packyard.services.auth import TOKEN_AUDIENCE
from packyard.services.container import Services
from tests.support import swagger
from tests.support.factories import Api, TenantFixture, assert_status, make_tenant, small_registry

INVALID, NOT_FOUND, UNAUTHENTICATED, RESOURCE_EXHAUSTED = 3, 5, 16, 8


@pytest.fixture
def world(api: Api) -> dict[str, Any]:
    return small_registry(api)


def state(api: Api) -> dict[str, Any]:
    """Everything the hostile requests could have touched, read back through the API."""
    return {
        "buckets": api.ok(api.get("/buckets"))["buckets"],
        "versions": api.ok(api.get("/buckets/golden/versions"))["versions"],
        "channels": api.ok(api.get("/buckets/golden/channels"))["channels"],
        "builds": api.ok(api.get("/buckets/golden/versions/fp-1/builds"))["builds"],
        "open": api.ok(api.get("/buckets/golden/versions/fp-open/builds"))["builds"],
        "history": api.ok(api.get("/buckets/golden/channels/prod/history")),
    }


@pytest.fixture
def unchanged(api: Api, world: dict[str, Any]) -> Iterator[None]:
    before = state(api)
    yield
    assert state(api) == before


def raw(api: Api, method: str, path: str, content: Any, **headers: str) -> httpx.Response:
    hdrs = {**api.headers(), "content-type": "application/json", **headers}
    return api.http.request(method, api.prefix + path, content=content, headers=hdrs)


def field_of(body: dict[str, Any]) -> str:
    details = body["details"]
    assert details and details[0]["@type"].endswith("google.rpc.BadRequest"), body
    return str(details[0]["field_violations"][0]["field"])


# --- malformed bodies ---------------------------------------------------------------------


MALFORMED = [b"{not json", b'{"name": "x",}', b"\xff\xfe\x00garbage", b"", b'{"name": "x"} trail']
NOT_OBJECTS = [b"[]", b'"bucket"', b"42", b"null"]


def test_malformed_json(api: Api, unchanged: None) -> None:
    for content in MALFORMED + NOT_OBJECTS:
        body = assert_status(raw(api, "PUT", "/buckets", content), 400, INVALID)
        swagger.validate_status(body)


WRONG_TYPES: list[tuple[str, str, Any, str]] = [
    ("/buckets", "PUT", {"name": 123}, "name"),
    ("/buckets", "PUT", {"name": "x", "labels": "os=linux"}, "labels"),
    ("/buckets", "PUT", {"name": "x", "labels": {"os": 1}}, "labels.os"),
    ("/buckets/golden/versions", "POST", {"fingerprint": ["fp"]}, "fingerprint"),
    ("/buckets/golden/versions/fp-open/builds", "POST", {"artifacts": {"x": 1}}, "artifacts"),
    ("/buckets/golden/channels", "POST", {"name": "c", "restricted": "maybe"}, "restricted"),
]


def test_wrong_types(api: Api, unchanged: None) -> None:
    for path, method, body, field in WRONG_TYPES:
        got = assert_status(api.request(method, path, body), 400, INVALID)
        assert field_of(got).startswith(field), (body, got)


def test_deeply_nested_metadata(api: Api, world: dict[str, Any], unchanged: None) -> None:
    nested = "[" * 100_000 + "]" * 100_000
    content = (
        '{"status": "BUILD_RUNNING", "metadata": {"packer": {"x": ' + nested + "}}}"
    ).encode()
    path = f"/buckets/golden/versions/fp-open/builds/{world['open_build']['id']}"
    assert_status(raw(api, "PATCH", path, content), 400, INVALID)


# --- size limits ------------------------------------------------------------------------------


def test_oversized_body(api: Api, unchanged: None) -> None:
    content = b'{"name": "big", "description": "' + b"x" * MAX_BODY_BYTES + b'"}'
    got = assert_status(raw(api, "PUT", "/buckets", content), 413, RESOURCE_EXHAUSTED)
    assert str(MAX_BODY_BYTES) in got["message"]


def test_oversized_chunked_body(api: Api, unchanged: None) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "big", "description": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = raw(api, "PUT", "/buckets", chunks())
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert_status(response, 413, RESOURCE_EXHAUSTED)


def test_chunked_body_under_the_limit_is_fine(api: Api, world: dict[str, Any]) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "chunked", '
        yield b'"description": "sent in pieces"}'

    body = api.ok(raw(api, "PUT", "/buckets", chunks()))
    assert body["bucket"]["description"] == "sent in pieces"


def test_oversized_token_request(api: Api, unchanged: None) -> None:
    content = b"grant_type=client_credentials&client_id=" + b"a" * (MAX_BODY_BYTES + 10)
    response = api.http.post(
        "/oauth2/token",
        content=content,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_status(response, 413, RESOURCE_EXHAUSTED)


# --- names, fingerprints, labels, descriptions -------------------------------------------------


BAD_NAMES = ["a" * 65, "-lead", "trail-", "has space", "slash/name", "dot..", "ünï", "tab\tname"]


def test_ill_formed_bucket_names(api: Api, unchanged: None) -> None:
    for name in BAD_NAMES:
        got = assert_status(api.put("/buckets", {"name": name}), 400, INVALID)
        assert field_of(got) == "name"
        got = assert_status(api.post("/buckets/golden/channels", {"name": name}), 400, INVALID)
        assert field_of(got) == "name"


BAD_FINGERPRINTS = ["f" * 129, "fp/../x", "fp 1", "fp\x00", "-fp", "fp%2F1", "\ufb01ngerprint"]


def test_ill_formed_fingerprints(api: Api, unchanged: None) -> None:
    for fingerprint in BAD_FINGERPRINTS:
        body = {"fingerprint": fingerprint, "template_type": "HCL2"}
        got = assert_status(api.post("/buckets/golden/versions", body), 400, INVALID)
        assert field_of(got) == "fingerprint"


BAD_LABELS = [
    {f"k{i}": "v" for i in range(65)},
    {"k" * 129: "v"},
    {"k": "v" * 1025},
    {"": "v"},
    {"k\x00": "v"},
    {"k": "v\x1b[31m"},
]


def test_bad_labels(api: Api, unchanged: None) -> None:
    for labels in BAD_LABELS:
        got = assert_status(api.patch("/buckets/golden", {"labels": labels}), 400, INVALID)
        assert field_of(got) == "labels"
        got = assert_status(api.put("/buckets", {"name": "new", "labels": labels}), 400, INVALID)
        assert field_of(got) == "labels"


def test_bad_descriptions(api: Api, unchanged: None) -> None:
    for description in ["d" * 1025, "nul\x00byte", "bell\x07", "esc\x1b[2J"]:
        got = assert_status(
            api.patch("/buckets/golden", {"description": description}), 400, INVALID
        )
        assert field_of(got) == "description"


BAD_BUILD_FIELDS = [
    ("component_type", "amazon-ebs\x00.x"),
    ("component_type", "c" * 257),
    ("platform", "aws\n"),
    ("packer_run_uuid", "u\x7f"),
]


def test_control_characters_in_build_fields(api: Api, unchanged: None) -> None:
    for field, value in BAD_BUILD_FIELDS:
        body = {"component_type": "ok.component", field: value}
        got = assert_status(api.post("/buckets/golden/versions/fp-open/builds", body), 400, INVALID)
        assert field_of(got) == field


def test_error_messages_do_not_echo_raw_control_characters(api: Api, unchanged: None) -> None:
    got = assert_status(api.put("/buckets", {"name": "evil\x1b[2J\x00name"}), 400, INVALID)
    assert "\x1b" not in got["message"] and "\x00" not in got["message"]


# --- paths --------------------------------------------------------------------------------------


PATH_TRICKS = [
    ("/buckets/..%2F..%2Fregistry", INVALID),
    ("/buckets/%2e%2e", INVALID),
    ("/buckets/golden%2Fversions", INVALID),
    ("/buckets/golden%2fversions", INVALID),
    ("/buckets/golden%5Cversions", INVALID),
    ("/buckets/%00", INVALID),
    ("/buckets/golden%00", INVALID),
    ("/buckets/golden/versions/..%2Ffp-1", INVALID),
    ("/buckets/golden/versions/fp-1%2F..%2F..", INVALID),
    ("/buckets/golden/channels/%2e%2e%2Fprod", INVALID),
    ("/buckets/%C3%BCber", NOT_FOUND),
    ("/buckets/%F0%9F%92%A5/channels", NOT_FOUND),
    ("/buckets/" + "a" * 5000, NOT_FOUND),
    ("/buckets/golden/versions/%E2%80%AEfp-1", 10),  # right-to-left override
]


def test_path_tricks(api: Api, unchanged: None) -> None:
    for path, code in PATH_TRICKS:
        http_status = {INVALID: 400, NOT_FOUND: 404, 10: 409}[code]
        body = assert_status(api.get(path), http_status, code)
        swagger.validate_status(body)


def _raw_get(base_url: str, path: str, token: str) -> tuple[int, dict[str, Any]]:
    """GET a path exactly as written: no client-side normalisation of dot segments."""
    parsed = httpx.URL(base_url)
    conn = http.client.HTTPConnection(parsed.host, parsed.port, timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_path_tricks_on_writes(api: Api, unchanged: None) -> None:
    for path in ("/buckets/..%2Fgolden", "/buckets/golden%2F..%2Fgolden", "/buckets/%2e%2e"):
        assert_status(api.delete(path), 400, INVALID)
        assert_status(api.patch(path, {"description": "pwned"}), 400, INVALID)


def test_dot_segments_do_not_escape_the_project(
    api: Api, services: Services, unchanged: None
) -> None:
    other = make_tenant(services)
    theirs = Api(api.base_url, other)
    try:
        theirs.create_bucket("secret")
    finally:
        theirs.close()
    token = api.headers()["Authorization"].removeprefix("Bearer ")
    walks = [
        f"{api.prefix}/buckets/../../../{other.project_id}/buckets/secret",
        f"{api.prefix}/../../{other.organization_id}/projects/{other.project_id}/buckets",
        f"{api.prefix}/buckets/./secret",
    ]
    for path in walks:
        status, body = _raw_get(api.base_url, path, token)
        assert (status, body["code"]) == (400, INVALID), (path, body)


# --- SQL fragments ------------------------------------------------------------------------


SQL = [
    "x' OR '1'='1",
    "x'; DROP TABLE buckets; --",
    'x" OR 1=1 --',
    "x) UNION SELECT * FROM principals--",
]


def test_sql_fragments_in_paths(api: Api, unchanged: None) -> None:
    for fragment in SQL:
        assert_status(api.get(f"/buckets/{fragment}"), 404, NOT_FOUND)
        assert_status(api.get(f"/buckets/golden/versions/{fragment}"), 409, 10)
        assert_status(api.get(f"/buckets/golden/channels/{fragment}"), 404, NOT_FOUND)


def test_sql_fragments_in_bodies(api: Api, world: dict[str, Any]) -> None:
    for fragment in SQL:
        assert_status(api.put("/buckets", {"name": fragment}), 400, INVALID)
        # Free text accepts them, stored verbatim and harmless.
        body = {"description": fragment, "labels": {"q": fragment}}
        got = api.ok(api.patch("/buckets/golden", body))
        assert got["bucket"]["description"] == fragment
        again = api.ok(api.get("/buckets/golden"))["bucket"]
        assert again["labels"] == {"q": fragment}
        assert len(api.ok(api.get("/buckets"))["buckets"]) == 1


# --- paging and sorting ------------------------------------------------------------------


def test_bad_page_sizes(api: Api, unchanged: None) -> None:
    for size in ["-1", "1001", str(10**30), "abc", "1.5", "0x10", "\uff11\uff10", "1_000"]:
        got = assert_status(
            api.get("/buckets", params={"pagination.page_size": size}), 400, INVALID
        )
        assert field_of(got) == "pagination.page_size"


def _forged_token(payload: Any) -> str:
    """A token with a valid MAC: the key is in the (public) source, so anyone can make one."""
    from packyard.store import pagination

    body = json.dumps(payload).encode()
    mac = hmac.new(pagination._TOKEN_KEY, body, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")


GARBAGE_TOKENS = [
    "garbage",
    "!!!!",
    "A" * 10_000,
    base64.urlsafe_b64encode(b"x" * 40).decode(),
    "%00",
    _forged_token([1, 2]),
    _forged_token({"s": "wrong", "k": []}),
]


def test_garbage_page_tokens(api: Api, unchanged: None) -> None:
    for token in GARBAGE_TOKENS:
        for key in ("pagination.next_page_token", "pagination.previous_page_token"):
            got = assert_status(api.get("/buckets", params={key: token}), 400, INVALID)
            assert field_of(got).startswith("pagination")


FORGED_CURSORS: list[list[Any]] = [
    [{"a": 1}, "x"],
    [["nested"], "x"],
    [None, None],
    ["name", 12],
    [10**40, "x"],
    [1.5, True],
    ["x" * 5000, "y"],
]


def test_forged_page_token_cursor_values(api: Api, world: dict[str, Any]) -> None:
    # Walk one page to learn the listing's signature, then forge cursors of odd types.
    api.create_bucket("second")
    before = state(api)
    first = api.ok(api.get("/buckets", params={"pagination.page_size": "1"}))
    token = first["pagination"]["next_page_token"]
    payload = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))[12:])
    for cursor in FORGED_CURSORS:
        forged = _forged_token({**payload, "k": cursor})
        response = api.get("/buckets", params={"pagination.next_page_token": forged})
        assert response.status_code < 500, (cursor, response.text)
        if response.status_code != 200:
            assert_status(response, 400, INVALID)
    assert state(api) == before


def test_unknown_sort_fields(api: Api, unchanged: None) -> None:
    orders = ["password", "name; DROP TABLE buckets", "name sideways", "name asc desc", "__class__"]
    for order in orders:
        got = assert_status(api.get("/buckets", params={"sorting.order_by": order}), 400, INVALID)
        assert field_of(got) == "sorting.order_by"


# --- enums, durations, timestamps -----------------------------------------------------------------


BAD_ENUMS: list[tuple[str, str, Any, str]] = [
    (
        "/buckets/golden/versions",
        "POST",
        {"fingerprint": "f", "template_type": "XML"},
        "template_type",
    ),
    ("/buckets/golden/versions", "POST", {"fingerprint": "f", "template_type": 1}, "template_type"),
    (
        "/buckets/golden/versions/fp-open/builds",
        "POST",
        {"component_type": "c", "status": "DONE"},
        "status",
    ),
    ("/registry", "PATCH", {"feature_tier": "GOLD", "update_mask": "featureTier"}, "feature_tier"),
]


def test_bad_enum_values(api: Api, unchanged: None) -> None:
    for path, method, body, field in BAD_ENUMS:
        got = assert_status(api.request(method, path, body), 400, INVALID)
        assert field_of(got) == field


def test_bad_timestamps(api: Api, unchanged: None) -> None:
    for value in ["not-a-time", "2024-13-45T00:00:00Z", "yesterday", 1e300, "9" * 40]:
        body = {"revoke_at": value}
        got = assert_status(api.patch("/buckets/golden/versions/fp-1", body), 400, INVALID)
        assert field_of(got) == "revoke_at"


def test_bad_durations(api: Api, unchanged: None) -> None:
    for value in ["forever", "-1d", "1y", "1.5h", "d", "99999999999999999999d"]:
        response = api.patch("/buckets/golden/versions/fp-1", {"revoke_in": value})
        if response.status_code == 501:
            pytest.skip("revocation is not implemented yet")
        got = assert_status(response, 400, INVALID)
        assert field_of(got) == "revoke_in"


# --- tokens -------------------------------------------------------------------------------------


def _claims(tenant: TenantFixture, **override: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": tenant.identities[Role.ADMIN].principal_id,
        "aud": TOKEN_AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "jti": "x",
    }
    claims.update(override)
    return {k: v for k, v in claims.items() if v is not None}


def _bearer(api: Api, token: str) -> httpx.Response:
    return api.http.get(api.prefix + "/buckets", headers={"Authorization": f"Bearer {token}"})


def test_forged_token(api: Api, unchanged: None) -> None:
    token = jwt.encode(_claims(api.tenant), "not-the-key" * 4, algorithm="HS256")
    got = assert_status(_bearer(api, token), 401, UNAUTHENTICATED)
    assert "Bearer" in _bearer(api, token).headers["www-authenticate"]
    assert got["message"]


def test_expired_token(api: Api, services: Services, unchanged: None) -> None:
    key = services.auth.signing_key()
    past = int(time.time()) - 7200
    token = jwt.encode(_claims(api.tenant, iat=past, exp=past + 60), key, algorithm="HS256")
    got = assert_status(_bearer(api, token), 401, UNAUTHENTICATED)
    assert "expired" in got["message"]


def test_alg_none_token(api: Api, unchanged: None) -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(orjson.dumps(_claims(api.tenant))).rstrip(b"=").decode()
    for token in (f"{header}.{body}.", f"{header}.{body}"):
        assert_status(_bearer(api, token), 401, UNAUTHENTICATED)


@pytest.mark.filterwarnings("ignore:The HMAC key is")
def test_token_signed_with_public_algorithms_or_wrong_claims(
    api: Api, services: Services, unchanged: None
) -> None:
    key = services.auth.signing_key()
    bad = [
        jwt.encode(_claims(api.tenant), key, algorithm="HS512"),
        jwt.encode(_claims(api.tenant, aud="someone-else"), key, algorithm="HS256"),
        jwt.encode(_claims(api.tenant, aud=None), key, algorithm="HS256"),
        jwt.encode(_claims(api.tenant, exp=None), key, algorithm="HS256"),
        jwt.encode(_claims(api.tenant, sub=None), key, algorithm="HS256"),
        jwt.encode(_claims(api.tenant, sub="no-such-principal"), key, algorithm="HS256"),
        jwt.encode(_claims(api.tenant, sub=12345), key, algorithm="HS256"),
    ]
    for token in bad:
        assert_status(_bearer(api, token), 401, UNAUTHENTICATED)


BAD_HEADERS = [
    "",
    "Bearer",
    "Basic dXNlcjpwYXNz",
    "bearer\tabc",
    "Bearer a.b.c",
    "Bearer " + "x" * 8000,
]


def test_malformed_authorization_headers(api: Api, unchanged: None) -> None:
    for header in BAD_HEADERS:
        response = api.http.get(api.prefix + "/buckets", headers={"Authorization": header})
        assert_status(response, 401, UNAUTHENTICATED)


def test_valid_token_still_works(api: Api, services: Services, world: dict[str, Any]) -> None:
    # Control for the token tests: a properly signed token with our claims is accepted.
    key = services.auth.signing_key()
    token = jwt.encode(_claims(api.tenant), key, algorithm="HS256")
    assert _bearer(api, token).status_code == 200


# --- other tenants ---------------------------------------------------------------------------


def test_ids_from_another_tenant(api: Api, services: Services, world: dict[str, Any]) -> None:
    other = make_tenant(services)
    theirs = Api(api.base_url, other)
    try:
        theirs.create_bucket("theirs")
        their_version = theirs.complete_version("theirs", "their-fp")
        their_build = their_version["builds"][0]["id"]
        before_theirs = theirs.ok(theirs.get("/buckets/theirs/versions/their-fp"))
        before_ours = state(api)

        # Our token on their organization/project path.
        their_path = (
            f"/packer/2023-01-01/organizations/{other.organization_id}"
            f"/projects/{other.project_id}/buckets/theirs"
        )
        assert_status(api.get(their_path), 404, NOT_FOUND)
        assert_status(api.delete(their_path), 404, NOT_FOUND)
        assert_status(api.patch(their_path, {"description": "pwned"}), 404, NOT_FOUND)
        # Our organization with their project, and their organization with our project.
        mixed = (
            f"/packer/2023-01-01/organizations/{api.tenant.organization_id}"
            f"/projects/{other.project_id}/buckets"
        )
        assert_status(api.get(mixed), 404, NOT_FOUND)
        mixed = (
            f"/packer/2023-01-01/organizations/{other.organization_id}"
            f"/projects/{api.tenant.project_id}/buckets"
        )
        assert_status(api.get(mixed), 404, NOT_FOUND)
        # Their build id inside our own path.
        assert_status(
            api.get(f"/buckets/golden/versions/fp-1/builds/{their_build}"), 404, NOT_FOUND
        )
        assert_status(
            api.patch(
                f"/buckets/golden/versions/fp-1/builds/{their_build}", {"status": "BUILD_FAILED"}
            ),
            404,
            NOT_FOUND,
        )
        # Their version as the parent of one of our builds.
        got = assert_status(
            api.update_build(
                "golden",
                "fp-open",
                world["open_build"]["id"],
                parent_version_id=their_version["id"],
            ),
            400,
            INVALID,
        )
        assert field_of(got) == "parent_version_id"
        # Their fingerprint on our channel.
        assert_status(
            api.patch(
                "/buckets/golden/channels/prod",
                {"version_fingerprint": "their-fp", "update_mask": "versionFingerprint"},
            ),
            404,
            NOT_FOUND,
        )
        assert theirs.ok(theirs.get("/buckets/theirs/versions/their-fp")) == before_theirs
        assert state(api) == before_ours
    finally:
        theirs.close()
