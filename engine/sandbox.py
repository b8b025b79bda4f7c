"""The whitelist compiler every process script, condition and expression goes through.

Built on RestrictedPython's transformer (the field's standard: Zope, Plone, spiff-arena), with a
stricter policy of our own:

* Only the syntax in `ALLOWED` is admitted, whatever Python adds later: a construct not reviewed
  (`match`, `class`, `import`, `async`, `global`, `nonlocal`, `with`, `yield`, decorators, bare
  `except:`, bytes literals, `@`, ...) is refused naming the construct and the line.
* Attribute and item access, iteration, writes and every call are rewritten into the guards of
  `engine.guards`; so are `**`, `*`, `<<`, `+`, `%` and f-string fields, whose results are
  refused before they are computed when they would exceed the size bounds.
* A script may not name an underscore name, a reflective or I/O builtin, or assign to a builtin's or
  helper's name.
"""

from __future__ import annotations

import ast
from typing import Any

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.transformer import INSPECT_ATTRIBUTES, RestrictingNodeTransformer, copy_locations

from .bounds import SCRIPT_FILENAME

# What a reviewer has looked at. Anything else is refused.
ALLOWED: frozenset[type] = frozenset({
    ast.Module, ast.Expression, ast.Expr, ast.Assign, ast.AugAssign, ast.Delete, ast.Pass, ast.Break,
    ast.Continue, ast.If, ast.For, ast.While, ast.Try, ast.ExceptHandler, ast.Raise, ast.Assert,
    ast.FunctionDef, ast.Lambda, ast.arguments, ast.arg, ast.Return, ast.keyword,
    ast.Name, ast.Constant, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.ListComp, ast.SetComp, ast.DictComp,
    ast.GeneratorExp, ast.comprehension, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp,
    ast.Call, ast.Attribute, ast.Subscript, ast.Slice, ast.Starred, ast.JoinedStr, ast.FormattedValue,
    ast.NamedExpr,
    ast.Load, ast.Store, ast.Del,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift, ast.RShift,
    ast.BitOr, ast.BitXor, ast.BitAnd, ast.UAdd, ast.USub, ast.Not, ast.Invert, ast.And, ast.Or,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
})

_NAMES = {
    "Match": "'match' statements", "ClassDef": "class definitions", "Import": "imports",
    "ImportFrom": "imports", "AsyncFunctionDef": "async code", "Await": "async code",
    "AsyncFor": "async code", "AsyncWith": "async code", "Global": "'global'", "Nonlocal": "'nonlocal'",
    "With": "'with' statements", "Yield": "generators ('yield')", "YieldFrom": "generators ('yield')",
    "TryStar": "'except*'", "AnnAssign": "annotated assignments", "MatMult": "the '@' operator",
    "TypeAlias": "'type' statements",
}

# Names no script may use even though Python has them (RestrictedPython refuses underscore names).
FORBIDDEN_NAMES = frozenset(
    "exec eval open compile globals locals vars getattr setattr delattr hasattr input breakpoint help "
    "exit quit memoryview type object super classmethod staticmethod property dir id print bytearray "
    "bytes iter next callable issubclass hash format ascii chr ord repr aiter anext slice".split())
FORBIDDEN_ATTRIBUTES = {"format": "str.format (its fields reach attributes; use an f-string)",
                        "format_map": "str.format_map", "mro": "'.mro'", "encode": "bytes ('.encode')"}
SAFE_EXCEPTIONS = frozenset("Exception ValueError KeyError TypeError IndexError ZeroDivisionError "
                            "ArithmeticError LookupError AttributeError".split())
_GUARDED_OPS = {ast.Pow: "_pow_", ast.Mult: "_mul_", ast.LShift: "_lshift_", ast.Add: "_add_", ast.Mod: "_mod_"}
_AUG_OPS = {ast.Add: "+=", ast.Sub: "-=", ast.Mult: "*=", ast.Div: "/=", ast.FloorDiv: "//=", ast.Mod: "%=",
            ast.Pow: "**=", ast.LShift: "<<=", ast.RShift: ">>=", ast.BitOr: "|=", ast.BitXor: "^=",
            ast.BitAnd: "&="}


