"""The environment block of ``packyard env``: the bootstrap admin's credentials in the
``HCP_*`` variables of :mod:`packyard.clientenv`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from packyard.clientenv import ENV_KEYS, as_shell, client_env

if TYPE_CHECKING:
    from packyard.config import Advertised
    from packyard.services.bootstrap import AdminCredentials


def env_block(advertised: Advertised, creds: AdminCredentials) -> dict[str, str | None]:
    """The eight ``HCP_*`` variables for ``creds``; ``None`` means "leave unset"."""
    return client_env(
        advertised,
        client_id=creds.client_id,
        client_secret=creds.client_secret,
        organization_id=creds.organization_id,
        project_id=creds.project_id,
    )


__all__ = ["ENV_KEYS", "as_shell", "env_block"]
