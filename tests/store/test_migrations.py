"""The Alembic migrations build exactly the schema the code declares, and can be undone."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from packyard.store.engine import Store
from packyard.store.migrate import alembic_config, upgrade
from packyard.store.schema import metadata
from packyard.store.types import UTCDateTime


def _compare_type(
    _ctx: object, _col: object, _meta: object, _inspected: object, declared: object
) -> bool | None:
    # UTCDateTime is stored as the dialect's DateTime: not a difference.
    if isinstance(declared, UTCDateTime):
        return False
    return None


def test_migrated_schema_matches_the_declared_one(store: Store) -> None:
    upgrade(store)
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": _compare_type})
        assert compare_metadata(context, metadata) == []


def test_downgrade_to_base_and_up_again(store: Store) -> None:
    upgrade(store)
    cfg = alembic_config()
    with store.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
        conn.commit()
    upgrade(store)
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": _compare_type})
        assert compare_metadata(context, metadata) == []


def test_the_pre_rotation_signing_key_carries_over(store: Store) -> None:
    """The key that signed tokens before key ids existed keeps signing after the upgrade."""
    from sqlalchemy import select, text

    from packyard.store.schema import signing_keys

    cfg = alembic_config()
    with store.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
        conn.execute(
            text("INSERT INTO settings (key, value) VALUES ('token_signing_key', :v)"),
            {"v": "ab" * 32},
        )
        conn.commit()
    upgrade(store)
    with store.read() as conn:
        rows = conn.execute(select(signing_keys.c.id, signing_keys.c.secret)).all()
        legacy = conn.execute(text("SELECT count(*) FROM settings")).scalar_one()
    assert [(r.id, r.secret) for r in rows] == [("initial", "ab" * 32)]
    assert legacy == 0
