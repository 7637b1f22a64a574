"""Runs parsed Logs Insights commands over log events, in order, as a pipeline.

Semantics followed (AWS's query syntax pages) and assumed (not checkable
without AWS; docs/local-fidelity.md lists each):
- a comparison with a missing field is neither true nor false: ``filter``
  drops the event whichever the operator (``x != "a"`` drops events without
  ``x``), and ``not`` of it stays unknown (SQL's three-valued logic);
- a string that reads as a number compares as a number with a number;
  strings compare case-sensitively; ``like "text"`` is a substring match;
- aggregates skip missing and non-numeric values; ``count(*)`` counts
  events, ``count(field)`` events that have it; ``pct`` is the nearest-rank
  percentile (AWS's is approximate on large inputs); ``stddev`` is the
  sample standard deviation;
- without ``sort`` events come newest first; ``sort`` is descending unless
  ``asc``; missing values sort last either way;
- a query without ``fields``/``display`` returns ``@timestamp`` and
  ``@message``; a row leaves out the fields it has no value for.
"""

from __future__ import annotations

import datetime
import math
import re

from .query import AGGREGATES, Command, QuerySyntaxError

DEFAULT_COLUMNS = ["@timestamp", "@message"]

_SCALAR_FUNCTIONS = {
    "ispresent",
    "isempty",
    "isblank",
    "isvalidip",
    "strcontains",
    "concat",
    "tolower",
    "toupper",
    "strlen",
    "substr",
    "replace",
    "trim",
    "ltrim",
    "rtrim",
    "abs",
    "ceil",
    "floor",
    "sqrt",
    "log",
    "greatest",
    "least",
    "coalesce",
    "bin",
    "datefloor",
    "dateceil",
    "frommillis",
    "tomillis",
}


class Result:
    """What a query returned: rows of (field, value) and its statistics."""

    def __init__(self, rows: list[list[tuple[str, str]]], matched: int, scanned: int, scanned_bytes: int):
        self.rows = rows
        self.records_matched = matched
        self.records_scanned = scanned
        self.bytes_scanned = scanned_bytes


def check(commands: list[Command]) -> None:
    """Refuses, before any event is read, functions the evaluator does not know."""
    for command in commands:
        exprs = []
        if command.name in ("fields", "display", "stats"):
            exprs = [expr for expr, _ in command.items + command.by]
        elif command.name == "filter":
            exprs = command.items
        elif command.name == "sort":
            exprs = [expr for expr, _ in command.items]
        for expr in exprs:
            _check_expr(expr, aggregates_allowed=command.name == "stats")


def _check_expr(expr, aggregates_allowed: bool) -> None:
    kind = expr[0]
    if kind == "call":
        name = expr[1]
        if name in AGGREGATES:
            if not aggregates_allowed:
                raise QuerySyntaxError(f"{name}() is an aggregate: use it in stats", 0)
        elif name not in _SCALAR_FUNCTIONS:
            raise QuerySyntaxError(f"unknown function {name}()", 0)
        for arg in expr[2]:
            if name == "count" and arg[0] == "star":
                continue
            _check_expr(arg, aggregates_allowed and name not in AGGREGATES)
    elif kind == "op":
        _check_expr(expr[2], aggregates_allowed)
        _check_expr(expr[3], aggregates_allowed)
    elif kind in ("not", "neg", "like"):
        _check_expr(expr[1], aggregates_allowed)
    elif kind == "star" and not aggregates_allowed:
        raise QuerySyntaxError("* only counts events: count(*)", 0)


def run(commands: list[Command], records: list[dict], limit: int) -> Result:
    """Runs ``commands`` over ``records`` (see :func:`fields.record`)."""
    scanned = len(records)
    scanned_bytes = sum(len(r["@message"].encode("utf-8", "surrogatepass")) for r in records)
    rows = sorted(records, key=lambda r: r["@timestamp"], reverse=True)
    columns: list[str] | None = None
    display: list[str] | None = None
    aggregated = False
    matched = None
    for command in commands:
        name = command.name
        if name == "filter":
            rows = [row for row in rows if _truthy(value(command.items[0], row))]
        elif name in ("fields", "display"):
            for row in rows:
                for expr, alias in command.items:
                    if expr[0] != "field" or expr[1] != alias:
                        row[alias] = value(expr, row)
            aliases = [alias for _, alias in command.items]
            if name == "display":
                display = aliases
            else:
                columns = (columns or []) + [a for a in aliases if a not in (columns or [])]
        elif name == "parse":
            source, (kind, pattern), names = command.items
            for row in rows:
                text = value(source, row)
                match = pattern.search(text) if isinstance(text, str) else None
                for i, field in enumerate(names):
                    got = (match.group(i + 1) if kind == "glob" else match.group(field)) if match else None
                    row[field] = got
        elif name == "stats":
            if matched is None:
                matched = len(rows)
            rows = _stats(command, rows)
            columns = [alias for _, alias in command.by] + [alias for _, alias in command.items]
            display = None
            aggregated = True
        elif name == "sort":
            for expr, descending in reversed(command.items):
                present = [r for r in rows if value(expr, r) is not None]
                missing = [r for r in rows if value(expr, r) is None]
                present.sort(key=lambda r: _sort_key(value(expr, r)), reverse=descending)
                rows = present + missing
        elif name == "limit":
            rows = rows[: command.items[0]]
        elif name == "dedup":
            seen = set()
            kept = []
            for row in rows:
                key = tuple(value(expr, row) for expr in command.items)
                if None in key or key not in seen:
                    seen.add(key)
                    kept.append(row)
            rows = kept
    if matched is None:
        matched = len(rows)
    shown = display or columns or DEFAULT_COLUMNS
    out = []
    for row in rows[:limit]:
        cells = [(field, _text(field, row.get(field))) for field in shown if row.get(field) is not None]
        if not aggregated:
            cells.append(("@ptr", row["@ptr"]))
        out.append(cells)
    return Result(out, matched, scanned, scanned_bytes)


