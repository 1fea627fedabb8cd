"""The interpreter of the process expression language (the grammar and its checker: expressions.py).

It walks a checked tree over task data with limits on the work it may do and on the size of what
it produces: no value grows past MAX_ITEMS items or MAX_TEXT characters, no whole number past
MAX_INT_BITS bits, and every comparison or search over a list or dict is paid for, element by
element, from a budget of MAX_STEPS. A script's assignments reach the task data only when the
whole script has run, so a script that fails changes nothing.
"""
from __future__ import annotations

import ast
import math
import operator
from datetime import date, datetime
from decimal import Decimal

from .expression_helpers import HELPERS, NUMBERS, ExpressionFailed, kind_of as _kind
from .expressions import MAX_INT_BITS, METHODS, compile_checked

MAX_STEPS = 200_000
MAX_ITEMS = 100_000
MAX_TEXT = 200_000
# All the text and list items one evaluation may produce, so many small results cannot add up.
MAX_PRODUCED = 5_000_000
# What one kept value may hold, counting every place a shared text or list appears: its JSON size.
MAX_STORED_TEXT = 1_000_000
MAX_STORED_DEPTH = 32
MAX_STRIP_CHARS = 100
# Comparing or searching text costs a step per this many characters.
TEXT_PER_STEP = 1_000

SCALARS = (str, int, float, Decimal, bool, type(None), date)
TYPES = {"dict": dict, "list": list, "str": str, "int": int, "float": float, "bool": bool}


def evaluate(source: str, data: dict, external: dict | None = None):
    """The value of an expression over task data (and data objects, which task data overrides)."""
    tree = compile_checked(source, "eval")
    run = _Run(data, external or {})
    value = run.guarded(tree.body)
    return run.kept(value)


def execute(source: str, data: dict, external: dict | None = None) -> bool:
    """Run a script; its assignments are written into `data` only if every line succeeds."""
    tree = compile_checked(source, "exec")
    run = _Run(data, external or {})
    for statement in tree.body:
        run.statement(statement)
    data.update({name: run.kept(value) for name, value in run.assigned.items()})
    return True


def work_out(node: ast.expr, *, kept: bool):
    """The value of one part of a checked tree that reads no task data: the deploy check works out
    constant parts with it. `kept` also requires a value a step could keep."""
    run = _Run({}, {})
    run.line = getattr(node, "lineno", None)
    value = run.guarded(node)
    return run.kept(value) if kept else value


