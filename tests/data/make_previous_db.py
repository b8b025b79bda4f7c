"""Make tests/data/previous/tigao.db: a database as a previous release of the engine stored it.

Run it with the source tree of that release (a checkout of the commit named in
tests/data/previous/README.md), so the database holds that release's schema and state format:

    git worktree add /tmp/prev <commit>
    .venv/bin/python tests/data/make_previous_db.py --source /tmp/prev

It holds instances of tests/bpmn diagrams and of the campaign's complaint in various states
(running with open tasks and timers, a loop several passes in, a join half-way, completed), on a
simulated clock. tests/test_previous_db.py copies it, upgrades it as `tigao init` does, verifies
it (hash chain and replay) and runs the running instances to completion.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "previous" / "tigao.db"
T0 = datetime(2012, 3, 1, 9, 0, tzinfo=timezone.utc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="source tree of the release that makes the database")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    source = Path(args.source).resolve()
    sys.path.insert(0, str(source))
    sys.path.insert(0, str(source / "tests"))
    from engine import Engine, Worker
    import engine as engine_pkg

    assert Path(engine_pkg.__file__).resolve().is_relative_to(source), engine_pkg.__file__
    from campaign.demo import FORMS, ORG as CAMPAIGN_ORG, PROCESSES
    from helpers import complete  # tests/helpers.py of that release

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    url = str(out)
    e = Engine(url)
    e.init(simulated=T0)
    bpmn = source / "tests" / "bpmn"
    e.load_directory(bpmn / "org.toml")
    e.deploy([bpmn / f"{name}.bpmn" for name in ("loop_back", "parallel_loop", "timers", "multi_instance",
                                                 "call_activity", "call_child", "subprocess", "message_start")]
             + [bpmn / "forms"])

    done = e.start("loop_back", actor="alice")  # completed after two passes
    for approve in (False, True):
        complete(e, done, "Task_draft", {"text": "draft"}, user="alice")
        complete(e, done, "Task_review", {"approve": approve}, user="carol")
    loop = e.start("loop_back", actor="alice")  # six passes in, waiting at the draft
    for n in range(6):
        complete(e, loop, "Task_draft", {"text": f"draft {n}"}, user="alice")
        complete(e, loop, "Task_review", {"approve": False}, user="carol")
    par = e.start("parallel_loop", actor="alice")  # second pass, one branch at the join
    for element, data in (("Task_a", {"a_value": "a1"}), ("Task_b", {"b_value": "b1"}),
                          ("Task_a", {"a_value": "a2"})):
        complete(e, par, element, data)
    e.start("timers", actor="alice")  # open timers
    mi = e.start("multi_instance", actor="dora")  # one review of three done
    complete(e, mi, "Task_review", {"approve": True}, user="alice")
    e.start("call_parent", actor="alice")
    e.start("subprocess", actor="alice")
    e.message("complaint", {"text": "bus late at 03:00"}, actor="bob")
    e.advance_clock(timedelta(hours=1))
    Worker(e).run_once()

    # The campaign's complaint, under the campaign's organisation.
    e.load_directory(CAMPAIGN_ORG)
    e.deploy([PROCESSES / name for name in ("complaint.bpmn", "rectification.bpmn", "disposition.dmn",
                                            "routing.dmn")]
             + [FORMS / f"{name}.json" for name in ("complaint_register", "complaint_feedback", "complaint_public", "investigation",
                                                     "discipline_decision", "rectification_report",
                                                     "verification")])
    e.set_clock(datetime(2012, 5, 7, 9, 0, tzinfo=timezone(timedelta(hours=8))))
    e.message("complaint_received", {"complainant": "王先生", "contact": "13800000000"})  # to register
    second = e.message("complaint_received", {"complainant": "李女士", "contact": "13900000000"})["started"][0]
    [t] = [t for t in e.tasks(scope="all", instance_id=second) if t.element_id == "Task_register_complaint"]
    who = sorted(e.directory().group_members(t.candidate_groups[0]))[0] if t.candidate_groups else t.assignee
    e.claim(t.id, who)
    e.complete(t.id, who, {"source": "hotline", "category": 3, "severity": "minor", "repeated": False,
                           "department": "finance", "person": "u23", "description": "審批事項超過承諾時限未辦結",
                           "sensitive_matter": "none"})
    e.close()
    import sqlite3

    with sqlite3.connect(out) as db:  # checked in: as small as it can be
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with sqlite3.connect(out) as db:
        db.execute("VACUUM")
    print(f"{out}: {out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
