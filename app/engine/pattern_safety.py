"""Regular expressions that backtrack: found in the pattern's parse tree before anything runs it.

`pattern_problem` refuses a pattern that does not compile, is very long or deeply nested, or is
written so that a backtracking engine can take exponential time on some input:

- a quantifier inside a quantifier, like (a+)+ or (\\w+\\s?)*, unless both are small and fixed like
  (\\d{1,3}\\.){3}, or each round holds one inner repeat and a character it cannot match, like
  (-[0-9]+)*, so a text can be split into rounds one way only;
- a repeated alternation whose branches can start with the same character, like (a|aa)* or
  (a|b|ab)*: the same text matches several ways and each is tried.

It is a cautious approximation (Python's own parser, `re._parser`, gives the tree; which characters
two parts share is tried on a sample of characters), not a proof: the time limit on every search at
submission (app.engine.form_patterns) is what guarantees an answer is checked in bounded time.
"""
from __future__ import annotations

import re
from functools import lru_cache
from re import _compiler as sre_compile, _parser as sre

import regex

MAX_PATTERN_LENGTH = 1000
MAX_NESTING = 30  # groups inside groups; real patterns need a handful
LARGE_REPEAT = 10  # {0,10} and below counts as small
MAX_SPELLED_OUT = 10_000  # (?:x{100}){100}: 15 MB once compiled
MAX_NESTED_WAYS = 1000  # (\d{1,3}\.){3} splits a text 27 ways: fine; (a{1,9}){9} 387 million: not

NESTED = ("has a quantifier inside a quantifier (like (a+)+), which can take forever on some inputs: repeat "
          "one character class instead (e.g. [A-Za-z ]+ rather than (\\w+\\s?)+), or start each repeat with a "
          "character the inner repeat cannot match (e.g. (-[0-9]+)*)")
OVERLAP = ("repeats alternatives that can match the same text (like (a|aa)*), which can take forever on some "
           "inputs: make the alternatives start with different characters, or use a character class (e.g. "
           "[ab]* rather than (a|b|ab)*)")

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)
_ATOMS = (sre.LITERAL, sre.NOT_LITERAL, sre.IN, sre.ANY)
# Characters tried when asking whether two parts of a pattern can match the same character: ASCII,
# Latin-1 and Latin Extended-A, letters, digits and spaces of other scripts, and (added per pattern)
# each end of every literal and range the pattern names, with its other case.
_SAMPLE = "".join(map(chr, range(0x180))) + "αΩЖжبح٣७३中あ\u0301\u2003\u2028\u200b–—‘’“”€😀３"


class PatternRefused(ValueError):
    """A pattern the `regex` module must not even compile: too long, too nested, or too big."""


@lru_cache(maxsize=1024)
def pattern_problem(pattern: str) -> str | None:
    """Why this pattern is refused, or None. The rest of the sentence after "the pattern ..."."""
    try:
        parsed = _parsed(pattern)
        compiled(pattern)
    except PatternRefused as exc:
        return str(exc)
    return _Analysis(parsed).problem()


def compiled(pattern: str):
    """The pattern compiled by `regex`, the engine that searches answers; PatternRefused first when
    compiling it could itself exhaust the server (`regex` spells out fixed repeats: x{1000000} takes
    a quarter of a gigabyte)."""
    _parsed(pattern)
    try:
        return _regex_compiled(pattern)
    except regex.error as exc:
        raise PatternRefused(f"is not a valid regular expression: {exc}") from None


@lru_cache(maxsize=512)
def _regex_compiled(pattern: str):
    return regex.compile(pattern)


@lru_cache(maxsize=512)
def _parsed(pattern: str):
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternRefused(f"is {len(pattern):,} characters long: at most {MAX_PATTERN_LENGTH:,} are accepted")
    try:
        parsed = sre.parse(pattern)
    except RecursionError:
        raise PatternRefused("has groups nested too deeply") from None
    except re.error as exc:
        raise PatternRefused(f"is not a valid regular expression: {exc}") from None
    if _depth(list(parsed)) > MAX_NESTING:
        raise PatternRefused(f"has groups and repeats nested more than {MAX_NESTING} deep")
    if (size := _spelled_out(list(parsed))) > MAX_SPELLED_OUT:
        raise PatternRefused(f"is {size:,} steps long once its repeat counts are multiplied out: at most "
                             f"{MAX_SPELLED_OUT:,} are accepted (use maxLength to limit the length of an answer)")
    return parsed


