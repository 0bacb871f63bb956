"""Domain rules: validation, state derivation and parsing. Pure functions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from packyard.domain.enums import AncestryStatus, BuildStatus, VersionStatus
from packyard.domain.renderable import has_surrogate, json_problem
from packyard.errors import ApiError, Code, invalid

if TYPE_CHECKING:
    from packyard.domain.models import Version

_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$")
_FINGERPRINT_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_STRICT_RE = re.compile(r"[\x00-\x1f\x7f]")
_DURATION_RE = re.compile(r"^(?:\d+[smhd])+$")
_DURATION_PART_RE = re.compile(r"(\d+)([smhd])")

MAX_DESCRIPTION = 1024
MAX_LABELS = 64
MAX_LABEL_KEY = 128
MAX_LABEL_VALUE = 1024
MAX_SHORT_TEXT = 256
MAX_LONG_TEXT = 4096
MAX_FIELD_MASK = 1024  # every path of every mask, spelled out, is a few dozen characters
MAX_REVOKE_HORIZON = timedelta(days=365 * 100)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def utcnow() -> datetime:
    return datetime.now(UTC)


def validate_name(kind: str, value: str | None, *, field: str) -> str:
    """Bucket and channel names: 1-64 letters, digits, '.', '_' or '-'."""
    if not value:
        raise invalid(f"{kind} name is required.", field=field)
    if not _NAME_RE.fullmatch(value):
        raise invalid(
            f"Invalid {kind} name {printable(value)!s}: use 1-64 letters, digits, '.', '_' or '-', "
            "beginning and ending with a letter or digit.",
            field=field,
        )
    return value


def validate_fingerprint(value: str | None, *, field: str = "fingerprint") -> str:
    """Fingerprints: 1-128 of ``[A-Za-z0-9._-]``, beginning and ending alphanumeric."""
    if not value:
        raise invalid("fingerprint is required.", field=field)
    if not _FINGERPRINT_RE.fullmatch(value):
        raise invalid(
            f"Invalid fingerprint {printable(value)}: use 1-128 letters, digits, '.', '_' or '-', "
            "beginning and ending with a letter or digit.",
            field=field,
        )
    return value


def validate_text(value: str | None, *, field: str, limit: int = MAX_SHORT_TEXT) -> str:
    """Free single-line text (component types, platforms, identifiers)."""
    if value is None:
        return ""
    if len(value) > limit:
        raise invalid(f"{field} is longer than {limit} characters.", field=field)
    if _CONTROL_STRICT_RE.search(value):
        raise invalid(f"{field} contains control characters.", field=field)
    _require_unicode(value, field=field)
    return value


def validate_description(value: str | None, *, field: str = "description") -> str:
    """Multi-line text: newlines and tabs are fine, other control characters are not."""
    if value is None:
        return ""
    if len(value) > MAX_DESCRIPTION:
        raise invalid(f"{field} is longer than {MAX_DESCRIPTION} characters.", field=field)
    if _CONTROL_RE.search(value):
        raise invalid(f"{field} contains control characters.", field=field)
    _require_unicode(value, field=field)
    return value


def validate_labels(labels: Mapping[str, str] | None, *, field: str = "labels") -> dict[str, str]:
    if not labels:
        return {}
    if len(labels) > MAX_LABELS:
        raise invalid(f"{field} has more than {MAX_LABELS} entries.", field=field)
    out: dict[str, str] = {}
    for key, value in labels.items():
        if not key:
            raise invalid(f"{field} keys must not be empty.", field=field)
        if len(key) > MAX_LABEL_KEY or len(value) > MAX_LABEL_VALUE:
            raise invalid(
                f"{field} keys are limited to {MAX_LABEL_KEY} characters and values to "
                f"{MAX_LABEL_VALUE}.",
                field=field,
            )
        if _CONTROL_STRICT_RE.search(key) or _CONTROL_RE.search(value):
            raise invalid(f"{field} contain control characters.", field=field)
        if has_surrogate(key) or has_surrogate(value):
            raise invalid(f"{field} must be Unicode text (no lone surrogates).", field=field)
        out[key] = value
    return out


def validate_json(value: Any, *, field: str) -> Any:
    """Free-form JSON (build metadata): only what every response can render.

    Integers within 64 bits, finite numbers, Unicode text, string keys, bounded depth
    and size (:mod:`packyard.domain.renderable`); 400/3 naming the path otherwise.
    """
    problem = json_problem(value, field)
    if problem is not None:
        raise invalid(f"{problem.field} {problem.reason}.", field=problem.field)
    return value


def _require_unicode(value: str, *, field: str) -> None:
    if has_surrogate(value):
        raise invalid(
            f"{field} is not valid Unicode text (it holds a lone surrogate).", field=field
        )


def printable(value: str, limit: int = 64) -> str:
    """A value safe to echo in an error message: quoted, control chars escaped, truncated."""
    shown = value if len(value) <= limit else value[:limit] + "..."
    return repr(shown)


def parse_duration(value: str) -> timedelta:
    """``revoke_in`` durations: ``s``/``m``/``h``/``d`` units, combined (``2h45m``)."""
    text = value.strip()
    if not _DURATION_RE.fullmatch(text):
        raise invalid(
            f"Invalid duration {printable(value)}: use whole numbers with s, m, h or d units, "
            "e.g. 30d or 2h45m.",
            field="revoke_in",
        )
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART_RE.findall(text))
    if seconds > MAX_REVOKE_HORIZON.total_seconds():
        raise invalid("revoke_in is too far in the future.", field="revoke_in")
    return timedelta(seconds=seconds)


def is_unset_time(value: datetime | None) -> bool:
    """Go clients send year 1 for an unset non-pointer time: treat it as absent."""
    return value is None or value.year <= 1


def derive_version_status(
    *,
    complete: bool,
    build_statuses: Iterable[BuildStatus],
    revoke_at: datetime | None,
    now: datetime,
) -> VersionStatus:
    """The status of a version, computed at read time so every reader agrees."""
    if revoke_at is not None:
        return VersionStatus.REVOKED if revoke_at <= now else VersionStatus.REVOCATION_SCHEDULED
    if complete:
        return VersionStatus.ACTIVE
    statuses = set(build_statuses)
    if not statuses:
        return VersionStatus.RUNNING
    if BuildStatus.RUNNING in statuses:
        return VersionStatus.RUNNING
    if BuildStatus.FAILED in statuses:
        return VersionStatus.FAILED
    if BuildStatus.CANCELLED in statuses:
        return VersionStatus.CANCELLED
    return VersionStatus.INCOMPLETE


def status_of(version: Version, now: datetime) -> VersionStatus:
    """A version's status as every reader derives it at ``now``."""
    return derive_version_status(
        complete=version.complete,
        build_statuses=(b.status for b in version.builds),
        revoke_at=version.revoke_at,
        now=now,
    )


