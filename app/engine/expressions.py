"""eCAF's process expression language: what a BPMN script, condition, timer or parameter may say.

Process models are data, not code. Every expression a model holds is parsed with `ast` and checked
against an allow-list (`check`), then run by the small interpreter in `expression_runtime`, never
by Python's eval/exec. The same check refuses a model when it is saved or deployed and refuses
to run a stored one: nothing in a refused script runs. docs/process-expressions.md is the
process owners' guide to it.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache

MAX_SOURCE_CHARS = 20_000
MAX_NODES = 3_000
MAX_DEPTH = 40
MAX_INT_BITS = 256

# Helpers a model may call, by name. The implementations are in expression_runtime.
HELPERS = frozenset({"iso_after", "start_of_day", "now_iso", "len", "min", "max", "sum", "round", "abs",
                     "str", "int", "float", "bool", "isinstance"})
# Type names, usable only as the second argument of isinstance().
TYPE_NAMES = frozenset({"dict", "list", "str", "int", "float", "bool"})
# Methods a model may call, by the type of value they are called on.
METHODS = {
    "dict": frozenset({"get", "keys", "values", "items"}),
    "str": frozenset({"lower", "upper", "title", "capitalize", "strip", "lstrip", "rstrip", "startswith",
                      "endswith", "split", "join", "replace", "count", "find", "isdigit", "isalpha"}),
    "list": frozenset({"count", "index"}),
    "date": frozenset({"isoformat"}),
}
ALL_METHODS = frozenset().union(*METHODS.values())

BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
          ast.Pow: "**"}
REFUSED_BINARY = {ast.LShift: "<<", ast.RShift: ">>", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
                  ast.MatMult: "@"}
UNARY = {ast.Not: "not", ast.USub: "-", ast.UAdd: "+"}
COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
           ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}

# Why each construct outside the language is refused, in a process owner's words.
REFUSED = {
    ast.Import: "imports are not allowed", ast.ImportFrom: "imports are not allowed",
    ast.FunctionDef: "defining functions is not allowed", ast.AsyncFunctionDef: "defining functions is not allowed",
    ast.ClassDef: "defining classes is not allowed", ast.Lambda: "lambda functions are not allowed",
    ast.ListComp: "comprehensions are not allowed", ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed", ast.GeneratorExp: "generators are not allowed",
    ast.For: "loops are not allowed", ast.AsyncFor: "loops are not allowed", ast.While: "loops are not allowed",
    ast.Global: "'global' is not allowed", ast.Nonlocal: "'nonlocal' is not allowed",
    ast.With: "'with' is not allowed", ast.AsyncWith: "'with' is not allowed", ast.Try: "'try' is not allowed",
    ast.Raise: "'raise' is not allowed", ast.Assert: "'assert' is not allowed", ast.Delete: "'del' is not allowed",
    ast.Return: "'return' is not allowed", ast.Yield: "'yield' is not allowed",
    ast.YieldFrom: "'yield' is not allowed", ast.Await: "'await' is not allowed",
    ast.NamedExpr: "':=' is not allowed", ast.Starred: "'*' unpacking is not allowed",
    ast.Set: "sets are not allowed: use a list", ast.Break: "'break' is not allowed",
    ast.Continue: "'continue' is not allowed", ast.AnnAssign: "annotations are not allowed",
    ast.Match: "'match' is not allowed",
}
if hasattr(ast, "TryStar"):
    REFUSED[ast.TryStar] = "'try' is not allowed"


class ExpressionRefused(Exception):
    """The source uses something the language does not allow; nothing of it runs."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(f"line {line}: {message}" if line else message)
        self.message, self.line = message, line


@dataclass(frozen=True)
class Problem:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def check(source: str, mode: str = "eval") -> list[Problem]:
    """Everything in `source` the language refuses. mode is "eval" for an expression (a condition,
    a timer, a parameter) and "exec" for a script."""
    try:
        compile_checked(source, mode)
    except ExpressionRefused as exc:
        return [Problem(exc.line, exc.message), *_more_problems(source, mode, exc)]
    return []


def _more_problems(source: str, mode: str, first: ExpressionRefused) -> list[Problem]:
    """After the first problem, the others the checker finds in the same source."""
    try:
        tree = _parse(source, mode)
    except ExpressionRefused:
        return []
    checker = _Checker(collect=True)
    checker.run(tree)
    return [p for p in checker.problems if (p.line, p.message) != (first.line, first.message)]


@lru_cache(maxsize=4096)
def compile_checked(source: str, mode: str = "eval") -> ast.AST:
    """The checked tree of `source`, or ExpressionRefused naming the first thing refused.
    Cached: a model's expressions are few and run often."""
    tree = _parse(source, mode)
    _Checker(collect=False).run(tree)
    return tree


