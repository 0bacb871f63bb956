"""The real ``packyard serve`` subprocess: bootstrap, env block, principals, TLS, restarts."""

from __future__ import annotations

import json
import os
import signal
import ssl
import stat
import statistics
import time
from pathlib import Path

import httpx
import pytest

from packyard.cli.envblock import ENV_KEYS
from packyard.server import SHUTDOWN_GRACE_S
from packyard.tls import ensure_self_signed
from tests.support import swagger
from tests.support.serve_process import ServeProcess, run_cli
from tests.support.wire import fetch_token, go_basic, ok, token_form

SHUTDOWN_WAIT_S = 20


def _env_json(data_dir: Path) -> dict[str, str | None]:
    result = run_cli("env", "--data-dir", str(data_dir), "--format", "json")
    assert result.returncode == 0, result.stderr
    block: dict[str, str | None] = json.loads(result.stdout)
    return block


def _prefix(env: dict[str, str | None]) -> str:
    return (
        f"/packer/2023-01-01/organizations/{env['HCP_ORGANIZATION_ID']}"
        f"/projects/{env['HCP_PROJECT_ID']}"
    )


def _client(server: ServeProcess) -> httpx.Client:
    """Verified TLS against the certificate the server generated into its data dir."""
    verify: ssl.SSLContext | bool = False
    if server.tls:
        verify = ssl.create_default_context(cafile=str(server.data_dir / "tls" / "cert.pem"))
    return httpx.Client(base_url=server.base_url, verify=verify, timeout=30)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_first_start_env_principals_tls_and_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ServeProcess(data_dir, "--log-level", "debug") as server:
        # first start: default tenant + admin, env block on stdout, files in the data dir
        assert "First start" in server.stderr
        printed = dict(
            line.removeprefix("export ").split("=", 1)
            for line in server.stdout.splitlines()
            if line.startswith("export ")
        )
        assert set(printed) == set(ENV_KEYS)
        creds_file = data_dir / "credentials.json"
        assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((data_dir / "tls" / "key.pem").stat().st_mode) == 0o600

        env = _env_json(data_dir)
        assert list(env) == list(ENV_KEYS)  # exactly the eight HCP_* keys
        assert env["HCP_API_ADDRESS"] == f"127.0.0.1:{server.port}"
        assert env["HCP_API_TLS"] == "insecure"
        assert env["HCP_AUTH_URL"] == f"https://127.0.0.1:{server.port}"
        assert env["HCP_AUTH_TLS"] == "insecure"
        assert env["HCP_CLIENT_ID"] == printed["HCP_CLIENT_ID"]
        shell = run_cli("env", "--data-dir", str(data_dir))
        assert shell.returncode == 0
        exports = [line for line in server.stdout.splitlines() if line.startswith("export ")]
        assert shell.stdout.strip().splitlines() == exports
        console = dict(
            line.split("=", 1)
            for line in server.stdout.splitlines()
            if line.startswith("PACKYARD_CONSOLE_")
        )
        assert console["PACKYARD_CONSOLE_USER"] == "admin@localhost"
        assert len(console["PACKYARD_CONSOLE_PASSWORD"]) >= 20
        assert console["PACKYARD_CONSOLE_PASSWORD"] not in shell.stdout  # shown once only
        # --data-dir defaults to $PACKYARD_DATA_DIR
        via_env = run_cli("env", "--format", "json", PACKYARD_DATA_DIR=str(data_dir))
        assert json.loads(via_env.stdout) == env

        assert env["HCP_CLIENT_ID"] and env["HCP_CLIENT_SECRET"]
        admin_id, admin_secret = env["HCP_CLIENT_ID"], env["HCP_CLIENT_SECRET"]
        with _client(server) as http:
            token = fetch_token(http, admin_id, admin_secret)
            prefix = _prefix(env)
            ok(http.get(prefix + "/registry", headers=_bearer(token)), "PackerService_GetRegistry")
            ok(
                http.put(prefix + "/buckets", json={"name": "golden"}, headers=_bearer(token)),
                "PackerService_CreateBucket",
            )
            # a wrong secret: refused, and never written to the log
            wrong = http.post(
                "/oauth2/token",
                data=token_form(),
                headers={"Authorization": go_basic(admin_id, "wrong-secret-value")},
            )
            assert wrong.status_code == 401

            created = run_cli(
                "principal",
                "create",
                "--name",
                "ci",
                "--role",
                "viewer",
                "--format",
                "json",
                "--data-dir",
                str(data_dir),
            )
            assert created.returncode == 0, created.stderr
            principal = json.loads(created.stdout)
            assert principal["role"] == "viewer"
            assert principal["project_id"] == env["HCP_PROJECT_ID"]
            viewer_token = fetch_token(http, principal["client_id"], principal["client_secret"])
            ok(
                http.get(prefix + "/buckets/golden", headers=_bearer(viewer_token)),
                "PackerService_GetBucket",
            )
            denied = http.put(
                prefix + "/buckets", json={"name": "x"}, headers=_bearer(viewer_token)
            )
            assert denied.status_code == 403
            assert denied.json()["code"] == 7

        logs = server.stderr
        for secret in (
            admin_secret,
            "wrong-secret-value",
            principal["client_secret"],
            token,
            viewer_token,
        ):
            assert secret not in logs

    # restart on the same data dir: no new tenant, the old tokens still work
    with ServeProcess(data_dir, port=server.port) as again:
        assert "First start" not in again.stderr
        assert "PACKYARD_CONSOLE_PASSWORD" not in again.stdout
        assert _env_json(data_dir) == env
        with _client(again) as http:
            ok(
                http.get(prefix + "/buckets/golden", headers=_bearer(token)),
                "PackerService_GetBucket",
            )
            ok(
                http.get(prefix + "/registry", headers=_bearer(viewer_token)),
                "PackerService_GetRegistry",
            )
            orgs = ok(
                http.get("/resource-manager/2019-12-10/organizations", headers=_bearer(token)),
                "OrganizationService_List",
                spec=swagger.RM_SPEC,
            )
            assert [o["id"] for o in orgs["organizations"]] == [env["HCP_ORGANIZATION_ID"]]


