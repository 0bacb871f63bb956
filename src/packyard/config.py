"""Where a Packyard server keeps its files, and what it tells clients."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import platformdirs

from packyard.files import write_private
from packyard.startup import StartupError, notice

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

# sqlalchemy is imported where it is used: the CLI reads this module at start-up.

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
    from packyard.store.engine import sqlite_url

    return override or sqlite_url(str(data_dir / DB_FILE))


@dataclass(frozen=True, slots=True)
class Advertised:
    """How clients reach the server, recorded by ``packyard serve`` for ``packyard env``.

    ``database_url`` is stored without its password; ``database_url_file`` is the file
    the server read its database URL from (``--database-url-file``), if any: the
    administration commands read the URL from there again.
    """

    address: str
    tls: bool
    self_signed: bool
    database_url: str | None = None
    database_url_file: str | None = None
    # The start that wrote this record (``packyard env`` says whether it still runs).
    started_at: str | None = None  # ISO 8601 UTC
    pid: int | None = None


def write_private_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, json.dumps(payload, indent=2).encode())


def save_advertised(data_dir: Path, advertised: Advertised) -> None:
    stored = asdict(advertised)
    stored["database_url"] = without_password(advertised.database_url)
    write_private_json(data_dir / SERVER_FILE, stored)


def load_advertised(data_dir: Path) -> Advertised | None:
    path = data_dir / SERVER_FILE
    try:
        raw = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as exc:
        raise StartupError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    url_file = raw.get("database_url_file")
    url = raw.get("database_url")
    if url_file:
        try:
            url = read_database_url_file(Path(url_file))
        except StartupError as exc:
            notice(f"warning: {exc.message}; using the database URL recorded in {path}")
    return Advertised(
        address=str(raw["address"]),
        tls=bool(raw["tls"]),
        self_signed=bool(raw.get("self_signed", False)),
        database_url=url,
        database_url_file=url_file,
        started_at=raw.get("started_at"),
        pid=raw.get("pid") if isinstance(raw.get("pid"), int) else None,
    )


# --- database URLs: the password is never printed, logged or stored -----------------------


def _parsed(url: str) -> URL | None:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url)
    except Exception:  # any parse failure: treat the text as opaque
        return None


def url_passwords(url: str | None) -> list[str]:
    """The secrets in a database URL (user-info password, ``password`` query value)."""
    if not url:
        return []
    parsed = _parsed(url)
    if parsed is None:
        found = re.findall(r"://[^:/@]*:([^@/]+)@", url) + re.findall(r"password=([^&\s]+)", url)
        return [s for s in found if s]
    secrets = [parsed.password] if parsed.password else []
    query = parsed.query.get("password")
    secrets += [query] if isinstance(query, str) else list(query or ())
    return [str(s) for s in secrets if s]


def redact_url(url: str) -> str:
    """``url`` with every password shown as ``***`` (for messages)."""
    return scrub(url, url)


def scrub(text: str, url: str | None) -> str:
    """``text`` (an error message, a URL) without the passwords of ``url``."""
    for secret in sorted(url_passwords(url), key=len, reverse=True):
        text = text.replace(secret, "***")
        # URLs carry the password percent-encoded; the same secret may appear that way.
        text = text.replace(quote(secret, safe=""), "***")
    return text


def without_password(url: str | None) -> str | None:
    """``url`` without its password (what may be written to disk)."""
    if not url:
        return url
    parsed = _parsed(url)
    if parsed is None:
        return redact_url(url)
    if not url_passwords(url):
        return url
    stripped = parsed._replace(password=None).difference_update_query(["password"])
    return stripped.render_as_string(hide_password=False)


def read_database_url_file(path: Path) -> str:
    """The database URL in ``path`` (``--database-url-file``): its first non-empty line.

    The file should be readable by this user only (mode 0600); a file that others may
    read is used with a warning, as the password in it is then not private.
    """
    try:
        info = path.stat()
        text = path.read_text()
    except OSError as exc:
        raise StartupError(f"cannot read the database URL file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise StartupError(f"the database URL file {path} is not text") from None
    url = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not url:
        raise StartupError(f"the database URL file {path} is empty")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077 and url_passwords(url):
        notice(
            f"warning: the database URL file {path} is accessible to other users "
            f"(mode {mode:04o}); `chmod 600 {path}`"
        )
    return url


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
