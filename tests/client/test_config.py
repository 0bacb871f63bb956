"""ClientConfig.from_env reads the HCP_* variables the way the HCP Go SDK does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from packyard.client import ApiError, ClientConfig, Code, token_url_for
from packyard.client.auth import DiskCache, Token

BASE = {"HCP_CLIENT_ID": "id", "HCP_CLIENT_SECRET": "secret"}


def test_defaults_are_hcp() -> None:
    cfg = ClientConfig.from_env({**BASE, "HCP_CRED_FILE": ""})
    assert cfg.api_url == "https://api.cloud.hashicorp.com:443"
    assert cfg.token_url == "https://auth.idp.hashicorp.com/oauth2/token"
    assert cfg.verify_api and cfg.verify_auth
    assert cfg.organization_id is None and cfg.project_id is None


def test_addresses_and_tls_modes() -> None:
    cfg = ClientConfig.from_env(
        {
            **BASE,
            "HCP_API_ADDRESS": "127.0.0.1:8443",
            "HCP_API_TLS": "disabled",
            "HCP_AUTH_URL": "https://127.0.0.1:9443/some/prefix?x=1",
            "HCP_AUTH_TLS": "insecure",
            "HCP_ORGANIZATION_ID": "org",
            "HCP_PROJECT_ID": "proj",
        }
    )
    assert cfg.api_url == "http://127.0.0.1:8443"
    assert cfg.token_url == "https://127.0.0.1:9443/oauth2/token"  # the path is dropped
    assert not cfg.verify_auth
    assert (cfg.organization_id, cfg.project_id) == ("org", "proj")
    insecure = ClientConfig.from_env({**BASE, "HCP_API_TLS": "insecure"})
    assert insecure.api_url.startswith("https://") and not insecure.verify_api
    # As in the SDK, HCP_AUTH_TLS=disabled keeps verification.
    assert ClientConfig.from_env({**BASE, "HCP_AUTH_TLS": "disabled"}).verify_auth


def test_legacy_api_host_wins_and_loses_its_https_prefix() -> None:
    cfg = ClientConfig.from_env(
        {**BASE, "HCP_API_ADDRESS": "a:1", "HCP_API_HOST": "https://b.example:2"}
    )
    assert cfg.api_address == "b.example:2"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"HCP_API_TLS": "off"}, "HCP_API_TLS"),
        ({"HCP_AUTH_TLS": "nope"}, "HCP_AUTH_TLS"),
        ({"HCP_API_ADDRESS": "https://x:1"}, "without scheme"),
        ({"HCP_AUTH_URL": "ftp://x"}, "HCP_AUTH_URL"),
        ({"HCP_CLIENT_SECRET": ""}, "together"),
    ],
)
def test_bad_configuration_is_one_error_type(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ApiError) as info:
        ClientConfig.from_env({**BASE, **env})
    assert info.value.code is Code.INVALID_ARGUMENT
    assert info.value.http_status == 0
    assert fragment in info.value.message


def test_token_url_keeps_port_and_scheme() -> None:
    assert token_url_for("http://localhost:8080/x/y") == "http://localhost:8080/oauth2/token"
    assert token_url_for("auth.example.com") == "https://auth.example.com/oauth2/token"


def test_credential_file(tmp_path: Path) -> None:
    path = tmp_path / "cred_file.json"
    path.write_text(
        json.dumps(
            {
                "scheme": "service_principal_creds",
                "oauth": {"client_id": "cid", "client_secret": "csecret"},
                "project_id": "p-1",
            }
        )
    )
    cfg = ClientConfig.from_env({"HCP_CRED_FILE": str(path)})
    assert (cfg.client_id, cfg.client_secret, cfg.project_id) == ("cid", "csecret", "p-1")
    # Explicit variables win over the file.
    cfg = ClientConfig.from_env({**BASE, "HCP_CRED_FILE": str(path), "HCP_PROJECT_ID": "p-2"})
    assert (cfg.client_id, cfg.project_id) == ("id", "p-2")


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"scheme": "workload", "workload": {}}),
        json.dumps({"scheme": "service_principal_creds", "oauth": {"client_id": "x"}}),
    ],
)
def test_bad_credential_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "cred.json"
    path.write_text(content)
    with pytest.raises(ApiError) as info:
        ClientConfig.from_env({"HCP_CRED_FILE": str(path)})
    assert str(path) in info.value.message


def test_missing_credential_file_named_explicitly(tmp_path: Path) -> None:
    with pytest.raises(ApiError, match="cannot read credential file"):
        ClientConfig.from_env({"HCP_CRED_FILE": str(tmp_path / "absent.json")})


def test_token_cache_choice(tmp_path: Path) -> None:
    cfg = ClientConfig.from_env({**BASE, "PACKYARD_TOKEN_CACHE": str(tmp_path / "c.json")})
    assert cfg.token_cache == tmp_path / "c.json"
    hcp = ClientConfig.from_env({**BASE, "PACKYARD_TOKEN_CACHE": "hcp"})
    assert hcp.token_cache is not None and hcp.token_cache.name == "creds-cache.json"


def test_disk_cache_uses_the_hcp_sdk_shape(tmp_path: Path) -> None:
    path = tmp_path / "hcp" / "creds-cache.json"
    expired = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    path.parent.mkdir()
    # A file as the Go SDK writes it: nanoseconds, an offset, other entries kept.
    path.write_text(
        json.dumps(
            {
                "login": {"access_token": "user", "refresh_token": "r"},
                "service-principals": {
                    "old": {"access_token": "gone", "access_token_expiry": expired},
                    "go": {
                        "access_token": "tok",
                        "access_token_expiry": "2999-01-02T03:04:05.123456789+02:00",
                    },
                },
                "workloads": {},
            }
        )
    )
    cache = DiskCache(path)
    got = cache.get("go")
    assert got is not None and got.access_token == "tok"
    assert got.expiry == datetime(2999, 1, 2, 1, 4, 5, 123456, tzinfo=UTC)
    cache.put("mine", Token("new", datetime(2999, 1, 1, tzinfo=UTC)))
    data = json.loads(path.read_text())
    assert data["login"]["access_token"] == "user"
    assert set(data["service-principals"]) == {"go", "mine"}  # the expired one is collected
    assert data["service-principals"]["mine"] == {
        "access_token": "new",
        "access_token_expiry": "2999-01-01T00:00:00Z",
    }
    assert path.stat().st_mode & 0o777 == 0o600
