"""The registry's image validation run task: its endpoint id, HMAC key and policy.

One configuration per registry, created on first use (the Terraform provider's first call is
GetRegistryTFCRunTaskAPI, which must answer with a URL and a key). The HMAC key is stored
sealed (:mod:`packyard.services.secrets`) and only writers see it: it lets whoever holds it
post run-task results as HCP Terraform would.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, select

from packyard.domain.enums import RunTaskBehaviour
from packyard.domain.events import AuditAction, Change
from packyard.domain.models import Caller, Operator
from packyard.domain.rules import utcnow
from packyard.errors import not_found, permission_denied
from packyard.services.journal import record
from packyard.services.recording import simple
from packyard.services.secrets import Sealer, hmac_key_context, record_secret_key
from packyard.store.engine import Store
from packyard.store.runtasks import RunTaskRepo, RunTaskRow
from packyard.store.schema import registries

HMAC_KEY_WHAT = "run task's HMAC key"


@dataclass(frozen=True, slots=True)
class RunTaskAccess:
    """What GetRegistryTFCRunTaskAPI returns: the endpoint's id (the API renders the URL)
    and the HMAC key in clear."""

    api_id: str
    hmac_key: str


@dataclass(frozen=True, slots=True)
class RunTaskTarget:
    """The run task an incoming request names by its endpoint id."""

    project_id: str
    hmac_key: bytes
    on_untracked_image: str  # a RunTaskBehaviour value


def _regenerated(api_id: str) -> Change:
    # The key itself is never recorded.
    return simple(AuditAction.UPDATE, "Regenerated run task HMAC key", run_task={"api_id": api_id})


def _missing_registry() -> Exception:
    return not_found("The registry for this project does not exist.")


def _new_key() -> str:
    return secrets.token_urlsafe(32)


class RunTaskService:
    def __init__(self, store: Store, sealer: Sealer) -> None:
        self.store = store
        self.sealer = sealer

    def get_api(self, caller: Caller) -> RunTaskAccess:
        """The endpoint id and the current HMAC key, the same on every call until the key is
        regenerated; created on the first call."""
        _require_writer(caller, "read the run task's HMAC key")
        with self.store.read() as conn:
            found = self._existing(conn, caller.project_id)
        if found is None:
            with self.store.write(caller.project_id) as conn:
                repo = _locked(conn, caller.project_id)
                found = repo.get(caller.project_id)
                if found is None:
                    key = _new_key()
                    row = self._new_row(caller.project_id, key, RunTaskBehaviour.UNSET)
                    repo.add(row)
                    return RunTaskAccess(row.api_id, key)
        return RunTaskAccess(found.api_id, self._open(found).decode())

    def regenerate_hmac(self, caller: Caller) -> RunTaskAccess:
        """A new HMAC key; the old one stops verifying at once. Works even when the old key
        cannot be opened (the way out after losing the server's secret key)."""
        _require_writer(caller, "regenerate the run task's HMAC key")
        key = _new_key()
        with self.store.write(caller.project_id) as conn:
            repo = _locked(conn, caller.project_id)
            found = repo.get(caller.project_id)
            if found is None:
                found = self._new_row(caller.project_id, key, RunTaskBehaviour.UNSET)
                repo.add(found)
            else:
                repo.update(
                    caller.project_id,
                    hmac_key_sealed=self._seal(caller.project_id, key),
                    updated_at=utcnow(),
                )
            record(conn, caller.project_id, caller, _regenerated(found.api_id))
        return RunTaskAccess(found.api_id, key)

    def get_config(self, caller: Caller) -> RunTaskBehaviour:
        with self.store.read() as conn:
            found = self._existing(conn, caller.project_id)
        return RunTaskBehaviour(found.on_untracked_image) if found else RunTaskBehaviour.UNSET

    def update_config(
        self, caller: Caller, on_untracked_image: RunTaskBehaviour | None
    ) -> RunTaskBehaviour:
        """Set the untracked-image policy; an absent value is ``UNSET`` (warn), as protobuf's
        default."""
        _require_writer(caller, "change the run task's configuration")
        behaviour = on_untracked_image or RunTaskBehaviour.UNSET
        with self.store.write(caller.project_id) as conn:
            repo = _locked(conn, caller.project_id)
            if repo.get(caller.project_id) is None:
                repo.add(self._new_row(caller.project_id, _new_key(), behaviour))
            else:
                repo.update(
                    caller.project_id, on_untracked_image=behaviour.value, updated_at=utcnow()
                )
            change = simple(
                AuditAction.UPDATE,
                "Updated run task configuration",
                run_task={"on_untracked_image": behaviour.value},
            )
            record(conn, caller.project_id, caller, change)
        return behaviour

    def reset_keys(self) -> list[str]:
        """Give every registry's run task a new HMAC key sealed with this server's secret key,
        and record that key as the database's: the way out after the secret key that sealed
        the old ones was lost. Endpoint URLs and policies stay; each run task in HCP
        Terraform must be given its registry's new key. Returns the projects changed
        (operator commands only, like a signing-key rotation)."""
        now = utcnow()
        with self.store.write(affects_reads=False) as conn:
            repo = RunTaskRepo(conn)
            projects = repo.project_ids(lock=True)
            for project_id in projects:
                repo.update(
                    project_id, hmac_key_sealed=self._seal(project_id, _new_key()), updated_at=now
                )
                record(conn, project_id, Operator(), _regenerated(""))
            record_secret_key(conn, self.sealer)
        return projects

    def by_api_id(self, api_id: str) -> RunTaskTarget | None:
        """The run task behind an endpoint id, with its HMAC key in clear; ``None`` if no
        registry has that id. Raises :class:`~packyard.services.secrets.UnsealError` when
        this server's secret key does not open the stored key."""
        with self.store.read() as conn:
            found = RunTaskRepo(conn).by_api_id(api_id)
        if found is None:
            return None
        return RunTaskTarget(found.project_id, self._open(found), found.on_untracked_image)

    # --- helpers ------------------------------------------------------------------------

    @staticmethod
    def _existing(conn: Connection, project_id: str) -> RunTaskRow | None:
        """The project's configuration, ``None`` if it has none yet; 404/5 without a
        registry."""
        found = RunTaskRepo(conn).get(project_id)
        if found is None:
            exists = conn.execute(
                select(registries.c.id).where(registries.c.project_id == project_id)
            ).first()
            if exists is None:
                raise _missing_registry()
        return found

    def _new_row(self, project_id: str, key: str, behaviour: RunTaskBehaviour) -> RunTaskRow:
        now = utcnow()
        return RunTaskRow(
            project_id=project_id,
            api_id=secrets.token_urlsafe(24),
            hmac_key_sealed=self._seal(project_id, key),
            on_untracked_image=behaviour.value,
            created_at=now,
            updated_at=now,
        )

    def _seal(self, project_id: str, key: str) -> bytes:
        return self.sealer.seal(key.encode(), context=hmac_key_context(project_id))

    def _open(self, row: RunTaskRow) -> bytes:
        return self.sealer.open(
            row.hmac_key_sealed, context=hmac_key_context(row.project_id), what=HMAC_KEY_WHAT
        )


def _locked(conn: Connection, project_id: str) -> RunTaskRepo:
    """The run-task rows of ``project_id`` with its registry locked (404/5 without one), so
    concurrent first calls create one configuration."""
    repo = RunTaskRepo(conn)
    if not repo.lock_registry(project_id):
        raise _missing_registry()
    return repo


def _require_writer(caller: Caller, action: str) -> None:
    if not caller.can_write:
        raise permission_denied(
            f"Principal {caller.name!r} has the viewer role on this project and cannot {action}."
        )
