"""A least-privilege PostgreSQL setup: an owner role that runs migrations, and an application
role that the server and the worker connect as.

The application role may read and write the working tables, but may only INSERT and SELECT on
the history and the seals: no UPDATE, DELETE or TRUNCATE, and, not owning the tables, no ALTER
(so it cannot drop or disable the append-only triggers either). Without this, the role the
application runs as can rewrite the history, and only signed seals or outside roots show it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlalchemy import text

from storage.triggers import APPEND_ONLY_TABLES, PG_FUNCTIONS

from .errors import InputError

if TYPE_CHECKING:
    from .core import Engine

_ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _check(name: str, what: str) -> str:
    if not _ROLE.fullmatch(name):
        raise InputError(f"--{what} '{name}' is not a plain role name; use lower-case letters, digits and _ "
                         "(at most 63, not starting with a digit)")
    return name


def role_statements(owner: str, app: str) -> list[str]:
    """The SQL, in order, that creates (if needed) and configures both roles on the current database.

    Run it as a superuser (or a role that may create roles and owns the tables), after `tigao init`.
    """
    owner, app = _check(owner, "owner"), _check(app, "app")
    if owner == app:
        raise InputError("the owner and the application role must differ: the point is that the role the "
                         "application runs as does not own the tables")
    ao = ", ".join(APPEND_ONLY_TABLES)
    fns = "\n".join(f"ALTER FUNCTION {fn}() OWNER TO {owner};" for fn in PG_FUNCTIONS)
    return [
        f"""DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{owner}') THEN CREATE ROLE {owner} LOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{app}') THEN CREATE ROLE {app} LOGIN; END IF;
END $$;""",
        # The application role must not be able to lift its own limits.
        f"ALTER ROLE {app} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;",
        f"GRANT USAGE, CREATE ON SCHEMA public TO {owner};",
        f"GRANT USAGE ON SCHEMA public TO {app};",
        # The owner owns every table (and so their sequences) and the trigger functions.
        f"""DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
    EXECUTE format('ALTER TABLE %I OWNER TO %I', r.tablename, '{owner}');
  END LOOP;
END $$;""",
        fns,
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, {app};",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app};",
        f"REVOKE UPDATE, DELETE ON {ao}, alembic_version FROM {app};",
        f"REVOKE INSERT ON alembic_version FROM {app};",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app};",
        # Tables a later migration creates get the same working rights.
        (f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
         f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app};"),
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {app};",
    ]


def apply_roles(engine: Engine, owner: str, app: str) -> list[str]:
    """Run `role_statements` on the engine's PostgreSQL database in one transaction."""
    statements = role_statements(owner, app)
    if engine.dialect != "postgresql":
        raise InputError("database roles are a PostgreSQL setting; a SQLite file is protected by its file "
                         "permissions (make it writable by the application's user only)")
    with engine._tx() as s:
        for st in statements:
            s.execute(text(st))
    return statements
