"""Image checks of Terraform/OpenTofu plans: one rule set, no I/O.

Shared by the CLI (``packyard plan check``, over HTTP) and the server (the run
task, over the store), so this package imports nothing from either side: the
caller supplies a :class:`Lookup` that answers what the registry knows.
"""

from packyard.imagecheck.evaluate import evaluate, when
from packyard.imagecheck.models import (
    ChannelArtifact,
    ChannelVersion,
    Finding,
    ImageRef,
    KnownImage,
    Level,
    Lookup,
    NewerImage,
    PlanError,
    PlanReport,
    Untracked,
)
from packyard.imagecheck.plan import DATA_SOURCES, action_of, candidates, image_refs, read_plan
from packyard.imagecheck.rules import IMAGE_RULES, ImageRule, parse_rule

__all__ = [
    "DATA_SOURCES",
    "IMAGE_RULES",
    "ChannelArtifact",
    "ChannelVersion",
    "Finding",
    "ImageRef",
    "ImageRule",
    "KnownImage",
    "Level",
    "Lookup",
    "NewerImage",
    "PlanError",
    "PlanReport",
    "Untracked",
    "action_of",
    "candidates",
    "evaluate",
    "image_refs",
    "parse_rule",
    "read_plan",
    "when",
]