def _parts(op, av) -> list[tuple[list, int, int]]:
    """The sequences inside one node, each with the flags it adds and removes."""
    if op is sre.SUBPATTERN:
        return [(list(av[3]), av[1], av[2])]
    if op in _REPEATS:
        return [(list(av[2]), 0, 0)]
    if op is sre.BRANCH:
        return [(list(branch), 0, 0) for branch in av[1]]
    if op is sre.ATOMIC_GROUP:
        return [(list(av), 0, 0)]
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return [(list(av[1]), 0, 0)]
    if op is sre.GROUPREF_EXISTS:
        return [(list(part), 0, 0) for part in av[1:] if part is not None]
    return []


def _depth(items: list) -> int:
    deepest, stack = 0, [(items, 1)]
    while stack:
        seq, depth = stack.pop()
        deepest = max(deepest, depth)
        for op, av in seq:
            stack.extend((part, depth + 1) for part, _, _ in _parts(op, av))
    return deepest


def _spelled_out(items: list) -> int:
    """How many single-character steps the pattern has once its repeats' minimum counts are
    written out, as `regex` does."""
    total = 0
    for op, av in items:
        inner = sum(_spelled_out(part) for part, _, _ in _parts(op, av))
        total += max(1, av[0] * inner if op in _REPEATS else inner)
    return total


def _bounded(n: int) -> float:
    return float("inf") if n == sre.MAXREPEAT else n


