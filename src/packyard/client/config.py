"""Client configuration from the same ``HCP_*`` variables the HCP Go SDK reads.

The rules follow the SDK so one environment serves Packer, the Terraform
provider and this client alike:

* ``HCP_API_ADDRESS`` is ``host[:port]`` without a scheme (``HCP_API_HOST`` is
  the legacy alias; a leading ``https://`` is stripped and it wins when both
  are set). ``HCP_API_TLS=disabled`` means plain HTTP, ``insecure`` means TLS
  without certificate verification.
* The token URL is ``scheme://host[:port]/oauth2/token`` built from
  ``HCP_AUTH_URL``: any path is dropped. ``HCP_AUTH_TLS=insecure`` skips
  certificate verification (``disabled`` keeps verification, as in the SDK).
  Unlike the SDK this client also accepts an ``http://`` auth URL, for a
  server reached on loopback or inside a trusted network.
* Credentials come from ``HCP_CLIENT_ID`` + ``HCP_CLIENT_SECRET`` (both or
  neither), else from the credential file ``HCP_CRED_FILE`` (default
  ``~/.config/hcp/cred_file.json``) of scheme ``service_principal_creds``.
* ``HCP_ORGANIZATION_ID`` / ``HCP_PROJECT_ID`` (or the credential file's
  ``project_id``) name the tenant; whatever is missing is discovered through
  the resource-manager API when the client first needs it.

Example::

    >>> cfg = ClientConfig.from_env({
    ...     "HCP_API_ADDRESS": "127.0.0.1:8443", "HCP_API_TLS": "insecure",
    ...     "HCP_AUTH_URL": "https://127.0.0.1:8443/ignored/path",
    ...     "HCP_CLIENT_ID": "id", "HCP_CLIENT_SECRET": "secret",
    ... })
    >>> cfg.api_url, cfg.token_url
    ('https://127.0.0.1:8443', 'https://127.0.0.1:8443/oauth2/token')
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from packyard.errors import ApiError, Code

DEFAULT_API_ADDRESS = "api.cloud.hashicorp.com:443"
DEFAULT_AUTH_URL = "https://auth.idp.hashicorp.com"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a URL path, not a secret
SP_SCHEME = "service_principal_creds"

TlsMode = Literal["verify", "insecure", "disabled"]


def config_error(message: str) -> ApiError:
    """A client-side configuration problem (no HTTP exchange took place)."""
    return ApiError(Code.INVALID_ARGUMENT, message, http_status=0)


def hcp_config_dir() -> Path:
    """``~/.config/hcp``, where the HCP SDK keeps its credential file and token cache."""
    return Path.home() / ".config" / "hcp"


def default_cred_file() -> Path:
    return hcp_config_dir() / "cred_file.json"


def default_token_cache() -> Path:
    return hcp_config_dir() / "creds-cache.json"


def token_url_for(auth_url: str) -> str:
    """The token endpoint for an auth base URL: its scheme and host, path ``/oauth2/token``.

    >>> token_url_for("https://auth.example.com:8443/some/prefix")
    'https://auth.example.com:8443/oauth2/token'
    """
    parts = urlsplit(auth_url if "://" in auth_url else f"https://{auth_url}")
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise config_error(f"HCP_AUTH_URL {auth_url!r} is not an http(s) URL with a host.")
    return f"{parts.scheme}://{parts.netloc}{TOKEN_PATH}"


def _tls_mode(name: str, value: str | None) -> TlsMode:
    if value is None or value == "":
        return "verify"
    if value in ("disabled", "insecure"):
        return value  # type: ignore[return-value]
    raise config_error(f"{name} must be 'disabled' or 'insecure', not {value!r}.")


@dataclass(frozen=True, slots=True)
class CredentialFile:
    """The service-principal part of an HCP credential file."""

    client_id: str
    client_secret: str
    project_id: str | None = None

    @classmethod
    def load(cls, path: Path) -> CredentialFile:
        try:
            raw = json.loads(path.read_text())
        except OSError as exc:
            raise config_error(f"cannot read credential file {path}: {exc.strerror}") from None
        except ValueError:
            raise config_error(f"credential file {path} is not valid JSON.") from None
        if not isinstance(raw, dict):
            raise config_error(f"credential file {path} must hold a JSON object.")
        scheme = raw.get("scheme")
        if scheme != SP_SCHEME:
            raise config_error(
                f"credential file {path}: scheme {scheme!r} is not supported (only {SP_SCHEME!r})."
            )
        oauth = raw.get("oauth")
        if not isinstance(oauth, dict):
            raise config_error(f"credential file {path}: the 'oauth' object is missing.")
        client_id, secret = oauth.get("client_id"), oauth.get("client_secret")
        if not isinstance(client_id, str) or not isinstance(secret, str):
            raise config_error(f"credential file {path}: oauth.client_id/client_secret missing.")
        if not client_id or not secret:
            raise config_error(f"credential file {path}: oauth.client_id/client_secret empty.")
        project = raw.get("project_id")
        return cls(client_id, secret, project if isinstance(project, str) and project else None)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything needed to reach one HCP Packer 2023-01-01 endpoint.

    Build it with :meth:`from_env` (the normal way) or directly::

        >>> ClientConfig(api_address="127.0.0.1:8080", api_tls="disabled",
        ...              auth_url="http://127.0.0.1:8080", client_id="c",
        ...              client_secret="s").api_url
        'http://127.0.0.1:8080'

    ``access_token`` skips the token endpoint entirely (a token obtained
    elsewhere). ``token_cache`` names a file in the HCP SDK's cache format
    (``~/.config/hcp/creds-cache.json``) to share tokens between processes.
    """

    api_address: str = DEFAULT_API_ADDRESS
    api_tls: TlsMode = "verify"
    auth_url: str = DEFAULT_AUTH_URL
    auth_tls: TlsMode = "verify"
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    organization_id: str | None = None
    project_id: str | None = None
    access_token: str | None = field(default=None, repr=False)
    token_cache: Path | None = None
    timeout: float = 30.0
    source_channel: str = "packyard-cli"

    @property
    def api_url(self) -> str:
        scheme = "http" if self.api_tls == "disabled" else "https"
        return f"{scheme}://{self.api_address}"

    @property
    def token_url(self) -> str:
        return token_url_for(self.auth_url)

    @property
    def verify_api(self) -> bool:
        return self.api_tls == "verify"

    @property
    def verify_auth(self) -> bool:
        return self.auth_tls != "insecure"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientConfig:
        """Read the ``HCP_*`` variables (``os.environ`` by default) like the HCP SDK.

        ``PACKYARD_TOKEN_CACHE`` opts into the on-disk token cache: a path, or
        ``hcp`` for the HCP SDK's own file.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value else None

        address = get("HCP_API_ADDRESS") or DEFAULT_API_ADDRESS
        legacy = get("HCP_API_HOST")
        if legacy:
            address = legacy.removeprefix("https://")
        if "://" in address or "/" in address:
            raise config_error(f"HCP_API_ADDRESS must be host[:port] without scheme: {address!r}")
        client_id, secret = get("HCP_CLIENT_ID"), get("HCP_CLIENT_SECRET")
        if (client_id is None) != (secret is None):
            raise config_error("HCP_CLIENT_ID and HCP_CLIENT_SECRET must be set together.")
        project_id = get("HCP_PROJECT_ID")
        if client_id is None:
            explicit = get("HCP_CRED_FILE")
            path = Path(explicit) if explicit else default_cred_file()
            if explicit or path.exists():
                cred = CredentialFile.load(path)
                client_id, secret = cred.client_id, cred.client_secret
                project_id = project_id or cred.project_id
        cache_value = get("PACKYARD_TOKEN_CACHE")
        cache: Path | None = None
        if cache_value:
            cache = default_token_cache() if cache_value == "hcp" else Path(cache_value)
        auth_url = get("HCP_AUTH_URL") or DEFAULT_AUTH_URL
        token_url_for(auth_url)  # validate early
        auth_tls = _tls_mode("HCP_AUTH_TLS", get("HCP_AUTH_TLS"))
        return cls(
            api_address=address,
            api_tls=_tls_mode("HCP_API_TLS", get("HCP_API_TLS")),
            auth_url=auth_url,
            # As in the SDK, "disabled" is accepted for the auth URL but keeps verification.
            auth_tls="insecure" if auth_tls == "insecure" else "verify",
            client_id=client_id,
            client_secret=secret,
            organization_id=get("HCP_ORGANIZATION_ID"),
            project_id=project_id,
            token_cache=cache,
        )
