"""Shell completion of registry names, through the protocol the installed shell hooks speak
(``_PACKYARD_COMPLETE=complete_bash`` with ``COMP_WORDS``/``COMP_CWORD``, or
``complete_zsh`` with ``_TYPER_COMPLETE_ARGS``), in real ``packyard`` processes against a
real server."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

from packyard.client import PackerClient
from tests.support.factories import TenantFixture
from tests.support.hcp_env import hcp_env, process_env, push
from tests.support.serve_process import PACKYARD

pytestmark = pytest.mark.skipif(
    not PACKYARD.exists(), reason="the packyard console script is not installed"
)

# Against the test server, a deadline no loaded test machine reaches; a hanging completion
# still fails the test (PROCESS_TIMEOUT).
SLOW_MACHINE_DEADLINE = "20"
PROCESS_TIMEOUT = 60


def complete_bash(
    env: dict[str, str], line: str
) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    """The candidates bash gets for ``line`` with the cursor at its end."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    done = subprocess.run(
        [str(PACKYARD)],
        env=env
        | {
            "_PACKYARD_COMPLETE": "complete_bash",
            "COMP_WORDS": line,
            "COMP_CWORD": str(cword),
        },
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout.split(), done


@pytest.fixture
def backend() -> str:
    """Completion is the client's work: one storage backend behind the server is enough."""
    return "sqlite"


@pytest.fixture
def registry(hcp: PackerClient) -> PackerClient:
    hcp.create_bucket("golden", description="Base images")
    hcp.create_bucket("gopher")
    hcp.create_bucket("web")
    push(hcp, "golden", "fp-1", {"us-east-1": "ami-01"})
    push(hcp, "golden", "fp-2", {"us-east-1": "ami-02"})
    hcp.create_channel("golden", "production", fingerprint="fp-1")
    hcp.create_channel("golden", "staging", fingerprint="fp-2")
    hcp.create_channel("web", "canary")
    return hcp


@pytest.fixture
def env(base_url: str, tenant: TenantFixture) -> dict[str, str]:
    environ = process_env(dict(os.environ), dict(hcp_env(base_url, tenant)))
    return environ | {"PACKYARD_COMPLETION_TIMEOUT": SLOW_MACHINE_DEADLINE}


def test_bucket_arguments_and_options_complete_bucket_names(
    registry: PackerClient, env: dict[str, str]
) -> None:
    assert complete_bash(env, "packyard buckets get ")[0] == ["golden", "gopher", "web"]
    assert complete_bash(env, "packyard versions list go")[0] == ["golden", "gopher"]
    assert complete_bash(env, "packyard channels get w")[0] == ["web"]
    assert complete_bash(env, "packyard artifact get --bucket g")[0] == ["golden", "gopher"]
    assert complete_bash(env, "packyard ingest-manifest m.json -b we")[0] == ["web"]


def test_channel_arguments_complete_the_channels_of_the_bucket_on_the_line(
    registry: PackerClient, env: dict[str, str]
) -> None:
    golden = sorted(c.name for c in registry.list_channels("golden"))
    assert {"latest", "production", "staging"} <= set(golden)
    assert sorted(complete_bash(env, "packyard channels get golden ")[0]) == golden
    assert complete_bash(env, "packyard channels history golden st")[0] == ["staging"]
    assert complete_bash(env, "packyard channels promote golden --from pr")[0] == ["production"]
    assert complete_bash(env, "packyard channels promote golden --from staging --to st")[0] == [
        "staging"
    ]
    assert complete_bash(env, "packyard artifact get -b web --channel ca")[0] == ["canary"]
    assert complete_bash(env, "packyard ancestry golden --channel prod")[0] == ["production"]
    # No bucket on the line yet: nothing to ask about.
    assert complete_bash(env, "packyard artifact get --channel ")[0] == []


def test_fingerprints_and_build_ids_complete(registry: PackerClient, env: dict[str, str]) -> None:
    assert complete_bash(env, "packyard versions get golden ")[0] == ["fp-2", "fp-1"]  # newest
    assert complete_bash(env, "packyard channels assign golden staging fp-1")[0] == ["fp-1"]
    assert complete_bash(env, "packyard artifact get -b golden -f fp")[0] == ["fp-2", "fp-1"]
    build_ids = [b.id for b in registry.list_builds("golden", "fp-1")]
    assert complete_bash(env, "packyard builds get golden fp-1 ")[0] == build_ids
    assert complete_bash(env, "packyard versions get nosuchbucket ")[0] == []


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_with_the_installed_hook(registry: PackerClient, env: dict[str, str]) -> None:
    """The script `packyard --install-completion` installs for bash, run by bash."""
    script = subprocess.run(
        [str(PACKYARD)],
        env=env | {"_PACKYARD_COMPLETE": "source_bash"},
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=True,
    ).stdout
    session = (
        f"{script}\n"
        'COMP_WORDS=(packyard channels get golden "")\n'
        "COMP_CWORD=4\n"
        "_packyard_completion packyard\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile"],
        input=session,
        env=env | {"PATH": f"{PACKYARD.parent}:{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    channels = sorted(c.name for c in registry.list_channels("golden"))
    assert sorted(done.stdout.split()) == channels


def test_zsh_gets_descriptions_beside_the_values(
    registry: PackerClient, env: dict[str, str]
) -> None:
    done = subprocess.run(
        [str(PACKYARD)],
        env=env
        | {"_PACKYARD_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "packyard buckets get "},
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    # _arguments '*: :(("value":"help"\n"value"…))', one line per candidate
    script = re.fullmatch(r"_arguments '\*: :\(\((.*)\)\)'\n?", done.stdout, re.DOTALL)
    assert script, done.stdout
    lines = [re.fullmatch(r'"([^"]*)"(?::"([^"]*)")?', line) for line in script[1].split("\n")]
    assert [m.groups() if m else None for m in lines] == [
        ("golden", "Base images"),
        ("gopher", None),  # no description: the value alone
        ("web", None),
    ]


def test_commands_and_choices_still_complete(env: dict[str, str]) -> None:
    assert complete_bash(env, "packyard chan")[0] == ["channels"]
    assert complete_bash(env, "packyard buckets list --format ")[0] == ["table", "plain", "json"]


def _without_hcp(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith("HCP_")} | {
        "HCP_CRED_FILE": "/nonexistent/cred.json"
    }


def test_no_environment_completes_nothing_silently(env: dict[str, str]) -> None:
    for line in ("packyard buckets get ", "packyard channels get golden "):
        candidates, done = complete_bash(_without_hcp(env), line)
        assert candidates == [] and done.stdout.strip() == ""


def test_unreachable_server_completes_nothing_silently(env: dict[str, str]) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = env | {
        "HCP_API_ADDRESS": f"127.0.0.1:{port}",
        "HCP_AUTH_URL": f"http://127.0.0.1:{port}",
    }
    assert complete_bash(closed, "packyard buckets get ")[0] == []


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def test_a_server_that_never_answers_completes_nothing_within_the_deadline(
    env: dict[str, str], silent_port: int
) -> None:
    silent = env | {
        "HCP_API_ADDRESS": f"127.0.0.1:{silent_port}",
        "HCP_AUTH_URL": f"http://127.0.0.1:{silent_port}",
    }
    del silent["PACKYARD_COMPLETION_TIMEOUT"]  # the default deadline
    # A hang would exceed PROCESS_TIMEOUT and fail; the deadline ends it with no output.
    assert complete_bash(silent, "packyard buckets get ")[0] == []
