"""The instance's state as it ages: a loop taken 1,000 times, and the campaign year.

* Loop (bench/loop.bpmn: a user task in a loop through an exclusive gateway): the time of a
  completion at loop iteration 1, 10, 100 and 1,000 against one on a fresh instance, the stored
  state's size and the bytes each command writes (the parameters of its INSERT and UPDATE
  statements, counted by a SQLAlchemy event listener), 3 rounds, min / median / max.
* Campaign year (`tigao demo`'s simulation, a smaller organisation by default): the state bytes
  written to the campaign instance over the year against its final stored state.

Prints the ratios against the targets of the runtime issue: a completion at iteration 1,000 /
on a fresh instance <= 1.3; state bytes written over the year / final state <= 3.

    .venv/bin/python bench/bench_state.py                  # a few minutes
    .venv/bin/python bench/bench_state.py --rounds 1 --skip-campaign
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import event

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from common import say, table, temp_sqlite  # noqa: E402

CHECKPOINTS = (1, 10, 100, 1000)
SAMPLES = 7  # completions timed at each checkpoint (the median is kept)
TARGET_LOOP = 1.3
TARGET_YEAR = 3.0
_SET = re.compile(r"UPDATE (\w+) SET (.*?) WHERE", re.S)


class WriteMeter:
    """Bytes in the parameters of INSERT and UPDATE statements, in total and, for the state
    columns of `instances` (`state` and `state_changes`), per instance."""

    def __init__(self, engine: Any) -> None:
        engine._connect()
        self._sa = engine._sa
        self.total = 0
        self.state_by_instance: dict[int, int] = defaultdict(int)
        self.writes_by_instance: dict[int, int] = defaultdict(int)  # state writes (one per command)
        event.listen(self._sa, "before_cursor_execute", self._on)

    @staticmethod
    def _size(value: Any) -> int:
        if isinstance(value, str):
            return len(value.encode("utf-8"))
        if isinstance(value, (bytes, bytearray, memoryview)):
            return len(value)
        if value is None:
            return 0
        return len(str(value))

    def _on(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        head = statement.lstrip()[:6].upper()
        if head not in ("INSERT", "UPDATE"):
            return
        rows = parameters if executemany else [parameters]
        if rows and not isinstance(rows[0], (dict, list, tuple)):
            rows = [rows]  # one flat row (as in a batched INSERT of several rows)
        for row in rows:
            values = list(row.values()) if isinstance(row, dict) else list(row or ())
            self.total += sum(self._size(v) for v in values)
        m = _SET.match(statement.strip())
        if m and m.group(1) == "instances" and not isinstance(rows[0], dict):
            columns = [c.strip().split("=")[0] for c in m.group(2).split(",")]
            held = [columns.index(c) for c in ("state", "state_changes") if c in columns]
            if held:  # the state's head and the parts it changed (storage/state_parts.py)
                where = statement[m.end():]
                at_id = len(columns) + where.split("instances.id")[0].count("?")
                for row in rows:
                    self.state_by_instance[int(row[at_id])] += sum(self._size(row[i]) for i in held)
                    self.writes_by_instance[int(row[at_id])] += 1

    def close(self) -> None:
        event.remove(self._sa, "before_cursor_execute", self._on)


def _loop_round() -> dict[str, Any]:
    from engine import Engine
    from storage.models import Instance

    with temp_sqlite("state.db") as url:
        Engine(url).init()
        eng = Engine(url)
        eng.load_directory(ROOT / "tests" / "bpmn" / "org.toml")
        eng.deploy([HERE / "loop.bpmn", HERE / "forms" / "ack.json"], actor="dora")
        meter = WriteMeter(eng)

        def complete_once(iid: int) -> tuple[float, float, int]:
            [t] = eng.tasks(scope="all", instance_id=iid)
            before = meter.total
            w0, c0 = time.perf_counter(), time.process_time()
            eng.complete(t.id, "bob", {"ok": False})
            return time.process_time() - c0, time.perf_counter() - w0, meter.total - before

        def stored(iid: int) -> int:
            with eng._tx(read=True) as s:
                return len(s.get(Instance, iid).state.encode("utf-8"))

        def fresh_once() -> tuple[float, float, int]:
            return complete_once(eng.start("bench_loop", actor="bob"))

        fresh_once()  # warms the caches
        iid = eng.start("bench_loop", actor="bob")
        done = 0
        out: dict[str, Any] = {}
        for point in CHECKPOINTS:
            while done < point - 1:
                complete_once(iid)
                done += 1
            # Completions at this iteration alternate with ones on fresh instances, so both see
            # the same machine (other work on it slows both alike).
            aged, fresh = [], []
            for _ in range(SAMPLES):
                fresh.append(fresh_once())
                aged.append(complete_once(iid))
                done += 1
            out[point] = {"cpu": statistics.median(x[0] for x in aged), "wall": statistics.median(x[1] for x in aged),
                          "fresh_cpu": statistics.median(x[0] for x in fresh),
                          "fresh_wall": statistics.median(x[1] for x in fresh),
                          "bytes": statistics.median(x[2] for x in aged),
                          "fresh_bytes": statistics.median(x[2] for x in fresh), "state": stored(iid)}
        meter.close()
        eng.close()
        return out


def _campaign_year(staff: int | None, complaints: int) -> dict[str, Any]:
    import campaign.demo as demo
    from engine import Engine
    from storage.models import Instance

    meters: list[WriteMeter] = []
    real_engine = demo.Engine

    class Metered(real_engine):  # type: ignore[misc, valid-type]
        def _connect(self, create: bool = False) -> Any:
            fresh = self._sa is None
            sa = super()._connect(create)
            if fresh:
                meters.append(WriteMeter(self))
            return sa

    with temp_sqlite("year.db") as url:
        demo.Engine = Metered  # the demo's own engine, with the meter on its connections
        t0 = time.perf_counter()
        try:
            demo.run_demo(url, seed=1, complaints=complaints, staff_limit=staff)
        finally:
            demo.Engine = real_engine
        took = time.perf_counter() - t0
        eng = Engine(url)
        with eng._tx(read=True) as s:
            insts = list(s.query(Instance))
            final = {i.id: len(i.state.encode("utf-8")) for i in insts}
            campaign = max(i.id for i in insts if i.process_key == "campaign")
        eng.close()
    written: dict[int, int] = defaultdict(int)
    writes: dict[int, int] = defaultdict(int)
    for m in meters:
        for k, v in m.state_by_instance.items():
            written[k] += v
        for k, v in m.writes_by_instance.items():
            writes[k] += v
    return {"took": took, "campaign_written": written[campaign], "campaign_final": final[campaign],
            "campaign_writes": writes[campaign],
            "all_written": sum(written.values()), "all_final": sum(final.values()), "instances": len(final)}


def _mmm(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-campaign", action="store_true")
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--staff", type=int, default=2,
                        help="further staff per department in the campaign year (0 or more; -1: the whole bureau)")
    parser.add_argument("--complaints", type=int, default=24)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")

    if not args.skip_loop:
        _loop_report(args.rounds)
    if not args.skip_campaign:
        _year_report(args.staff, args.complaints)


def _loop_report(n_rounds: int) -> None:
    rounds = []
    for n in range(n_rounds):
        say(f"loop, round {n + 1} of {n_rounds} ...")
        rounds.append(_loop_round())
    rows = []
    for point in CHECKPOINTS:
        ratios = [r[point]["cpu"] / r[point]["fresh_cpu"] for r in rounds]
        wall = [r[point]["wall"] / r[point]["fresh_wall"] for r in rounds]
        rows.append([f"iteration {point:,}", statistics.median(r[point]["cpu"] for r in rounds) * 1000,
                     statistics.median(r[point]["fresh_cpu"] for r in rounds) * 1000,
                     rounds[0][point]["state"], int(statistics.median(r[point]["bytes"] for r in rounds)),
                     int(statistics.median(r[point]["fresh_bytes"] for r in rounds)), _mmm(ratios), _mmm(wall)])
    say()
    say(table(["completion at", "CPU ms", "fresh CPU ms", "stored state B", "written B", "fresh written B",
               "÷ fresh, CPU (min/med/max)", "÷ fresh, wall"], rows))
    loop_ratios = [r[1000]["cpu"] / r[1000]["fresh_cpu"] for r in rounds]
    say()
    say(f"a completion at iteration 1,000 ÷ on a fresh instance (CPU time): {_mmm(loop_ratios)} "
        f"(target <= {TARGET_LOOP}; {'met' if statistics.median(loop_ratios) <= TARGET_LOOP else 'NOT met'})")



def _year_report(staff: int, complaints: int) -> None:
    say()
    say("campaign year ...")
    year = _campaign_year(None if staff < 0 else staff, complaints)
    ratio = year["campaign_written"] / year["campaign_final"]
    say(table(["campaign year", "value"], [
        ["wall time, s", year["took"]],
        ["instances", year["instances"]],
        ["campaign instance: state bytes written", year["campaign_written"]],
        ["campaign instance: final stored state, bytes", year["campaign_final"]],
        ["campaign instance: state writes (commands that changed it)", year["campaign_writes"]],
        ["campaign instance: bytes per state write", year["campaign_written"] / max(1, year["campaign_writes"])],
        [f"the same, that a ratio of {TARGET_YEAR:g} allows ({TARGET_YEAR:g} x final ÷ writes)",
         TARGET_YEAR * year["campaign_final"] / max(1, year["campaign_writes"])],
        ["all instances: state bytes written", year["all_written"]],
        ["all instances: final stored state, bytes", year["all_final"]],
    ]))
    say()
    say(f"state bytes written over the year ÷ final stored state (campaign instance): {ratio:.1f} "
        f"(target <= {TARGET_YEAR}; {'met' if ratio <= TARGET_YEAR else 'NOT met'})")

if __name__ == "__main__":
    main()
