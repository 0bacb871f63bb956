"""Request bodies of Packyard's own administration API (not part of HCP Packer's).

Roles are spelled as on the command line: ``viewer``, ``contributor``, ``admin``.
"""

from __future__ import annotations

from packyard.api.wire import Body, described
from packyard.domain.enums import Role


class CreatePrincipalBody(Body):
    name: str | None = None
    role: Role | None = None


class UpdatePrincipalBody(Body):
    model_config = described("Only the fields given change.")

    role: Role | None = None
    disabled: bool | None = None


class RotateSecretBody(Body):
    revoke_tokens: bool | None = None


class GrantAccessBody(Body):
    model_config = described("A role on the project, or with ``bucket`` on that bucket.")

    role: Role | None = None
    bucket: str | None = None
