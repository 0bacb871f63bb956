"""What the client commands print: plain/table/json formats, one-line errors, exit codes, and
the effect of a revocation. Output is read by structure (columns, JSON fields), at narrow
widths, with stdout not a terminal (as in CI logs)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from packyard.client import Code, PackerClient
from packyard.domain.enums import Role
from tests.support.cli import Cli
from tests.support.factories import TenantFixture
from tests.support.hcp_env import hcp_env, process_env, push, push_built_from
from tests.support.serve_process import PACKYARD, ServeProcess, run_cli

FP = "0123456789abcdef" * 4  # a sha256-long fingerprint: never cut, never folded
AMI = "ami-0a1b2c3d4e5f60718"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
CODE_NAMES = re.compile("|".join(rf"\b{c.name}\b" for c in Code))
WIDTHS = ("80", "40")


def plain(text: str, *, prose: str | None = None) -> list[dict[str, str]]:
    """Parse plain output: a header of upper-case names, then one record per line. Only the
    ``prose`` column (the last) may hold spaces."""
    lines = text.splitlines()
    assert lines, "no header"
    header = lines[0].split()
    assert all(re.fullmatch(r"[A-Z_]+", name) for name in header), header
    if prose is not None:
        assert header[-1] == prose
    rows = []
    for line in lines[1:]:
        cells = line.split(None, len(header) - 1) if prose else line.split()
        assert len(cells) == len(header), (header, line)
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def sections(text: str) -> list[str]:
    """Plain output of a record with parts (a version and its builds): blank-line separated."""
    return [part for part in text.split("\n\n") if part.strip()]


def one_line_error(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("error: ") and not line.startswith("error: Error"), line
    assert not CODE_NAMES.search(line), line
    assert "HTTP" not in line, line
    return line.removeprefix("error: ")


@pytest.fixture
def seeded(hcp: PackerClient) -> PackerClient:
    hcp.create_bucket("golden", description="Golden base images, patched monthly")
    push(hcp, "golden", FP, {"us-east-1": AMI, "eu-west-1": "ami-0ffffffffffffffff"})
    hcp.create_channel("golden", "production", fingerprint=FP)
    return hcp


@pytest.mark.parametrize("columns", WIDTHS)
def test_plain_is_the_default_in_a_pipe_and_keeps_every_token_whole(
    cli: Cli, seeded: PackerClient, columns: str
) -> None:
    def run(*args: str) -> str:
        return cli.ok(*args, COLUMNS=columns).stdout

    buckets = plain(run("buckets", "list"), prose="DESCRIPTION")
    assert buckets == [
        {
            "NAME": "golden",
            "LATEST": "v1",
            "STATUS": "ACTIVE",
            "PLATFORMS": "aws",
            "VERSIONS": "1",
            "UPDATED": buckets[0]["UPDATED"],
            "DESCRIPTION": "Golden base images, patched monthly",
        }
    ]
    assert RFC3339.match(buckets[0]["UPDATED"])

    [version] = plain(run("versions", "list", "golden"))
    assert version["FINGERPRINT"] == FP and version["STATUS"] == "ACTIVE"
    assert RFC3339.match(version["CREATED"]) and version["REVOKE_AT"] == "-"

    [build] = plain(run("builds", "list", "golden", FP))
    assert (
        build["ARTIFACTS"] == f"eu-west-1:ami-0ffffffffffffffff,us-east-1:{AMI}"
        or build["ARTIFACTS"] == f"us-east-1:{AMI},eu-west-1:ami-0ffffffffffffffff"
    )
    assert build["LABELS"] == "-" and build["STATUS"] == "DONE"

    channels = {c["CHANNEL"]: c for c in plain(run("channels", "list", "golden"), prose="BY")}
    assert (
        channels["production"]["FINGERPRINT"] == FP
        and channels["latest"]["FLAGS"] == "managed,restricted"
    )
    [assigned] = plain(run("channels", "history", "golden", "production"), prose="BY")
    assert RFC3339.match(assigned["ASSIGNED_AT"]) and assigned["FINGERPRINT"] == FP

    detail, builds = sections(run("versions", "get", "golden", FP))
    [record] = plain(detail)
    assert record["FINGERPRINT"] == FP and record["REVOKE_AT"] == "-"
    assert plain(builds)[0]["ID"] == build["ID"]
    [bucket] = plain(run("buckets", "get", "golden"), prose="DESCRIPTION")
    assert bucket["LATEST_FINGERPRINT"] == FP

    [hit] = plain(run("artifact", "find", AMI))
    assert hit["FINGERPRINT"] == FP and hit["REGIONS"] in (
        "eu-west-1,us-east-1",
        "us-east-1,eu-west-1",
    )


@pytest.mark.parametrize("columns", WIDTHS)
def test_tables_never_break_identifiers_or_times(
    cli: Cli, seeded: PackerClient, columns: str
) -> None:
    commands: list[tuple[list[str], bool]] = [  # (command, shows a time)
        (["versions", "list", "golden"], True),
        (["channels", "list", "golden"], True),
        (["versions", "get", "golden", FP], True),
        (["artifact", "find", AMI], False),
    ]
    for args, timed in commands:
        out = cli.ok(*args, "--format", "table", COLUMNS=columns).stdout
        assert any(FP in line for line in out.splitlines()), out
        if timed:  # date and time on one line
            assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", out), out
    builds = cli.ok("builds", "list", "golden", FP, "-o", "table", COLUMNS=columns).stdout
    assert any(AMI in line for line in builds.splitlines()), builds


def test_json_is_the_wire_objects(cli: Cli, seeded: PackerClient) -> None:
    assert [v["fingerprint"] for v in cli.json("versions", "list", "golden")] == [FP]
    assert cli.json("buckets", "get", "golden")["name"] == "golden"
    assert {c["name"] for c in cli.json("channels", "list", "golden")} == {"latest", "production"}


def test_errors_are_one_plain_line(
    cli: Cli, seeded: PackerClient, base_url: str, tenant: TenantFixture
) -> None:
    missing = cli.fails(1, "buckets", "get", "nope")
    assert one_line_error(missing.stderr) == "bucket nope not found"
    version = cli.fails(1, "versions", "get", "golden", "fp-nope")
    assert one_line_error(version.stderr) == "version fp-nope not found in bucket golden"
    restore = cli.fails(1, "versions", "restore", "golden", "fp-nope")
    assert one_line_error(restore.stderr) == "version fp-nope not found in bucket golden"
    channel = cli.fails(1, "channels", "get", "golden", "nope")
    assert one_line_error(channel.stderr) == "channel nope not found in bucket golden"
    exists = cli.fails(1, "buckets", "create", "golden")
    assert one_line_error(exists.stderr) == "bucket golden already exists"

    viewer = Cli(base_url, tenant, Role.VIEWER)
    denied = one_line_error(viewer.fails(1, "buckets", "create", "other").stderr)
    assert denied.endswith("(check the role of HCP_CLIENT_ID on the project)")
    wrong = one_line_error(cli.fails(1, "buckets", "list", HCP_CLIENT_SECRET="wrong").stderr)
    assert wrong.endswith("(check HCP_CLIENT_ID and HCP_CLIENT_SECRET)")


def test_missing_configuration_names_the_variable(cli: Cli, tmp_path: Path) -> None:
    unset = {"HCP_CLIENT_ID": None, "HCP_CLIENT_SECRET": None, "HOME": str(tmp_path)}
    line = one_line_error(cli.fails(1, "buckets", "list", **unset).stderr)
    assert line.startswith("HCP_CLIENT_ID is not set") and "packyard env" in line
    half = one_line_error(cli.fails(1, "buckets", "list", HCP_CLIENT_SECRET=None).stderr)
    assert half.startswith("HCP_CLIENT_SECRET is not set")


def test_unreachable_server_names_the_address(cli: Cli) -> None:
    line = one_line_error(
        cli.fails(
            1, "buckets", "list", HCP_API_ADDRESS="127.0.0.1:9", HCP_AUTH_URL="http://127.0.0.1:9"
        ).stderr
    )
    assert "127.0.0.1:9" in line and "refused" in line


def test_usage_errors_exit_2_on_one_line(cli: Cli, seeded: PackerClient) -> None:
    bad_in = cli.fails(2, "versions", "revoke", "golden", FP, "--in", "2")
    assert one_line_error(bad_in.stderr).startswith("--in: invalid duration '2'")
    assert cli.json("versions", "get", "golden", FP)["status"] == "VERSION_ACTIVE"  # unchanged
    bad_format = cli.fails(2, "buckets", "list", "--format", "yaml")
    line = one_line_error(bad_format.stderr)
    assert "'yaml'" in line and line.endswith(" buckets list --help'."), line
    missing = one_line_error(cli.fails(2, "versions", "get").stderr)
    assert missing.startswith("missing argument")
    unknown = one_line_error(cli.fails(2, "buckets", "lst").stderr)
    assert "lst" in unknown


def _family(hcp: PackerClient) -> None:
    """parent: fp-p1 (v1), then fp-p2 (v2) on channel prod; child: fp-c1 built from prod,
    alone on channel stable."""
    hcp.create_bucket("parent")
    push(hcp, "parent", "fp-p1", {"us-east-1": "ami-p1"})
    push(hcp, "parent", "fp-p2", {"us-east-1": "ami-p2"})
    hcp.create_channel("parent", "prod", fingerprint="fp-p1")
    prod = hcp.assign_channel("parent", "prod", "fp-p2")
    hcp.create_bucket("child")
    push_built_from(hcp, prod, "child", "fp-c1", {"us-east-1": "ami-c1"})
    hcp.create_channel("child", "stable", fingerprint="fp-c1")


def test_revoke_reports_descendants_and_channels(cli: Cli, hcp: PackerClient) -> None:
    _family(hcp)
    done = cli.ok("versions", "revoke", "parent", "fp-p2", "-m", "CVE-1", COLUMNS="40")
    rows = plain(done.stdout)
    by_effect: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_effect.setdefault(row["EFFECT"], []).append(row)
    assert [(r["BUCKET"], r["FINGERPRINT"]) for r in by_effect["revoked"]] == [("parent", "fp-p2")]
    assert [(r["BUCKET"], r["FINGERPRINT"]) for r in by_effect["inherits"]] == [("child", "fp-c1")]
    moved = {(r["BUCKET"], r["CHANNEL"]): r for r in by_effect["rolled-back"]}
    assert moved[("parent", "prod")]["FINGERPRINT"] == "fp-p2"
    assert moved[("parent", "prod")]["TO_FINGERPRINT"] == "fp-p1"
    assert moved[("parent", "latest")]["TO_FINGERPRINT"] == "fp-p1"
    emptied = {(r["BUCKET"], r["CHANNEL"]) for r in by_effect["emptied"]}
    assert emptied == {("child", "latest"), ("child", "stable")}  # its only version
    assert all(RFC3339.match(r["AT"]) for r in rows)
    assert done.stderr.count("\n") == 1  # the summary goes to stderr in plain
    assert hcp.get_channel("parent", "prod").version.fingerprint == "fp-p1"  # type: ignore[union-attr]

    hcp.restore_version("parent", "fp-p2")  # channels are not rolled forward: put them back
    hcp.assign_channel("parent", "prod", "fp-p2")
    hcp.assign_channel("child", "stable", "fp-c1")
    data = cli.json("versions", "revoke", "parent", "fp-p2", "--in", "30d")
    assert data["status"] == "VERSION_REVOCATION_SCHEDULED"  # the wire version, as before
    effect: dict[str, Any] = data["effect"]
    assert effect["immediate"] is False
    assert [
        (d["bucket_name"], d["version_fingerprint"], d["revoked"]) for d in effect["descendants"]
    ] == [("child", "fp-c1", True)]
    channels = {(c["bucket_name"], c["channel_name"]): c for c in effect["channels"]}
    prod = channels[("parent", "prod")]
    assert prod["from_version"]["version_fingerprint"] == "fp-p2"
    assert prod["to_version"]["version_fingerprint"] == "fp-p1"
    assert channels[("child", "stable")]["to_version"] is None
    # Scheduled: the channels move when the revocation takes effect, not now.
    assert hcp.get_channel("parent", "prod").version.fingerprint == "fp-p2"  # type: ignore[union-attr]


def test_revoke_skipping_descendants_and_rollback_reports_only_the_version(
    cli: Cli, hcp: PackerClient
) -> None:
    _family(hcp)
    rows = plain(
        cli.ok(
            "versions", "revoke", "parent", "fp-p2", "--skip-descendants", "--no-rollback"
        ).stdout
    )
    assert [(r["EFFECT"], r["BUCKET"], r["FINGERPRINT"]) for r in rows] == [
        ("revoked", "parent", "fp-p2")
    ]


def test_restore_reports_the_descendants_it_clears(cli: Cli, hcp: PackerClient) -> None:
    _family(hcp)
    hcp.revoke_version("parent", "fp-p2")
    rows = plain(cli.ok("versions", "restore", "parent", "fp-p2", COLUMNS="40").stdout)
    assert [(r["EFFECT"], r["BUCKET"], r["VERSION"], r["FINGERPRINT"]) for r in rows] == [
        ("restored", "parent", "v2", "fp-p2"),
        ("inherited-restored", "child", "v1", "fp-c1"),
    ]
    assert hcp.get_version("child", "fp-c1").status == "VERSION_ACTIVE"

    hcp.revoke_version("parent", "fp-p2", skip_descendants=True)
    data = cli.json("versions", "restore", "parent", "fp-p2")
    assert data["status"] == "VERSION_ACTIVE"  # the wire version, as before
    assert (data["effect"]["descendants"], data["effect"]["descendants_restored"]) == ([], 0)


def test_ancestry_follows_the_formats(cli: Cli, hcp: PackerClient) -> None:
    _family(hcp)
    [parent] = plain(cli.ok("ancestry", "child", COLUMNS="40").stdout)
    assert parent == {
        "RELATION": "parent",
        "BUCKET": "parent",
        "VERSION": "v2",
        "FINGERPRINT": "fp-p2",
        "CHANNEL": "prod",
        "CHANNEL_VERSION": "v2",
        "STATUS": "UP_TO_DATE",
    }
    [child] = plain(cli.ok("ancestry", "parent").stdout)
    assert (child["RELATION"], child["BUCKET"], child["CHANNEL"]) == ("child", "child", "-")


# --- a real process, stdout a pipe ------------------------------------------------------------


@pytest.mark.skipif(not PACKYARD.exists(), reason="the packyard console script is not installed")
def test_a_real_pipe_gets_plain_output_and_one_line_errors(
    seeded: PackerClient, base_url: str, tenant: TenantFixture
) -> None:
    env = process_env(dict(os.environ), {**hcp_env(base_url, tenant), "COLUMNS": "40"})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PACKYARD), *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    listed = run("versions", "list", "golden")
    assert listed.returncode == 0, listed.stderr
    [row] = plain(listed.stdout)
    assert row["FINGERPRINT"] == FP and "\x1b[" not in listed.stdout
    assert (
        json.loads(run("versions", "list", "golden", "-o", "json").stdout)[0]["fingerprint"] == FP
    )
    missing = run("versions", "get", "golden", "fp-nope")
    assert missing.returncode == 1
    assert one_line_error(missing.stderr) == "version fp-nope not found in bucket golden"
    usage = run("buckets", "list", "--format", "yaml")
    assert usage.returncode == 2
    assert one_line_error(usage.stderr).endswith("Try 'packyard buckets list --help'.")


def test_deleting_a_version_reports_the_channels_it_moved(cli: Cli, hcp: PackerClient) -> None:
    _family(hcp)
    hcp.create_bucket("solo")
    push(hcp, "solo", "fp-s1", {"us-east-1": "ami-s1"})
    push(hcp, "solo", "fp-s2", {"us-east-1": "ami-s2"})
    hcp.create_channel("solo", "prod", fingerprint="fp-s1")
    hcp.assign_channel("solo", "prod", "fp-s2")
    done = cli.ok("versions", "delete", "solo", "fp-s2", "--yes", "--rollback-channels")
    rows = {r["CHANNEL"]: r for r in plain(done.stdout)}
    assert (rows["prod"]["EFFECT"], rows["prod"]["TO_FINGERPRINT"]) == ("rolled-back", "fp-s1")
    assert rows["latest"]["TO_FINGERPRINT"] == "fp-s1"
    data = cli.json("versions", "delete", "solo", "fp-s1", "--yes", "--rollback-channels")
    assert {c["channel_name"]: c["to_version"] for c in data["channels"]} == {
        "latest": None,
        "prod": None,
    }
    gone = cli.json("buckets", "delete", "parent", "--yes")
    assert gone == {"deleted": "parent", "versions": 2, "channels": 2}


@pytest.mark.skipif(not PACKYARD.exists(), reason="the packyard console script is not installed")
def test_an_untrusted_certificate_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ServeProcess(data_dir):
        block = json.loads(run_cli("env", "--data-dir", str(data_dir), "--format", "json").stdout)
        env = {k: v for k, v in block.items() if k not in ("HCP_API_TLS", "HCP_AUTH_TLS")}
        env["HOME"] = str(tmp_path)
        result = run_cli("buckets", "list", **env)
        assert result.returncode == 1 and result.stdout == ""
        line = one_line_error(result.stderr)
        assert "127.0.0.1" in line and "not trusted" in line and "=insecure" in line
        trusted = run_cli("buckets", "list", **{**env, **block})
        assert trusted.returncode == 0, trusted.stderr
