"""Counting the SQL statements an Engine sends: a SQLAlchemy event listener on its connections.

Statement counts are deterministic (unlike time), so a test can hold the hot path to a bound:
tests/test_statements.py. `python bench/statements.py` prints the count per command of one
instance of bench/two_tasks.bpmn (start, task list, complete, ...), with the statements.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


class StatementCounter:
    """Records every statement sent on an Engine's connections while `counting()` is active
    (BEGIN and COMMIT included: each is a round trip to the database)."""

    def __init__(self, engine: Any) -> None:
        engine._connect()
        self._sa = engine._sa
        self.statements: list[str] = []
        self._on = False
        event.listen(self._sa, "before_cursor_execute", self._statement)
        event.listen(self._sa, "commit", self._commit)

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self._on:
            self.statements.append(" ".join(statement.split()))

    def _commit(self, conn: Any) -> None:
        if self._on:
            self.statements.append("COMMIT")

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        self.statements = []
        self._on = True
        try:
            yield self.statements
        finally:
            self._on = False

    def close(self) -> None:
        event.remove(self._sa, "before_cursor_execute", self._statement)
        event.remove(self._sa, "commit", self._commit)


def per_completion(url: str, show: bool = False) -> dict[str, int]:
    """Statements per command for one instance of the benchmark process, warm caches."""
    sys.path.insert(0, str(ROOT))
    from engine import Engine

    first = Engine(url)
    first.init()
    first.close()
    eng = Engine(url)
    eng.load_directory(ROOT / "tests" / "bpmn" / "org.toml")
    eng.deploy([HERE / "two_tasks.bpmn"], actor="dora")
    counter = StatementCounter(eng)
    out: dict[str, int] = {}
    for round_ in range(2):  # the first round warms the caches
        with counter.counting() as st:
            iid = eng.start("bench_two_tasks", actor="bob")
        out["start"] = len(st)
        for n in (1, 2):
            with counter.counting() as st:
                [t] = eng.tasks("bob", instance_id=iid)
            out["tasks"] = len(st)
            with counter.counting() as st:
                eng.complete(t.id, "bob", {"ok": True})
            out[f"complete {n}"] = len(st)
            if show and round_ == 1:
                print(f"-- complete {n}: {len(st)} statements")
                for s in st:
                    print("  ", s[:150])
    counter.close()
    eng.close()
    return out


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        url = sys.argv[1] if len(sys.argv) > 1 else str(Path(tmp) / "statements.db")
        print(per_completion(url, show=True))
