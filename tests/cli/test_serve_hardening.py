"""``packyard serve`` as an operator runs it, hardened: private files, a leaf TLS
certificate, links that ignore the Host header, slow clients, start-up failures on one
line and database passwords kept out of sight (real processes throughout)."""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import zstandard
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from packyard.tls import VALIDITY, ensure_certificate
from tests.support.postgres import PostgresCluster
from tests.support.serve_process import ServeProcess, free_port, run_cli
from tests.support.wire import fetch_token

PASSWORD = "s3cret-Pw-7781"
PUBLIC = "registry.example.test:9443"
PACKER = "/packer/2023-01-01/organizations/{org}/projects/{project}"


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]
    }


def assert_private(data_dir: Path) -> None:
    loose = {
        name: oct(mode)
        for name, mode in modes(data_dir).items()
        if mode != (0o700 if (data_dir / name).is_dir() else 0o600)
    }
    assert loose == {}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_one_line_failure(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    stderr = result.stderr
    assert "Traceback" not in stderr, stderr
    errors = error_lines(stderr)
    assert len(errors) == 1, stderr
    # nothing else but notices ("packyard: …") and warnings
    others = [
        line
        for line in stderr.splitlines()
        if line.strip() and not line.startswith(("error:", "warning:", "packyard:"))
    ]
    assert others == [], stderr
    return errors[0]


# --- 1. the data directory and its files are private ------------------------------------------


def test_data_dir_and_every_file_in_it_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with umask(0), ServeProcess(data_dir) as server:  # the most permissive umask there is
        env = json.loads(run_cli("env", "--data-dir", str(data_dir), "--format", "json").stdout)
        with httpx.Client(base_url=server.base_url, verify=False, timeout=30) as http:
            assert fetch_token(http, str(env["HCP_CLIENT_ID"]), str(env["HCP_CLIENT_SECRET"]))
        found = set(modes(data_dir))
        assert {
            ".",
            "packyard.db",
            "packyard.db-wal",
            "packyard.db-shm",
            "packyard.db-writers.lock",
            "credentials.json",
            "server.json",
            "tls",
            "tls/cert.pem",
            "tls/key.pem",
        } <= found
        assert_private(data_dir)
        for args in (["check"], ["env"]):
            result = run_cli(*args, "--data-dir", str(data_dir))
            assert result.returncode == 0, result.stderr
        assert_private(data_dir)


def test_a_loose_data_dir_of_an_older_version_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ServeProcess(data_dir):
        pass
    for path in [data_dir, *data_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    with ServeProcess(data_dir) as server:
        assert_private(data_dir)
        notices = [line for line in server.stderr.splitlines() if line.startswith("packyard:")]
        assert any(str(data_dir) in line for line in notices), server.stderr


# --- 4. the generated certificate is a short-lived leaf ---------------------------------------


def assert_leaf(cert: x509.Certificate, dns: set[str], ips: set[str]) -> None:
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not usage.value.key_cert_sign and not usage.value.crl_sign
    extended = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(extended) == [ExtendedKeyUsageOID.SERVER_AUTH]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert dns <= set(names.get_values_for_type(x509.DNSName))
    assert ips <= {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= timedelta(days=397)


def test_generated_certificate_is_a_leaf_naming_the_public_host(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ServeProcess(data_dir, "--public-address", PUBLIC) as server:
        cert_file = data_dir / "tls" / "cert.pem"
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        assert_leaf(cert, {"localhost", "registry.example.test"}, {"127.0.0.1", "::1"})
        # still usable as its own trust anchor by clients that verify it
        verify = ssl.create_default_context(cafile=str(cert_file))
        answer = httpx.get(server.base_url + "/openapi.json", verify=verify, timeout=30)
        assert answer.status_code == 200


def test_a_certificate_near_expiry_is_renewed_at_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    tls_dir = data_dir / "tls"
    issued = datetime.now(UTC) - VALIDITY + timedelta(days=10)  # expires in 10 days
    old = ensure_certificate(tls_dir, ["127.0.0.1"], now=issued)
    old_cert = x509.load_pem_x509_certificate(old.cert.read_bytes())
    with ServeProcess(data_dir) as server:
        cert = x509.load_pem_x509_certificate((tls_dir / "cert.pem").read_bytes())
        assert cert.serial_number != old_cert.serial_number
        assert cert.not_valid_after_utc > datetime.now(UTC) + timedelta(days=300)
        assert_leaf(cert, {"localhost"}, {"127.0.0.1", "::1"})
        notices = [line for line in server.stderr.splitlines() if line.startswith("packyard:")]
        assert any(str(tls_dir / "cert.pem") in line for line in notices), server.stderr
        served = ssl.get_server_certificate(("127.0.0.1", server.port))
        assert x509.load_pem_x509_certificate(served.encode()).serial_number == cert.serial_number


# --- 3. links and redirects name the public address, never the Host header --------------------


def _running_build(http: httpx.Client, prefix: str) -> str:
    def ok(response: httpx.Response) -> dict[str, object]:
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    ok(http.put(f"{prefix}/buckets", json={"name": "links"}))
    ok(
        http.post(
            f"{prefix}/buckets/links/versions",
            json={"fingerprint": "fp-links", "template_type": "HCL2"},
        )
    )
    build = ok(
        http.post(
            f"{prefix}/buckets/links/versions/fp-links/builds", json={"component_type": "null.a"}
        )
    )["build"]
    assert isinstance(build, dict)
    build_id = str(build["id"])
    ok(
        http.patch(
            f"{prefix}/buckets/links/versions/fp-links/builds/{build_id}",
            json={"status": "BUILD_RUNNING"},
        )
    )
    return build_id


def test_links_and_redirects_use_the_public_address(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ServeProcess(data_dir, "--no-tls", "--public-address", PUBLIC) as server:
        env = json.loads(run_cli("env", "--data-dir", str(data_dir), "--format", "json").stdout)
        # clients reach the proxy over verified TLS: the SDK needs an https auth URL
        assert env["HCP_AUTH_URL"] == f"https://{PUBLIC}"
        assert env["HCP_API_TLS"] is None and env["HCP_AUTH_TLS"] is None
        prefix = PACKER.format(org=env["HCP_ORGANIZATION_ID"], project=env["HCP_PROJECT_ID"])
        evil = {"Host": "evil.example"}
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            slash = http.get(prefix + "/buckets/", headers=evil)
            assert slash.status_code == 307
            location = httpx.URL(slash.headers["location"])
            assert (location.scheme, location.host, location.port, location.path) == (
                "https",  # the TLS-terminating proxy at the public address
                "registry.example.test",
                9443,
                prefix + "/buckets",
            )

            token = fetch_token(http, str(env["HCP_CLIENT_ID"]), str(env["HCP_CLIENT_SECRET"]))
            http.headers["Authorization"] = f"Bearer {token}"
            build_id = _running_build(http, prefix)
            sboms = f"{prefix}/buckets/links/versions/fp-links/builds/{build_id}/sboms"
            document = b'{"spdxVersion": "SPDX-2.3"}'
            compressed = base64.b64encode(zstandard.ZstdCompressor().compress(document)).decode()
            uploaded = http.put(
                sboms, json={"compressed_sbom": compressed, "format": "SPDX", "name": "doc"}
            )
            assert uploaded.status_code == 200, uploaded.text
            link = http.get(f"{sboms}/doc", headers=evil)
            assert link.status_code == 200, link.text
            url = httpx.URL(link.json()["download_url"])
            assert (url.scheme, url.host, url.port) == ("https", "registry.example.test", 9443)
            # the same link as the proxy forwards it to the address the server listens on
            local = url.copy_with(scheme="http", host="127.0.0.1", port=server.port)
            assert httpx.get(local).content == document


# --- 5. slow clients are disconnected --------------------------------------------------------


def _read_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    sock.settimeout(limit_s)
    started = time.monotonic()
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept a slow connection open for {limit_s} s")
    return received, time.monotonic() - started


def test_slow_clients_are_disconnected_while_others_are_served(tmp_path: Path) -> None:
    env = {"PACKYARD_HEADER_TIMEOUT_S": "1", "PACKYARD_BODY_TIMEOUT_S": "1"}
    with ServeProcess(tmp_path / "data", "--no-tls", env=env) as server:
        address = ("127.0.0.1", server.port)
        # the API document is built at its first request (0.36 s idle, over 1 s on a busy
        # machine): built before the clock below starts
        assert httpx.get(server.base_url + "/openapi.json", timeout=10).status_code == 200
        # half a request line, then nothing
        stalled = [socket.create_connection(address) for _ in range(20)]
        for sock in stalled:
            sock.sendall(b"GET /packer/2023-01-01/organiz")
        sent = time.monotonic()
        # headers, then part of the announced body
        slow_body = socket.create_connection(address)
        slow_body.sendall(
            b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
            b"grant_type="
        )
        started = time.monotonic()
        other = httpx.get(server.base_url + "/openapi.json", timeout=10)
        assert other.status_code == 200
        assert time.monotonic() - started < 1

        answer, waited = _read_until_closed(slow_body, 15)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == b"408", answer
        assert json.loads(body)["code"] == 4
        assert waited < 5
        for sock in stalled:
            _read_until_closed(sock, 15)  # closed without an answer
            sock.close()
        assert time.monotonic() - sent < 6
        slow_body.close()
        assert httpx.get(server.base_url + "/openapi.json", timeout=10).status_code == 200


# --- 6. a start-up failure is one line ---------------------------------------------------------


@pytest.mark.parametrize("layout", ["data-dir-is-a-file", "data-dir-under-a-file", "db-is-a-dir"])
def test_unusable_data_dir_fails_on_one_line(tmp_path: Path, layout: str) -> None:
    data_dir = tmp_path / "data"
    if layout == "data-dir-is-a-file":
        data_dir.write_text("not a directory")
    elif layout == "data-dir-under-a-file":
        (tmp_path / "file").write_text("")
        data_dir = tmp_path / "file" / "data"
    else:
        (data_dir / "packyard.db").mkdir(parents=True)
    serve = run_cli("serve", "--data-dir", str(data_dir), "--port", str(free_port()))
    assert str(data_dir) in assert_one_line_failure(serve, 2)  # serve: start-up failures are 2
    create = run_cli(
        "principal", "create", "--name", "x", "--role", "viewer", "--data-dir", str(data_dir)
    )
    assert str(data_dir) in assert_one_line_failure(create)


def test_unreachable_database_fails_on_one_line_without_the_password(tmp_path: Path) -> None:
    closed = free_port()
    url = f"postgresql://packyard:{PASSWORD}@127.0.0.1:{closed}/packyard"
    data_dir = str(tmp_path / "data")
    runs = {
        "env": run_cli(
            "serve", "--data-dir", data_dir, "--port", str(free_port()), PACKYARD_DATABASE_URL=url
        ),
        "argv": run_cli(
            "serve", "--data-dir", data_dir, "--port", str(free_port()), "--database-url", url
        ),
        "principal": run_cli(
            "principal",
            "create",
            "--name",
            "x",
            "--role",
            "viewer",
            "--data-dir",
            data_dir,
            PACKYARD_DATABASE_URL=url,
        ),
    }
    for how, result in runs.items():
        assert PASSWORD not in result.stdout + result.stderr, how
        line = assert_one_line_failure(result, 1 if how == "principal" else 2)
        assert f"127.0.0.1:{closed}" in line, how
    assert not (tmp_path / "data").exists()  # no directory, key or lock left behind
    warnings = [line for line in runs["argv"].stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "PACKYARD_DATABASE_URL" in warnings[0]
    assert not [line for line in runs["env"].stderr.splitlines() if line.startswith("warning:")]
    check = run_cli("check", "--data-dir", data_dir, PACKYARD_DATABASE_URL=url)
    assert check.returncode != 0 and "Traceback" not in check.stderr
    assert PASSWORD not in check.stdout + check.stderr


# --- 7. the database password stays out of sight ----------------------------------------------


def test_database_password_is_never_stored_printed_or_on_a_command_line(
    tmp_path: Path, pg_cluster: PostgresCluster | None
) -> None:
    assert pg_cluster is not None
    name = f"pw_{os.getpid()}_{time.monotonic_ns()}"
    url = pg_cluster.create_database(name).replace(
        "postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@"
    )  # the test cluster trusts local connections: any password is accepted
    url_file = tmp_path / "database-url"
    url_file.write_text(url + "\n")
    url_file.chmod(0o600)
    data_dir = tmp_path / "data"
    try:
        for how, args, env in (
            ("file", ["--database-url-file", str(url_file)], {}),
            ("env", [], {"PACKYARD_DATABASE_URL": url}),
        ):
            with ServeProcess(data_dir, "--no-tls", *args, env=env) as server:
                assert PASSWORD not in server.stdout + server.stderr, how
                assert server.process is not None
                for pid in [server.process.pid, *server.worker_pids()]:
                    assert PASSWORD.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes(), how
                    if how == "file":
                        environ = Path(f"/proc/{pid}/environ").read_bytes()
                        assert PASSWORD.encode() not in environ, how
                for path in data_dir.rglob("*"):
                    if path.is_file():
                        assert PASSWORD.encode() not in path.read_bytes(), (how, path)
                recorded = json.loads((data_dir / "server.json").read_text())
                assert recorded["database_url"].startswith("postgresql://postgres@"), how
                assert httpx.get(server.base_url + "/openapi.json", timeout=10).status_code == 200
                if how == "file":
                    assert recorded["database_url_file"] == str(url_file)
                    # the administration commands find the database through the file
                    check = run_cli("check", "--data-dir", str(data_dir), "--format", "json")
                    assert check.returncode == 0, check.stderr
                    assert json.loads(check.stdout)["ok"] is True
                    assert PASSWORD not in check.stdout + check.stderr
    finally:
        pg_cluster.drop_database(name)


def test_database_url_and_url_file_exclude_each_other(tmp_path: Path) -> None:
    url_file = tmp_path / "database-url"
    url_file.write_text("postgresql://u@127.0.0.1:1/db\n")
    both = run_cli(
        "serve",
        "--data-dir",
        str(tmp_path / "data"),
        "--database-url-file",
        str(url_file),
        "--database-url",
        "postgresql://u@127.0.0.1:1/db",
    )
    assert_one_line_failure(both, 2)
    missing = run_cli(
        "serve", "--data-dir", str(tmp_path / "data"), "--database-url-file", str(tmp_path / "nope")
    )
    assert str(tmp_path / "nope") in assert_one_line_failure(missing, 2)


@pytest.mark.parametrize(
    "address", ["https://registry.example", "host/path", "::1", "host:", "a b"]
)
def test_a_malformed_public_address_is_a_usage_error(tmp_path: Path, address: str) -> None:
    result = run_cli(
        "serve", "--data-dir", str(tmp_path / "data"), "--public-address", address, "--no-tls"
    )
    assert_one_line_failure(result, 2)
    assert not (tmp_path / "data").exists()
