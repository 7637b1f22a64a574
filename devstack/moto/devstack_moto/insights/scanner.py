"""The Logs Insights query language's tokens: what ``query.py`` parses.

Strings in single or double quotes, backtick-quoted field names, numbers
and durations (``5m`` for ``bin()``), names (fields, commands, functions,
keywords), operators; ``#`` comments. ``/regex/`` literals are read on the
parser's request, since ``/`` is also division.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# bin() periods: AWS's units, in milliseconds (mo, q and y are not fixed
# lengths; AWS aligns them to the calendar, this evaluator does not take them).
DURATION_UNITS = {
    "ms": 1,
    "s": 1_000,
    "sec": 1_000,
    "m": 60_000,
    "min": 60_000,
    "h": 3_600_000,
    "hr": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}


class QuerySyntaxError(ValueError):
    """A query AWS would refuse with ``MalformedQueryException``."""

    def __init__(self, message: str, position: int):
        super().__init__(f"{message} (at character {position})")
        self.position = position


_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<backtick>`[^`]*`)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?P<unit>[a-zA-Z]+)?
  | (?P<name>@?[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<op>==|!=|<=|>=|=~|[-+*/%^<>=(),\[\]|])
    """,
    re.VERBOSE,
)


@dataclass
class Token:
    kind: str  # string, field, number, duration, name, op, end
    value: object
    start: int
    end: int


class Scanner:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self._peeked: Token | None = None

    def _scan(self) -> Token:
        while True:
            if self.pos >= len(self.text):
                return Token("end", None, self.pos, self.pos)
            match = _TOKEN.match(self.text, self.pos)
            if not match:
                raise QuerySyntaxError(f"unexpected character {self.text[self.pos]!r}", self.pos)
            start, self.pos = match.start(), match.end()
            kind = match.lastgroup
            if match.group("space") is not None:
                continue
            if match.group("string") is not None:
                raw = match.group("string")
                return Token("string", _unescape(raw[1:-1]), start, self.pos)
            if match.group("backtick") is not None:
                return Token("field", match.group("backtick")[1:-1], start, self.pos)
            if match.group("number") is not None:
                number = _number(match.group("number"))
                unit = match.group("unit")
                if unit:
                    if unit not in DURATION_UNITS:
                        raise QuerySyntaxError(f"unknown time unit {unit!r}", start)
                    return Token("duration", number * DURATION_UNITS[unit], start, self.pos)
                return Token("number", number, start, self.pos)
            if match.group("name") is not None:
                return Token("name", match.group("name"), start, self.pos)
            assert kind == "op"
            return Token("op", match.group("op"), start, self.pos)

    def peek(self) -> Token:
        if self._peeked is None:
            self._peeked = self._scan()
        return self._peeked

    def next(self) -> Token:
        token = self.peek()
        self._peeked = None
        return token

    def regex(self) -> str:
        """A ``/.../`` literal starting at the next non-space character."""
        if self._peeked is not None:
            self.pos = self._peeked.start
            self._peeked = None
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        start = self.pos
        if self.pos >= len(self.text) or self.text[self.pos] != "/":
            raise QuerySyntaxError("expected a /regular expression/", start)
        self.pos += 1
        out = []
        while self.pos < len(self.text) and self.text[self.pos] != "/":
            if self.text[self.pos] == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos : self.pos + 2])
                self.pos += 2
                continue
            out.append(self.text[self.pos])
            self.pos += 1
        if self.pos >= len(self.text):
            raise QuerySyntaxError("unterminated regular expression", start)
        self.pos += 1
        # Trailing flags: AWS accepts (?i) inside; a bare /i is not documented.
        return "".join(out).replace(r"\/", "/")

    def next_is_regex(self) -> bool:
        token = self.peek()
        return token.kind == "op" and token.value == "/"


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", r"\1", body)


def _number(text: str):
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