def test_keep_alive_requests_on_one_tls_connection_do_not_stall(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ServeProcess(data_dir) as server:
        env = _env_json(data_dir)
        assert env["HCP_CLIENT_ID"] and env["HCP_CLIENT_SECRET"]
        prefix = _prefix(env)
        with _client(server) as http:
            token = fetch_token(http, env["HCP_CLIENT_ID"], env["HCP_CLIENT_SECRET"])
            headers = _bearer(token)
            http.put(prefix + "/buckets", json={"name": "golden"}, headers=headers)
            http.post(
                prefix + "/buckets/golden/versions",
                json={"fingerprint": "fp", "template_type": "HCL2"},
                headers=headers,
            )
            build = http.post(
                prefix + "/buckets/golden/versions/fp/builds",
                json={"component_type": "null.a", "status": "BUILD_UNSET", "artifacts": None},
                headers=headers,
            ).json()["build"]

            requests = [
                ("GET", prefix + "/buckets/golden", None),
                ("GET", prefix + "/buckets/golden/versions/fp", None),
                ("GET", prefix + "/buckets/golden/versions/fp/builds", None),
                # Packer's heartbeat: a PATCH with a small JSON body
                (
                    "PATCH",
                    prefix + f"/buckets/golden/versions/fp/builds/{build['id']}",
                    {"artifacts": None, "packer_run_uuid": "run", "status": "BUILD_RUNNING"},
                ),
            ]
            # error answers must not spoil the connection either
            requests.append(("GET", prefix + "/buckets/golden/versions/missing", None))
            requests.append(("PUT", prefix + "/buckets", {"name": "golden"}))
            connections: set[object] = set()
            timings: dict[str, list[float]] = {"GET": [], "PATCH": [], "PUT": []}
            for _ in range(8):
                for method, url, body in requests:
                    started = time.perf_counter()
                    response = http.request(method, url, json=body, headers=headers)
                    elapsed = time.perf_counter() - started
                    assert response.status_code in (200, 409), response.text
                    stream = response.extensions["network_stream"]
                    connections.add(stream.get_extra_info("client_addr"))
                    timings[method].append(elapsed)
    assert len(connections) == 1, connections  # every request reused the one connection
    for method, values in timings.items():
        median = statistics.median(values)
        assert median < 0.050, (method, [round(v * 1000, 1) for v in values])


def test_token_endpoint_latency_does_not_block_other_requests(tmp_path: Path) -> None:
    """Secret hashing runs off the event loop: reads stay fast while tokens are issued."""
    import threading

    data_dir = tmp_path / "data"
    with ServeProcess(data_dir) as server:
        env = _env_json(data_dir)
        assert env["HCP_CLIENT_ID"] and env["HCP_CLIENT_SECRET"]
        prefix = _prefix(env)
        stop = threading.Event()

        def hammer() -> None:
            with _client(server) as other:
                while not stop.is_set():
                    other.post(
                        "/oauth2/token",
                        data=token_form(),
                        headers={
                            "Authorization": go_basic(
                                env["HCP_CLIENT_ID"] or "", env["HCP_CLIENT_SECRET"] or ""
                            )
                        },
                    )

        with _client(server) as http:
            headers = _bearer(fetch_token(http, env["HCP_CLIENT_ID"], env["HCP_CLIENT_SECRET"]))
            http.get(prefix + "/registry", headers=headers)
            worker = threading.Thread(target=hammer)
            worker.start()
            try:
                timings = []
                for _ in range(20):
                    started = time.perf_counter()
                    assert http.get(prefix + "/registry", headers=headers).status_code == 200
                    timings.append(time.perf_counter() - started)
            finally:
                stop.set()
                worker.join(timeout=30)
    assert statistics.median(timings) < 0.050, [round(t * 1000, 1) for t in timings]


def test_plain_http_with_no_tls(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ServeProcess(data_dir, "--no-tls") as server:
        assert "https" not in server.stderr.split(" serving on ", 1)[1].split()[0]
        env = _env_json(data_dir)
        assert env["HCP_API_TLS"] == "disabled"
        assert not (data_dir / "tls").exists()
        assert env["HCP_CLIENT_ID"] and env["HCP_CLIENT_SECRET"]
        with _client(server) as http:
            token = fetch_token(http, env["HCP_CLIENT_ID"], env["HCP_CLIENT_SECRET"])
            ok(
                http.get(_prefix(env) + "/registry", headers=_bearer(token)),
                "PackerService_GetRegistry",
            )


def test_given_certificate_is_served(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path / "own-tls")
    data_dir = tmp_path / "data"
    with ServeProcess(data_dir, "--tls-cert", str(cert), "--tls-key", str(key)) as server:
        env = _env_json(data_dir)
        # a certificate given by the operator is verified by clients: no `insecure`
        assert env["HCP_API_TLS"] is None
        assert env["HCP_AUTH_TLS"] is None
        assert not (data_dir / "tls").exists()
        assert env["HCP_CLIENT_ID"] and env["HCP_CLIENT_SECRET"]
        verify = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=server.base_url, verify=verify, timeout=30) as http:
            fetch_token(http, env["HCP_CLIENT_ID"], env["HCP_CLIENT_SECRET"])


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--tls-cert", "/nonexistent/cert.pem"],
        ["serve", "--no-tls", "--tls-cert", "c", "--tls-key", "k"],
        ["principal", "create", "--name", "x", "--role", "owner"],
    ],
)
def test_bad_flags_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = run_cli(*args, "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr


def test_env_before_any_serve_fails_cleanly(tmp_path: Path) -> None:
    result = run_cli("env", "--data-dir", str(tmp_path / "empty"))
    assert result.returncode == 1
    assert "packyard serve" in result.stderr
    assert "Traceback" not in result.stderr


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _registry_answers(server: ServeProcess) -> bool:
    env = _env_json(server.data_dir)
    client_id, secret = env["HCP_CLIENT_ID"], env["HCP_CLIENT_SECRET"]
    assert client_id and secret
    try:
        with _client(server) as http:
            token = fetch_token(http, client_id, secret)
            return http.get(_prefix(env) + "/registry", headers=_bearer(token)).status_code == 200
    except httpx.HTTPError:
        return False


def test_workers_do_not_outlive_a_killed_supervisor(tmp_path: Path) -> None:
    """Each worker gets SIGTERM and stops as at a normal shutdown, which may take the whole
    grace period given to requests: the deadline lies beyond it, so a loaded machine cannot
    fail the test, while a worker that never stops still does."""
    with ServeProcess(tmp_path / "data", "--no-tls", "--workers", "2") as server:
        assert _registry_answers(server)
        workers = server.worker_pids()
        assert len(workers) == 2
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)  # the supervisor alone
        server.process.wait(timeout=30)
        deadline = time.monotonic() + SHUTDOWN_GRACE_S + 30
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = [pid for pid in workers if _alive(pid)]
        assert alive == [], "orphaned workers still serve the port"


