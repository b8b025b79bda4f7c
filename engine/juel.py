"""JUEL as Camunda Modeler users write it, translated to a Python expression.

Tigao's expressions are Python, run in the restricted script engine. Diagrams made for Camunda 7
carry JUEL (`${!approved}`, `${amount gt 1000 && region eq 'north'}`, `#{empty comments}`), so an
expression is read by one rule (docs/CONVENTIONS.md, Expressions):

* `#{...}` is always JUEL;
* `${...}` whose content is valid Python keeps its Python meaning, with one refinement: `a.b`
  that is not a method call reads property `b` of `a` (`a['b']`), as JUEL does, since JSON values
  have no such attributes;
* any other `${...}` is JUEL;
* a bare expression (a condition without `${}`) is Python.

The JUEL subset: `!`/`not`, `&&`/`and`, `||`/`or`, `==`/`eq`, `!=`/`ne`, `<`/`lt`, `>`/`gt`,
`<=`/`le`, `>=`/`ge`, `empty`, `+ - * / div % mod`, unary `-`, `a ? b : c`, `a.b`, `a['b']`,
`a[0]`, calls of the engine's helper functions (`now()`, `department_head(d)`, ...), string and
number literals, `true`, `false`, `null`. The grammar is lark's (LALR); the translation is Python
source that the script engine then checks and runs like any other expression.
"""

from __future__ import annotations

import ast
import keyword
from functools import lru_cache

from lark import Lark, Token, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .literals import LiteralRules

GRAMMAR = r"""
?start: ternary

?ternary: or_expr
        | or_expr "?" ternary ":" ternary      -> cond

?or_expr: and_expr
        | or_expr OR and_expr                  -> or_
?and_expr: eq_expr
         | and_expr AND eq_expr                -> and_
?eq_expr: rel_expr
        | eq_expr EQOP rel_expr                -> compare
?rel_expr: add_expr
         | rel_expr RELOP add_expr             -> compare
?add_expr: mul_expr
         | add_expr ADDOP mul_expr             -> arith
?mul_expr: unary
         | mul_expr MULOP unary                -> arith
?unary: postfix
      | NOT unary                              -> not_
      | "-" unary                              -> neg
      | EMPTY unary                            -> empty
?postfix: primary
        | postfix "." NAME                     -> prop
        | postfix "[" ternary "]"              -> index
?primary: NUMBER                               -> number
        | STRING                               -> string
        | TRUE                                 -> true
        | FALSE                                -> false
        | NULL                                 -> null
        | NAME "(" [ternary ("," ternary)*] ")" -> call
        | NAME                                 -> var
        | "(" ternary ")"

OR: "||" | /or\b/
AND: "&&" | /and\b/
NOT: "!" | /not\b/
EMPTY: /empty\b/
TRUE.2: /true\b/
FALSE.2: /false\b/
NULL.2: /null\b/
EQOP: "==" | "!=" | /eq\b/ | /ne\b/
RELOP: "<=" | ">=" | "<" | ">" | /le\b/ | /ge\b/ | /lt\b/ | /gt\b/
ADDOP: "+" | "-"
MULOP: "*" | "/" | "%" | /div\b/ | /mod\b/
NAME: /(?!(and|or|not|eq|ne|lt|gt|le|ge|empty|div|mod|true|false|null|instanceof)\b)[A-Za-z_][A-Za-z0-9_]*/
NUMBER: /\d+\.\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d+/
STRING: /'(\\.|[^'\\])*'/ | /"(\\.|[^"\\])*"/

%import common.WS
%ignore WS
"""

