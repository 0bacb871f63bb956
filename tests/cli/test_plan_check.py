"""``packyard plan check`` on real Terraform 1.11 plan JSON, against a real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from packyard.cli.plan import IMAGE_RULES, PlanError, image_refs, parse_rule
from packyard.client import ApiError, Code, PackerClient
from tests.support.cli import Cli
from tests.support.hcp_env import push

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "terraform-plans"
CREATE = FIXTURES / "plan-create.json"
CHANGE = FIXTURES / "plan-change.json"
API_AMI, QUEUE_AMI, SPOT_AMI, NEW_AMI = (
    "ami-0a11111111111111a",
    "ami-0b22222222222222b",
    "ami-0c33333333333333c",
    "ami-0d44444444444444d",
)


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def by_address(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["address"]: r for r in report["resources"]}


def revoke_or_skip(hcp: PackerClient, bucket: str, fingerprint: str, **kw: Any) -> None:
    try:
        hcp.revoke_version(bucket, fingerprint, **kw)
    except ApiError as exc:
        if exc.code is Code.UNIMPLEMENTED:
            pytest.skip("revocation is not implemented by the server yet (code 12)")
        raise


def search_or_skip(hcp: PackerClient) -> None:
    try:
        list(hcp.search_external_artifact("ami-probe"))
    except ApiError as exc:
        if exc.code is Code.UNIMPLEMENTED:
            pytest.skip("SearchExternalArtifact is not implemented by the server yet (code 12)")
        raise


# --- reading plans (no server) ----------------------------------------------


def test_images_of_the_real_create_plan() -> None:
    refs = image_refs(load(CREATE), IMAGE_RULES)
    got = {(r.address, r.action, r.attribute, r.image_id) for r in refs}
    assert got == {
        ("aws_instance.api", "create", "ami", API_AMI),
        ("aws_launch_template.queue", "create", "image_id", QUEUE_AMI),
        ("aws_spot_instance_request.spot", "create", "ami", SPOT_AMI),
    }


def test_images_of_the_real_change_plan() -> None:
    refs = {r.address: r for r in image_refs(load(CHANGE), IMAGE_RULES)}
    assert refs["aws_instance.api"].action == "replace"
    assert refs["aws_instance.api"].image_id == NEW_AMI
    assert refs["aws_launch_template.queue"].action == "update"
    assert refs["aws_spot_instance_request.spot"].action == "create"
    assert "aws_security_group.unrelated" not in refs


def _rc(address: str, rtype: str, actions: list[str], after: Any, unknown: Any = None) -> Any:
    return {
        "address": address,
        "mode": "managed",
        "type": rtype,
        "change": {"actions": actions, "after": after, "after_unknown": unknown or {}},
    }


def test_azure_gcp_unknown_and_custom_attributes() -> None:
    plan = {
        "format_version": "1.2",
        "resource_changes": [
            _rc(
                "azurerm_linux_virtual_machine.vm",
                "azurerm_linux_virtual_machine",
                ["create"],
                {"source_image_id": "/subscriptions/s/images/img-1"},
            ),
            _rc(
                "azurerm_windows_virtual_machine_scale_set.ss",
                "azurerm_windows_virtual_machine_scale_set",
                ["update"],
                {"source_image_id": "/subscriptions/s/images/img-2"},
            ),
            _rc(
                "google_compute_instance.gi",
                "google_compute_instance",
                ["create", "delete"],
                {
                    "boot_disk": [
                        {"initialize_params": [{"image": "projects/p/global/images/gimg"}]}
                    ]
                },
            ),
            _rc("google_compute_disk.d", "google_compute_disk", ["no-op"], {"image": "disk-img"}),
            _rc("aws_instance.later", "aws_instance", ["create"], {}, {"ami": True}),
            _rc("aws_instance.gone", "aws_instance", ["delete"], None),
            {**_rc("aws_ami.d", "aws_instance", ["read"], {"ami": "x"}), "mode": "data"},
            _rc("my_vm.x", "my_vm", ["create"], {"boot": [{"image": "custom-1"}]}),
        ],
    }
    rules = [parse_rule("my_vm=boot[].image@aws"), *IMAGE_RULES]
    refs = {r.address: r for r in image_refs(plan, rules)}
    assert refs["azurerm_linux_virtual_machine.vm"].platform == "azure"
    assert refs["azurerm_windows_virtual_machine_scale_set.ss"].action == "update"
    gi = refs["google_compute_instance.gi"]
    assert gi.action == "replace" and gi.attribute == "boot_disk[0].initialize_params[0].image"
    assert refs["google_compute_disk.d"].action == "no-op"
    assert refs["aws_instance.later"].image_id is None
    assert refs["my_vm.x"].image_id == "custom-1" and refs["my_vm.x"].platform == "aws"
    assert "aws_instance.gone" not in refs and "aws_ami.d" not in refs
    with pytest.raises(PlanError):
        parse_rule("no-path")
    with pytest.raises(PlanError):
        image_refs({"hello": "world"}, IMAGE_RULES)


# --- checking plans against the registry --------------------------------------


@pytest.fixture
def registry(hcp: PackerClient) -> PackerClient:
    """The plan's three original AMIs tracked in three buckets, each on a prod channel."""
    search_or_skip(hcp)
    for bucket, ami in (("api", API_AMI), ("queue", QUEUE_AMI), ("spot", SPOT_AMI)):
        hcp.create_bucket(bucket)
        push(hcp, bucket, f"{bucket}-1", {"us-west-2": ami})
        hcp.create_channel(bucket, "prod", fingerprint=f"{bucket}-1")
    return hcp


