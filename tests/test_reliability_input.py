"""No internal error (exit 1) on input that is merely odd: each case ends with its error class's
exit code and a sentence that says what to fix; a fuzz test over the CLI's JSON and id arguments
holds it there."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import main
from conftest import BPMN, ORG, set_simulated
from engine import Engine

NO_ENV = {"TIGAO_USER": None, "TIGAO_DB": None}
INTERNAL = ("internal error", "Traceback")


def tigao(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args], env=NO_ENV)


def refused(result: Result, code: int, *words: str) -> None:
    assert result.exit_code == code, f"exit {result.exit_code}, expected {code}: {result.output!r}"
    assert not any(w in result.output for w in INTERNAL), result.output
    for w in words:
        assert w.lower() in result.output.lower(), result.output


@pytest.fixture
def db(db_url: str) -> str:
    set_simulated(db_url)
    eng = Engine(db_url)
    eng.load_directory(ORG)
    eng.deploy([BPMN])
    eng.start("user_task", actor="alice")
    eng.close()
    return db_url


def _task(db: str) -> str:
    eng = Engine(db)
    tid = eng.tasks(scope="all")[0].id
    eng.close()
    return str(tid)


def test_form_data__invalid_utf8_and_lone_surrogates__exit_3(db: str, tmp_path: Path) -> None:
    task = _task(db)
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"name": "\xff\xfe"}')
    refused(tigao(db, "complete", task, "--as", "alice", "--data", f"@{bad}"), 3, "not UTF-8", "byte 10")
    refused(tigao(db, "complete", task, "--as", "alice", "--data", '{"name": "\\ud800"}'), 3, "not valid UTF-8")
    # an undecodable command-line byte reaches Python as a lone surrogate (surrogateescape)
    refused(tigao(db, "complete", task, "--as", "alice", "--data", '{"name": "\udcff"}'), 3, "not valid UTF-8")
    refused(tigao(db, "start", "user_task", "--as", "alice", "--business-key", "\udcff"), 3, "UTF-8")
    assert Engine(db).task(int(task)).state == "open"


def test_form_data__a_5000_digit_integer__exit_3(db: str, tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text('{"name": "x", "n": ' + "9" * 5000 + "}")
    refused(tigao(db, "complete", _task(db), "--as", "alice", "--data", f"@{big}"), 3, "4,300 digits")


@pytest.mark.parametrize("n", [10**20, 2**63])
def test_ids_beyond_64_bits__exit_3_on_both_databases(db: str, n: int) -> None:
    for args in (["show", str(n)], ["complete", str(n), "--as", "alice"], ["history", str(n)],
                 ["tasks", "--all", "--instance", str(n)], ["claim", str(n), "--as", "alice"]):
        refused(tigao(db, *args), 3, "out of range")


def test_clock_set__year_9999__refused_and_the_clock_still_works(db: str) -> None:
    refused(tigao(db, "clock", "set", "9999-12-31T00:00:00Z", "--as", "dora"), 3, "too far ahead")
    assert tigao(db, "clock").exit_code == 0
    assert tigao(db, "clock", "advance", "P1D", "--as", "dora").exit_code == 0


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_export_out__unwritable_device__exit_3(db: str) -> None:
    refused(tigao(db, "export", "--all", "--out", "/dev/full"), 3, "cannot write", "no space")


def test_data_file__device_fifo_and_oversize__refused_before_reading(db: str, tmp_path: Path) -> None:
    task = _task(db)
    refused(tigao(db, "complete", task, "--as", "alice", "--data", "@/dev/zero"), 3, "not a regular file")
    fifo = tmp_path / "x.json"
    os.mkfifo(fifo)
    refused(tigao(db, "complete", task, "--as", "alice", "--data", f"@{fifo}"), 3, "not a regular file")
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:
        f.truncate(6 * 1024 * 1024)  # sparse: its size is checked, its bytes are never read
    refused(tigao(db, "complete", task, "--as", "alice", "--data", f"@{huge}"), 3, "the limit is")


# ----------------------------------------------------------------------------- fuzzing
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
DATA = st.one_of(
    st.text(max_size=40),  # anything at all, lone surrogates included
    JSONISH.map(json.dumps),
    st.integers(min_value=0, max_value=6000).map(lambda n: '{"name": ' + "7" * max(1, n) + "}"),
)
IDS = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from(["0", "1", "-1", "1e3", "x"]))
ALLOWED = {0, 2, 3, 5, 6, 7, 8}


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=DATA, task_id=IDS, command=st.sampled_from(["complete", "start", "message", "claim", "show"]))
def test_fuzz__cli_json_and_id_arguments__never_an_internal_error(db: str, data: str, task_id: object,
                                                                  command: str) -> None:
    tid = str(task_id)
    args = {
        "complete": ["complete", tid, "--as", "bob", "--data", data],
        "start": ["start", "user_task", "--as", "alice", "--data", data],
        "message": ["message", "Message_go", "--as", "alice", "--data", data, "--instance", tid],
        "claim": ["claim", tid, "--as", "carol"],
        "show": ["show", tid],
    }[command]
    result = tigao(db, *args)
    assert result.exit_code in ALLOWED, (args, result.output)
    assert not any(w in result.output for w in INTERNAL), (args, result.output)