class Refused(Exception):
    """The source was refused: a syntax error or a construct the policy does not admit."""

    def __init__(self, message: str, line: int | None = None, syntax: bool = False):
        super().__init__(message)
        self.line = line
        self.syntax = syntax


def _call(name: str, args: list[ast.expr], like: ast.AST) -> ast.Call:
    node = ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])
    copy_locations(node, like)
    copy_locations(node.func, like)
    return node


class TigaoPolicy(RestrictingNodeTransformer):
    """RestrictedPython's transformer, admitting only `ALLOWED` and adding the engine's guards."""

    reserved: frozenset[str] = frozenset()  # builtin and helper names a script may not assign

    def visit(self, node: ast.AST) -> Any:
        if type(node) not in ALLOWED:
            what = _NAMES.get(type(node).__name__, f"'{type(node).__name__}' (not reviewed for process scripts)")
            self.error(node, f"{what} are not allowed" if what.endswith("s") or "(" in what
                       else f"{what} is not allowed")
            return node
        return super().visit(node)

    def check_name(self, node: Any, name: str | None, allow_magic_methods: bool = False) -> None:
        if name is None:
            return
        if name.startswith("_") and name != "_":
            self.error(node, f"name '{name}' is not allowed (names may not start with '_')")
        elif name in FORBIDDEN_NAMES:
            self.error(node, f"'{name}' is not allowed in process scripts")
        else:
            super().check_name(node, name, allow_magic_methods)

    def visit_Name(self, node: ast.Name) -> Any:
        if isinstance(node.ctx, (ast.Store, ast.Del)) and node.id in self.reserved:
            self.error(node, f"assigning to '{node.id}' is not allowed: it is the name of a builtin or helper "
                             f"function; store the value under another name (e.g. '{node.id}_value')")
        if node.id in ("print", "printed"):  # RestrictedPython's print collector is not offered
            self.error(node, f"'{node.id}' is not allowed in process scripts")
            return node
        return super().visit_Name(node)

    def visit_Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, bytes):
            self.error(node, "bytes literals are not allowed (task data is JSON)")
        return super().visit_Constant(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        if node.decorator_list:
            self.error(node, "decorators are not allowed")
        if node.name in self.reserved:
            self.error(node, f"defining '{node.name}' is not allowed: it is the name of a builtin or helper function")
        return super().visit_FunctionDef(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> Any:
        names = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
        for n in names:
            if n is None:
                self.error(node, "a bare 'except:' is not allowed; name the error (e.g. 'except ValueError:')")
            elif not (isinstance(n, ast.Name) and n.id in SAFE_EXCEPTIONS):
                self.error(node, f"'except' may name only {', '.join(sorted(SAFE_EXCEPTIONS))}")
        return super().visit_ExceptHandler(node)

    def visit_Try(self, node: ast.Try) -> Any:
        if node.finalbody:
            # A bound stops a script by raising into it; a 'finally' body would run on unbounded.
            self.error(node, "'finally' is not allowed")
        return super().visit_Try(node)

    def _ticking(self, node: Any) -> Any:
        # A loop whose body is one jump to itself (`while True: pass`) gives the trace function no
        # event; a name load at the top of every loop body gives it one per iteration.
        tick = ast.Expr(ast.Name("_tick_", ast.Load()))
        copy_locations(tick, node)
        copy_locations(tick.value, node)
        node.body.insert(0, tick)
        return node

    def visit_While(self, node: ast.While) -> Any:
        return self._ticking(super().visit_While(node))

    def visit_For(self, node: ast.For) -> Any:
        return self._ticking(super().visit_For(node))

    def visit_comprehension(self, node: ast.comprehension) -> Any:
        if node.is_async:
            self.error(node, "async code is not allowed")
        return super().visit_comprehension(node)

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        if not isinstance(node.ctx, ast.Load):
            self.error(node, f"assigning to '.{node.attr}' is not allowed; write obj['{node.attr}'] = value")
            return node
        if node.attr in FORBIDDEN_ATTRIBUTES:
            self.error(node, f"{FORBIDDEN_ATTRIBUTES[node.attr]} is not allowed in process scripts")
            return node
        if node.attr.startswith("_"):
            self.error(node, f"attribute '{node.attr}' is not allowed (attributes may not start with '_')")
            return node
        if node.attr in INSPECT_ATTRIBUTES:
            self.error(node, f"'.{node.attr}' (frame, code and traceback internals) is not allowed")
            return node
        return super().visit_Attribute(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        op = _AUG_OPS.get(type(node.op))
        if op is None:
            self.error(node, "this augmented assignment is not allowed")
            return node
        if isinstance(node.target, ast.Subscript):
            target = node.target
            container = self.visit(target.value)
            key = self.visit(target.slice)
            value = self.visit(node.value)
            new = ast.Expr(_call("_augitem_", [container, key, ast.Constant(op), value], node))
            copy_locations(new, node)
            return new
        if isinstance(node.target, ast.Attribute):
            self.error(node, "augmented assignment to an attribute is not allowed; use obj['name'] += value")
            return node
        node = super().visit_AugAssign(node)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = super().visit_BinOp(node)
        guard = _GUARDED_OPS.get(type(node.op))
        if guard is None:
            return node
        return _call(guard, [node.left, node.right], node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> Any:
        value = self.visit(node.value)
        spec = self.visit(node.format_spec) if node.format_spec is not None else ast.Constant("")
        new = ast.FormattedValue(value=_call("_format_", [value, ast.Constant(node.conversion), spec], node),
                                 conversion=-1, format_spec=None)
        copy_locations(new, node)
        return new

    def visit_Call(self, node: ast.Call) -> Any:
        node = super().visit_Call(node)
        if isinstance(node.func, ast.Name) and node.func.id == "_apply_":
            return node  # star-args: `_apply_` is the call guard already
        new = ast.Call(func=ast.Name("_call_", ast.Load()), args=[node.func, *node.args], keywords=node.keywords)
        copy_locations(new, node)
        copy_locations(new.func, node)
        return new


def _policy_for(reserved: frozenset[str]) -> type[TigaoPolicy]:
    return type("TigaoPolicyFor", (TigaoPolicy,), {"reserved": reserved})


_POLICIES: dict[frozenset[str], type[TigaoPolicy]] = {}


def compile_checked(source: str, mode: str, reserved: frozenset[str] = frozenset()) -> Any:
    """Parse and compile `source` ("exec" or "eval") under the policy; raise Refused with the line."""
    try:
        tree = ast.parse(source, SCRIPT_FILENAME, mode)
    except SyntaxError as exc:
        raise Refused(f"syntax error: {exc.msg}", exc.lineno, syntax=True) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise Refused(f"cannot be parsed: {type(exc).__name__}", None, syntax=True) from None
    policy = _POLICIES.get(reserved)
    if policy is None:
        policy = _POLICIES[reserved] = _policy_for(reserved)
    try:
        compiler = compile_restricted_exec if mode == "exec" else compile_restricted_eval
        result = compiler(tree, filename=SCRIPT_FILENAME, policy=policy)  # type: ignore[arg-type]
    except RecursionError:
        raise Refused("is nested too deeply", None) from None
    if result.errors:
        first = result.errors[0]
        line = None
        if first.startswith("Line "):
            head, _, rest = first.partition(": ")
            try:
                line = int(head[5:])
            except ValueError:
                line = None
            first = rest
        raise Refused(first, line)
    return result.code
