"""Shared helpers for the benchmarks: fresh databases, tables, progress lines and profiles.

Benchmarks are measurements, not tests: nothing here asserts a time.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ORG = ROOT / "tests" / "bpmn" / "org.toml"
TEST_BPMN = ROOT / "tests" / "bpmn"
T0 = datetime(2012, 3, 1, 9, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------------------------------------
# Databases


@contextmanager
def temp_sqlite(name: str = "bench.db") -> Iterator[str]:
    """A path for a new SQLite file in a temporary directory removed afterwards."""
    folder = tempfile.mkdtemp(prefix="tigao_bench_")
    try:
        yield os.path.join(folder, name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _pg_admin(url: str) -> tuple[Any, str]:
    from sqlalchemy import create_engine

    from storage.db import normalise_url

    sa_url = normalise_url(url)
    base = sa_url.rsplit("/", 1)[0]
    return create_engine(sa_url, isolation_level="AUTOCOMMIT"), base


@contextmanager
def temp_postgres(url: str, tag: str = "") -> Iterator[str]:
    """A fresh database `tigao_bench_<pid><tag>` on the server of `url` (which is used only as the
    admin connection), dropped at the end. Yields the new database's URL (not initialised)."""
    from sqlalchemy import text

    admin, base = _pg_admin(url)
    name = f"tigao_bench_{os.getpid()}{tag}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database(kind: str, pg_url: str | None = None, tag: str = "") -> Iterator[str]:
    """A fresh, empty database URL of `kind` ("sqlite" or "postgresql"), removed afterwards."""
    if kind == "sqlite":
        with temp_sqlite() as path:
            yield path
    else:
        assert pg_url
        with temp_postgres(pg_url, tag) as url:
            yield url


def describe_db(url: str) -> str:
    if "://" not in url or url.startswith("sqlite"):
        return "SQLite (WAL, synchronous=FULL)"
    return "PostgreSQL " + url.rsplit("@", 1)[-1]


def apply_pragmas(eng: Any, pragmas: list[str]) -> None:
    """Diagnostic only: run `PRAGMA x` on every new SQLite connection of `eng`, after the engine's
    own PRAGMAs (e.g. "synchronous=NORMAL", "cache_size=-65536"). The engine code is untouched."""
    if not pragmas:
        return
    from sqlalchemy import event

    sa = eng._connect()

    @event.listens_for(sa, "connect")
    def _extra(dbapi_conn: Any, _record: Any) -> None:  # registered after, so runs after, the engine's
        for p in pragmas:
            dbapi_conn.execute(f"PRAGMA {p}")

    sa.dispose()  # connections made before this point would lack the PRAGMAs


# ---------------------------------------------------------------------------------------------
# Output


def table(headers: list[str], rows: list[list[Any]], right: set[int] | None = None) -> str:
    """A small aligned text table. Columns in `right` (default: all but the first) align right."""
    right = set(range(1, len(headers))) if right is None else right
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        if abs(v) >= 0.1:
            return f"{v:.2f}"
        return f"{v:.4f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def say(text: str = "") -> None:
    print(text, flush=True)


