"""``packyard ingest-manifest``: hand-written and real Packer manifests become versions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from packyard.cli.manifest import ManifestError, plan_builds
from packyard.client import PackerClient
from tests.support.cli import Cli

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RUN = "4f0c2b1e-8d3a-4c55-9e61-0a7b2c3d4e5f"
OLD_RUN = "00000000-1111-2222-3333-444444444444"


def hand_manifest() -> dict[str, Any]:
    """Two runs appended to one file, as the post-processor does; the last one counts."""
    return {
        "builds": [
            {
                "name": "ubuntu",
                "builder_type": "amazon-ebs",
                "build_time": 1690000000,
                "files": None,
                "artifact_id": "us-east-1:ami-0old",
                "packer_run_uuid": OLD_RUN,
                "custom_data": None,
            },
            {
                "name": "ubuntu",
                "builder_type": "amazon-ebs",
                "build_time": 1700000000,
                "files": None,
                "artifact_id": "us-east-1:ami-0e1111111111111aa,eu-west-1:ami-0e2222222222222bb",
                "packer_run_uuid": RUN,
                "custom_data": {"os": "ubuntu", "release": "24.04"},
            },
            {
                "name": "disk",
                "builder_type": "file",
                "build_time": 1700000001,
                "files": [{"name": "images/disk.img", "size": 1024}],
                "artifact_id": "File",
                "packer_run_uuid": RUN,
                "custom_data": {"os": "ubuntu", "release": "24.04"},
            },
        ],
        "last_run_uuid": RUN,
    }


# --- mapping (no server) ------------------------------------------------------


def test_last_run_builds_are_mapped_per_builder() -> None:
    run, planned = plan_builds(hand_manifest())
    assert run == RUN
    builds = {b.component_type: b for b in planned}
    assert set(builds) == {"ubuntu", "disk"}
    ami = builds["ubuntu"]
    assert ami.platform == "aws"
    assert ami.artifacts == [
        ("ami-0e1111111111111aa", "us-east-1"),
        ("ami-0e2222222222222bb", "eu-west-1"),
    ]
    assert ami.labels == {"os": "ubuntu", "release": "24.04"}
    disk = builds["disk"]
    assert (disk.platform, disk.artifacts) == ("packer.file", [("disk.img", "images")])
    _, old = plan_builds(hand_manifest(), run_uuid=OLD_RUN)
    assert [b.artifacts for b in old] == [[("ami-0old", "us-east-1")]]


@pytest.mark.parametrize(
    ("builder", "artifact_id", "platform", "region"),
    [
        ("azure-arm", "/subscriptions/s/resourceGroups/rg/images/img", "azure", "global"),
        ("googlecompute", "debian-12-golden", "gce", "global"),
        ("docker", "sha256:abc", "docker", "docker"),
        ("null", "Null", "null", "null"),
        ("vsphere-iso", "golden-vm", "vsphere", "global"),
        ("my-plugin", "thing-1", "my-plugin", "global"),
    ],
)
def test_single_id_builders(builder: str, artifact_id: str, platform: str, region: str) -> None:
    manifest = {
        "builds": [
            {"name": "b", "builder_type": builder, "artifact_id": artifact_id, "files": None}
        ]
    }
    _, (build,) = plan_builds(manifest)
    assert (build.platform, build.artifacts) == (platform, [(artifact_id, region)])
    _, (custom,) = plan_builds(manifest, platform="custom", region="westeurope")
    assert (custom.platform, custom.artifacts) == ("custom", [(artifact_id, "westeurope")])


@pytest.mark.parametrize(
    "manifest",
    [
        {"nothing": []},
        {"builds": []},
        {"builds": [{"name": "x", "builder_type": "docker", "artifact_id": ""}]},
        {"builds": [{"name": "x", "packer_run_uuid": "a"}], "last_run_uuid": "b"},
    ],
)
def test_unusable_manifests(manifest: Any) -> None:
    with pytest.raises(ManifestError):
        plan_builds(manifest)


# --- publishing -------------------------------------------------------------------


def test_ingest_hand_written_manifest_onto_a_channel(
    cli: Cli, hcp: PackerClient, tmp_path: Path
) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(hand_manifest()))
    out = cli.json("ingest-manifest", str(path), "--bucket", "golden", "--channel", "production")
    assert out["fingerprint"] == RUN and not out["already_complete"]
    assert out["version"]["name"] == "v1" and out["version"]["status"] == "VERSION_ACTIVE"
    assert out["channel"]["name"] == "production"

    version = hcp.get_version("golden", RUN)
    builds = {b.component_type: b for b in version.builds}
    assert builds["ubuntu"].labels == {"os": "ubuntu", "release": "24.04"}
    assert builds["ubuntu"].packer_run_uuid == RUN
    assert {(a.region, a.external_identifier) for a in builds["ubuntu"].artifacts} == {
        ("us-east-1", "ami-0e1111111111111aa"),
        ("eu-west-1", "ami-0e2222222222222bb"),
    }
    assert builds["disk"].metadata is not None
    assert builds["disk"].metadata["packer"]["builder_type"] == "file"
    channel = hcp.get_channel("golden", "production")
    assert channel.version is not None and channel.version.fingerprint == RUN
    got = cli.ok(
        "artifact", "get", "-b", "golden", "-c", "production", "-p", "aws", "-r", "eu-west-1"
    )
    assert got.stdout == "ami-0e2222222222222bb\n"

    # Idempotent: a second run adds nothing, and can point another channel at it.
    again = cli.json("ingest-manifest", str(path), "-b", "golden", "-c", "staging")
    assert again["already_complete"] and again["version"]["name"] == "v1"
    assert hcp.get_channel("golden", "staging").version is not None
    assert hcp.get_bucket("golden").version_count == 1

    # An explicit fingerprint and platform make a second version; the table output.
    table = cli.ok(
        "ingest-manifest",
        str(path),
        "-b",
        "golden",
        "-f",
        "rebuilt-1",
        "-c",
        "production",
        "-o",
        "table",
    ).stdout
    assert "v2" in table and "production" in table and "ami-0e1111111111111aa" in table
    channel = hcp.get_channel("golden", "production")
    assert channel.version is not None and channel.version.fingerprint == "rebuilt-1"


def test_ingest_errors(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[")
    assert "not valid JSON" in cli.fails(2, "ingest-manifest", str(bad), "-b", "x").stderr
    empty = tmp_path / "empty.json"
    empty.write_text('{"builds": []}')
    cli.fails(2, "ingest-manifest", str(empty), "-b", "x")
    cli.fails(2, "ingest-manifest", str(tmp_path / "absent.json"), "-b", "x")
    cli.fails(2, "ingest-manifest", str(bad))  # --bucket is required
    good = tmp_path / "good.json"
    good.write_text(json.dumps(hand_manifest()))
    cli.fails(2, "ingest-manifest", str(good), "-b", "x", "--template-type", "YAML")
    # A complete version lacking the manifest's builds cannot take them.
    cli.ok("ingest-manifest", str(good), "-b", "x", "-f", "fp-1", "--run-uuid", OLD_RUN)
    clash = cli.fails(1, "ingest-manifest", str(good), "-b", "x", "-f", "fp-1")
    assert "already complete" in clash.stderr and "disk" in clash.stderr


# --- a real packer ------------------------------------------------------------------

PACKER = shutil.which("packer")
TEMPLATE = {
    "builders": [
        {"type": "file", "name": "motd", "content": "hello from packer", "target": "out/motd.txt"},
        {"type": "null", "name": "noop", "communicator": "none"},
    ],
    "post-processors": [
        {
            "type": "manifest",
            "output": "manifest.json",
            "custom_data": {"team": "platform", "purpose": "test"},
        }
    ],
}


def run_packer(workdir: Path) -> dict[str, Any]:
    if PACKER is None:
        if IN_CI:
            pytest.fail("packer is required in CI (./dev test installs Debian's packer)")
        pytest.skip("packer is not installed (apt-get install packer; ./dev test does it in CI)")
    (workdir / "template.json").write_text(json.dumps(TEMPLATE))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HCP_", "PACKER_"))},
        "CHECKPOINT_DISABLE": "1",
        "PACKER_CONFIG_DIR": str(workdir / ".packer.d"),
        "PACKER_CACHE_DIR": str(workdir / "packer_cache"),
    }
    done = subprocess.run(
        [PACKER, "build", "-color=false", "template.json"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    manifest: dict[str, Any] = json.loads((workdir / "manifest.json").read_text())
    return manifest


def test_real_packer_manifest_onto_a_channel(cli: Cli, hcp: PackerClient, tmp_path: Path) -> None:
    manifest = run_packer(tmp_path)
    run = manifest["last_run_uuid"]
    assert {b["builder_type"] for b in manifest["builds"]} == {"file", "null"}
    result = cli.ok(
        "ingest-manifest",
        str(tmp_path / "manifest.json"),
        "--bucket",
        "packer-166",
        "--channel",
        "release",
    )
    assert "release" in result.stderr  # plain output: the summary on stderr, rows on stdout
    version = hcp.get_version("packer-166", run)
    assert version.name == "v1" and version.status == "VERSION_ACTIVE"
    builds = {b.component_type: b for b in version.builds}
    assert set(builds) == {"motd", "noop"}
    motd = builds["motd"]
    assert motd.platform == "packer.file"
    assert [(a.external_identifier, a.region) for a in motd.artifacts] == [("motd.txt", "out")]
    assert motd.labels == {"team": "platform", "purpose": "test"}
    assert builds["noop"].platform == "null"
    assert [a.external_identifier for a in builds["noop"].artifacts] == ["Null"]
    channel = hcp.get_channel("packer-166", "release")
    assert channel.version is not None and channel.version.fingerprint == run
    got = cli.ok(
        "artifact", "get", "-b", "packer-166", "-c", "release", "-p", "packer.file", "-r", "out"
    )
    assert got.stdout == "motd.txt\n"

    # A second packer run appends to the manifest; ingesting it makes v2 and moves the channel.
    second = run_packer(tmp_path)
    assert second["last_run_uuid"] != run and len(second["builds"]) == 4
    cli.ok("ingest-manifest", str(tmp_path / "manifest.json"), "-b", "packer-166", "-c", "release")
    channel = hcp.get_channel("packer-166", "release")
    assert channel.version is not None and channel.version.name == "v2"
    assert channel.version.fingerprint == second["last_run_uuid"]
