"""The rule table: every resource type HCP Packer's run task recognises, read from plan JSON."""

from __future__ import annotations

from typing import Any

import pytest

from packyard.imagecheck import IMAGE_RULES, PlanError, image_refs, parse_rule

# HCP Packer's documented list (reference/run-task.mdx; product-surface.md §3).
HCP_TYPES = {
    "aws_instance",
    "aws_spot_instance_request",
    "aws_launch_template",
    "aws_launch_configuration",
    "aws_ami_launch_permission",
    "aws_emr_cluster",
    "aws_batch_compute_environment",
    "azurerm_virtual_machine_scale_set",
    "azurerm_linux_virtual_machine_scale_set",
    "azurerm_windows_virtual_machine_scale_set",
    "azurerm_linux_virtual_machine",
    "azurerm_windows_virtual_machine",
    "azurerm_managed_disk",
    "google_compute_instance",
    "google_compute_machine_image_iam_binding",
    "google_compute_machine_image_iam_member",
    "google_compute_machine_image_iam_policy",
    "google_compute_image_iam_binding",
    "google_compute_image_iam_member",
    "google_compute_image_iam_policy",
    "google_compute_disk",
}

AZ_IMAGE = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/images/img-1"

# type → (planned values, expected {attribute: image id}), shaped as the providers plan them.
CASES: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "aws_instance": ({"ami": "ami-1"}, {"ami": "ami-1"}),
    "aws_spot_instance_request": ({"ami": "ami-2"}, {"ami": "ami-2"}),
    "aws_launch_template": ({"image_id": "ami-3"}, {"image_id": "ami-3"}),
    "aws_launch_configuration": ({"image_id": "ami-4"}, {"image_id": "ami-4"}),
    "aws_ami_launch_permission": (
        {"image_id": "ami-5", "account_id": "123"},
        {"image_id": "ami-5"},
    ),
    "aws_emr_cluster": ({"custom_ami_id": "ami-6"}, {"custom_ami_id": "ami-6"}),
    "aws_batch_compute_environment": (
        {
            "compute_resources": [
                {
                    "image_id": "ami-7",
                    "ec2_configuration": [{"image_type": "ECS_AL2", "image_id_override": "ami-8"}],
                }
            ]
        },
        {
            "compute_resources[0].image_id": "ami-7",
            "compute_resources[0].ec2_configuration[0].image_id_override": "ami-8",
        },
    ),
    "azurerm_virtual_machine_scale_set": (
        {"storage_profile_image_reference": [{"id": AZ_IMAGE}]},
        {"storage_profile_image_reference[0].id": AZ_IMAGE},
    ),
    "azurerm_linux_virtual_machine_scale_set": (
        {"source_image_id": AZ_IMAGE},
        {"source_image_id": AZ_IMAGE},
    ),
    "azurerm_windows_virtual_machine_scale_set": (
        {"source_image_id": AZ_IMAGE},
        {"source_image_id": AZ_IMAGE},
    ),
    "azurerm_linux_virtual_machine": ({"source_image_id": AZ_IMAGE}, {"source_image_id": AZ_IMAGE}),
    "azurerm_windows_virtual_machine": (
        {"source_image_id": AZ_IMAGE},
        {"source_image_id": AZ_IMAGE},
    ),
    "azurerm_managed_disk": (
        {"image_reference_id": AZ_IMAGE, "gallery_image_reference_id": None},
        {"image_reference_id": AZ_IMAGE},
    ),
    "google_compute_instance": (
        {"boot_disk": [{"initialize_params": [{"image": "projects/p/global/images/g-1"}]}]},
        {"boot_disk[0].initialize_params[0].image": "projects/p/global/images/g-1"},
    ),
    "google_compute_disk": ({"image": "g-2"}, {"image": "g-2"}),
    "google_compute_image_iam_binding": ({"image": "g-3", "role": "r"}, {"image": "g-3"}),
    "google_compute_image_iam_member": ({"image": "g-3", "member": "m"}, {"image": "g-3"}),
    "google_compute_image_iam_policy": ({"image": "g-3"}, {"image": "g-3"}),
    "google_compute_machine_image_iam_binding": (
        {"machine_image": "m-1"},
        {"machine_image": "m-1"},
    ),
    "google_compute_machine_image_iam_member": ({"machine_image": "m-1"}, {"machine_image": "m-1"}),
    "google_compute_machine_image_iam_policy": ({"machine_image": "m-1"}, {"machine_image": "m-1"}),
}


def plan_of(*changes: dict[str, Any]) -> dict[str, Any]:
    return {"format_version": "1.2", "resource_changes": list(changes)}


def rc(rtype: str, after: Any, actions: tuple[str, ...] = ("create",), **kw: Any) -> dict[str, Any]:
    return {
        "address": f"{rtype}.this",
        "mode": "managed",
        "type": rtype,
        "name": "this",
        "change": {"actions": list(actions), "after": after, "after_unknown": {}},
        **kw,
    }


def test_every_hcp_type_has_a_rule_and_a_case() -> None:
    assert {r.pattern for r in IMAGE_RULES} >= HCP_TYPES
    assert set(CASES) == HCP_TYPES


@pytest.mark.parametrize("rtype", sorted(CASES))
def test_each_type_reads_its_image_attributes(rtype: str) -> None:
    after, expected = CASES[rtype]
    refs = image_refs(plan_of(rc(rtype, after)), IMAGE_RULES)
    assert {r.attribute: r.image_id for r in refs} == expected
    platform = {"aws": "aws", "azurerm": "azure", "google": "gce"}[rtype.split("_", maxsplit=1)[0]]
    assert {(r.address, r.action, r.platform, r.source) for r in refs} == {
        (f"{rtype}.this", "create", platform, "literal")
    }


def test_unknown_and_list_unknown_values() -> None:
    refs = image_refs(
        plan_of(
            {
                **rc("aws_batch_compute_environment", {}),
                "change": {
                    "actions": ["update"],
                    "after": {},
                    "after_unknown": {"compute_resources": True},
                },
            }
        ),
        IMAGE_RULES,
    )
    # Both paths go through the unknown list: one reference, unknown until apply.
    assert [(r.attribute, r.image_id, r.action) for r in refs] == [
        ("compute_resources[*]", None, "update")
    ]


def test_custom_rules_and_bad_rules() -> None:
    refs = image_refs(
        plan_of(rc("my_vm", {"boot": [{"image": "custom-1"}]})),
        [parse_rule("my_vm=boot[].image@aws"), *IMAGE_RULES],
    )
    assert [(r.attribute, r.image_id, r.platform) for r in refs] == [
        ("boot[0].image", "custom-1", "aws")
    ]
    for bad in ("no-path", "=x", "t="):
        with pytest.raises(PlanError):
            parse_rule(bad)
