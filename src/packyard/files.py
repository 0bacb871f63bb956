"""The data directory is private: mode 0700, and every file Packyard writes in it 0600.

It holds the token signing key (in the SQLite database), the admin's client secret
(``credentials.json``) and the TLS private key: nothing in it is for other local
users. Files are created with their final mode (never created loose and tightened
afterwards); SQLite gives the ``-wal`` and ``-shm`` files it creates the mode of the
database file, so creating the database file 0600 first covers them too. Data
directories and files left group- or world-accessible by older versions are
tightened at start, with a notice on standard error.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from packyard.startup import notice

DIR_MODE = 0o700
FILE_MODE = 0o600
# The umask of the server process (and its workers): whatever else creates a file
# there creates it for this user only.
UMASK = 0o077
# Entries that show a directory is a Packyard data directory (safe to tighten).
_OURS = ("packyard.db", "server.json", "credentials.json", "tls", "cert.pem", "key.pem")


def restrict_umask() -> None:
    os.umask(UMASK)


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) or make sure the existing directory is private.

    An existing directory that this user owns and that is empty or already holds
    Packyard's files is tightened to 0700 with a notice. Any other group- or
    world-accessible directory (a shared parent such as ``/tmp`` or a home
    directory) is left as it is with a warning: the files in it are 0600 anyway.
    Raises ``OSError`` when ``path`` cannot be created or is not a directory.
    """
    try:
        path.mkdir(parents=True, mode=DIR_MODE)
    except FileExistsError:
        if not path.is_dir():
            raise NotADirectoryError(20, "it exists and is not a directory", str(path)) from None
    info = path.stat()
    mode = stat.S_IMODE(info.st_mode)
    if not mode & 0o077:
        return
    ours = (
        info.st_uid == os.geteuid()
        and not mode & stat.S_ISVTX
        and (not any(path.iterdir()) or any((path / name).exists() for name in _OURS))
    )
    if ours:
        os.chmod(path, mode & DIR_MODE)
        notice(
            f"data directory {path} was accessible to other users (mode {mode:04o}); "
            f"changed it to {mode & DIR_MODE:04o}"
        )
    else:
        notice(
            f"warning: data directory {path} is accessible to other users (mode {mode:04o}); "
            f"Packyard's files in it are private, but consider `chmod 700 {path}`"
        )


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (then tighten it if it is ours)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
    except FileExistsError:
        tighten(path)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, mode 0600 from the first byte."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a left-over of a crash may have another mode
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def tighten(*paths: Path) -> list[Path]:
    """Make existing files of this user that others can access 0600; returns those changed."""
    changed: list[Path] = []
    for path in paths:
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and mode & 0o077:
            os.chmod(path, mode & FILE_MODE)
            changed.append(path)
    return changed


def tighten_with_notice(*paths: Path) -> None:
    changed = tighten(*paths)
    if changed:
        names = ", ".join(str(p) for p in changed)
        notice(f"made files readable by this user only (they were accessible to others): {names}")
