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

import math

from .query import AGGREGATES, Command, QuerySyntaxError
from .values import SCALAR_FUNCTIONS, as_number, binary, call, cell_text, sort_key, text_value, truthy, value

DEFAULT_COLUMNS = ["@timestamp", "@message"]

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
        elif name not in SCALAR_FUNCTIONS:
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
            rows = [row for row in rows if truthy(value(command.items[0], row))]
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
                present.sort(key=lambda r: sort_key(value(expr, r)), reverse=descending)
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
        cells = [(field, cell_text(field, row.get(field))) for field in shown if row.get(field) is not None]
        if not aggregated:
            cells.append(("@ptr", row["@ptr"]))
        out.append(cells)
    return Result(out, matched, scanned, scanned_bytes)


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
        out.sort(key=lambda r: [sort_key(r.get(alias)) for _, alias in command.by])
    return out


def _aggregate_value(expr, members: list[dict]):
    kind = expr[0]
    if kind == "call" and expr[1] in AGGREGATES:
        return _aggregate(expr[1], expr[2], members)
    if kind == "op":
        fake = {"l": _aggregate_value(expr[2], members), "r": _aggregate_value(expr[3], members)}
        return binary(expr[1], ("field", "l"), ("field", "r"), fake)
    if kind == "neg":
        inner = as_number(_aggregate_value(expr[1], members))
        return None if inner is None else -inner
    if kind == "call":
        args = [("field", f"a{i}") for i in range(len(expr[2]))]
        fake = {f"a{i}": _aggregate_value(arg, members) for i, arg in enumerate(expr[2])}
        return call(expr[1], [lambda a=a: value(a, fake) for a in args], fake)
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
        return len({text_value(v) for _, v in present})
    if name in ("earliest", "latest"):
        if not present:
            return None
        pick = min if name == "earliest" else max
        return pick(present, key=lambda item: item[0]["@timestamp"])[1]
    numbers = [n for n in (as_number(v) for _, v in present) if n is not None]
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
        rank = as_number(value(args[1], {}))
        if rank is None or not 0 <= rank <= 100:
            raise QuerySyntaxError(f"{name}() takes a percentile from 0 to 100", 0)
        ordered = sorted(numbers)
        index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
        return ordered[index]
    return None


