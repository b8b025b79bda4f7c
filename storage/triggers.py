"""The append-only triggers: which must exist, whether they do, and putting back missing ones.

The migrations create them (0002 for events, 0005 for seals); `tigao init` calls `restore` so a
database whose triggers were dropped or disabled gets them back, and `verify` calls `problems`
so that a database running without them does not pass.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

# table -> the triggers that keep it append-only, per dialect
SQLITE_TRIGGERS: dict[str, dict[str, str]] = {
    "events": {
        "events_no_update": "CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events "
                            "BEGIN SELECT RAISE(ABORT, 'history events are append-only: UPDATE refused'); END",
        "events_no_delete": "CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events "
                            "BEGIN SELECT RAISE(ABORT, 'history events are append-only: DELETE refused'); END",
    },
    "seals": {
        "seals_no_update": "CREATE TRIGGER IF NOT EXISTS seals_no_update BEFORE UPDATE ON seals "
                           "BEGIN SELECT RAISE(ABORT, 'seals are append-only: UPDATE refused'); END",
        "seals_no_delete": "CREATE TRIGGER IF NOT EXISTS seals_no_delete BEFORE DELETE ON seals "
                           "BEGIN SELECT RAISE(ABORT, 'seals are append-only: DELETE refused'); END",
    },
    "seal_heads": {
        "seal_heads_no_update": "CREATE TRIGGER IF NOT EXISTS seal_heads_no_update BEFORE UPDATE ON seal_heads "
                                "BEGIN SELECT RAISE(ABORT, 'seals are append-only: UPDATE refused'); END",
        "seal_heads_no_delete": "CREATE TRIGGER IF NOT EXISTS seal_heads_no_delete BEFORE DELETE ON seal_heads "
                                "BEGIN SELECT RAISE(ABORT, 'seals are append-only: DELETE refused'); END",
    },
}

PG_FUNCTIONS = {
    "tigao_events_append_only": """
        CREATE OR REPLACE FUNCTION tigao_events_append_only() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'history events are append-only: % refused', TG_OP;
        END;
        $$ LANGUAGE plpgsql""",
    "tigao_seals_append_only": """
        CREATE OR REPLACE FUNCTION tigao_seals_append_only() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'seals are append-only: % refused', TG_OP;
        END;
        $$ LANGUAGE plpgsql""",
}


def _pg(table: str, fn: str) -> dict[str, str]:
    return {
        f"{table}_append_only": f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                                f"FOR EACH ROW EXECUTE FUNCTION {fn}()",
        f"{table}_no_truncate": f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                                f"FOR EACH STATEMENT EXECUTE FUNCTION {fn}()",
    }


PG_TRIGGERS: dict[str, dict[str, str]] = {
    "events": _pg("events", "tigao_events_append_only"),
    "seals": _pg("seals", "tigao_seals_append_only"),
    "seal_heads": _pg("seal_heads", "tigao_seals_append_only"),
}
APPEND_ONLY_TABLES = tuple(SQLITE_TRIGGERS)


def _present(conn: Any) -> dict[str, bool]:
    """Trigger name -> enabled, for the append-only tables."""
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(
            "SELECT t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relname IN ('events', 'seals', 'seal_heads') "
            "AND c.relnamespace = to_regnamespace(current_schema())").all()
        return {name: enabled != "D" for name, enabled in rows}
    rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").all()
    return {name: True for (name,) in rows}


def _expected(conn: Any) -> dict[str, dict[str, str]]:
    return PG_TRIGGERS if conn.dialect.name == "postgresql" else SQLITE_TRIGGERS


def problems(conn: Any) -> list[str]:
    """One sentence per append-only trigger that is missing or disabled; empty when all hold."""
    present = _present(conn)
    out = []
    for table, triggers in _expected(conn).items():
        for name in triggers:
            if name not in present:
                out.append(f"the append-only trigger {name} on {table} is missing")
            elif not present[name]:
                out.append(f"the append-only trigger {name} on {table} is disabled")
    return out


def restore(conn: Any) -> list[str]:
    """Create missing and re-enable disabled append-only triggers; return what was put back."""
    present = _present(conn)
    done = []
    pg = conn.dialect.name == "postgresql"
    if pg and any(name not in present for t in PG_TRIGGERS.values() for name in t):
        for sql in PG_FUNCTIONS.values():
            conn.execute(text(sql))  # text(): the driver would read the '%' as a placeholder
    for table, triggers in _expected(conn).items():
        for name, sql in triggers.items():
            if name not in present:
                conn.exec_driver_sql(sql)
                done.append(f"{name} (created)")
            elif not present[name]:
                conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER {name}")
                done.append(f"{name} (enabled)")
    return done
