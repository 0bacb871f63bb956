"""Nothing a caller sends can break a read: a property-based test over real HTTP.

Hypothesis throws generated JSON at every write operation of the API (and at the artifact
search, whose body a viewer controls): lone surrogates in text and in object keys, non-BMP
characters, deep nesting, integers beyond 64 bits, huge and non-finite numbers (sent as raw
JSON tokens such as ``1e400``), big strings and odd keys. After each example every read of
the project must still answer 200, every write must have answered 2xx or a 4xx
``google.rpc.Status`` (never 5xx), and nothing may be logged as an error.

Seeded and bounded (``derandomize``, a fixed number of examples, no shrinking), so each run
sends the same requests; DELETE operations are left out, since removing things is what they
are for.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import zstandard
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from packyard.domain.enums import Role
from tests.support import swagger
from tests.support.factories import Api, unique

EXAMPLES = 40

# --- hostile JSON -------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON token written verbatim (numbers Python cannot produce, deep nesting)."""

    token: str


def encode(value: Any) -> bytes:
    """JSON with every non-ASCII character escaped: a lone surrogate travels as ``\\ud800``."""
    return _encode(value).encode("ascii")


def _encode(value: Any) -> str:
    if isinstance(value, Raw):
        return value.token
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    return json.dumps(value)  # ensure_ascii; NaN and Infinity as JavaScript spells them


SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
# Text a write may well accept: any Unicode scalar value (non-BMP included), big strings.
ODD_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "\ud83d\ude00",  # an escaped pair: one valid non-BMP character
            "\U0001f4e6 \u00e9t\u00e9",
            "\u202eevil",
            "tab\tand\nnewline",
            "\u00e9" * 300,
            "x" * 5000,
            "x" * 70_000,
        ]
    ),
)
# Text no write may accept: lone surrogates, escaped or as raw code points.
BAD_TEXT = st.one_of(
    st.sampled_from(["\ud800", "\udfff", "a\udbffb", "\udc00\ud800"]),
    st.text(st.one_of(SURROGATE, st.characters(max_codepoint=0x7F)), min_size=1, max_size=6).filter(
        lambda t: any(0xD800 <= ord(c) <= 0xDFFF for c in t)
    ),
)
PLAIN_TEXT = st.from_regex(r"[a-z][a-z0-9.-]{0,10}[a-z0-9]", fullmatch=True)
TEXT = st.one_of(PLAIN_TEXT, PLAIN_TEXT, PLAIN_TEXT, ODD_TEXT, ODD_TEXT, BAD_TEXT)

_RAW_NUMBERS = ["1e400", "-1e400", "1e-400", "123456789012345678901234567890", "-0", "NaN"]
_EDGE_INTS = [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**40]


def _deep(depth: int, *, objects: bool) -> Raw:
    if objects:
        return Raw('{"k":' * depth + "1" + "}" * depth)
    return Raw("[" * depth + "1" + "]" * depth)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from(_EDGE_INTS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, 5e-324]),
    st.sampled_from([Raw(t) for t in _RAW_NUMBERS]),
    TEXT,
    TEXT,
)
DEEP = st.builds(
    _deep,
    st.sampled_from([10, 40, 62, 63, 64, 65, 120, 247, 253, 254, 255, 300, 900]),
    objects=st.booleans(),
)
JSON = st.recursive(
    st.one_of(SCALARS, SCALARS, SCALARS, DEEP),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)
    ),
    max_leaves=12,
)
OBJECT = st.dictionaries(TEXT, JSON, max_size=4)
LABELS = st.one_of(
    st.dictionaries(PLAIN_TEXT, PLAIN_TEXT, max_size=3),
    st.dictionaries(TEXT, TEXT, max_size=3),
    st.dictionaries(TEXT, TEXT, max_size=3),
    JSON,
)
METADATA_OBJECT = st.fixed_dictionaries(
    {}, optional={"packer": OBJECT, "cicd": OBJECT, "vcs": OBJECT}
)
METADATA = st.one_of(METADATA_OBJECT, METADATA_OBJECT, METADATA_OBJECT, JSON)

