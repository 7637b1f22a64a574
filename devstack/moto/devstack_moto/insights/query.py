"""The Logs Insights query language, parsed into commands.

Covers what the template's saved queries and common operator queries use
(AWS's "CloudWatch Logs Insights language query syntax" pages): ``fields``,
``display``, ``filter``, ``stats ... by``, ``sort``, ``limit``, ``parse``
(glob and regex) and ``dedup``; expressions with arithmetic, comparisons,
``and``/``or``/``not``, ``like`` (substring or ``/regex/``), ``=~``,
``in [...]`` and function calls. Anything else is a ``QuerySyntaxError``
naming the position, as AWS's ``MalformedQueryException`` does.

Expressions are tuples, first element the kind:
``("field", name)``, ``("lit", value)``, ``("regex", pattern)``,
``("call", name, [args])``, ``("star",)``, ``("op", op, left, right)``,
``("not", expr)``, ``("neg", expr)``, ``("like", expr, pattern, negated)``,
``("in", expr, [values], negated)``, ``("duration", millis)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .scanner import QuerySyntaxError, Scanner, Token

COMMANDS = ("fields", "display", "filter", "stats", "sort", "limit", "parse", "dedup")

AGGREGATES = {
    "count",
    "count_distinct",
    "sum",
    "avg",
    "min",
    "max",
    "pct",
    "percentile",
    "stddev",
    "earliest",
    "latest",
}

@dataclass
class Command:
    """One ``|``-separated command of a query."""

    name: str
    # fields/display/stats: [(expr, alias)]; sort: [(expr, descending)];
    # filter: [expr]; limit: [n]; parse: [source, pattern, names]; dedup: [fields]
    items: list = field(default_factory=list)
    # stats ... by: [(expr, alias)]
    by: list = field(default_factory=list)
    # The command's text, for column names of unaliased expressions.
    source: str = ""


def parse(text: str) -> list[Command]:
    """The commands of ``text``; ``QuerySyntaxError`` if AWS would refuse it."""
    scanner = Scanner(text)
    commands = []
    while True:
        token = scanner.next()
        if token.kind == "end" and not commands:
            raise QuerySyntaxError("the query is empty", token.start)
        if token.kind != "name" or token.value.lower() not in COMMANDS:
            raise QuerySyntaxError(
                f"expected a command ({', '.join(COMMANDS)}), found {_describe(token)}",
                token.start,
            )
        command = _Parser(scanner, text).command(token.value.lower(), token.start)
        commands.append(command)
        after = scanner.next()
        if after.kind == "end":
            return commands
        if after.kind != "op" or after.value != "|":
            raise QuerySyntaxError(f"expected '|' or the end, found {_describe(after)}", after.start)


def _describe(token: Token) -> str:
    return "the end of the query" if token.kind == "end" else repr(token.value)


class _Parser:
    def __init__(self, scanner: Scanner, text: str):
        self.s = scanner
        self.text = text

    # ------------------------------------------------------------ commands
    def command(self, name: str, start: int) -> Command:
        command = Command(name)
        if name in ("fields", "display"):
            command.items = self._aliased_list()
        elif name == "filter":
            command.items = [self.expr()]
        elif name == "stats":
            command.items = self._aliased_list()
            for expr, _ in command.items:
                if not _has_aggregate(expr):
                    raise QuerySyntaxError("stats needs an aggregate function such as count()", start)
            if self._keyword("by"):
                command.by = self._aliased_list()
        elif name == "sort":
            self._keyword("by")
            command.items = self._sort_list()
        elif name == "limit":
            token = self.s.next()
            if token.kind != "number" or not isinstance(token.value, int) or token.value < 1:
                raise QuerySyntaxError("limit takes a positive whole number", token.start)
            command.items = [token.value]
        elif name == "parse":
            command.items = self._parse_command()
        elif name == "dedup":
            command.items = [expr for expr, _ in self._aliased_list()]
        command.source = self.text[start : self.s.peek().start].strip()
        return command

    def _aliased_list(self) -> list:
        items = []
        while True:
            start = self.s.peek().start
            expr = self.expr()
            alias = None
            if self._keyword("as"):
                alias = self._name()
            else:
                alias = _column_name(expr, self.text[start : self.s.peek().start].strip())
            items.append((expr, alias))
            if not self._op(","):
                return items

    def _sort_list(self) -> list:
        items = []
        while True:
            expr = self.expr()
            descending = True  # AWS's default sort order is descending
            if self._keyword("asc"):
                descending = False
            elif self._keyword("desc"):
                descending = True
            items.append((expr, descending))
            if not self._op(","):
                return items

    def _parse_command(self) -> list:
        source = ("field", "@message")
        if not self.s.next_is_regex() and self.s.peek().kind != "string":
            source = self.primary()
        if self.s.next_is_regex():
            pattern = self.s.regex()
            try:
                compiled = re.compile(_named_groups(pattern))
            except re.error as error:
                raise QuerySyntaxError(f"invalid regular expression: {error}", self.s.pos) from error
            names = list(compiled.groupindex)
            if not names:
                raise QuerySyntaxError("a parse regex needs named groups (?<name>...)", self.s.pos)
            return [source, ("regex", compiled), names]
        token = self.s.next()
        if token.kind != "string":
            raise QuerySyntaxError("parse takes a 'glob pattern' or a /regex/", token.start)
        if not self._keyword("as"):
            raise QuerySyntaxError("parse with a glob pattern needs 'as' and field names", self.s.peek().start)
        names = [self._name()]
        while self._op(","):
            names.append(self._name())
        parts = token.value.split("*")
        if len(parts) - 1 != len(names):
            raise QuerySyntaxError(
                f"the pattern has {len(parts) - 1} '*' but {len(names)} field names", token.start
            )
        # Each `*` takes as little as it can, the last one what is left
        # when nothing follows it in the pattern.
        glob = ""
        for i, part in enumerate(parts):
            glob += re.escape(part)
            if i < len(names):
                glob += "(.*)" if i == len(names) - 1 and parts[-1] == "" else "(.*?)"
        return [source, ("glob", re.compile(glob, re.DOTALL)), names]

    # ---------------------------------------------------------- expressions
    def expr(self):
        return self._or()

    def _or(self):
        left = self._and()
        while self._keyword("or"):
            left = ("op", "or", left, self._and())
        return left

    def _and(self):
        left = self._not()
        while self._keyword("and"):
            left = ("op", "and", left, self._not())
        return left

    def _not(self):
        if self._keyword("not"):
            return ("not", self._not())
        return self._comparison()

    def _comparison(self):
        left = self._additive()
        token = self.s.peek()
        if token.kind == "op" and token.value in ("=", "==", "!=", "<", ">", "<=", ">="):
            self.s.next()
            op = "=" if token.value == "==" else token.value
            return ("op", op, left, self._additive())
        if token.kind == "op" and token.value == "=~":
            self.s.next()
            return ("like", left, self._pattern(), False)
        negated = False
        if token.kind == "name" and token.value.lower() == "not":
            # `x not like ...`, `x not in [...]`
            self.s.next()
            negated = True
            token = self.s.peek()
        if token.kind == "name" and token.value.lower() == "like":
            self.s.next()
            return ("like", left, self._pattern(), negated)
        if token.kind == "name" and token.value.lower() == "in":
            self.s.next()
            return ("in", left, self._list(), negated)
        if negated:
            raise QuerySyntaxError("expected 'like' or 'in' after 'not'", token.start)
        return left

    def _pattern(self):
        if self.s.next_is_regex():
            pattern = self.s.regex()
            try:
                return ("regex", re.compile(_named_groups(pattern)))
            except re.error as error:
                raise QuerySyntaxError(f"invalid regular expression: {error}", self.s.pos) from error
        token = self.s.next()
        if token.kind != "string":
            raise QuerySyntaxError("like takes a 'string' or a /regex/", token.start)
        return ("lit", token.value)

    def _list(self):
        if not self._op("["):
            raise QuerySyntaxError("in takes a list: [value, ...]", self.s.peek().start)
        values = []
        if self._op("]"):
            return values
        while True:
            values.append(self._additive())
            if self._op("]"):
                return values
            if not self._op(","):
                raise QuerySyntaxError("expected ',' or ']'", self.s.peek().start)

    def _additive(self):
        left = self._multiplicative()
        while True:
            token = self.s.peek()
            if token.kind == "op" and token.value in ("+", "-"):
                self.s.next()
                left = ("op", token.value, left, self._multiplicative())
            else:
                return left

    def _multiplicative(self):
        left = self._power()
        while True:
            token = self.s.peek()
            if token.kind == "op" and token.value in ("*", "/", "%"):
                self.s.next()
                left = ("op", token.value, left, self._power())
            else:
                return left

    def _power(self):
        base = self._unary()
        if self._op("^"):
            return ("op", "^", base, self._power())
        return base

    def _unary(self):
        if self._op("-"):
            return ("neg", self._unary())
        return self.primary()

    def primary(self):
        token = self.s.next()
        if token.kind == "number":
            return ("lit", token.value)
        if token.kind == "string":
            return ("lit", token.value)
        if token.kind == "duration":
            return ("duration", token.value)
        if token.kind == "field":
            return ("field", token.value)
        if token.kind == "op" and token.value == "(":
            inner = self.expr()
            self._expect(")")
            return inner
        if token.kind == "op" and token.value == "*":
            return ("star",)
        if token.kind == "name":
            if self._op("("):
                return self._call(token.value.lower())
            if token.value.lower() in ("true", "false"):
                # JSON booleans are 1 and 0 in Logs Insights.
                return ("lit", 1 if token.value.lower() == "true" else 0)
            return ("field", token.value)
        raise QuerySyntaxError(f"expected a value, found {_describe(token)}", token.start)

    def _call(self, name: str):
        args = []
        if not self._op(")"):
            while True:
                args.append(self.expr())
                if self._op(")"):
                    break
                self._expect(",")
        return ("call", name, args)

    # --------------------------------------------------------------- tokens
    def _keyword(self, word: str) -> bool:
        token = self.s.peek()
        if token.kind == "name" and token.value.lower() == word:
            self.s.next()
            return True
        return False

    def _op(self, op: str) -> bool:
        token = self.s.peek()
        if token.kind == "op" and token.value == op:
            self.s.next()
            return True
        return False

    def _expect(self, op: str) -> None:
        if not self._op(op):
            token = self.s.peek()
            raise QuerySyntaxError(f"expected {op!r}, found {_describe(token)}", token.start)

    def _name(self) -> str:
        token = self.s.next()
        if token.kind in ("name", "field"):
            return token.value
        raise QuerySyntaxError(f"expected a field name, found {_describe(token)}", token.start)


def _has_aggregate(expr) -> bool:
    if expr[0] == "call":
        return expr[1] in AGGREGATES or any(_has_aggregate(arg) for arg in expr[2])
    if expr[0] == "op":
        return _has_aggregate(expr[2]) or _has_aggregate(expr[3])
    if expr[0] == "neg":
        return _has_aggregate(expr[1])
    return False


def _column_name(expr, source: str) -> str:
    # AWS names an unaliased column by its expression's text.
    if expr[0] == "field":
        return expr[1]
    return re.sub(r"\s+", "", source) if expr[0] == "call" else source


def _named_groups(pattern: str) -> str:
    # Logs Insights (Java-style) writes named groups (?<name>...); Python (?P<name>...).
    return re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern)


def referenced_fields(commands: list[Command]) -> list[str]:
    """Every field name the query reads, in order of first use, without the
    fields it defines itself (aliases, parse outputs)."""
    defined: set[str] = set()
    read: list[str] = []

    def walk(expr) -> None:
        kind = expr[0]
        if kind == "field":
            if expr[1] not in defined and expr[1] not in read:
                read.append(expr[1])
        elif kind == "call":
            for arg in expr[2]:
                walk(arg)
        elif kind == "op":
            walk(expr[2])
            walk(expr[3])
        elif kind in ("not", "neg"):
            walk(expr[1])
        elif kind == "like":
            walk(expr[1])
        elif kind == "in":
            walk(expr[1])
            for value in expr[2]:
                walk(value)

    for command in commands:
        if command.name in ("fields", "display", "stats"):
            for expr, alias in command.items + command.by:
                walk(expr)
            for expr, alias in command.items + command.by:
                defined.add(alias)
        elif command.name == "sort":
            for expr, _ in command.items:
                walk(expr)
        elif command.name == "filter":
            walk(command.items[0])
        elif command.name == "parse":
            walk(command.items[0])
            defined.update(command.items[2])
        elif command.name == "dedup":
            for expr in command.items:
                walk(expr)
    return read
