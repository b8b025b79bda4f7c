"""Words the pages show that come from data (states, event types, notification kinds, error titles).

They are listed here with `N_()` so that message extraction finds them; templates translate the
value with `_(value)` at render time.
"""

from __future__ import annotations


def N_(text: str) -> str:  # noqa: N802 - the conventional marker name for extraction
    return text


STATES = [N_("open"), N_("completed"), N_("cancelled"), N_("running"), N_("failed")]
# History event types as people read them (unknown types show as they are).
EVENT_LABELS = {
    "instance_started": N_("Started"), "task_created": N_("Task created"), "task_claimed": N_("Task claimed"),
    "task_unclaimed": N_("Task given back"), "task_delegated": N_("Task delegated"),
    "task_completed": N_("Task completed"), "message_received": N_("Message received"),
    "timer_fired": N_("Timer fired"), "task_overdue": N_("Task overdue"), "task_escalated": N_("Task escalated"),
    "task_follow_up": N_("Follow-up reminder"), "task_cancelled": N_("Task withdrawn"),
    "script_failed": N_("Script failed"), "instance_completed": N_("Completed"),
    "instance_cancelled": N_("Cancelled"),
}
NOTIFICATION_KINDS = [N_("overdue"), N_("reminder"), N_("escalation"), N_("follow_up")]
CHANGE_KINDS = [N_("added"), N_("removed"), N_("changed")]
# The diagram legend's words (web/diagram draws them; the page passes them translated).
LEGEND_WORDS = (N_("completed"), N_("active"), N_("waiting"), N_("cancelled"), N_("failed"), N_("added"),
                N_("changed"), N_("removed"))
ERROR_TITLES = [N_("Please check your input"), N_("Please log in"), N_("Not allowed"), N_("Not found"),
                N_("Someone else changed this first"), N_("Please correct the form"), N_("Too many requests"),
                N_("The database is not available"), N_("Something went wrong")]
# Incident kinds and the states of work in progress (migration and modification pages).
INCIDENT_KINDS = [N_("timer"), N_("handler"), N_("external")]
LIVE_STATES = [N_("ready"), N_("waiting"), N_("started"), N_("error")]
# The events of incidents, external tasks, migration and modification (added to EVENT_LABELS).
EVENT_LABELS.update({
    "incident_opened": N_("Incident opened"), "incident_resolved": N_("Incident resolved"),
    "external_task_created": N_("External task created"), "external_task_locked": N_("External task locked"),
    "external_task_completed": N_("External task completed"), "external_task_failed": N_("External task failed"),
    "external_task_bpmn_error": N_("BPMN error reported"), "external_task_unlocked": N_("External task unlocked"),
    "external_task_lock_extended": N_("Lock extended"), "external_task_cancelled": N_("External task withdrawn"),
    "handler_completed": N_("Handler step done"), "instance_migrated": N_("Moved to another version"),
    "activity_cancelled": N_("Activity cancelled"), "started_before": N_("Started before an element"),
    "variable_set": N_("Variable set"),
})
