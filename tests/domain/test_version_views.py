"""Pure rules behind the console's version pages: reading build metadata, comparing two
versions, placing a lineage in generations."""

from __future__ import annotations

from datetime import UTC, datetime

from packyard.domain.buildinfo import MAX_OTHER, MAX_VALUE, build_info
from packyard.domain.compare import ChangeKind, diff, merged
from packyard.domain.enums import AncestryStatus
from packyard.domain.lineage import LineageEdge, LineageVersion, layer

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_packer_metadata_in_its_documented_shape() -> None:
    info = build_info(
        {
            "packer": {
                "version": "1.11.2",
                "plugins": {"github.com/hashicorp/amazon": {"version": "1.3.2"}},
                "os": {"type": "linux", "details": {"arch": "amd64", "version": "6.8"}},
                "options": {"force": False, "only": ["amazon-ebs.a"]},
            },
            "vcs": {
                "type": "git",
                "details": {
                    "author": "Ada <ada@example.com>",
                    "commit": "0123abc",
                    "ref": "main",
                    "has_uncommitted_changes": True,
                },
            },
            "cicd": {"type": "github-actions", "details": {"GITHUB_RUN_ID": 42}},
        }
    )
    assert info.packer_version == "1.11.2"
    assert info.plugins == (("github.com/hashicorp/amazon", "1.3.2"),)
    assert info.os == "linux (amd64, 6.8)"
    assert (info.vcs_type, info.vcs_commit, info.vcs_ref) == ("git", "0123abc", "main")
    assert (info.vcs_author, info.vcs_uncommitted) == ("Ada <ada@example.com>", "yes")
    assert info.cicd_type == "github-actions"
    assert info.cicd == (("GITHUB_RUN_ID", "42"),)
    assert info.other == (
        ("packer.options.force", "false"),
        ("packer.options.only", "amazon-ebs.a"),
    )
    assert not info.empty


def test_flat_shapes_and_anything_else() -> None:
    info = build_info(
        {
            "packer": {"version": "1.16.0", "plugins": [{"name": "azure", "version": "2.1.0"}]},
            "vcs": {"type": "git", "ref": "main", "commit": "3f2c1e9"},
            "cicd": {"type": "jenkins", "run": "https://ci.example.com/runs/42"},
            "team": {"owner": "platform", "tags": [{"a": 1}]},
            "vcs_extra": None,
        }
    )
    assert info.vcs_commit == "3f2c1e9" and info.vcs_ref == "main"
    assert info.plugins == (("azure", "2.1.0"),)
    assert info.cicd == (("run", "https://ci.example.com/runs/42"),)
    assert info.other == (("team.owner", "platform"), ("team.tags", '[{"a":1}]'))
    assert build_info(None).empty
    assert build_info({"vcs": "git", "packer": 3}).other == (("packer", "3"), ("vcs", "git"))


def test_metadata_cannot_flood_a_page() -> None:
    info = build_info({f"k{i:03d}": "x" * 1000 for i in range(500)})
    assert len(info.other) == MAX_OTHER and info.cut
    assert all(len(v) == MAX_VALUE for _, v in info.other)


def test_diff_and_merged_values() -> None:
    rows = {
        r.subject: r
        for r in diff({"a": "1", "b": "2", "c": "3", "e": ""}, {"a": "1", "b": "9", "d": "4"})
    }
    assert {s: r.kind for s, r in rows.items()} == {
        "a": ChangeKind.UNCHANGED,
        "b": ChangeKind.CHANGED,
        "c": ChangeKind.REMOVED,
        "d": ChangeKind.ADDED,
    }
    assert merged({"x": "1", "y": "1", "z": ""}) == "1"
    assert merged({"x": "1", "y": "2"}) == "1 (x); 2 (y)"
    assert merged({}) == ""


def _v(vid: str, bucket: str, number: int) -> LineageVersion:
    return LineageVersion(
        id=vid,
        bucket_name=bucket,
        fingerprint=vid,
        number=number,
        created_at=NOW,
        revoke_at=None,
        revocation_message="",
        revocation_author="",
        revocation_type=None,
    )


def _e(parent: str, child: str) -> LineageEdge:
    return LineageEdge(parent, child, "", AncestryStatus.UNDETERMINED)


def test_generations_follow_the_longest_path() -> None:
    nodes = {
        "base": _v("base", "base", 1),
        "mid": _v("mid", "mid", 1),
        "app": _v("app", "app", 1),
        "side": _v("side", "side", 1),
    }
    # app is built from mid and, directly, from base: it still stands right of mid
    edges = [_e("base", "mid"), _e("mid", "app"), _e("base", "app"), _e("base", "side")]
    assert layer(nodes, edges) == [["base"], ["mid", "side"], ["app"]]
    # edges to versions outside the graph are ignored
    assert layer({"mid": nodes["mid"]}, edges) == [["mid"]]
    assert layer({}, []) == []
