"""``packyard enforced …`` against a real server, and the SDK calls under it."""

from __future__ import annotations

from pathlib import Path

from packyard.client import PackerClient
from packyard.domain.enums import Role
from tests.support.cli import Cli
from tests.support.factories import Api, TenantFixture

HCL = 'provisioner "shell-local" {\n  inline = ["echo enforced"]\n}\n'
LEGACY = '{"provisioners": [{"type": "shell-local", "inline": ["echo legacy"]}]}'


def test_the_whole_cycle(cli: Cli, api: Api, tmp_path: Path) -> None:
    api.create_bucket("golden")
    api.create_bucket("base")
    hcl, legacy = tmp_path / "cis.pkr.hcl", tmp_path / "cis.json"
    hcl.write_text(HCL)
    legacy.write_text(LEGACY)

    created = cli.json("enforced", "create", "cis", "--file", str(hcl), "--label", "team=sec")
    assert created["name"] == "cis" and created["labels"] == {"team": "sec"}
    assert created["latest_version"]["version"] == "v1"
    added = cli.json(
        "enforced", "add-version", "cis", "--file", str(legacy), "--version", "v2", "--type", "json"
    )
    assert added["template_type"] == "JSON"
    assert [d["version"]["version"] for d in cli.json("enforced", "versions", "cis")] == [
        "v2",
        "v1",
    ]
    plain = cli.ok("enforced", "list", "--format", "plain").stdout.splitlines()
    assert plain[0].split() == ["NAME", "ID", "LABELS", "UPDATED"]
    assert plain[1].split()[:2] == ["cis", created["id"]]

    links = cli.json("enforced", "link", "cis", "v1", "golden", "base")
    assert len(links) == 2
    cli.json("enforced", "link", "cis", "v2", "base")  # base moves to v2
    linked = cli.json("enforced", "linked", "cis", "v1")
    assert [x["bucket"]["name"] for x in linked] == ["golden"]
    injected = cli.json("enforced", "for-bucket", "base")
    assert [(d["name"], d["version"]["version"]) for d in injected] == [("cis", "v2")]
    rows = cli.ok("enforced", "for-bucket", "golden", "--format", "plain").stdout.splitlines()
    assert rows[1].split()[:3] == ["cis", "v1", "HCL2"]

    updated = cli.json("enforced", "update", "cis", "--label", "team=platform")
    assert updated["labels"] == {"team": "platform"}
    shown = cli.json("enforced", "get", "cis")
    assert shown["latest_version"]["block_content"] == LEGACY

    # Refused while linked: one line, exit 1, nothing changed.
    result = cli.fails(1, "enforced", "delete", "cis", "--yes")
    assert len(result.stderr.strip().splitlines()) == 1
    cli.ok("enforced", "link", "cis", "v1")
    cli.ok("enforced", "link", "cis", "v2")
    assert cli.json("enforced", "delete", "cis", "--yes") == {"deleted": "cis"}
    assert cli.json("enforced", "list") == []


def test_bad_input_is_one_line_and_stores_nothing(
    cli: Cli, api: Api, tmp_path: Path, tenant: TenantFixture, base_url: str
) -> None:
    api.create_bucket("golden")
    bad = tmp_path / "bad.pkr.hcl"
    bad.write_text('provisioner "shell" {\n  inline = [\n')
    good = tmp_path / "good.pkr.hcl"
    good.write_text(HCL)
    for code, args in [
        (1, ("enforced", "create", "x", "--file", str(bad))),
        (1, ("enforced", "create", "x", "--file", str(good), "--type", "json")),
        (2, ("enforced", "create", "x", "--file", str(tmp_path / "missing.hcl"))),
        (2, ("enforced", "create", "x", "--file", str(good), "--label", "novalue")),
        (2, ("enforced", "create", "x", "--file", str(good), "--type", "yaml")),
        (1, ("enforced", "for-bucket", "missing")),
        (1, ("enforced", "get", "missing")),
    ]:
        result = cli.fails(code, *args)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert cli.json("enforced", "list") == []
    viewer = Cli(base_url, tenant, Role.VIEWER)
    result = viewer.fails(1, "enforced", "create", "x", "--file", str(good))
    assert len(result.stderr.strip().splitlines()) == 1


def test_sdk(hcp: PackerClient, api: Api) -> None:
    api.create_bucket("golden")
    block = hcp.create_enforced_block("agent", HCL, version="1.0", labels={"a": "b"})
    assert block.latest_version is not None and block.latest_version.version == "1.0"
    v2 = hcp.create_enforced_block_version("agent", HCL, version="1.1")
    assert hcp.update_enforced_block_version("agent", "1.1", "newer").additional_description == (
        "newer"
    )
    [link] = hcp.link_enforced_block("agent", v2.id, ["golden"])
    assert link.enforced_block_version_id == v2.id and link.bucket_id
    [detail] = hcp.enforced_blocks_for_bucket("golden")
    assert detail.version is not None and detail.version.block_content == HCL
    assert [
        x.bucket.name for x in hcp.enforced_block_linked_buckets("agent", "1.1") if x.bucket
    ] == ["golden"]
    assert hcp.update_enforced_block(block.id, name="agent2").name == "agent2"
    hcp.link_enforced_block("agent2", "1.1", [])
    hcp.delete_enforced_block_version("agent2", "1.0")
    assert [d.version.version for d in hcp.list_enforced_block_versions("agent2") if d.version] == [
        "1.1"
    ]
    hcp.delete_enforced_block("agent2")
    assert hcp.list_enforced_blocks() == []
