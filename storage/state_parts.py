"""Instance states stored in parts (format 2): the head in `instances.state`, each task a row of
`state_parts`, changes applied by a trigger from `instances.state_changes` (migration 0013).

Two layouts of format 2, told apart by the key the head carries:

* `LAYOUT_KEY` (written now): the head is the top workflow without its tasks and subprocesses;
  it lists the top workflow's task ids and the ids of its subprocesses, in order. Each subprocess,
  without its tasks but listing their ids, is a part of its own (`SUB_PREFIX` + its id). A command
  that changes one subprocess rewrites that part only, not a listing of every task.
* `PARTS_KEY` (written until then, still read): the head holds every subprocess, without tasks,
  and lists the task ids of every workflow.

This module only moves JSON text around; what a part holds is the engine's business
(engine/state.py `StateSerializer.dumps_parts`).
"""

from __future__ import annotations

import json
from typing import Any

PARTS_KEY = "tigao_parts"  # in a head: workflow ("" for the top one, else its subprocess id) -> part ids
LAYOUT_KEY = "tigao_layout"  # in a head: {"tasks": top task ids, "subprocesses": subprocess ids}
SUB_PREFIX = "@"  # the part of a subprocess: "@" + its id
SUB_TASKS_KEY = "tigao_tasks"  # in a subprocess's part: its task ids
FORMAT_PARTS = 2

SQLITE_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS instances_state_parts AFTER UPDATE OF state_changes ON instances
WHEN NEW.state_changes IS NOT NULL
BEGIN
    DELETE FROM state_parts WHERE instance_id = NEW.id
        AND (json_extract(NEW.state_changes, '$.all') = 1
             OR part IN (SELECT value FROM json_each(NEW.state_changes, '$.drop')));
    INSERT OR REPLACE INTO state_parts (instance_id, part, body)
        SELECT NEW.id, key, value FROM json_each(NEW.state_changes, '$.put');
    UPDATE instances SET state_changes = NULL WHERE id = NEW.id;
END
"""

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION tigao_state_parts() RETURNS trigger AS $$
BEGIN
    IF NEW.state_changes IS NOT NULL THEN
        DELETE FROM state_parts WHERE instance_id = NEW.id
            AND (COALESCE(CAST(NEW.state_changes AS jsonb) ->> 'all', 'false') = 'true'
                 OR part IN (SELECT jsonb_array_elements_text(CAST(NEW.state_changes AS jsonb) -> 'drop')));
        INSERT INTO state_parts (instance_id, part, body)
            SELECT NEW.id, key, value FROM jsonb_each_text(CAST(NEW.state_changes AS jsonb) -> 'put')
            ON CONFLICT (instance_id, part) DO UPDATE SET body = EXCLUDED.body;
        NEW.state_changes := NULL;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""

PG_TRIGGER = ("CREATE TRIGGER instances_state_parts BEFORE UPDATE ON instances "
              "FOR EACH ROW EXECUTE FUNCTION tigao_state_parts()")


def compose(head: str, parts: dict[str, str]) -> str:
    """The whole state of a head and its parts, as one JSON text; it keeps the head's layout key
    (so the loader knows what the database holds)."""
    dct = json.loads(head)
    layout = dct.get(LAYOUT_KEY)
    if layout is not None:
        dct["tasks"] = {i: json.loads(parts[i]) for i in layout["tasks"]}
        subs = {}
        for sp_id in layout["subprocesses"]:
            sp = json.loads(parts[SUB_PREFIX + sp_id])
            sp["tasks"] = {i: json.loads(parts[i]) for i in sp.pop(SUB_TASKS_KEY)}
            subs[sp_id] = sp
        dct["subprocesses"] = subs
        return json.dumps(dct)
    listing = dct.get(PARTS_KEY) or {}
    for owner, ids in listing.items():
        target = dct if owner == "" else dct["subprocesses"][owner]
        target["tasks"] = {i: json.loads(parts[i]) for i in ids}
    return json.dumps(dct)


def subprocess_part(sp: dict[str, Any], task_ids: list[str]) -> dict[str, Any]:
    """What the part of a subprocess holds: its dict without its tasks, and their ids."""
    out = {k: v for k, v in sp.items() if k != "tasks"}
    out[SUB_TASKS_KEY] = task_ids
    return out


def bare(dct: dict[str, Any]) -> dict[str, Any]:
    """A composed state's dict without the keys of its layout in parts: SpiffWorkflow's own."""
    dct.pop(PARTS_KEY, None)
    dct.pop(LAYOUT_KEY, None)
    return dct


def changes(before: dict[str, str] | None, after: dict[str, str]) -> dict[str, Any] | None:
    """What to write so the stored parts `before` (None: unknown, replace them all) become `after`."""
    if before is None:
        return {"all": True, "put": after, "drop": []}
    put = {k: v for k, v in after.items() if before.get(k) != v}
    drop = [k for k in before if k not in after]
    return {"put": put, "drop": drop} if put or drop else None