def is_revoked(revoke_at: datetime | None, now: datetime) -> bool:
    return revoke_at is not None and revoke_at <= now


def aggregate_status(statuses: Iterable[AncestryStatus]) -> AncestryStatus | None:
    """OUT_OF_DATE if any edge is; UP_TO_DATE if any is and none is out of date."""
    seen = set(statuses)
    if not seen:
        return None
    if AncestryStatus.OUT_OF_DATE in seen:
        return AncestryStatus.OUT_OF_DATE
    if AncestryStatus.UP_TO_DATE in seen:
        return AncestryStatus.UP_TO_DATE
    return AncestryStatus.UNDETERMINED


def channel_edge_statuses(
    channel_version_id: str | None,
    *,
    channel_seen: bool,
    any_current: bool,
    any_other: bool,
) -> set[AncestryStatus]:
    """The statuses (:func:`edge_status`) of the edges recorded through one channel,
    from whether the channel is there for the caller, the version it serves, and whether
    any edge recorded that version (``any_current``) or another one (``any_other``).
    Edges recorded through no channel are those of a channel not ``channel_seen``."""
    if not channel_seen or channel_version_id is None:
        return {AncestryStatus.UNDETERMINED}
    statuses = set()
    if any_current:
        statuses.add(AncestryStatus.UP_TO_DATE)
    if any_other:
        statuses.add(AncestryStatus.OUT_OF_DATE)
    return statuses


def edge_status(
    parent_channel_id: str | None,
    channel_version_id: str | None,
    parent_version_id: str,
    *,
    channel_exists: bool,
) -> AncestryStatus:
    """UP_TO_DATE while the parent channel still serves the recorded parent version."""
    if parent_channel_id is None or not channel_exists or channel_version_id is None:
        return AncestryStatus.UNDETERMINED
    if channel_version_id == parent_version_id:
        return AncestryStatus.UP_TO_DATE
    return AncestryStatus.OUT_OF_DATE


def parse_field_mask(mask: str | None, allowed: Mapping[str, str]) -> set[str]:
    """Parse a FieldMask string (comma separated, lowerCamel or snake_case paths).

    ``allowed`` maps every accepted spelling to a canonical path name. Errors
    have the grpc-gateway body-validation shape live HCP answers with: the
    message wraps the violation, the BadRequest detail carries it bare.
    """
    if mask is None or not mask.strip():
        raise field_mask_error("field mask: must be set")
    if len(mask) > MAX_FIELD_MASK:
        raise field_mask_error(f"field mask: longer than {MAX_FIELD_MASK} characters")
    paths: set[str] = set()
    for raw in mask.split(","):
        path = raw.strip()
        if not path:
            continue
        canonical = allowed.get(path)
        if canonical is None:
            raise field_mask_error(f"field mask: unknown path {printable(path)}")
        paths.add(canonical)
    if not paths:
        raise field_mask_error("field mask: must be set")
    return paths


def field_mask_error(violation: str) -> ApiError:
    """400/3 ``body: (update_mask: <violation>.).`` with one ``body.update_mask`` violation."""
    error = invalid(violation, field="body.update_mask")
    return ApiError(
        Code.INVALID_ARGUMENT, f"body: (update_mask: {violation}.).", details=error.details
    )
