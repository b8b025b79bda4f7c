"""FEEL unary tests in DMN input entries, as Camunda Modeler writes them, translated to Python.

SpiffWorkflow's DMN engine evaluates an input entry as a Python expression in which `?` stands for
the input value. Camunda's decision tables hold FEEL unary tests instead; each entry that parses
as one is translated once, when the decision is built:

=====================  ====================================================
FEEL                   meaning
=====================  ====================================================
`-` or empty           any value
`"a"`, `5`, `true`     equal to the literal (strings, numbers, booleans, null)
`< 10`, `>= x`         a comparison with a literal or a variable
`[250..1000]`          closed interval; `(a..b)` / `]a..b[` open ends; mixed too
`"a","b"`, `1, [5..9]` any of the tests (a list is an "or")
`not("a","b")`         none of the tests
`date("2012-01-01")`   a date (also `time(...)`, `date and time(...)`, `duration(...)`): its ISO text
=====================  ====================================================

An entry that is not a FEEL unary test (a Python expression such as `60 <= ? < 90` or `len(?) > 2`)
keeps SpiffWorkflow's meaning.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from lark import Lark, Token, v_args
from lark.exceptions import LarkError

from .literals import LiteralRules, unquote

GRAMMAR = r"""
?start: tests
      | NOT "(" tests ")"                          -> negation
tests: test ("," test)*
?test: interval
     | CMP endpoint                                -> comparison
     | endpoint                                    -> equal
interval: LOW endpoint ".." endpoint HIGH
?endpoint: SIGNED_NUMBER                           -> number
         | STRING                                  -> string
         | TRUE                                    -> true
         | FALSE                                   -> false
         | NULL                                    -> null
         | TEMPORAL "(" STRING ")"                 -> temporal
         | NAME ("." NAME)*                        -> name

NOT.2: /not(?=\s*\()/
TRUE.2: /true\b/
FALSE.2: /false\b/
NULL.2: /null\b/
TEMPORAL.2: /date and time(?=\s*\()/ | /date(?=\s*\()/ | /time(?=\s*\()/ | /duration(?=\s*\()/
CMP: "<=" | ">=" | "<" | ">" | "!="
LOW: "[" | "(" | "]"
HIGH: "]" | ")" | "["
NAME: /(?!(not|true|false|null)\b)[A-Za-z_][A-Za-z0-9_]*/
SIGNED_NUMBER: /-?\d+(\.\d+)?/
STRING: /"(\\.|[^"\\])*"/

%import common.WS
%ignore WS
"""

_PARSER = Lark(GRAMMAR, parser="earley", maybe_placeholders=False)
INPUT = "?"  # SpiffWorkflow's DMN engine puts the input value where `?` stands


@v_args(inline=True)
class _ToPython(LiteralRules):  # type: ignore[type-arg]
    def negation(self, _not: Token, tests: str) -> str:
        return f"(not {tests})"

    def tests(self, *parts: str) -> str:
        return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"

    def comparison(self, op: Token, value: str) -> str:
        return f"({INPUT} {op} {value})"

    def equal(self, value: str) -> str:
        return f"({INPUT} == {value})"

    def interval(self, low: Token, a: str, b: str, high: Token) -> str:
        lo = "<=" if str(low) == "[" else "<"
        hi = "<=" if str(high) == "]" else "<"
        return f"({a} {lo} {INPUT} {hi} {b})"

    def temporal(self, _kind: Token, text: Token) -> str:
        return repr(unquote(str(text)))  # task data keep dates as ISO text; ISO text sorts as time does

    def name(self, first: Token, *rest: Token) -> str:
        return str(first) + "".join(f"[{str(r)!r}]" for r in rest)


@lru_cache(maxsize=4096)
def unary_to_python(text: str) -> str | None:
    """The Python test (with `?` for the input) a FEEL unary test means, or None if it is not one."""
    raw = text.strip()
    if not raw or raw == "-":
        return None
    try:
        return str(_ToPython().transform(_PARSER.parse(raw)))
    except LarkError:
        return None


def translate_decisions(specs: list[Any]) -> None:
    """Rewrite the FEEL input entries of every business rule task's decision table, in place."""
    for spec in specs:
        for ts in spec.task_specs.values():
            engine = getattr(ts, "dmnEngine", None)
            table = getattr(engine, "decision_table", None)
            for rule in getattr(table, "rules", []) or []:
                for entry in rule.inputEntries:
                    entry.lhs = [_translated(lhs) for lhs in entry.lhs]


def _translated(lhs: str | None) -> str | None:
    if lhs is None:
        return None
    python = unary_to_python(lhs)
    return python if python is not None else lhs