def hms(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Prints a line every `pct` percent of `total`, with rate and estimated time left."""

    def __init__(self, label: str, total: int, pct: float = 5.0):
        self.label = label
        self.total = total
        self.step = max(1, int(total * pct / 100))
        self.start = time.perf_counter()
        self.next = self.step
        self.last = (self.start, 0)

    def tick(self, done: int) -> None:
        if done < self.next and done != self.total:
            return
        while self.next <= done:
            self.next += self.step
        now = time.perf_counter()
        el = now - self.start
        rate = done / el if el > 0 else 0.0
        recent = (done - self.last[1]) / (now - self.last[0]) if now > self.last[0] else 0.0
        self.last = (now, done)
        left = (self.total - done) / rate if rate > 0 else 0.0
        say(f"  {self.label}: {done:>9,}/{self.total:,} ({100 * done / self.total:5.1f}%)  "
            f"{rate:9,.1f}/s (last step {recent:,.1f}/s)  elapsed {hms(el)}  left ~{hms(left)}")


# ---------------------------------------------------------------------------------------------
# Profiles


def profile_call(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, pstats.Stats]:
    prof = cProfile.Profile()
    prof.enable()
    try:
        result = fn(*args, **kwargs)
    finally:
        prof.disable()
    return result, pstats.Stats(prof)


def top_cumulative(stats: pstats.Stats, n: int = 15) -> str:
    buf = io.StringIO()
    stats.stream = buf  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(n)
    text = buf.getvalue()
    # Shorten long site-packages paths so the lines stay readable.
    text = text.replace(str(ROOT) + "/", "")
    for marker in ("site-packages/",):
        while marker in text:
            i = text.index(marker)
            j = text.rfind(" ", 0, i) + 1
            text = text[:j] + text[i + len(marker):]
    return text.rstrip()


# Self time (tottime) grouped by where the code lives. Order matters: first match wins.
_GROUPS = [
    ("sqlite3 commit (fsync)", lambda f, n: f == "~" and "commit" in n and "sqlite3" in n),
    ("sqlite3 execute/fetch", lambda f, n: f == "~" and "sqlite3" in n),
    ("psycopg (PostgreSQL driver)", lambda f, n: "psycopg" in f or (f == "~" and "psycopg" in n)),
    ("SQLAlchemy (ORM, SQL compile)", lambda f, n: "/sqlalchemy/" in f),
    ("SpiffWorkflow serializer", lambda f, n: "/SpiffWorkflow/bpmn/serializer" in f
     or "/SpiffWorkflow/serializer" in f),
    ("SpiffWorkflow run (tasks, specs)", lambda f, n: "/SpiffWorkflow/" in f),
    ("json encode/decode", lambda f, n: "/json/" in f or (f == "~" and ("_json" in n or "json" in n))),
    ("jsonschema (form validation)", lambda f, n: "/jsonschema" in f or "referencing" in f),
    ("uuid", lambda f, n: "/uuid.py" in f),
    ("copy (deepcopy)", lambda f, n: "/copy.py" in f),
    ("Tigao engine/", lambda f, n: "/engine/" in f and str(ROOT) in f),
    ("Tigao storage/", lambda f, n: "/storage/" in f and str(ROOT) in f),
    ("datetime / time", lambda f, n: "datetime" in f or (f == "~" and ("datetime" in n or "time" in n))),
    ("logging", lambda f, n: "/logging/" in f),
]


def self_time_groups(stats: pstats.Stats) -> list[tuple[str, float, float]]:
    """[(group, seconds, share)] of self time, biggest first."""
    total = 0.0
    groups: dict[str, float] = {}
    entries = stats.stats.items()  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, tt, _ct, _callers) in entries:
        total += tt
        for label, match in _GROUPS:
            if match(filename, name):
                groups[label] = groups.get(label, 0.0) + tt
                break
        else:
            groups["other Python / builtins"] = groups.get("other Python / builtins", 0.0) + tt
    return sorted(((k, v, v / total if total else 0.0) for k, v in groups.items()), key=lambda x: -x[1])


def cumulative_of(stats: pstats.Stats, wanted: list[tuple[str, str, str]]) -> list[tuple[str, float, int]]:
    """Cumulative time and call count of named functions: (label, file suffix, function name)."""
    out = []
    for label, suffix, fname in wanted:
        ct, calls = 0.0, 0
        for (filename, _line, name), (_cc, nc, _tt, cum, _callers) in stats.stats.items():  # type: ignore
            if name == fname and filename.endswith(suffix):
                ct += cum
                calls += nc
        out.append((label, ct, calls))
    return out


def total_time(stats: pstats.Stats) -> float:
    return float(stats.total_tt)  # type: ignore[attr-defined]