# ------------------------------------------------------------------ values
def value(expr, row: dict):
    """The value of ``expr`` for one event; ``None`` when unknown or missing."""
    kind = expr[0]
    if kind == "field":
        return row.get(expr[1])
    if kind == "lit":
        return expr[1]
    if kind == "duration":
        return expr[1]
    if kind == "not":
        inner = _truth(value(expr[1], row))
        return None if inner is None else not inner
    if kind == "neg":
        number = _as_number(value(expr[1], row))
        return None if number is None else -number
    if kind == "like":
        subject = value(expr[1], row)
        if subject is None:
            return None
        subject = _text_value(subject)
        pattern = expr[2]
        found = pattern[1].search(subject) is not None if pattern[0] == "regex" else pattern[1] in subject
        return found != expr[3]
    if kind == "in":
        subject = value(expr[1], row)
        if subject is None:
            return None
        found = any(_equal(subject, value(item, row)) for item in expr[2])
        return found != expr[3]
    if kind == "op":
        return _binary(expr[1], expr[2], expr[3], row)
    if kind == "call":
        return _call(expr[1], [lambda a=a: value(a, row) for a in expr[2]], row)
    return None


def _binary(op: str, left_expr, right_expr, row: dict):
    if op in ("and", "or"):
        left = _truth(value(left_expr, row))
        if op == "and" and left is False:
            return False
        if op == "or" and left is True:
            return True
        right = _truth(value(right_expr, row))
        if op == "and":
            return False if right is False else (None if None in (left, right) else True)
        return True if right is True else (None if None in (left, right) else False)
    left, right = value(left_expr, row), value(right_expr, row)
    if left is None or right is None:
        return None
    if op in ("=", "!="):
        return _equal(left, right) == (op == "=")
    if op in ("<", ">", "<=", ">="):
        a, b = _as_number(left), _as_number(right)
        if a is None or b is None:
            a, b = _text_value(left), _text_value(right)
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
    a, b = _as_number(left), _as_number(right)
    if a is None or b is None:
        return None
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        if op == "%":
            return a % b
        if op == "^":
            return a**b
    except (ZeroDivisionError, OverflowError):
        return None
    return None