def test_create_plan_passes_on_active_images(cli: Cli, registry: PackerClient) -> None:
    result = cli.ok("plan", "check", str(CREATE))  # plain: the verdict on stderr
    assert "passed" in result.stderr and "aws_instance.api" in result.stdout
    report = json.loads(cli.ok("plan", "check", str(CREATE), "--format", "json").stdout)
    assert report["passed"] and report["terraform_version"] == "1.11.4"
    rows = by_address(report)
    assert set(rows) == {
        "aws_instance.api",
        "aws_launch_template.queue",
        "aws_spot_instance_request.spot",
    }
    api = rows["aws_instance.api"]
    assert api["result"] == "ok" and api["tracked"] and api["bucket"] == "api"
    assert api["version"]["name"] == "v1" and api["version"]["status"] == "VERSION_ACTIVE"
    assert sorted(api["channels"]) == ["latest", "prod"]


def test_create_onto_revoked_image_fails(cli: Cli, registry: PackerClient) -> None:
    revoke_or_skip(
        registry, "api", "api-1", message="CVE-2025-0001", disable_rollback_channels=True
    )
    result = cli.fails(1, "plan", "check", str(CREATE))
    assert "FAILED" in result.stderr and "CVE-2025-0001" in result.stdout
    assert "FAILED" in cli.run("plan", "check", str(CREATE), "-o", "table").stdout
    report = json.loads(cli.run("plan", "check", str(CREATE), "--format", "json").stdout)
    assert not report["passed"] and report["summary"]["fail"] == 1
    rows = by_address(report)
    assert rows["aws_instance.api"]["result"] == "fail"
    assert rows["aws_instance.api"]["version"]["status"] == "VERSION_REVOKED"
    assert rows["aws_launch_template.queue"]["result"] == "ok"


def test_plain_rows_keep_addresses_and_image_ids_whole(cli: Cli, registry: PackerClient) -> None:
    revoke_or_skip(registry, "api", "api-1", message="CVE-2025-0001 in openssl")
    result = cli.fails(1, "plan", "check", str(CREATE), COLUMNS="40")
    header, *lines = result.stdout.splitlines()
    names = header.split()
    assert names[-1] == "NOTES"
    rows = {}
    for line in lines:
        cells = line.split(None, len(names) - 1)
        assert len(cells) == len(names), line
        rows[cells[0]] = dict(zip(names, cells, strict=True))
    api = rows["aws_instance.api"]
    assert (api["IMAGE"], api["RESULT"], api["STATUS"]) == (API_AMI, "FAIL", "REVOKED")
    assert api["ATTRIBUTE"] == "ami" and "CVE-2025-0001 in openssl" in api["NOTES"]
    assert rows["aws_launch_template.queue"]["RESULT"] == "OK"
    assert len(result.stderr.splitlines()) == 1  # the verdict


def test_change_plan_replace_fails_update_warns(cli: Cli, registry: PackerClient) -> None:
    # The new image is tracked, then revoked: the replaced instance fails the check,
    # the launch template updated in place onto it only warns.
    push(registry, "api", "api-2", {"us-west-2": NEW_AMI})
    revoke_or_skip(registry, "api", "api-2", message="bad build")
    report = json.loads(cli.run("plan", "check", str(CHANGE), "--format", "json").stdout)
    rows = by_address(report)
    assert rows["aws_instance.api"]["action"] == "replace"
    assert rows["aws_instance.api"]["result"] == "fail"
    assert rows["aws_launch_template.queue"]["action"] == "update"
    assert rows["aws_launch_template.queue"]["result"] == "warn"
    assert rows["aws_spot_instance_request.spot"]["result"] == "ok"
    assert not report["passed"]
    cli.fails(1, "plan", "check", str(CHANGE))