class _Analysis:
    """One parsed pattern: the characters each part can match, and the first construct that backtracks."""

    def __init__(self, parsed):
        self.parsed = parsed
        self.flags = parsed.state.flags
        extra = set()
        for code in _codes(list(parsed)):
            for c in (code - 1, code, code + 1):
                if 0 <= c <= 0x10FFFF:
                    extra.update({chr(c), chr(c).upper(), chr(c).lower()})
        self.sample = _SAMPLE + "".join(sorted(set(extra) - set(_SAMPLE)))
        self.everything = frozenset(self.sample)
        self.cache: dict[tuple, frozenset] = {}

    def problem(self) -> str | None:
        return self._check(list(self.parsed), self.flags, frozenset(), repeated=False)

    def _chars(self, op, av, flags) -> frozenset:
        """The sample characters one single-character node matches."""
        key = (op, repr(av), flags)
        if key not in self.cache:
            state = sre.State()
            state.flags = flags
            compiled = sre_compile.compile(sre.SubPattern(state, [(op, av)]), flags)
            self.cache[key] = frozenset(compiled.findall(self.sample))
        return self.cache[key]

    def _first(self, items: list, flags: int) -> tuple[frozenset, bool]:
        """The characters a sequence can start with, and whether it can match nothing."""
        found = frozenset()
        for op, av in items:
            chars, empty = self._first_of(op, av, flags)
            found |= chars
            if not empty:
                return found, False
        return found, True

    def _first_of(self, op, av, flags) -> tuple[frozenset, bool]:
        if op in _ATOMS:
            return self._chars(op, av, flags), False
        if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            return frozenset(), True
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            return self.everything, True  # whatever the group matched: assume anything
        found, empty = frozenset(), False
        for part, add, remove in _parts(op, av):
            chars, part_empty = self._first(part, (flags | add) & ~remove)
            found, empty = found | chars, empty or part_empty
        if op in _REPEATS and av[0] == 0:
            empty = True
        return found, empty

    def _all_chars(self, items: list, flags: int) -> frozenset:
        """Every character any part of the sequence can match."""
        found = frozenset()
        for op, av in items:
            if op in _ATOMS:
                found |= self._chars(op, av, flags)
            elif op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
                found = self.everything
            for part, add, remove in _parts(op, av):
                if op not in (sre.ASSERT, sre.ASSERT_NOT):
                    found |= self._all_chars(part, (flags | add) & ~remove)
        return found

    def _check(self, items: list, flags: int, follow: frozenset, repeated: bool) -> str | None:
        """`follow`: what can come next within a repeat's body; `repeated`: inside a large repeat."""
        for i, (op, av) in enumerate(items):
            rest, rest_empty = self._first(items[i + 1:], flags)
            after = rest | follow if rest_empty else rest
            if op in _REPEATS:
                low, high, body = av[0], _bounded(av[1]), list(av[2])
                if high > 1 and self._nested(low, high, body, flags):
                    return NESTED
                if high > 1:  # the body's end is followed by the next time round
                    after = self._first(body, flags)[0]
                problem = self._check(body, flags, after, repeated or high > LARGE_REPEAT)
            elif op is sre.BRANCH:
                branches = [list(b) for b in av[1]]
                if repeated and self._overlap(branches, flags, after):
                    return OVERLAP
                problem = next(filter(None, (self._check(b, flags, after, repeated) for b in branches)), None)
            else:
                problem = next(filter(None, (self._check(part, (flags | add) & ~remove, after, repeated)
                                             for part, add, remove in _parts(op, av))), None)
            if problem:
                return problem
        return None

    def _overlap(self, branches: list[list], flags: int, after: frozenset) -> bool:
        seen = frozenset()
        for branch in branches:
            chars, empty = self._first(branch, flags)
            if empty:
                chars |= after
            if chars & seen:
                return True
            seen |= chars
        return False

    def _nested(self, low: int, high: float, body: list, flags: int) -> bool:
        """Whether a repeat (low..high times) holds a repeat of varying count that backtracks."""
        inner = list(_variable_repeats(body))
        risky = [(lo, hi) for lo, hi, _ in inner
                 if high > LARGE_REPEAT or hi > LARGE_REPEAT or (hi - lo + 1) ** high > MAX_NESTED_WAYS]
        if not risky:
            return False
        # One inner repeat, and a character it cannot match in every round: (-[0-9]+)* splits one way only.
        if len(inner) == 1 and inner[0][2]:
            inner_chars = self._repeat_chars(body, flags)
            return not any(self._chars(op, av, inner_flags).isdisjoint(inner_chars)
                           for op, av, inner_flags in _top_level(body, flags) if op in _ATOMS)
        return True

    def _repeat_chars(self, body: list, flags: int) -> frozenset:
        for op, av, inner_flags in _top_level(body, flags):
            if op in _REPEATS and av[0] != av[1]:
                return self._all_chars(list(av[2]), inner_flags)
        return self.everything


def _variable_repeats(items: list):
    """(low, high, at top level) for each repeat of varying count inside the sequence."""
    stack = [(items, True)]
    while stack:
        seq, top = stack.pop()
        for op, av in seq:
            if op in _REPEATS and av[0] != av[1]:
                yield av[0], _bounded(av[1]), top
            plain = op in (sre.SUBPATTERN, sre.ATOMIC_GROUP)
            stack.extend((part, top and plain) for part, _, _ in _parts(op, av))


def _top_level(items: list, flags: int):
    """The nodes of a sequence, looking through plain groups, each with the flags in force."""
    for op, av in items:
        if op in (sre.SUBPATTERN, sre.ATOMIC_GROUP):
            for part, add, remove in _parts(op, av):
                yield from _top_level(part, (flags | add) & ~remove)
        else:
            yield op, av, flags


def _codes(items: list):
    """Every character code a literal or range of the pattern names."""
    for op, av in items:
        if op in (sre.LITERAL, sre.NOT_LITERAL):
            yield av
        elif op is sre.IN:
            for kind, value in av:
                if kind in (sre.LITERAL, sre.NOT_LITERAL):
                    yield value
                elif kind is sre.RANGE:
                    yield from value
        for part, _, _ in _parts(op, av):
            yield from _codes(part)
