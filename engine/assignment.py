"""People: the organisation directory, lanes to roles, and who may do what with a task.

Directory file (TOML)::

    [roles.efficiency_office]
    name = "效能辦"

    [departments.planning]
    name = "規劃股"
    head = "u07"          # a user id
    parent = "bureau"     # optional

    [users.u07]
    name = "李明"
    department = "planning"
    roles = ["staff", "department_head"]

A task's candidate groups may name roles or departments; a user belongs to every role listed for
them and to their own department.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError


@dataclass
class Person:
    id: str
    name: str
    department: str | None
    roles: list[str] = field(default_factory=list)


@dataclass
class Dept:
    id: str
    name: str
    head: str | None
    parent: str | None


class Directory:
    """An in-memory snapshot of the directory tables."""

    def __init__(self, users: Iterable[Person], departments: Iterable[Dept], roles: dict[str, str]):
        self.users = {u.id: u for u in users}
        self.departments = {d.id: d for d in departments}
        self.roles = dict(roles)
        self._members: dict[str, list[str]] = {}
        for u in sorted(self.users.values(), key=lambda p: p.id):
            for r in u.roles:
                self._members.setdefault(r, []).append(u.id)
        self._by_role_name = {name.strip(): rid for rid, name in self.roles.items()}

    # --- a snapshot as plain data (stored with every load, exported with audit files)
    def to_content(self) -> dict[str, Any]:
        return {
            "roles": dict(sorted(self.roles.items())),
            "departments": {d.id: {"name": d.name, "head": d.head, "parent": d.parent}
                            for d in sorted(self.departments.values(), key=lambda d: d.id)},
            "users": {u.id: {"name": u.name, "department": u.department, "roles": list(u.roles)}
                      for u in sorted(self.users.values(), key=lambda u: u.id)},
        }

    @classmethod
    def from_content(cls, content: dict[str, Any]) -> Directory:
        return cls(
            [Person(uid, u["name"], u.get("department"), list(u.get("roles", [])))
             for uid, u in content.get("users", {}).items()],
            [Dept(did, d["name"], d.get("head"), d.get("parent")) for did, d in content.get("departments", {}).items()],
            dict(content.get("roles", {})),
        )

    # --- queries used by scripts, assignment and escalation
    def department_ids(self) -> list[str]:
        return sorted(self.departments)

    def head_of(self, dept: str | None) -> str | None:
        d = self.departments.get(dept or "")
        return d.head if d else None

    def staff(self, dept: str | None = None) -> list[str]:
        """The members of department `dept`; without one, everyone who belongs to a department (users
        outside every department, such as an outside auditor, are not the organisation's staff)."""
        return sorted(u.id for u in self.users.values()
                      if (u.department is not None if dept is None else u.department == dept))

    def role_members(self, role: str) -> list[str]:
        return list(self._members.get(role, []))

    def department_of(self, user: str | None) -> str | None:
        u = self.users.get(user or "")
        return u.department if u else None

    def groups_of(self, user: str) -> list[str]:
        u = self.users.get(user)
        if u is None:
            return []
        groups = list(u.roles)
        if u.department:
            groups.append(u.department)
        return groups

    def has_role(self, user: str, role: str) -> bool:
        u = self.users.get(user)
        return bool(u and role in u.roles)

    def role_for_lane(self, lane_name: str | None, lane_id: str | None = None) -> str | None:
        """A lane is a role: its name equals a role id or a role's name; else its id equals a role id."""
        for candidate in (lane_name, lane_id):
            if not candidate:
                continue
            c = candidate.strip()
            if c in self.roles:
                return c
            if c in self._by_role_name:
                return self._by_role_name[c]
        return None

    def group_members(self, group: str) -> list[str]:
        if group in self.roles:
            return self.role_members(group)
        if group in self.departments:
            return self.staff(group)
        return []

    def superior_of(self, user: str | None) -> str | None:
        """The head of the user's department, or of the parent department if the user is the head."""
        dept = self.departments.get(self.department_of(user) or "")
        while dept is not None:
            if dept.head and dept.head != user:
                return dept.head
            dept = self.departments.get(dept.parent or "")
        return None


def parse_directory_file(path: str | Path) -> tuple[list[Person], list[Dept], dict[str, str]]:
    """Read and check a directory TOML file; raise InputError naming what to fix."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"no directory file at '{p}'") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not valid TOML: {exc}") from exc
    unknown = set(raw) - {"users", "departments", "roles"}
    if unknown:
        raise InputError(f"{p}: unknown table(s) {sorted(unknown)}; expected [users.*], [departments.*], [roles.*]")

    def table(name: str) -> dict[str, dict[str, Any]]:
        t = raw.get(name, {})
        if not isinstance(t, dict) or not all(isinstance(v, dict) for v in t.values()):
            raise InputError(f"{p}: [{name}.<id>] entries must be tables")
        return t

    roles = {}
    for rid, r in table("roles").items():
        roles[rid] = str(r.get("name", rid))
    depts = []
    for did, d in table("departments").items():
        if "name" not in d:
            raise InputError(f"{p}: department '{did}' needs a name")
        depts.append(Dept(did, str(d["name"]), d.get("head"), d.get("parent")))
    users = []
    for uid, u in table("users").items():
        if "name" not in u:
            raise InputError(f"{p}: user '{uid}' needs a name")
        user_roles = u.get("roles", [])
        if not isinstance(user_roles, list) or not all(isinstance(r, str) for r in user_roles):
            raise InputError(f"{p}: user '{uid}': roles must be a list of role ids")
        for r in user_roles:
            if r not in roles:
                raise InputError(f"{p}: user '{uid}' has role '{r}', which is not defined under [roles.{r}]")
        dept = u.get("department")
        if dept is not None and dept not in {d.id for d in depts}:
            raise InputError(f"{p}: user '{uid}' is in department '{dept}', which is not defined")
        users.append(Person(uid, str(u["name"]), dept, list(user_roles)))
    ids = {u.id for u in users}
    for d in depts:
        if d.head is not None and d.head not in ids:
            raise InputError(f"{p}: department '{d.id}' has head '{d.head}', who is not a user")
        if d.parent is not None and d.parent not in {x.id for x in depts}:
            raise InputError(f"{p}: department '{d.id}' has parent '{d.parent}', which is not defined")
    return users, depts, roles


def split_ids(value: Any) -> list[str]:
    """A candidate list from an attribute value: a comma-separated string or a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple, set)):
        out = []
        for v in value:
            out.extend(split_ids(v))
        return out
    return [str(value)]
