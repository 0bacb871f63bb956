"""Which resource types deploy machine images, and in which attributes.

The table holds every type HCP Packer's run task recognises (AWS, Azure and GCP
lists of its documentation) plus a few more that Packyard has always read. A path
is dotted; ``[]`` after a name walks every element of a list (nested blocks are
lists in plan JSON), e.g. ``boot_disk[].initialize_params[].image``.
Attribute names follow the providers' schemas (hashicorp/aws 5.x, azurerm 4.x,
google 6.x).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from packyard.imagecheck.models import PlanError


@dataclass(frozen=True, slots=True)
class ImageRule:
    """Where a resource type keeps image ids: ``pattern`` (fnmatch on the type) and paths."""

    pattern: str
    platform: str
    paths: tuple[str, ...]


def _rules(platform: str, table: dict[str, tuple[str, ...]]) -> list[ImageRule]:
    return [ImageRule(rtype, platform, paths) for rtype, paths in table.items()]


# fmt: off
AWS = _rules("aws", {
    "aws_instance":                  ("ami",),
    "aws_spot_instance_request":     ("ami",),
    "aws_launch_template":           ("image_id",),
    "aws_launch_configuration":      ("image_id",),
    "aws_ami_launch_permission":     ("image_id",),
    "aws_emr_cluster":               ("custom_ami_id",),
    "aws_batch_compute_environment": ("compute_resources[].image_id",
                                      "compute_resources[].ec2_configuration[].image_id_override"),
    "aws_spot_fleet_request":        ("launch_specification[].ami",),
    "aws_ami_copy":                  ("source_ami_id",),
})

AZURE = _rules("azure", {
    "azurerm_linux_virtual_machine":                ("source_image_id",),
    "azurerm_windows_virtual_machine":              ("source_image_id",),
    "azurerm_linux_virtual_machine_scale_set":      ("source_image_id",),
    "azurerm_windows_virtual_machine_scale_set":    ("source_image_id",),
    "azurerm_orchestrated_virtual_machine_scale_set": ("source_image_id",),
    "azurerm_virtual_machine_scale_set":            ("storage_profile_image_reference[].id",),
    "azurerm_virtual_machine":                      ("storage_image_reference[].id",),
    "azurerm_managed_disk":                         ("image_reference_id",
                                                     "gallery_image_reference_id"),
})

GCE = _rules("gce", {
    "google_compute_instance":                 ("boot_disk[].initialize_params[].image",),
    "google_compute_disk":                     ("image",),
    "google_compute_image_iam_binding":        ("image",),
    "google_compute_image_iam_member":         ("image",),
    "google_compute_image_iam_policy":         ("image",),
    "google_compute_machine_image_iam_binding": ("machine_image",),
    "google_compute_machine_image_iam_member":  ("machine_image",),
    "google_compute_machine_image_iam_policy":  ("machine_image",),
    "google_compute_instance_template":        ("disk[].source_image",),
    "google_compute_region_instance_template": ("disk[].source_image",),
    "google_compute_region_disk":              ("image",),
})

OTHER = _rules("docker", {
    "docker_container": ("image",),
})
# fmt: on

IMAGE_RULES: list[ImageRule] = [*AWS, *AZURE, *GCE, *OTHER]


def rule_for(rtype: str, rules: list[ImageRule]) -> ImageRule | None:
    """The first rule matching a resource type (extra rules come first)."""
    return next((r for r in rules if fnmatch.fnmatchcase(rtype, r.pattern)), None)


def parse_rule(text: str) -> ImageRule:
    """``TYPE=PATH`` or ``TYPE=PATH@PLATFORM`` (``packyard plan check --attribute``)."""
    rtype, sep, rest = text.partition("=")
    path, _, platform = rest.partition("@")
    if not sep or not rtype or not path:
        raise PlanError(f"--attribute expects TYPE=PATH[@PLATFORM], got {text!r}")
    return ImageRule(rtype, platform, (path,))


__all__ = ["IMAGE_RULES", "ImageRule", "parse_rule", "rule_for"]
