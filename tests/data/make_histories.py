"""Regenerate the saved audit histories under tests/data/histories/.

Run from the repository root: `.venv/bin/python tests/data/make_histories.py`. The files are
checked in, so a change in the engine that would replay old histories differently shows up as a
failing test (the spirit of Temporal's replay tests). `diverges_on_purpose.jsonl` is a doctored
copy whose chain was re-hashed after an input changed: the chain verifies, the replay must not.
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE.parent))

from conftest import BPMN, ORG, set_simulated  # noqa: E402
from engine import Engine, Worker  # noqa: E402
from engine.audit import Auditor  # noqa: E402
from engine.history import GENESIS, chain_hash  # noqa: E402
from helpers import complete  # noqa: E402

OUT = HERE / "histories"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = str(Path(tmp) / "h.db")
        Engine(url).init()
        set_simulated(url)
        e = Engine(url)
        e.load_directory(ORG)
        e.deploy([BPMN])
        runs = {}
        iid = e.start("parallel_loop", actor="alice")
        for element, data in (("Task_a", {"a_value": "a1"}), ("Task_b", {"b_value": "b1"}),
                              ("Task_b", {"b_value": "b2"}), ("Task_a", {"a_value": "a2"})):
            complete(e, iid, element, data)
        runs["parallel_loop"] = iid
        iid = e.start("timers", actor="alice")
        e.advance_clock(timedelta(days=6))
        Worker(e).run_once()
        complete(e, iid, "Task_late", {"ok": True})
        runs["timers"] = iid
        iid = e.message("complaint", {"text": "bus late at 03:00"}, actor="bob")["started"][0]
        complete(e, iid, "Task_handle", {"name": "handled"})
        runs["message_start"] = iid
        iid = e.start("multi_instance", actor="dora")
        for who in ("alice", "bob", "carol"):
            complete(e, iid, "Task_review", {"approve": who != "bob"}, user=who)
        runs["multi_instance"] = iid
        auditor = Auditor(e)
        auditor.seal("erin")
        for name, iid in runs.items():
            lines = list(auditor.export([iid]))
            (OUT / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        # The doctored copy: bob's review changed from reject to approve, chain re-hashed.
        records = [json.loads(x) for x in (OUT / "multi_instance.jsonl").read_text().splitlines()]
        prev = GENESIS
        for r in records:
            if r["kind"] != "event":
                continue
            if r["type"] == "task_completed" and r["payload"]["data"] == {"approve": False}:
                r["payload"]["data"] = {"approve": True}
            body = {k: r[k] for k in ("instance", "seq", "at", "actor", "type", "element", "task", "definition",
                                      "payload")}
            r["prev_hash"] = prev
            r["hash"] = prev = chain_hash(prev, body)
        for r in records:
            if r["kind"] == "instance":
                r["last_hash"] = prev
            if r["kind"] == "seal":
                r["heads"] = []
                r["root"] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        (OUT / "diverges_on_purpose.jsonl").write_text(
            "\n".join(json.dumps(r, ensure_ascii=False, sort_keys=True) for r in records) + "\n", encoding="utf-8")
        print(f"wrote {len(runs) + 1} histories to {OUT}")


if __name__ == "__main__":
    main()
