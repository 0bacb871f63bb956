"""HTTP routes, one module per resource family."""

PACKER_BASE = "/packer/2023-01-01/organizations/{organization_id}/projects/{project_id}"
PACKYARD_BASE = "/packyard/2026-12-01/organizations/{organization_id}/projects/{project_id}"
