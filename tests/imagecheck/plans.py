"""Plans for the image-check tests: the real Terraform fixtures and a data-source plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "terraform-plans"
API_AMI, QUEUE_AMI, SPOT_AMI, NEW_AMI = (
    "ami-0a11111111111111a",
    "ami-0b22222222222222b",
    "ami-0c33333333333333c",
    "ami-0d44444444444444d",
)


def fixture(name: str) -> dict[str, Any]:
    plan: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return plan


def _ref(ds: str, attr: str) -> dict[str, Any]:
    return {"references": [f"{ds}.{attr}", ds]}


def _rc(
    address: str,
    after: Any,
    actions: tuple[str, ...] = ("create",),
    unknown: Any = None,
    module: str | None = None,
    mode: str = "managed",
) -> dict[str, Any]:
    local = address.removeprefix(f"{module}.") if module else address
    if mode == "data":
        local = local.removeprefix("data.")
    rtype, name = local.split(".")[:2]
    out: dict[str, Any] = {
        "address": address,
        "mode": mode,
        "type": rtype,
        "name": name.split("[")[0],
        "change": {"actions": list(actions), "after": after, "after_unknown": unknown or {}},
    }
    if module:
        out["module_address"] = module
    return out


def data_source_plan() -> dict[str, Any]:
    """Images from ``hcp_packer_artifact`` data sources, as ``terraform show -json`` has them.

    - ``aws_instance.web``: ``ami = data.hcp_packer_artifact.golden.external_identifier``
    - ``module.fleet["a"].aws_launch_template.lt``: ``image_id = var.image_id``, the module
      called with ``image_id = data.hcp_packer_artifact.golden.external_identifier``
    - ``google_compute_instance.vm``: boot disk image from ``data.hcp_packer_artifact.gce``
    - ``aws_ssm_parameter.golden``: a type without a rule, whose ``value`` is the image id
    - ``aws_instance.later``: from ``data.hcp_packer_artifact.later``, read only during apply
    - ``aws_instance.pinned``: a literal AMI (its tags name the version's fingerprint)
    """
    golden = "data.hcp_packer_artifact.golden"
    later = "data.hcp_packer_artifact.later"
    gce = "data.hcp_packer_artifact.gce"
    return {
        "format_version": "1.2",
        "terraform_version": "1.11.4",
        "resource_changes": [
            _rc("aws_instance.web", {"ami": NEW_AMI}),
            _rc(
                'module.fleet["a"].aws_launch_template.lt',
                {"image_id": NEW_AMI},
                ("update",),
                module='module.fleet["a"]',
            ),
            _rc(
                "google_compute_instance.vm",
                {"boot_disk": [{"initialize_params": [{"image": "golden-gce-1"}]}]},
            ),
            _rc("aws_ssm_parameter.golden", {"name": "/golden/ami", "value": NEW_AMI}),
            _rc("aws_instance.later", {}, unknown={"ami": True}),
            _rc(later, None, ("read",), unknown={"external_identifier": True}, mode="data"),
            _rc("aws_instance.pinned", {"ami": API_AMI, "tags": {"fp": "fp-3"}}),
        ],
        "prior_state": {
            "values": {
                "root_module": {
                    "resources": [
                        {
                            "address": golden,
                            "mode": "data",
                            "type": "hcp_packer_artifact",
                            "name": "golden",
                            "values": {
                                "bucket_name": "golden",
                                "channel_name": "production",
                                "external_identifier": NEW_AMI,
                                "platform": "aws",
                                "region": "us-west-2",
                            },
                        }
                    ]
                }
            }
        },
        "configuration": {
            "root_module": {
                "resources": [
                    {
                        "address": "aws_instance.web",
                        "mode": "managed",
                        "type": "aws_instance",
                        "name": "web",
                        "expressions": {
                            "ami": _ref(golden, "external_identifier"),
                            "instance_type": {"constant_value": "t3.micro"},
                        },
                    },
                    {
                        "address": "google_compute_instance.vm",
                        "mode": "managed",
                        "type": "google_compute_instance",
                        "name": "vm",
                        "expressions": {
                            "boot_disk": [
                                {"initialize_params": [{"image": _ref(gce, "external_identifier")}]}
                            ]
                        },
                    },
                    {
                        "address": "aws_ssm_parameter.golden",
                        "mode": "managed",
                        "type": "aws_ssm_parameter",
                        "name": "golden",
                        "expressions": {
                            "name": {"constant_value": "/golden/ami"},
                            "value": _ref(golden, "external_identifier"),
                        },
                    },
                    {
                        "address": "aws_instance.later",
                        "mode": "managed",
                        "type": "aws_instance",
                        "name": "later",
                        "expressions": {"ami": _ref(later, "external_identifier")},
                    },
                    {
                        "address": "aws_instance.pinned",
                        "mode": "managed",
                        "type": "aws_instance",
                        "name": "pinned",
                        "expressions": {
                            "ami": {"constant_value": API_AMI},
                            "tags": _ref("data.hcp_packer_version.golden", "fingerprint"),
                        },
                    },
                    {
                        "address": "data.hcp_packer_version.golden",
                        "mode": "data",
                        "type": "hcp_packer_version",
                        "name": "golden",
                        "expressions": {
                            "bucket_name": {"constant_value": "golden"},
                            "channel_name": {"constant_value": "production"},
                        },
                    },
                    {
                        "address": golden,
                        "mode": "data",
                        "type": "hcp_packer_artifact",
                        "name": "golden",
                        "expressions": {
                            "bucket_name": {"constant_value": "golden"},
                            "version_fingerprint": _ref(
                                "data.hcp_packer_version.golden", "fingerprint"
                            ),
                        },
                    },
                ],
                "module_calls": {
                    "fleet": {
                        "source": "./fleet",
                        "for_each_expression": {"constant_value": {"a": 1}},
                        "expressions": {"image_id": _ref(golden, "external_identifier")},
                        "module": {
                            "resources": [
                                {
                                    "address": "aws_launch_template.lt",
                                    "mode": "managed",
                                    "type": "aws_launch_template",
                                    "name": "lt",
                                    "expressions": {"image_id": {"references": ["var.image_id"]}},
                                }
                            ],
                            "variables": {"image_id": {}},
                        },
                    }
                },
            }
        },
    }