def test_untracked_images_warn_or_fail(cli: Cli, registry: PackerClient) -> None:
    report = json.loads(cli.ok("plan", "check", str(CHANGE), "--format", "json").stdout)
    rows = by_address(report)
    assert rows["aws_instance.api"]["tracked"] is False
    assert rows["aws_instance.api"]["result"] == "warn"
    assert "not tracked" in rows["aws_instance.api"]["notes"][0]
    assert report["passed"] and report["summary"]["warn"] == 2
    failed = cli.fails(1, "plan", "check", str(CHANGE), "--untracked", "fail")
    assert "not tracked" in failed.stdout


def test_scheduled_revocation_and_newer_version_on_channel(
    cli: Cli, registry: PackerClient
) -> None:
    push(registry, "queue", "queue-2", {"us-west-2": "ami-0e55555555555555e"})
    registry.assign_channel("queue", "prod", "queue-2")
    revoke_or_skip(registry, "spot", "spot-1", revoke_in="7d", message="EOL soon")
    report = json.loads(cli.ok("plan", "check", str(CREATE), "--format", "json").stdout)
    rows = by_address(report)
    queue = rows["aws_launch_template.queue"]
    assert queue["result"] == "info"
    assert {
        "channel": "prod",
        "version": "v2",
        "fingerprint": "queue-2",
        "image_id": "ami-0e55555555555555e",
    } in queue["newer"]
    spot = rows["aws_spot_instance_request.spot"]
    assert spot["result"] == "warn" and spot["version"]["revoke_at"]
    assert any("will be revoked" in n for n in spot["notes"])
    assert report["passed"]
    table = cli.ok("plan", "check", str(CREATE)).stdout
    assert "ami-0e55555555555555e" in table and "WARN" in table


def test_plan_from_stdin(cli: Cli, registry: PackerClient) -> None:
    result = cli.run("plan", "check", "-", "--format", "json", input=CREATE.read_text())
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["passed"]


def test_bad_input_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert "not valid JSON" in cli.fails(2, "plan", "check", str(broken)).stderr
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    assert "terraform show -json" in cli.fails(2, "plan", "check", str(other)).stderr
    cli.fails(2, "plan", "check", str(tmp_path / "absent.json"))
    cli.fails(2, "plan", "check", str(CREATE), "--attribute", "nopath")


# --- shared rules (packyard.imagecheck): data sources and HCP's resource types ------


def test_images_from_hcp_packer_data_sources(
    cli: Cli, registry: PackerClient, tmp_path: Path
) -> None:
    from tests.imagecheck.plans import data_source_plan

    push(registry, "api", "api-2", {"us-west-2": NEW_AMI})
    revoke_or_skip(registry, "api", "api-2", message="CVE-2026-1")
    plan = tmp_path / "ds.json"
    plan.write_text(json.dumps(data_source_plan()))
    report = json.loads(cli.run("plan", "check", str(plan), "--format", "json").stdout)
    rows = by_address(report)
    web = rows["aws_instance.web"]
    assert (web["source"], web["data_source"], web["result"]) == (
        "data_source",
        "data.hcp_packer_artifact.golden",
        "fail",
    )
    assert rows['module.fleet["a"].aws_launch_template.lt']["result"] == "warn"
    assert rows["aws_ssm_parameter.golden"]["result"] == "fail"
    assert rows["aws_instance.later"]["image_id"] is None
    assert rows["aws_instance.later"]["result"] == "warn"
    assert rows["aws_instance.pinned"]["source"] == "literal"
    assert not report["passed"]
    assert (report["resources_scanned"], report["resources_failed"]) == (6, 2)
    cli.fails(1, "plan", "check", str(plan))


def test_hcp_resource_types(cli: Cli, registry: PackerClient, tmp_path: Path) -> None:
    revoke_or_skip(registry, "queue", "queue-1", message="bad", disable_rollback_channels=True)
    changes = [
        ("aws_emr_cluster.c", "aws_emr_cluster", ["create"], {"custom_ami_id": QUEUE_AMI}),
        (
            "aws_batch_compute_environment.b",
            "aws_batch_compute_environment",
            ["update"],
            {"compute_resources": [{"ec2_configuration": [{"image_id_override": QUEUE_AMI}]}]},
        ),
        (
            "aws_ami_launch_permission.p",
            "aws_ami_launch_permission",
            ["create"],
            {"image_id": API_AMI},
        ),
    ]
    plan = tmp_path / "types.json"
    plan.write_text(
        json.dumps({"format_version": "1.2", "resource_changes": [_rc(*c) for c in changes]})
    )
    report = json.loads(cli.run("plan", "check", str(plan), "--format", "json").stdout)
    rows = by_address(report)
    assert rows["aws_emr_cluster.c"]["result"] == "fail"
    batch = rows["aws_batch_compute_environment.b"]
    assert batch["attribute"] == "compute_resources[0].ec2_configuration[0].image_id_override"
    assert batch["result"] == "warn"
    assert rows["aws_ami_launch_permission.p"]["result"] == "ok"
    assert (report["resources_failed"], report["resources_warned"]) == (1, 1)
