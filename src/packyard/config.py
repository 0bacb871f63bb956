"""Where a Packyard server keeps its files, and what it tells clients."""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

from packyard.store.engine import sqlite_url

DB_FILE = "packyard.db"
CREDENTIALS_FILE = "credentials.json"
SERVER_FILE = "server.json"
DEFAULT_PORT = 8443


def default_data_dir() -> Path:
    env = os.environ.get("PACKYARD_DATA_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("packyard"))


def database_url(data_dir: Path, override: str | None) -> str:
    return override or sqlite_url(str(data_dir / DB_FILE))


@dataclass(frozen=True, slots=True)
class Advertised:
    """How clients reach the server, recorded by ``packyard serve`` for ``packyard env``."""

    address: str
    tls: bool
    self_signed: bool
    database_url: str | None = None


def write_private_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2)
    os.replace(tmp, path)


def save_advertised(data_dir: Path, advertised: Advertised) -> None:
    write_private_json(data_dir / SERVER_FILE, asdict(advertised))


def load_advertised(data_dir: Path) -> Advertised | None:
    path = data_dir / SERVER_FILE
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return Advertised(
        address=str(raw["address"]),
        tls=bool(raw["tls"]),
        self_signed=bool(raw.get("self_signed", False)),
        database_url=raw.get("database_url"),
    )


def env_number(name: str, default: float, *, minimum: float = 0) -> float:
    """A numeric setting from the environment; a value that is not a finite number
    >= ``minimum`` is reported once and replaced by ``default`` rather than stopping the
    server."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = minimum - 1
    if not (math.isfinite(value) and value >= minimum):
        logging.getLogger(__name__).warning(
            "%s=%r is not a number >= %s; using %s", name, raw, minimum, default
        )
        return default
    return value