_PARSER = Lark(GRAMMAR, parser="lalr", maybe_placeholders=False)
_OPS = {"eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">=", "div": "/", "mod": "%"}


class JuelError(ValueError):
    """An expression that is neither valid Python nor valid JUEL; the message says where."""


@v_args(inline=True)
class _ToPython(LiteralRules):  # type: ignore[type-arg]
    """Each rule returns Python source, parenthesised so precedence never leaks."""

    def cond(self, test: str, yes: str, no: str) -> str:
        return f"({yes} if {test} else {no})"

    def or_(self, a: str, _op: Token, b: str) -> str:
        return f"({a} or {b})"

    def and_(self, a: str, _op: Token, b: str) -> str:
        return f"({a} and {b})"

    def compare(self, a: str, op: Token, b: str) -> str:
        return f"({a} {_OPS.get(str(op), str(op))} {b})"

    def arith(self, a: str, op: Token, b: str) -> str:
        return f"({a} {_OPS.get(str(op), str(op))} {b})"

    def not_(self, _op: Token, a: str) -> str:
        return f"(not {a})"

    def neg(self, a: str) -> str:
        return f"(-{a})"

    def empty(self, _op: Token, a: str) -> str:
        # JUEL: null, "", an empty list or map are empty; anything else (0, false) is not.
        return f"({a} is None or (isinstance({a}, (str, list, dict)) and len({a}) == 0))"

    def prop(self, a: str, name: Token) -> str:
        return f"{a}[{str(name)!r}]"

    def index(self, a: str, key: str) -> str:
        return f"{a}[{key}]"

    def call(self, name: Token, *args: str) -> str:
        return f"{_name(name)}({', '.join(args)})"

    def var(self, name: Token) -> str:
        return _name(name)


def _name(tok: Token) -> str:
    name = str(tok)
    if keyword.iskeyword(name) or name in ("True", "False", "None"):
        raise JuelError(f"variable name '{name}' is a reserved word in Tigao's expressions; rename the variable")
    return name


def translate_juel(source: str) -> str:
    """JUEL expression text (without `${`/`#{`) -> Python expression source; JuelError if invalid."""
    try:
        tree = _PARSER.parse(source)
    except UnexpectedInput as exc:
        raise JuelError(_describe(exc, source)) from exc
    except LarkError as exc:
        raise JuelError(f"not a valid expression: {exc}") from exc
    try:
        return str(_ToPython().transform(tree))
    except LarkError as exc:  # a JuelError raised inside the transformer arrives wrapped
        cause = exc.__context__
        if isinstance(cause, JuelError):
            raise cause from None
        raise JuelError(f"not a valid expression: {exc}") from exc


def _describe(exc: UnexpectedInput, source: str) -> str:
    col = getattr(exc, "column", None)
    where = f" at column {col}" if isinstance(col, int) and col > 0 else ""
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        return f"the expression ends too early{where}: neither valid Python nor valid JUEL"
    if isinstance(exc, UnexpectedCharacters):
        return f"unexpected character {source[exc.pos_in_stream]!r}{where}: neither valid Python nor valid JUEL"
    token = getattr(exc, "token", None)
    return f"unexpected {str(token)!r}{where}: neither valid Python nor valid JUEL"


class _PropertyAccess(ast.NodeTransformer):
    """`a.b` that is not called -> `a['b']` (JSON values have no attributes worth reading)."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if isinstance(node.func, ast.Attribute):
            node.func.value = self.visit(node.func.value)
        else:
            node.func = self.visit(node.func)
        node.args = [self.visit(a) for a in node.args]
        node.keywords = [self.visit(k) for k in node.keywords]
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        value = self.visit(node.value)
        if isinstance(node.ctx, ast.Load):
            return ast.Subscript(value=value, slice=ast.Constant(node.attr), ctx=ast.Load())
        node.value = value
        return node


def _python_meaning(inner: str) -> str | None:
    """The Python source an `${...}` content means, or None if it is not valid Python."""
    try:
        tree = ast.parse(inner, mode="eval")
    except SyntaxError:
        return None
    if not any(isinstance(n, ast.Attribute) for n in ast.walk(tree)):
        return inner
    return ast.unparse(_PropertyAccess().visit(tree))


@lru_cache(maxsize=4096)
def expression_source(text: str) -> str:
    """What an expression means as Python source, by the rule in the module docstring.

    `${x}` / `#{x}` are unwrapped; a bare text is returned stripped (Python). Raises JuelError when a
    `#{...}` or non-Python `${...}` is not valid JUEL either.
    """
    raw = text.strip()
    if raw.startswith("#{") and raw.endswith("}"):
        return translate_juel(raw[2:-1].strip())
    if raw.startswith("${") and raw.endswith("}"):
        inner = raw[2:-1].strip()
        python = _python_meaning(inner)
        return python if python is not None else translate_juel(inner)
    return raw


def is_juel(text: str | None) -> bool:
    """Whether the text is an expression written `${...}` or `#{...}`."""
    if text is None:
        return False
    raw = text.strip()
    return raw.startswith(("${", "#{")) and raw.endswith("}")