class _Run:
    def __init__(self, data: dict, external: dict):
        self.data, self.external, self.assigned = data, external, {}
        self.steps, self.produced, self.line = 0, 0, None

    # ---------------------------------------------------------------- bookkeeping
    def tick(self, cost: int = 1) -> None:
        self.steps += cost
        if self.steps > MAX_STEPS:
            raise ExpressionFailed(f"it needs more than {MAX_STEPS:,} steps of work: simplify it", self.line)

    def fail(self, message: str):
        raise ExpressionFailed(message, self.line)

    def measure(self, *values) -> None:
        """Pay for what comparing or searching `values` walks: every element of their lists and
        dicts and every thousand characters of their texts, shared ones each time they appear."""
        stack = list(values)
        while stack:
            value = stack.pop()
            if isinstance(value, str):
                self.tick(len(value) // TEXT_PER_STEP)
            elif isinstance(value, (list, tuple, dict)):
                self.tick(len(value) + 1)
                stack.extend(value)
                if isinstance(value, dict):
                    stack.extend(value.values())

    def kept(self, value):
        """What a step keeps, as plain JSON data (tuples become lists), of a sensible size and depth."""
        text = 0

        def plain(current, depth):
            nonlocal text
            if depth > MAX_STORED_DEPTH:
                self.fail(f"the value is nested more than {MAX_STORED_DEPTH} levels deep")
            self.tick()
            if isinstance(current, str):
                text += len(current)
                if text > MAX_STORED_TEXT:
                    self.fail(f"the value would hold more than {MAX_STORED_TEXT:,} characters of text")
                return current
            if isinstance(current, (list, tuple)):
                return [plain(item, depth + 1) for item in current]
            if isinstance(current, dict):
                if not all(isinstance(key, str) for key in current):
                    self.fail("the keys of a dict that is kept must be text")
                return {key: plain(item, depth + 1) for key, item in current.items()}
            if isinstance(current, float) and not math.isfinite(current):
                self.fail("the value is not a finite number")
            if isinstance(current, int) and not isinstance(current, bool) and current.bit_length() > MAX_INT_BITS:
                self.fail("the number is too large")
            if not isinstance(current, (*SCALARS, datetime)):
                self.fail(f"a value of type {type(current).__name__} cannot be kept")
            return current

        return plain(value, 1)

    def sized(self, value):
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                self.fail(f"the text would be longer than {MAX_TEXT:,} characters")
            self.produce(len(value))
        elif isinstance(value, (list, tuple, dict)):
            if len(value) > MAX_ITEMS:
                self.fail(f"the list would have more than {MAX_ITEMS:,} items")
            self.produce(len(value))
        elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
            self.fail("the number is too large")
        elif isinstance(value, complex):
            self.fail("the result is not a real number")
        return value

    def produce(self, amount: int) -> None:
        self.produced += amount
        if self.produced > MAX_PRODUCED:
            self.fail(f"it would produce more than {MAX_PRODUCED:,} characters or items in all: simplify it")

    def guarded(self, node: ast.expr, work=None):
        """Evaluate (or do `work`), turning Python's own errors into a message that names the line."""
        try:
            return work() if work else self.expr(node)
        except ExpressionFailed:
            raise
        except KeyError as exc:
            key = exc.args[0] if exc.args else None
            named = repr(key) if isinstance(key, (str, int)) and len(str(key)) <= 60 else _kind(key)
            self.fail(f"there is no {named} in the value")
        except IndexError:
            self.fail("the position is past the end of the list")
        except ZeroDivisionError:
            self.fail("division by zero")
        except (TypeError, ValueError, OverflowError, ArithmeticError) as exc:
            self.fail(str(exc) or type(exc).__name__)
        except RecursionError:
            self.fail("the values are nested too deeply to compare")
        except MemoryError:
            self.fail("it needs more memory than a step may use")
        except Exception as exc:  # noqa: BLE001 - nothing from inside a step may escape unexplained
            self.fail(f"it could not be worked out ({type(exc).__name__})")

    # ---------------------------------------------------------------- statements
    def statement(self, node: ast.stmt) -> None:
        self.line = node.lineno
        self.tick()
        if isinstance(node, ast.Assign):
            value = self.guarded(node.value)
            for target in node.targets:
                self.assigned[target.id] = value
        elif isinstance(node, ast.AugAssign):
            current = self.name(node.target)
            change = self.guarded(node.value)
            self.assigned[node.target.id] = self.guarded(
                None, lambda: self.sized(self.arithmetic(type(node.op), current, change)))
        elif isinstance(node, ast.If):
            branch = node.body if self.guarded(node.test) else node.orelse
            for statement in branch:
                self.statement(statement)
        # ast.Pass: nothing to do; the checker let nothing else through

    # ---------------------------------------------------------------- expressions
    def expr(self, node: ast.expr):
        self.tick()
        return _EVALUATORS[type(node)](self, node)

    def constant(self, node: ast.Constant):
        return node.value

    def name(self, node: ast.Name):
        for scope in (self.assigned, self.data, self.external):
            if node.id in scope:
                return scope[node.id]
        self.fail(f"'{node.id}' has no value in this episode's data")

    def sequence(self, node):
        values = [self.expr(e) for e in node.elts]
        return self.sized(values if isinstance(node, ast.List) else tuple(values))

    def mapping(self, node: ast.Dict):
        result = {}
        for key, value in zip(node.keys, node.values):
            key = self.expr(key)
            self.measure(key)
            result[key] = self.expr(value)
        return self.sized(result)

    def boolean(self, node: ast.BoolOp):
        is_and = isinstance(node.op, ast.And)
        value = None
        for part in node.values:
            value = self.expr(part)
            if bool(value) != is_and:
                return value
        return value

    def unary(self, node: ast.UnaryOp):
        value = self.expr(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        if not isinstance(value, NUMBERS):
            self.fail("'-' and '+' apply to numbers only")
        return -value if isinstance(node.op, ast.USub) else +value

    def conditional(self, node: ast.IfExp):
        return self.expr(node.body) if self.expr(node.test) else self.expr(node.orelse)

    def binary(self, node: ast.BinOp):
        left, right = self.expr(node.left), self.expr(node.right)
        return self.sized(self.arithmetic(type(node.op), left, right))

    def arithmetic(self, op: type, left, right):
        if op is ast.Add and isinstance(left, (str, list, tuple)) and type(left) is type(right):
            if len(left) + len(right) > (MAX_TEXT if isinstance(left, str) else MAX_ITEMS):
                self.fail("the result would be too long")
            return left + right
        if op is ast.Mult and (isinstance(left, str) or isinstance(right, str)):
            text, times = (left, right) if isinstance(left, str) else (right, left)
            if not isinstance(times, int) or isinstance(times, bool):
                self.fail("text can only be repeated a whole number of times")
            if len(text) * max(times, 0) > MAX_TEXT:
                self.fail(f"the text would be longer than {MAX_TEXT:,} characters")
            return text * times
        if not (isinstance(left, NUMBERS) and isinstance(right, NUMBERS)):
            self.fail(f"'{_SYMBOLS[op]}' needs two numbers here, not {_kind(left)} and {_kind(right)}")
        if op is ast.Pow:
            self.check_power(left, right)
        return _OPERATIONS[op](left, right)

    def check_power(self, base, exponent) -> None:
        if abs(exponent) > 10_000:
            self.fail("the power is too large")
        if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1 \
                and base.bit_length() * exponent > MAX_INT_BITS:
            self.fail("the number is too large")

    def compare(self, node: ast.Compare):
        left = self.expr(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            right = self.expr(right_node)
            self.measure(left, right)
            kind = type(op)
            if kind in (ast.In, ast.NotIn):
                if not isinstance(right, (str, list, tuple, dict)):
                    self.fail(f"'in' needs text, a list or a dict on its right, not {_kind(right)}")
                if isinstance(right, str) and not isinstance(left, str):
                    self.fail("'in' with text on its right needs text on its left")
                outcome = (left in right) == (kind is ast.In)
            else:
                outcome = _COMPARISONS[kind](left, right)
            if not outcome:
                return False
            left = right
        return True

    def subscript(self, node: ast.Subscript):
        value = self.expr(node.value)
        if not isinstance(value, (dict, list, tuple, str)):
            self.fail(f"only a dict, a list or text can be indexed, not {_kind(value)}")
        if isinstance(node.slice, ast.Slice):
            parts = [None if p is None else self.expr(p) for p in (node.slice.lower, node.slice.upper, node.slice.step)]
            if any(p is not None and (not isinstance(p, int) or isinstance(p, bool)) for p in parts):
                self.fail("slice positions must be whole numbers")
            return value[slice(*parts)]
        key = self.expr(node.slice)
        self.measure(key)
        if isinstance(value, dict):
            return value[key]
        if not isinstance(key, int) or isinstance(key, bool):
            self.fail("a list or text is indexed by a whole number")
        return value[key]

    def fstring(self, node: ast.JoinedStr):
        parts = []
        for part in node.values:
            parts.append(part.value if isinstance(part, ast.Constant) else self.text(self.expr(part.value)))
        if sum(map(len, parts)) > MAX_TEXT:
            self.fail(f"the text would be longer than {MAX_TEXT:,} characters")
        return self.sized("".join(parts))

    def text(self, value) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, (date, datetime)):
            return value.isoformat()
        if isinstance(value, float) and not math.isfinite(value) or not isinstance(value, SCALARS):
            self.fail(f"{_kind(value)} cannot be turned into text")
        return str(value)

    def call(self, node: ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id == "isinstance":
            value = self.expr(node.args[0])
            kinds = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
            return isinstance(value, tuple(TYPES[k.id] for k in kinds))
        args = [self.expr(a) for a in node.args]
        kwargs = {k.arg: self.expr(k.value) for k in node.keywords}
        if isinstance(func, ast.Name):
            try:
                return self.sized(HELPERS[func.id](self, *args, **kwargs))
            except TypeError as exc:
                if "positional argument" in str(exc) or "keyword argument" in str(exc):
                    self.fail(f"{func.id}() was given the wrong number or names of values")
                raise
        target = self.expr(func.value)
        return self.sized(self.method(target, func.attr, args, kwargs))

    def method(self, target, name: str, args: list, kwargs: dict):
        kind = ("dict" if isinstance(target, dict) else "str" if isinstance(target, str)
                else "list" if isinstance(target, (list, tuple)) else "date" if isinstance(target, date) else None)
        if kind is None or name not in METHODS[kind]:
            self.fail(f"'.{name}()' cannot be used on {_kind(target)}")
        self.measure(*args, *kwargs.values())
        if kind in ("str", "list"):
            self.measure(target)
        if kind == "str" and name in ("strip", "lstrip", "rstrip") and args and isinstance(args[0], str) \
                and len(args[0]) > MAX_STRIP_CHARS:
            self.fail(f".{name}() takes at most {MAX_STRIP_CHARS} characters to remove")
        if kind == "dict" and name in ("keys", "values", "items"):
            self.tick(len(target))
            return list(getattr(target, name)())
        if kind == "str" and name in ("replace", "join"):
            if kwargs:
                self.fail(f".{name}() takes no named values")
            return self.replace(target, *args) if name == "replace" else self.join(target, *args)
        if kind == "str" and name == "split":
            self.tick(len(target) // 100 + 1)
        return getattr(target, name)(*args, **kwargs)

    def replace(self, text: str, old, new, count: int = -1) -> str:
        if not isinstance(old, str) or not isinstance(new, str) or not isinstance(count, int):
            self.fail("replace takes two texts")
        found = text.count(old) if count < 0 else min(count, text.count(old))
        if old == "":
            found = len(text) + 1
        if len(text) + found * (len(new) - len(old)) > MAX_TEXT:
            self.fail(f"the text would be longer than {MAX_TEXT:,} characters")
        return text.replace(old, new, count)

    def join(self, separator: str, items) -> str:
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            self.fail("join takes a list of texts")
        if sum(map(len, items)) + len(separator) * max(len(items) - 1, 0) > MAX_TEXT:
            self.fail(f"the text would be longer than {MAX_TEXT:,} characters")
        return separator.join(items)


_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
            ast.Pow: "**"}
_OPERATIONS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
               ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_COMPARISONS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
                ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not}
_EVALUATORS = {
    ast.Constant: _Run.constant, ast.Name: _Run.name, ast.List: _Run.sequence, ast.Tuple: _Run.sequence,
    ast.Dict: _Run.mapping, ast.BoolOp: _Run.boolean, ast.UnaryOp: _Run.unary, ast.IfExp: _Run.conditional,
    ast.BinOp: _Run.binary, ast.Compare: _Run.compare, ast.Subscript: _Run.subscript, ast.Call: _Run.call,
    ast.JoinedStr: _Run.fstring,
}
