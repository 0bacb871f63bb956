"""Pure rules behind channels and ancestry: edge status, roll-ups, masks, listing type."""

from __future__ import annotations

import pytest

from packyard.domain.ancestry import VersionRef, parse_ancestry_type
from packyard.domain.enums import AncestryStatus, AncestryType
from packyard.domain.rules import (
    aggregate_status,
    channel_edge_statuses,
    edge_status,
    parse_field_mask,
)
from packyard.errors import ApiError, Code

UP, OUT, UNDET = AncestryStatus.UP_TO_DATE, AncestryStatus.OUT_OF_DATE, AncestryStatus.UNDETERMINED
MASK = {"versionFingerprint": "version_fingerprint", "restricted": "restricted"}


@pytest.mark.parametrize(
    ("channel_id", "channel_version", "exists", "expected"),
    [
        ("ch", "v1", True, UP),  # the channel still serves the recorded parent
        ("ch", "v2", True, OUT),  # it moved on
        ("ch", None, True, UNDET),  # it was unassigned
        ("ch", None, False, UNDET),  # it was deleted
        (None, None, False, UNDET),  # no channel was recorded
        (None, "v1", True, UNDET),
    ],
)
def test_edge_status(
    channel_id: str | None, channel_version: str | None, exists: bool, expected: AncestryStatus
) -> None:
    assert edge_status(channel_id, channel_version, "v1", channel_exists=exists) is expected


@pytest.mark.parametrize("recorded", [{"v1"}, {"v2"}, {"v3"}, {"v1", "v2"}, {"v1", "v3"}])
@pytest.mark.parametrize(("serving", "seen"), [("v2", True), (None, True), ("v2", False)])
def test_a_channels_edge_statuses_are_those_of_each_edge(
    recorded: set[str], serving: str | None, seen: bool
) -> None:
    each = {edge_status("ch", serving, v, channel_exists=seen) for v in recorded}
    got = channel_edge_statuses(
        serving,
        channel_seen=seen,
        any_current=serving in recorded,
        any_other=bool(recorded - {serving}),
    )
    assert got == each


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ([], None),
        ([UNDET], UNDET),
        ([UP], UP),
        ([UP, UNDET], UP),
        ([UP, OUT, UNDET], OUT),
        ([OUT], OUT),
        ([UNDET, OUT], OUT),
    ],
)
def test_rollup_is_out_of_date_if_any_edge_is(
    edges: list[AncestryStatus], expected: AncestryStatus | None
) -> None:
    assert aggregate_status(edges) is expected


@pytest.mark.parametrize(
    ("mask", "paths"),
    [
        ("versionFingerprint", {"version_fingerprint"}),
        ("restricted", {"restricted"}),
        ("versionFingerprint,restricted", {"version_fingerprint", "restricted"}),
        (" restricted , versionFingerprint ,", {"version_fingerprint", "restricted"}),
    ],
)
def test_field_mask_paths(mask: str, paths: set[str]) -> None:
    assert parse_field_mask(mask, MASK) == paths


@pytest.mark.parametrize("mask", [None, "", "   ", ",", " , "])
def test_missing_field_mask_has_the_live_shape(mask: str | None) -> None:
    with pytest.raises(ApiError) as raised:
        parse_field_mask(mask, MASK)
    err = raised.value
    assert err.code is Code.INVALID_ARGUMENT and err.http_status == 400
    assert err.message == "body: (update_mask: field mask: must be set.)."
    assert err.details == [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "field_violations": [
                {
                    "field": "body.update_mask",
                    "description": "field mask: must be set",
                    "reason": "",
                    "localized_message": None,
                }
            ],
        }
    ]
    assert "code" not in str(err.details), "Packer's code regex must only see the top-level code"


def test_unknown_mask_path_is_refused() -> None:
    with pytest.raises(ApiError) as raised:
        parse_field_mask("versionFingerprint,name", MASK)
    assert raised.value.code is Code.INVALID_ARGUMENT
    assert "unknown path 'name'" in raised.value.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, AncestryType.UNSET),
        ("", AncestryType.UNSET),
        ("ANCESTRY_TYPE_UNSET", AncestryType.UNSET),
        ("ANCESTRY_TYPE_PARENTS", AncestryType.PARENTS),
        ("ANCESTRY_TYPE_CHILDREN", AncestryType.CHILDREN),
    ],
)
def test_ancestry_type(raw: str | None, expected: AncestryType) -> None:
    assert parse_ancestry_type(raw) is expected


@pytest.mark.parametrize("raw", ["parents", "PARENTS", "1", "ANCESTRY_TYPE_SIBLINGS"])
def test_unknown_ancestry_type_is_refused(raw: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse_ancestry_type(raw)
    assert raised.value.code is Code.INVALID_ARGUMENT
    assert raised.value.details[0]["field_violations"][0]["field"] == "type"


def test_version_ref_names() -> None:
    assert VersionRef("id", "b", "fp", None).name == "v0"
    assert VersionRef("id", "b", "fp", 12).name == "v12"
