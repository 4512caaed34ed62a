"""A workflow run: a script's output on one agent becomes the notes of a schedule entry in the PSA."""

from __future__ import annotations

from typing import Any

from mspflow_tacticalrmm.sim import FILESERVER_ID, LAPTOP_ID
from sqlalchemy import select

from mspflow.db.models import ScheduleEntry, User

TECH = "u-ada"
STEPS = [
    {"path": "check", "action_id": "tacticalrmm.agents.run_script",
     "input": {"agent_id": FILESERVER_ID, "script_id": 3}},
    {"path": "book", "action_id": "scheduling.create_entry",
     "input": {"assigned_user_ids": [TECH], "title": "Patch FS-01",
               "window": {"start": "2030-01-07T09:00:00Z", "end": "2030-01-07T10:00:00Z"},
               "notes": {"$ref": "steps.check.output.output"}}},
]


def add_tech(trmm: Any) -> None:
    with trmm.app.db.session() as s:
        s.add(User(tenant="acme", user_id=TECH, first_name="Ada", last_name="L", user_type="internal"))


def run_flow(trmm: Any, run_id: str, agent_id: str = FILESERVER_ID) -> tuple[Any, Any]:
    """What the engine does for STEPS: run each step, filling ``$ref`` from the earlier step's output."""
    check = trmm.app.execute("tacticalrmm.agents.run_script", tenant="acme", run_id=run_id, step_path="steps.check",
                             input={**STEPS[0]["input"], "agent_id": agent_id})
    if not check.ok:
        return check, None
    book = trmm.app.execute("scheduling.create_entry", tenant="acme", run_id=run_id, step_path="steps.book",
                            input={**STEPS[1]["input"], "notes": check.output["output"]})
    return check, book


def test_the_workflow_validates_with_a_reference_to_the_script_output(trmm: Any) -> None:
    report = trmm.app.validate_workflow(STEPS, tenant="acme")
    assert report["ok"], report


def test_script_output_becomes_the_schedule_entry_notes(trmm: Any) -> None:
    add_tech(trmm)
    check, book = run_flow(trmm, "run-flow-1")
    assert check.ok and book.ok, (check.to_json(), book and book.to_json())
    with trmm.app.db.sessions() as s:
        entry = s.execute(select(ScheduleEntry).where(ScheduleEntry.tenant == "acme")).scalar_one()
        assert entry.notes == "3 updates pending\nWARNING: reboot required\n" and entry.title == "Patch FS-01"

    again_check, again_book = run_flow(trmm, "run-flow-1")  # the run resumes: both steps replay
    assert again_check.replayed and again_book.replayed and len(trmm.sim.script_runs) == 1


def test_an_unreachable_agent_stops_the_flow_before_the_booking(trmm: Any) -> None:
    add_tech(trmm)
    check, book = run_flow(trmm, "run-flow-2", agent_id=LAPTOP_ID)
    assert not check.ok and check.error.details["reason"] == "AGENT_NOT_CONNECTED" and book is None
    with trmm.app.db.sessions() as s:
        assert s.execute(select(ScheduleEntry)).first() is None