def _call(name: str, args, row: dict):
    # args are thunks: ispresent() must see a missing field, not fail on it.
    values = [arg() for arg in args]
    if name == "ispresent":
        return values[0] is not None
    if name == "isempty":
        return values[0] is None or values[0] == ""
    if name == "isblank":
        return values[0] is None or (isinstance(values[0], str) and values[0].strip() == "")
    if name == "coalesce":
        return next((v for v in values if v is not None), None)
    if name in ("bin", "datefloor", "dateceil"):
        period = values[-1]
        stamp = row.get("@timestamp") if name == "bin" else values[0]
        stamp, period = _as_number(stamp), _as_number(period)
        if stamp is None or not period:
            return None
        floor = int(stamp // period * period)
        return _Time(floor if name != "dateceil" or floor == stamp else floor + int(period))
    if any(v is None for v in values):
        return None
    if name == "strcontains":
        return 1 if _text_value(values[1]) in _text_value(values[0]) else 0
    if name == "concat":
        return "".join(_text_value(v) for v in values)
    if name == "tolower":
        return _text_value(values[0]).lower()
    if name == "toupper":
        return _text_value(values[0]).upper()
    if name == "strlen":
        return len(_text_value(values[0]))
    if name == "substr":
        text = _text_value(values[0])
        start = int(_as_number(values[1]) or 0)
        return text[start : start + int(_as_number(values[2]))] if len(values) > 2 else text[start:]
    if name == "replace":
        return _text_value(values[0]).replace(_text_value(values[1]), _text_value(values[2]))
    if name in ("trim", "ltrim", "rtrim"):
        text = _text_value(values[0])
        return {"trim": text.strip, "ltrim": text.lstrip, "rtrim": text.rstrip}[name]()
    if name == "isvalidip":
        return re.fullmatch(r"(\d{1,3}\.){3}\d{1,3}", _text_value(values[0])) is not None
    if name == "frommillis":
        return _Time(int(_as_number(values[0]) or 0))
    if name == "tomillis":
        return _as_number(values[0])
    numbers = [_as_number(v) for v in values]
    if any(n is None for n in numbers):
        return None
    if name == "abs":
        return abs(numbers[0])
    if name == "ceil":
        return math.ceil(numbers[0])
    if name == "floor":
        return math.floor(numbers[0])
    if name == "sqrt":
        return math.sqrt(numbers[0]) if numbers[0] >= 0 else None
    if name == "log":
        return math.log(numbers[0]) if numbers[0] > 0 else None
    if name == "greatest":
        return max(numbers)
    if name == "least":
        return min(numbers)
    return None


class _Time(int):
    """A time value (milliseconds) that prints as Logs Insights prints times."""


# ------------------------------------------------------------------- stats
def _stats(command: Command, rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    keys: dict[tuple, list] = {}
    for row in rows:
        key_values = [value(expr, row) for expr, _ in command.by]
        key = tuple(key_values)
        groups.setdefault(key, []).append(row)
        keys.setdefault(key, key_values)
    if not command.by and not groups:
        groups[()] = []
        keys[()] = []
    out = []
    for key, members in groups.items():
        result = {alias: v for (_, alias), v in zip(command.by, keys[key])}
        for expr, alias in command.items:
            result[alias] = _aggregate_value(expr, members)
        out.append(result)
    if any(expr[0] == "call" and expr[1] == "bin" for expr, _ in command.by):
        out.sort(key=lambda r: [_sort_key(r.get(alias)) for _, alias in command.by])
    return out


def _aggregate_value(expr, members: list[dict]):
    kind = expr[0]
    if kind == "call" and expr[1] in AGGREGATES:
        return _aggregate(expr[1], expr[2], members)
    if kind == "op":
        fake = {"l": _aggregate_value(expr[2], members), "r": _aggregate_value(expr[3], members)}
        return _binary(expr[1], ("field", "l"), ("field", "r"), fake)
    if kind == "neg":
        inner = _as_number(_aggregate_value(expr[1], members))
        return None if inner is None else -inner
    if kind == "call":
        args = [("field", f"a{i}") for i in range(len(expr[2]))]
        fake = {f"a{i}": _aggregate_value(arg, members) for i, arg in enumerate(expr[2])}
        return _call(expr[1], [lambda a=a: value(a, fake) for a in args], fake)
    if kind == "lit":
        return expr[1]
    return value(expr, members[0]) if members else None


def _aggregate(name: str, args, members: list[dict]):
    if name == "count":
        if not args or args[0][0] == "star":
            return len(members)
        return sum(1 for row in members if value(args[0], row) is not None)
    present = [(row, value(args[0], row)) for row in members] if args else []
    present = [(row, v) for row, v in present if v is not None]
    if name == "count_distinct":
        return len({_text_value(v) for _, v in present})
    if name in ("earliest", "latest"):
        if not present:
            return None
        pick = min if name == "earliest" else max
        return pick(present, key=lambda item: item[0]["@timestamp"])[1]
    numbers = [n for n in (_as_number(v) for _, v in present) if n is not None]
    if not numbers:
        return None
    if name == "sum":
        return sum(numbers)
    if name == "avg":
        return sum(numbers) / len(numbers)
    if name == "min":
        return min(numbers)
    if name == "max":
        return max(numbers)
    if name == "stddev":
        if len(numbers) < 2:
            return 0
        mean = sum(numbers) / len(numbers)
        return math.sqrt(sum((n - mean) ** 2 for n in numbers) / (len(numbers) - 1))
    if name in ("pct", "percentile"):
        if len(args) < 2:
            raise QuerySyntaxError(f"{name}() takes a field and a percentile", 0)
        rank = _as_number(value(args[1], {}))
        if rank is None or not 0 <= rank <= 100:
            raise QuerySyntaxError(f"{name}() takes a percentile from 0 to 100", 0)
        ordered = sorted(numbers)
        index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
        return ordered[index]
    return None


# ---------------------------------------------------------------- helpers
def _as_number(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            number = float(v)
        except ValueError:
            return None
        return int(number) if number.is_integer() and re.fullmatch(r"-?\d+", v.strip()) else number
    return None


def _equal(a, b) -> bool:
    x, y = _as_number(a), _as_number(b)
    if x is not None and y is not None and not (isinstance(a, str) and isinstance(b, str)):
        return x == y
    return _text_value(a) == _text_value(b)


def _truth(v):
    if v is None:
        return None
    return _truthy(v)


def _truthy(v) -> bool:
    if v is None or v is False:
        return False
    if v is True:
        return True
    if isinstance(v, (int, float)):
        return v != 0
    return v != ""


def _sort_key(v):
    number = _as_number(v)
    return (0, number, "") if number is not None else (1, 0, _text_value(v))


def _text_value(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, _Time):
        return _time_text(int(v))
    if isinstance(v, float):
        return format(v, ".15g") if not v.is_integer() else str(int(v))
    return str(v)


def _time_text(millis: int) -> str:
    stamp = datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{millis % 1000:03d}"


def _text(field: str, v) -> str:
    if field in ("@timestamp", "@ingestionTime") and isinstance(v, (int, float)) and not isinstance(v, bool):
        return _time_text(int(v))
    return _text_value(v)
