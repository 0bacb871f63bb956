"""The key that seals stored secrets: where it comes from, and a wrong one stopping a start."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from packyard.domain.enums import Role
from packyard.domain.models import Caller
from packyard.server import prepare
from packyard.services.container import Services
from packyard.services.secrets import (
    KEY_BYTES,
    KEY_FILE,
    SECRET_KEY_ENV,
    Sealer,
    UnsealError,
    check_secret_key,
    load_sealer,
    parse_key,
)
from packyard.startup import StartupError
from tests.support.factories import TenantFixture
from tests.support.serve_process import free_port, run_cli


@pytest.fixture(autouse=True)
def no_configured_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)


def test_seal_and_open() -> None:
    sealer = Sealer.ephemeral()
    sealed = sealer.seal(b"hmac key", context=b"project-a")
    assert b"hmac key" not in sealed
    assert sealer.seal(b"hmac key", context=b"project-a") != sealed  # fresh nonce each time
    assert sealer.open(sealed, context=b"project-a") == b"hmac key"
    for bad in (
        lambda: sealer.open(sealed, context=b"project-b"),
        lambda: Sealer.ephemeral().open(sealed, context=b"project-a"),
        lambda: sealer.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), context=b"project-a"),
        lambda: sealer.open(b"", context=b"project-a"),
    ):
        with pytest.raises(UnsealError) as caught:
            bad()
        assert (caught.value.code, caught.value.http_status) == (9, 400)


def test_the_key_file_is_created_private_once(tmp_path: Path) -> None:
    first = load_sealer(tmp_path)
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(parse_key(path.read_bytes()) or b"") == KEY_BYTES
    content = path.read_bytes()
    second = load_sealer(tmp_path)
    assert path.read_bytes() == content
    assert second.open(first.seal(b"x")) == b"x"
    assert content.decode().strip() not in repr(first)


def test_a_configured_key_file_is_used_and_never_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared.key"
    monkeypatch.setenv(SECRET_KEY_ENV, str(shared))
    with pytest.raises(StartupError) as caught:
        load_sealer(tmp_path / "data")
    assert str(shared) in caught.value.message and "\n" not in caught.value.message
    assert not shared.exists() and not (tmp_path / "data" / KEY_FILE).exists()
    key = os.urandom(KEY_BYTES)
    shared.write_bytes(base64.urlsafe_b64encode(key).rstrip(b"=") + b"\n")
    shared.chmod(0o600)
    one, two = load_sealer(tmp_path / "a"), load_sealer(tmp_path / "b")
    assert two.open(one.seal(b"x")) == b"x"
    assert Sealer(key).open(one.seal(b"x")) == b"x"


@pytest.mark.parametrize("content", [b"", b"not base64 !!\n", base64.b64encode(b"short")])
def test_a_file_without_a_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes
) -> None:
    bad = tmp_path / "bad.key"
    bad.write_bytes(content)
    monkeypatch.setenv(SECRET_KEY_ENV, str(bad))
    with pytest.raises(StartupError) as caught:
        load_sealer(tmp_path)
    assert "does not hold a key" in caught.value.message
    assert "\n" not in caught.value.message


def _admin(services: Services) -> Caller:
    tenant = services.tenancy.default_tenant()
    assert tenant is not None
    return Caller("operator", "operator", tenant.organization.id, tenant.project.id, Role.ADMIN)


def test_another_key_is_refused_once_something_is_sealed(
    services: Services, tenant: TenantFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    sealer = services.runtasks.sealer
    check_secret_key(services.store, sealer)
    check_secret_key(services.store, sealer)  # the same key again: fine
    other = Sealer(os.urandom(KEY_BYTES), "/elsewhere/secret.key")
    # Nothing sealed yet: servers sharing the database keep starting, with a warning.
    capsys.readouterr()
    check_secret_key(services.store, other)
    warning = capsys.readouterr().err
    assert "/elsewhere/secret.key" in warning and SECRET_KEY_ENV in warning
    services.runtasks.get_api(tenant.caller(Role.ADMIN))
    check_secret_key(services.store, sealer)
    with pytest.raises(StartupError) as caught:
        check_secret_key(services.store, other)
    assert "/elsewhere/secret.key" in caught.value.message
    assert SECRET_KEY_ENV in caught.value.message and "\n" not in caught.value.message


def test_a_start_with_a_replaced_key_file_stops_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services, _ = prepare(data, None)
    services.runtasks.get_api(_admin(services))
    services.store.dispose()
    services, _ = prepare(data, None)  # the same key: starts
    services.store.dispose()
    (data / KEY_FILE).write_bytes(base64.b64encode(os.urandom(KEY_BYTES)) + b"\n")
    with pytest.raises(StartupError) as caught:
        prepare(data, None)
    assert str(data / KEY_FILE) in caught.value.message
    assert "\n" not in caught.value.message


def test_a_lost_key_is_recovered_by_resetting_the_hmac_keys(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services, _ = prepare(data, None)
    admin = _admin(services)
    before = services.runtasks.get_api(admin)
    services.store.dispose()
    (data / KEY_FILE).write_bytes(base64.b64encode(os.urandom(KEY_BYTES)) + b"\n")  # lost
    refused = run_cli("principal", "list", "--data-dir", str(data))
    assert refused.returncode == 1 and "runtask reset-keys" in refused.stderr

    reset = run_cli("runtask", "reset-keys", "--yes", "--data-dir", str(data), "-o", "json")
    assert reset.returncode == 0, reset.stderr
    assert json.loads(reset.stdout) == [{"project_id": admin.project_id}]

    services, _ = prepare(data, None)  # the new key is the database's now: starts, no warning
    try:
        after = services.runtasks.get_api(admin)
        assert after.api_id == before.api_id  # HCP Terraform keeps calling the same URL
        assert after.hmac_key != before.hmac_key
    finally:
        services.store.dispose()


@pytest.mark.parametrize("content", [None, b"garbage\n"], ids=["missing", "garbage"])
def test_serve_without_a_usable_key_exits_with_one_line(
    tmp_path: Path, content: bytes | None
) -> None:
    key_file = tmp_path / "shared.key"
    if content is not None:
        key_file.write_bytes(content)
    data = tmp_path / "data"
    result = run_cli(
        "serve",
        "--data-dir",
        str(data),
        "--port",
        str(free_port()),
        "--no-tls",
        PACKYARD_SECRET_KEY_FILE=str(key_file),
    )
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(key_file) in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (data / KEY_FILE).exists()


def test_a_webhook_key_is_checked_too(
    services: Services, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without any run task, a webhook's sealed key decides whether the key file fits."""
    monkeypatch.setenv("PACKYARD_WEBHOOK_ALLOW_PRIVATE", "1")
    services.webhooks.create(
        tenant.caller(Role.ADMIN),
        "hook",
        url="http://127.0.0.1:9/never",
        hmac_key="s3cret",
        description="",
        enabled=False,  # no verification
        subscriptions=[],
    )
    check_secret_key(services.store, services.runtasks.sealer)
    with pytest.raises(StartupError) as caught:
        check_secret_key(services.store, Sealer(os.urandom(KEY_BYTES), "/elsewhere/secret.key"))
    assert "webhook HMAC keys" in caught.value.message and "\n" not in caught.value.message