def test_one_worker_is_served_by_the_process_itself(tmp_path: Path) -> None:
    """The default (one worker): no supervisor, no forked worker; SIGTERM stops it with
    exit status 0 and nothing on standard error beyond granian's own lines."""
    server = ServeProcess(tmp_path / "data", "--no-tls")
    with server:
        assert _registry_answers(server)
        assert server.worker_pids() == []
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=SHUTDOWN_WAIT_S) == 0
    granian = [line for line in server.stderr.splitlines() if " granian: " in line]
    assert [line.split(" granian: ")[1] for line in granian[-2:]] == [
        "Shutting down granian",
        "Stopping worker-1",
    ]
    assert "Traceback" not in server.stderr
    assert "experimental" not in server.stderr


def test_a_failed_worker_is_replaced(tmp_path: Path) -> None:
    with ServeProcess(tmp_path / "data", "--no-tls", "--workers", "2") as server:
        assert _registry_answers(server)
        worker = server.worker_pids()[0]
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replacements = [pid for pid in server.worker_pids() if pid != worker]
            if replacements and _registry_answers(server):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the killed worker was not replaced")


def test_a_second_server_on_a_busy_port_refuses_to_start(tmp_path: Path) -> None:
    with ServeProcess(tmp_path / "first", "--no-tls") as first:
        result = run_cli(
            "serve", "--data-dir", str(tmp_path / "second"), "--port", str(first.port), "--no-tls"
        )
        assert result.returncode == 2
        assert "already in use" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not (tmp_path / "second").exists()
        assert _registry_answers(first)
