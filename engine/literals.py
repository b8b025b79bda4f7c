"""The literal rules JUEL and FEEL share: numbers, quoted strings, true, false and null as Python.

Both grammars name their literal rules `number`, `string`, `true`, `false` and `null`; their
transformers derive from `LiteralRules`, which turns each into Python source. (lark's `v_args`
skips inherited methods, so the rules are wrapped here, in the class that defines them.)
"""

from __future__ import annotations

from lark import Token, Transformer, v_args


def unquote(text: str) -> str:
    """A quoted literal's text without its quotes; a backslash keeps the character after it.

    JUEL knows only the escapes \\' \\" and \\\\, FEEL's strings the same; neither has \\n.
    """
    body = text[1:-1]
    out, i = [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append(body[i + 1])
            i += 2
            continue
        out.append(body[i])
        i += 1
    return "".join(out)


@v_args(inline=True)
class LiteralRules(Transformer):  # type: ignore[type-arg]
    """A transformer's rules for the literals, as Python source; subclasses add the rest."""

    def number(self, tok: Token) -> str:
        return str(tok)

    def string(self, tok: Token) -> str:
        return repr(unquote(str(tok)))

    def true(self, _tok: Token) -> str:
        return "True"

    def false(self, _tok: Token) -> str:
        return "False"

    def null(self, _tok: Token) -> str:
        return "None"