def _parse(source: str, mode: str) -> ast.AST:
    if not isinstance(source, str):
        raise ExpressionRefused("an expression must be text")
    if len(source) > MAX_SOURCE_CHARS:
        raise ExpressionRefused(f"it is {len(source):,} characters long: at most {MAX_SOURCE_CHARS:,} are allowed")
    text = source.strip() if mode == "eval" else source
    try:
        return ast.parse(text, mode=mode)
    except SyntaxError as exc:
        raise ExpressionRefused(f"syntax error: {exc.msg}", exc.lineno) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionRefused("it is nested too deeply to read") from None


class _Checker:
    """Walks a tree and refuses anything outside the allow-list."""

    def __init__(self, collect: bool):
        self.collect, self.problems, self.nodes = collect, [], 0

    def run(self, tree: ast.AST) -> None:
        if isinstance(tree, ast.Expression):
            self.expr(tree.body, 1)
        else:
            for statement in tree.body:
                self.statement(statement, 1)

    def refuse(self, node: ast.AST, message: str) -> None:
        decorators = getattr(node, "decorator_list", None)
        problem = Problem(decorators[0].lineno if decorators else getattr(node, "lineno", None), message)
        if not self.collect:
            raise ExpressionRefused(problem.message, problem.line)
        if problem not in self.problems:
            self.problems.append(problem)

    def count(self, node: ast.AST, depth: int) -> bool:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.refuse(node, f"it is too long: at most {MAX_NODES:,} parts are allowed")
            return False
        if depth > MAX_DEPTH:
            self.refuse(node, f"it is nested too deeply: at most {MAX_DEPTH} levels are allowed")
            return False
        return True

    # ---------------------------------------------------------------- statements (scripts)
    def statement(self, node: ast.stmt, depth: int) -> None:
        if not self.count(node, depth):
            return
        if type(node) in REFUSED:
            self.refuse(node, REFUSED[type(node)])
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                self.target(target)
            self.expr(node.value, depth + 1)
        elif isinstance(node, ast.AugAssign):
            self.target(node.target)
            self.operator(node, node.op)
            self.expr(node.value, depth + 1)
        elif isinstance(node, ast.If):
            self.expr(node.test, depth + 1)
            for statement in node.body + node.orelse:
                self.statement(statement, depth + 1)
        elif isinstance(node, ast.Pass):
            pass
        elif isinstance(node, ast.Expr):
            self.refuse(node, "a line that only works out a value does nothing: assign it to a name")
        else:
            self.refuse(node, f"'{type(node).__name__}' statements are not allowed")

    def target(self, node: ast.expr) -> None:
        if not isinstance(node, ast.Name):
            self.refuse(node, "only plain names can be assigned to (not x[...], x.y or several at once)")
        elif self.name_problem(node, node.id):
            return
        elif node.id in HELPERS or node.id in TYPE_NAMES:
            self.refuse(node, f"'{node.id}' is the name of a helper: choose another name")

    def name_problem(self, node: ast.AST, name: str) -> bool:
        if name.startswith("_"):
            self.refuse(node, f"names starting with '_' are not allowed ('{name}')")
            return True
        return False

    # ---------------------------------------------------------------- expressions
    def expr(self, node: ast.expr, depth: int) -> None:  # noqa: C901 - one branch per construct
        if not self.count(node, depth):
            return
        kind = type(node)
        if kind in REFUSED:
            self.refuse(node, REFUSED[kind])
        elif kind is ast.Constant:
            self.constant(node)
        elif kind is ast.Name:
            self.name(node)
        elif kind in (ast.List, ast.Tuple):
            for element in node.elts:
                self.expr(element, depth + 1)
        elif kind is ast.Dict:
            for key, value in zip(node.keys, node.values):
                if key is None:
                    self.refuse(node, "'**' unpacking is not allowed")
                else:
                    self.expr(key, depth + 1)
                self.expr(value, depth + 1)
        elif kind is ast.BinOp:
            self.operator(node, node.op)
            if isinstance(node.op, ast.Mod) and (isinstance(node.left, ast.JoinedStr) or
                                                 isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)):
                self.refuse(node, "'%' formatting of text is not allowed: use an f-string, f'{x}'")
            self.expr(node.left, depth + 1)
            self.expr(node.right, depth + 1)
        elif kind is ast.UnaryOp:
            if type(node.op) not in UNARY:
                self.refuse(node, "the operator '~' is not allowed")
            self.expr(node.operand, depth + 1)
        elif kind is ast.BoolOp:
            for value in node.values:
                self.expr(value, depth + 1)
        elif kind is ast.Compare:
            self.compare(node, depth)
        elif kind is ast.IfExp:
            for part in (node.test, node.body, node.orelse):
                self.expr(part, depth + 1)
        elif kind is ast.Subscript:
            self.expr(node.value, depth + 1)
            self.subscript(node.slice, depth + 1)
        elif kind is ast.Call:
            self.call(node, depth)
        elif kind is ast.Attribute:
            self.attribute(node, depth, called=False)
        elif kind is ast.JoinedStr:
            self.fstring(node, depth)
        else:
            self.refuse(node, f"'{kind.__name__}' is not allowed")

    def constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bytes):
            self.refuse(node, "byte strings are not allowed")
        elif isinstance(value, complex):
            self.refuse(node, "complex numbers are not allowed")
        elif value is Ellipsis:
            self.refuse(node, "'...' is not allowed")
        elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            self.refuse(node, f"the number is too large: at most {MAX_INT_BITS} bits are allowed")

    def name(self, node: ast.Name) -> None:
        if self.name_problem(node, node.id):
            return
        if node.id in HELPERS:
            self.refuse(node, f"'{node.id}' is a helper: call it, e.g. {node.id}(...)")
        elif node.id in TYPE_NAMES:
            self.refuse(node, f"'{node.id}' can only be used in isinstance(value, {node.id})")

    def operator(self, node: ast.AST, op: ast.operator) -> None:
        if type(op) in REFUSED_BINARY:
            self.refuse(node, f"the operator '{REFUSED_BINARY[type(op)]}' is not allowed")
        elif type(op) not in BINARY:
            self.refuse(node, f"the operator '{type(op).__name__}' is not allowed")

    def compare(self, node: ast.Compare, depth: int) -> None:
        self.expr(node.left, depth + 1)
        for op, right in zip(node.ops, node.comparators):
            if isinstance(op, (ast.Is, ast.IsNot)) and not (
                    isinstance(right, ast.Constant) and any(right.value is v for v in (None, True, False))):
                self.refuse(node, "'is' can only compare with None, True or False: use '=='")
            self.expr(right, depth + 1)

    def subscript(self, node: ast.expr, depth: int) -> None:
        if isinstance(node, ast.Slice):
            for part in (node.lower, node.upper, node.step):
                if part is not None:
                    self.expr(part, depth + 1)
        else:
            self.expr(node, depth)

    def call(self, node: ast.Call, depth: int) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            if self.name_problem(func, func.id):
                return
            if func.id not in HELPERS:
                self.refuse(node, f"'{func.id}' is not a helper you can call (the helpers are "
                                  f"{', '.join(sorted(HELPERS))})")
                return
        elif isinstance(func, ast.Attribute):
            if not self.attribute(func, depth, called=True):
                return
        else:
            self.refuse(node, "only helpers and the listed methods can be called")
            return
        for keyword in node.keywords:
            if keyword.arg is None:
                self.refuse(node, "'**' unpacking is not allowed")
            elif not self.name_problem(node, keyword.arg):
                self.expr(keyword.value, depth + 1)
        if isinstance(func, ast.Name) and func.id == "isinstance":
            self.isinstance_call(node, depth)
            return
        for argument in node.args:
            self.expr(argument, depth + 1)

    def isinstance_call(self, node: ast.Call, depth: int) -> None:
        if len(node.args) != 2 or node.keywords:
            self.refuse(node, "isinstance takes a value and a type: isinstance(value, dict)")
            return
        self.expr(node.args[0], depth + 1)
        kinds = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
        for kind in kinds:
            if not (isinstance(kind, ast.Name) and kind.id in TYPE_NAMES):
                self.refuse(node, f"isinstance's type must be one of {', '.join(sorted(TYPE_NAMES))}")

    def attribute(self, node: ast.Attribute, depth: int, called: bool) -> bool:
        if self.name_problem(node, node.attr):
            return False
        if not called:
            self.refuse(node, f"'.{node.attr}' cannot be read: only methods such as .get(...) can be called")
            return False
        if node.attr not in ALL_METHODS:
            self.refuse(node, f"'.{node.attr}()' is not a method you can call (the methods are "
                              f"{', '.join(sorted(ALL_METHODS))})")
            return False
        self.expr(node.value, depth + 1)
        return True

    def fstring(self, node: ast.JoinedStr, depth: int) -> None:
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                if part.conversion != -1 or part.format_spec is not None:
                    self.refuse(node, "formatting in f-strings ({x!r} or {x:...}) is not allowed: write {x}")
                self.expr(part.value, depth + 1)
            elif not isinstance(part, ast.Constant):
                self.refuse(node, "this f-string is not allowed")
