"""The ``HCP_*`` environment stock clients (Packer, the Terraform provider, the ``packyard``
CLI) need to reach a server: one rule for ``packyard env``, the first start of ``packyard
serve`` and the console's "Connect a client" page."""

from __future__ import annotations

import shlex

from packyard.config import Advertised

ENV_KEYS = (
    "HCP_API_ADDRESS",
    "HCP_API_TLS",
    "HCP_AUTH_URL",
    "HCP_AUTH_TLS",
    "HCP_CLIENT_ID",
    "HCP_CLIENT_SECRET",
    "HCP_ORGANIZATION_ID",
    "HCP_PROJECT_ID",
)


def client_env(
    advertised: Advertised,
    *,
    client_id: str,
    client_secret: str,
    organization_id: str,
    project_id: str,
) -> dict[str, str | None]:
    """The eight ``HCP_*`` variables, in :data:`ENV_KEYS` order; ``None`` means "leave
    unset".

    The SDK insists on an https auth URL even when the API is plain HTTP (behind
    a TLS-terminating proxy the public address is https). It knows only two TLS
    settings, ``disabled`` (plain HTTP) and ``insecure`` (no certificate check);
    verified TLS is what it does when the variable is unset, which is right for
    a certificate given with ``--tls-cert``. The generated self-signed
    certificate needs ``insecure``.
    """
    api_tls: str | None
    if not advertised.tls:
        api_tls = "disabled"
    else:
        api_tls = "insecure" if advertised.self_signed else None
    auth_tls = "insecure" if advertised.self_signed else None
    return {
        "HCP_API_ADDRESS": advertised.address,
        "HCP_API_TLS": api_tls,
        "HCP_AUTH_URL": f"https://{advertised.address}",
        "HCP_AUTH_TLS": auth_tls,
        "HCP_CLIENT_ID": client_id,
        "HCP_CLIENT_SECRET": client_secret,
        "HCP_ORGANIZATION_ID": organization_id,
        "HCP_PROJECT_ID": project_id,
    }


def as_shell(block: dict[str, str | None]) -> str:
    return "\n".join(
        f"unset {k}" if v is None else f"export {k}={shlex.quote(v)}" for k, v in block.items()
    )


__all__ = ["ENV_KEYS", "as_shell", "client_env"]
