"""Form validation on completion: every failing field is reported and nothing is stored on failure.

Task_fill of user_task uses forms/simple.json: `name` (string, required) and `amount` (integer, minimum 0).
"""

from __future__ import annotations

from typing import Any

import pytest

from engine import Engine, FormError, InputError
from helpers import assert_roundtrip, complete, status, task_by_element


def start_fill(engine: Engine) -> tuple[int, Any]:
    iid = engine.start("user_task", {"origin": "start"}, actor="alice")
    assert_roundtrip(engine, iid)
    return iid, task_by_element(engine, iid, "Task_fill")


def snapshot(engine: Engine, iid: int, task_id: int) -> dict[str, Any]:
    return {
        "instance": engine.instance(iid),
        "history": [(e.seq, e.type, e.hash) for e in engine.history(iid)],
        "task_data": engine.task_data(task_id),
        "task": engine.task(task_id),
    }


def refused(engine: Engine, task_id: int, data: Any, error: type[Exception] = FormError) -> Any:
    with pytest.raises(error) as info:
        engine.complete(task_id, "alice", data)
    return info.value


def paths(err: FormError) -> list[str]:
    return [p for p, _ in err.errors]


@pytest.mark.parametrize(("submitted", "field"), [
    ({}, "$.name"),
    ({"amount": 3}, "$.name"),
    ({"name": 5}, "$.name"),
    ({"name": None}, "$.name"),
    ({"name": "Ann", "amount": "ten"}, "$.amount"),
    ({"name": "Ann", "amount": 2.5}, "$.amount"),
    ({"name": "Ann", "amount": -1}, "$.amount"),
], ids=["missing_name", "missing_name_with_amount", "name_not_string", "name_null", "amount_not_number",
        "amount_not_integer", "amount_negative"])
def test_complete__invalid_form_data__raises_form_error_naming_the_field(engine: Engine, submitted: dict[str, Any],
                                                                       field: str) -> None:
    iid, t = start_fill(engine)
    before = snapshot(engine, iid, t.id)

    err = refused(engine, t.id, submitted)

    assert err.form_key == "simple"
    assert paths(err) == [field]
    assert all(isinstance(why, str) and why for _, why in err.errors)
    assert field in err.message
    assert snapshot(engine, iid, t.id) == before


def test_complete__missing_name_and_negative_amount__both_are_listed(engine: Engine) -> None:
    iid, t = start_fill(engine)
    before = snapshot(engine, iid, t.id)

    err = refused(engine, t.id, {"amount": -5})

    assert sorted(paths(err)) == ["$.amount", "$.name"]
    reasons = dict(err.errors)
    assert "name" in reasons["$.name"]
    assert "-5" in reasons["$.amount"] or "minimum" in reasons["$.amount"]
    assert snapshot(engine, iid, t.id) == before


def test_complete__wrong_types_in_two_fields__both_are_listed(engine: Engine) -> None:
    iid, t = start_fill(engine)
    before = snapshot(engine, iid, t.id)

    err = refused(engine, t.id, {"name": 5, "amount": "ten"})

    assert sorted(paths(err)) == ["$.amount", "$.name"]
    assert snapshot(engine, iid, t.id) == before


def test_complete__failed_validation_stores_nothing_then_valid_data_completes(engine: Engine) -> None:
    iid, t = start_fill(engine)
    before = snapshot(engine, iid, t.id)

    for bad in [{}, {"name": 1, "amount": -1}, {"name": "Ann", "amount": -1}]:
        refused(engine, t.id, bad)
        after = snapshot(engine, iid, t.id)
        assert after == before
        assert after["task"].state == "open"
        assert after["task"].completed_by is None
        assert after["instance"]["status"] == "running"
        assert "amount" not in after["task_data"] and "name" not in after["task_data"]
        assert_roundtrip(engine, iid)

    complete(engine, iid, "Task_fill", {"name": "Ann", "amount": 0}, user="alice")

    assert status(engine, iid) == "completed"
    assert engine.instance(iid)["data"] == {"origin": "start", "name": "Ann", "amount": 0}
    completed = [e for e in engine.history(iid) if e.type == "task_completed"]
    assert len(completed) == 1 and completed[0].payload["data"] == {"name": "Ann", "amount": 0}


def test_complete__score_above_maximum__is_refused(engine: Engine) -> None:
    iid = engine.start("business_rule", actor="alice")
    t = task_by_element(engine, iid, "Task_score")
    before = snapshot(engine, iid, t.id)

    err = refused(engine, t.id, {"score": 101})

    assert err.form_key == "score"
    assert paths(err) == ["$.score"]
    assert snapshot(engine, iid, t.id) == before


@pytest.mark.parametrize("submitted", [["name", "Ann"], "name=Ann", 42, True],
                         ids=["list", "string", "number", "boolean"])
def test_complete__data_not_a_json_object__raises_input_error(engine: Engine, submitted: Any) -> None:
    iid, t = start_fill(engine)
    before = snapshot(engine, iid, t.id)

    refused(engine, t.id, submitted, InputError)

    assert snapshot(engine, iid, t.id) == before


@pytest.mark.parametrize("submitted", [{"name": "Ann", "amount": float("nan")}, {"name": {"a", "b"}}],
                         ids=["nan", "set"])
def test_complete__values_that_are_not_json__raise_input_error(engine: Engine, submitted: dict[str, Any]) -> None:
    iid, t = start_fill(engine)
    before = snapshot(engine, iid, t.id)

    refused(engine, t.id, submitted, InputError)

    assert snapshot(engine, iid, t.id) == before


def test_start__data_not_a_json_object__raises_input_error(engine: Engine) -> None:
    before = engine.instances()

    with pytest.raises(InputError):
        engine.start("user_task", ["not", "an", "object"], actor="alice")  # type: ignore[arg-type]

    assert engine.instances() == before
