"""One exception hierarchy. Every error carries a message a person can act on and an exit code.

Exit codes (the command line's contract, documented in the README):
    1 internal error, 2 usage (wrong options), 3 bad input, 4 definition invalid,
    5 form data invalid, 6 not found, 7 not allowed, 8 conflict, 9 storage problem,
    10 script failed at run time, 11 verification failed (tampered or diverging history).
"""

from __future__ import annotations

from dataclasses import dataclass


class EngineError(Exception):
    """Root of every error the engine reports to a user."""

    exit_code = 1
    http_status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def details(self) -> list[str]:
        """Further lines (one per problem) shown under the message."""
        return []


class InputError(EngineError):
    """An argument or a value given by the user is unusable (not JSON, bad date, ...)."""

    exit_code = 3
    http_status = 400


@dataclass(frozen=True)
class Problem:
    """One problem in a definition bundle: where it is and what to fix."""

    file: str
    message: str
    element: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
        if self.element:
            where += f" [{self.element}]"
        return f"{where}: {self.message}"


class DefinitionError(EngineError):
    """A BPMN/DMN/form bundle failed validation; nothing was stored."""

    exit_code = 4
    http_status = 422

    def __init__(self, problems: list[Problem]):
        n = len(problems)
        first = str(problems[0]) if problems else "invalid definition"
        super().__init__(first if n == 1 else f"{n} problems in the definition; first: {first}")
        self.problems = problems

    def details(self) -> list[str]:
        return [str(p) for p in self.problems] if len(self.problems) > 1 else []


class FormError(EngineError):
    """Submitted task data does not satisfy the task's form schema."""

    exit_code = 5
    http_status = 422

    def __init__(self, form_key: str, errors: list[tuple[str, str]]):
        listed = "; ".join(f"{path}: {why}" for path, why in errors)
        super().__init__(f"form '{form_key}' rejected the data: {listed}")
        self.form_key = form_key
        self.errors = errors


class NotFound(EngineError):
    exit_code = 6
    http_status = 404


class NotAllowed(EngineError):
    exit_code = 7
    http_status = 403


class Conflict(EngineError):
    """The thing changed under you (completed already, changed by someone else)."""

    exit_code = 8
    http_status = 409


class StorageError(EngineError):
    """The database is missing, locked, unreachable or not a Tigao database."""

    exit_code = 9
    http_status = 503


class ScriptError(EngineError):
    """A script or expression in the process failed while running; the step was rolled back."""

    exit_code = 10
    http_status = 422


class TooManyRequests(EngineError):
    """Too many requests from one address, or in total: wait and try again (HTTP 429)."""

    exit_code = 8
    http_status = 429

    def __init__(self, message: str, retry_after: int = 60):
        super().__init__(message)
        self.retry_after = retry_after
