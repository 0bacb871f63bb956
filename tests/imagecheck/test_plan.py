"""Reading plans: the real Terraform fixtures, data sources, modules, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from packyard.imagecheck import IMAGE_RULES, PlanError, image_refs, read_plan
from tests.imagecheck.plans import (
    API_AMI,
    NEW_AMI,
    QUEUE_AMI,
    SPOT_AMI,
    data_source_plan,
    fixture,
)


def test_the_real_create_plan() -> None:
    read = read_plan(fixture("plan-create.json"), IMAGE_RULES)
    got = {(r.address, r.action, r.attribute, r.image_id, r.source) for r in read.refs}
    assert got == {
        ("aws_instance.api", "create", "ami", API_AMI, "literal"),
        ("aws_launch_template.queue", "create", "image_id", QUEUE_AMI, "literal"),
        ("aws_spot_instance_request.spot", "create", "ami", SPOT_AMI, "literal"),
    }
    assert read.scanned == 4  # the security group is scanned too


def test_the_real_change_plan() -> None:
    refs = {r.address: r for r in image_refs(fixture("plan-change.json"), IMAGE_RULES)}
    assert (refs["aws_instance.api"].action, refs["aws_instance.api"].image_id) == (
        "replace",
        NEW_AMI,
    )
    assert refs["aws_launch_template.queue"].action == "update"
    assert refs["aws_spot_instance_request.spot"].action == "create"
    assert "aws_security_group.unrelated" not in refs
    assert {r.source for r in refs.values()} == {"literal"}  # var.* only


def test_images_from_hcp_packer_data_sources() -> None:
    refs = {r.address: r for r in image_refs(data_source_plan(), IMAGE_RULES)}
    web = refs["aws_instance.web"]
    assert (web.source, web.data_source, web.image_id) == (
        "data_source",
        "data.hcp_packer_artifact.golden",
        NEW_AMI,
    )
    # Through the module's variable to the module call's argument.
    lt = refs['module.fleet["a"].aws_launch_template.lt']
    assert (lt.source, lt.data_source, lt.action) == (
        "data_source",
        "data.hcp_packer_artifact.golden",
        "update",
    )
    vm = refs["google_compute_instance.vm"]
    assert (vm.attribute, vm.source, vm.data_source) == (
        "boot_disk[0].initialize_params[0].image",
        "data_source",
        "data.hcp_packer_artifact.gce",
    )
    # A type without a rule is checked because it takes the data source's image id.
    ssm = refs["aws_ssm_parameter.golden"]
    assert (ssm.attribute, ssm.image_id, ssm.source, ssm.platform) == (
        "value",
        NEW_AMI,
        "data_source",
        "",
    )
    later = refs["aws_instance.later"]
    assert (later.image_id, later.source, later.data_source_deferred) == (
        None,
        "data_source",
        True,
    )
    pinned = refs["aws_instance.pinned"]
    assert (pinned.source, pinned.data_source) == ("literal", None)
    assert set(refs) == {
        "aws_instance.web",
        'module.fleet["a"].aws_launch_template.lt',
        "google_compute_instance.vm",
        "aws_ssm_parameter.golden",
        "aws_instance.later",
        "aws_instance.pinned",
    }


def test_deletes_reads_and_data_resources_deploy_nothing() -> None:
    plan: dict[str, Any] = {
        "format_version": "1.2",
        "resource_changes": [
            {
                "address": "aws_instance.gone",
                "mode": "managed",
                "type": "aws_instance",
                "change": {"actions": ["delete"], "before": {"ami": "x"}, "after": None},
            },
            {
                "address": "data.aws_ami.d",
                "mode": "data",
                "type": "aws_instance",
                "change": {"actions": ["read"], "after": {"ami": "x"}},
            },
            {
                "address": "aws_instance.same",
                "mode": "managed",
                "type": "aws_instance",
                "change": {"actions": ["no-op"], "after": {"ami": "ami-same"}},
            },
        ],
    }
    read = read_plan(plan, IMAGE_RULES)
    assert [(r.address, r.action) for r in read.refs] == [("aws_instance.same", "no-op")]
    assert read.scanned == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"hello": "world"},
        [],
        "plan",
        None,
        {"format_version": "1.2", "resource_changes": {"not": "a list"}},
    ],
)
def test_not_a_plan(bad: Any) -> None:
    with pytest.raises(PlanError) as info:
        read_plan(bad, IMAGE_RULES)
    assert "\n" not in str(info.value)


def test_odd_but_valid_shapes_do_not_crash() -> None:
    plan: dict[str, Any] = {
        "format_version": "1.2",
        "configuration": {"root_module": {"resources": ["x", {"mode": 1}], "module_calls": []}},
        "resource_changes": [
            None,
            "x",
            {"type": "aws_instance", "change": {"actions": ["create"], "after": {"ami": 5}}},
            {"type": "aws_instance", "change": None},
            {"type": "aws_instance", "change": {"actions": ["create"], "after": ["ami"]}},
        ],
    }
    read = read_plan(plan, IMAGE_RULES)
    assert read.refs == [] and read.scanned == 2