# Aimed at what gets past the text rule: valid text, hostile numbers and nesting.
VALID_TEXT = st.one_of(PLAIN_TEXT, ODD_TEXT)
VALID_TEXT_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.integers(),
        st.sampled_from(_EDGE_INTS),
        st.floats(),
        st.sampled_from([Raw(t) for t in _RAW_NUMBERS]),
        VALID_TEXT,
        DEEP,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(VALID_TEXT, children, max_size=4)
    ),
    max_leaves=8,
)
AIMED_OBJECT = st.dictionaries(VALID_TEXT, VALID_TEXT_JSON, min_size=1, max_size=3)
AIMED_METADATA = st.fixed_dictionaries(
    {}, optional={"packer": AIMED_OBJECT, "cicd": AIMED_OBJECT, "vcs": AIMED_OBJECT}
)
PLAIN_LABELS = st.dictionaries(PLAIN_TEXT, st.one_of(PLAIN_TEXT, VALID_TEXT), max_size=3)


def some(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value: mostly of the right shape, sometimes anything at all."""
    return st.one_of(strategy, strategy, strategy, strategy, strategy, JSON)


def choice(*values: Any) -> st.SearchStrategy[Any]:
    """One of the values the field expects, or text (valid or not), or anything at all."""
    expected = st.sampled_from(values)
    return some(st.one_of(expected, expected, expected, TEXT))


BUILD_STATUS = choice("BUILD_RUNNING", "BUILD_DONE", "BUILD_FAILED", "BUILD_UNSET", None)
TIMES = choice("2030-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "2000-01-01T00:00:00Z", None)
ARTIFACTS = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "external_identifier": some(st.one_of(st.just("ami-fuzz"), TEXT)),
            "region": some(TEXT),
        },
    ),
    max_size=3,
)
BUILD_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "status": BUILD_STATUS,
    "platform": some(TEXT),
    "packer_run_uuid": some(TEXT),
    "artifacts": some(ARTIFACTS),
    "labels": LABELS,
    "source_external_identifier": some(TEXT),
    "parent_version_id": some(TEXT),
    "parent_channel_id": some(TEXT),
    "metadata": METADATA,
}


SBOM = base64.b64encode(
    zstandard.ZstdCompressor().compress(b'{"bomFormat": "CycloneDX", "specVersion": "1.5"}')
).decode()

# --- the world and the operations ------------------------------------------------------------


@dataclass
class World:
    api: Api
    open_fp: str = ""
    open_build: str = ""
    complete_fp: str = "fp-1"
    answers: list[str] = field(default_factory=list)

    def fresh_open_build(self) -> None:
        """A version with a running build for the build operations to aim at."""
        self.open_fp = unique("fp-open")
        self.api.create_version("golden", self.open_fp)
        build = self.api.create_build("golden", self.open_fp, "a.open", status="BUILD_RUNNING")
        self.open_build = build["id"]

    def open_build_usable(self) -> None:
        got = self.api.get(f"/buckets/golden/versions/{self.open_fp}/builds/{self.open_build}")
        if got.status_code != 200 or got.json()["build"]["status"] == "BUILD_DONE":
            self.fresh_open_build()


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: Callable[[World], str]
    required: dict[str, st.SearchStrategy[Any]]  # present in every body
    optional: dict[str, st.SearchStrategy[Any]] = field(default_factory=dict)
    needs_open_build: bool = False
    role: Role = Role.ADMIN


def _builds(w: World) -> str:
    return f"/buckets/golden/versions/{w.open_fp}/builds"


OPERATIONS = [
    Operation("CreateRegistry", "PUT", lambda w: "/registry", {"feature_tier": choice("PLUS")}),
    Operation(
        "UpdateRegistry",
        "PATCH",
        lambda w: "/registry",
        {"update_mask": choice("activated", "featureTier", "activated,featureTier")},
        {"feature_tier": choice("PLUS", "STANDARD"), "activated": some(st.just(True))},
    ),
    Operation(
        "CreateBucket",
        "PUT",
        lambda w: "/buckets",
        {"name": choice("b-fuzz", "b-other", "b-third")},
        {"description": some(TEXT), "labels": LABELS},
    ),
    Operation(
        "UpdateBucket",
        "PATCH",
        lambda w: "/buckets/golden",
        {},
        {
            "description": some(TEXT),
            "labels": LABELS,
            "platforms": some(st.lists(TEXT, max_size=3)),
        },
    ),
    Operation(
        "CreateVersion",
        "POST",
        lambda w: "/buckets/golden/versions",
        {"fingerprint": choice("fp-fuzz", "fp-other"), "template_type": choice("HCL2", "JSON")},
    ),
    Operation(
        "RevokeVersionIn",
        "PATCH",
        lambda w: f"/buckets/golden/versions/{w.complete_fp}",
        {"revoke_in": choice("1h", "0s", "30d", "2h45m"), "revocation_message": some(TEXT)},
        {
            "skip_descendants_revocation": some(st.booleans()),
            "disable_rollback_channels": some(st.booleans()),
        },
    ),
    Operation(
        "RevokeVersionAt",
        "PATCH",
        lambda w: f"/buckets/golden/versions/{w.complete_fp}",
        {"revoke_at": TIMES, "revocation_message": some(TEXT)},
        {"skip_descendants_revocation": some(st.booleans())},
    ),
    Operation(
        "RestoreVersion",
        "PATCH",
        lambda w: f"/buckets/golden/versions/{w.complete_fp}",
        {"restore": some(st.just(True))},
    ),
    Operation(
        "CompleteVersion",
        "PATCH",
        lambda w: f"/buckets/golden/versions/{w.open_fp}",
        {"complete": some(st.just(True))},
        needs_open_build=True,
    ),
    Operation(
        "CreateBuild",
        "POST",
        _builds,
        {"component_type": choice("c.fuzz", "c.other", "c.third")},
        BUILD_FIELDS,
        needs_open_build=True,
    ),
    Operation(
        "UpdateBuild",
        "PATCH",
        lambda w: f"{_builds(w)}/{w.open_build}",
        {},
        BUILD_FIELDS,
        needs_open_build=True,
    ),
    # The same, aimed: only the free-form fields vary, so the write reaches the store.
    Operation(
        "UpdateBuildMetadata",
        "PATCH",
        lambda w: f"{_builds(w)}/{w.open_build}",
        {"status": st.just("BUILD_RUNNING"), "metadata": AIMED_METADATA, "labels": PLAIN_LABELS},
        needs_open_build=True,
    ),
    Operation(
        "FinishBuild",  # completes the version: every read of the bucket renders it
        "PATCH",
        lambda w: f"{_builds(w)}/{w.open_build}",
        {
            "status": st.just("BUILD_DONE"),
            "artifacts": st.just([{"external_identifier": "ami-fuzz", "region": "r-1"}]),
            "metadata": AIMED_METADATA,
            "labels": PLAIN_LABELS,
        },
        {"platform": PLAIN_TEXT},
        needs_open_build=True,
    ),
    Operation(
        "CreateChannel",
        "POST",
        lambda w: "/buckets/golden/channels",
        {"name": choice("ch-fuzz", "ch-other")},
        {"version_fingerprint": choice("fp-1", "fp-fuzz"), "restricted": some(st.booleans())},
    ),
    Operation(
        "UpdateChannel",
        "PATCH",
        lambda w: "/buckets/golden/channels/prod",
        {"update_mask": choice("versionFingerprint", "restricted")},
        {"version_fingerprint": choice("fp-1"), "restricted": some(st.booleans())},
    ),
    Operation(
        "AssignChannelVersion",
        "POST",
        lambda w: "/buckets/golden/channels/assign",
        {"source_channel": choice("latest", "prod"), "target_channel": choice("prod", "ch-fuzz")},
    ),
    Operation(
        "UploadSbom",
        "PUT",
        lambda w: f"{_builds(w)}/{w.open_build}/sboms",
        {"compressed_sbom": some(st.one_of(st.just(SBOM), TEXT)), "format": choice("CYCLONEDX")},
        {"name": some(st.one_of(PLAIN_TEXT, TEXT))},
        needs_open_build=True,
    ),
    Operation(
        "SearchExternalArtifact",
        "POST",
        lambda w: "/_search/external_artifact",
        {"external_identifier": choice("ami-fuzz")},
        {"platform": some(TEXT), "region": some(TEXT)},
        role=Role.VIEWER,
    ),
]


@st.composite
def writes(draw: st.DrawFn) -> list[tuple[Operation, Any]]:
    """Every operation once, in some order, each with a generated body."""
    out = []
    for op in draw(st.permutations(OPERATIONS)):
        body: Any = draw(st.fixed_dictionaries(op.required, optional=op.optional))
        if draw(st.integers(0, 29)) == 17:
            body = draw(JSON)  # not even an object
        out.append((op, body))
    return out


# --- the property ----------------------------------------------------------------------------


def _status_problem(response: httpx.Response) -> str | None:
    """Why an answer to a write is not 2xx or a 4xx google.rpc.Status, or None."""
    if 200 <= response.status_code < 300:
        return None
    try:
        body = response.json()
        swagger.validate_status(body)
        assert isinstance(body["code"], int) and isinstance(body["details"], list)
    except Exception as exc:
        what = f"{response.status_code} is not a google.rpc.Status ({exc!s:.100})"
        return f"{what}: {response.text:.200}"
    if response.status_code >= 500:
        return f"server error {response.status_code}: {response.text:.300}"
    return None


def read_everything(world: World) -> list[str]:
    """Every read of the project; the problems found (non-200 answers)."""
    api = world.api
    viewer = api.as_role(Role.VIEWER)
    try:
        reads = [
            api.get("/registry"),
            api.get("/buckets"),
            api.get("/buckets/golden"),
            api.get("/buckets/golden/versions"),
            api.get(f"/buckets/golden/versions/{world.complete_fp}"),
            api.get(f"/buckets/golden/versions/{world.open_fp}"),
            api.get(f"/buckets/golden/versions/{world.open_fp}/builds"),
            api.get(f"/buckets/golden/versions/{world.open_fp}/builds/{world.open_build}"),
            api.get("/buckets/golden/channels"),
            api.get("/buckets/golden/channels/latest"),
            api.get("/buckets/golden/channels/prod"),
            api.get("/buckets/golden/channels/prod/history"),
            api.get("/buckets/golden/ancestry"),
            viewer.post("/_search/external_artifact", {"external_identifier": "ami-fuzz"}),
            viewer.get("/buckets"),
            viewer.get("/buckets/golden/channels"),
        ]
        for bucket in api.get("/buckets").json().get("buckets", []):
            name = bucket["name"]
            reads.append(api.get(f"/buckets/{name}"))
            reads.append(api.get(f"/buckets/{name}/versions"))
            reads.append(api.get(f"/buckets/{name}/channels"))
            reads.append(api.get(f"/buckets/{name}/ancestry"))
        # ListVersions rendered every version with its builds; the newest few one by one.
        newest = api.get("/buckets/golden/versions", params={"sorting.order_by": "created_at desc"})
        for version in newest.json().get("versions", [])[:4]:
            fp = version["fingerprint"]
            reads.append(api.get(f"/buckets/golden/versions/{fp}"))
            reads.append(api.get(f"/buckets/golden/versions/{fp}/builds"))
    finally:
        viewer.close()
    return [
        f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text:.300}"
        for r in reads
        if r.status_code != 200
    ]


@pytest.fixture
def world(api: Api) -> World:
    api.create_bucket("golden", description="fuzz target", labels={"team": "fuzz"})
    api.complete_version("golden", "fp-1", components=("amazon-ebs.a", "docker.b"))
    api.ok(api.post("/buckets/golden/channels", {"name": "prod", "version_fingerprint": "fp-1"}))
    api.create_bucket("child")
    v1 = api.ok(api.get("/buckets/golden/versions/fp-1"))["version"]
    api.complete_version("child", "child-1", parent=(v1["id"], None))
    w = World(api)
    w.fresh_open_build()
    return w


def test_no_write_breaks_a_read(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert read_everything(world) == []
    clients = {Role.ADMIN: world.api, Role.VIEWER: world.api.as_role(Role.VIEWER)}
    sent = 0

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(batch=writes())
    def one(batch: list[tuple[Operation, Any]]) -> None:
        nonlocal sent
        for op, body in batch:
            if op.needs_open_build:
                world.open_build_usable()
            client = clients[op.role]
            response = client.http.request(
                op.method,
                client.prefix + op.path(world),
                content=encode(body),
                headers={**client.headers(), "content-type": "application/json"},
            )
            sent += 1
            problem = _status_problem(response)
            assert problem is None, (op.name, encode(body)[:500], problem)
        broken = read_everything(world)
        assert broken == [], ([(op.name, encode(body)[:300]) for op, body in batch], broken)
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [], errors

    try:
        one()
    finally:
        clients[Role.VIEWER].close()
    assert sent >= EXAMPLES * len(OPERATIONS)
