"""Values of Logs Insights expressions for one event: fields, literals,
operators and the scalar functions, with AWS's (and, where AWS documents
nothing, the assumed) semantics listed in ``evaluate.py``.

A missing field, or an operation on one, is ``None`` (unknown); ``and``,
``or`` and ``not`` follow three-valued logic, so ``filter`` keeps only what
is known to be true.
"""

from __future__ import annotations

import datetime
import math
import re

SCALAR_FUNCTIONS = {
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
        inner = truth(value(expr[1], row))
        return None if inner is None else not inner
    if kind == "neg":
        number = as_number(value(expr[1], row))
        return None if number is None else -number
    if kind == "like":
        subject = value(expr[1], row)
        if subject is None:
            return None
        subject = text_value(subject)
        pattern = expr[2]
        found = pattern[1].search(subject) is not None if pattern[0] == "regex" else pattern[1] in subject
        return found != expr[3]
    if kind == "in":
        subject = value(expr[1], row)
        if subject is None:
            return None
        found = any(equal(subject, value(item, row)) for item in expr[2])
        return found != expr[3]
    if kind == "op":
        return binary(expr[1], expr[2], expr[3], row)
    if kind == "call":
        return call(expr[1], [lambda a=a: value(a, row) for a in expr[2]], row)
    return None


def binary(op: str, left_expr, right_expr, row: dict):
    if op in ("and", "or"):
        left = truth(value(left_expr, row))
        if op == "and" and left is False:
            return False
        if op == "or" and left is True:
            return True
        right = truth(value(right_expr, row))
        if op == "and":
            return False if right is False else (None if None in (left, right) else True)
        return True if right is True else (None if None in (left, right) else False)
    left, right = value(left_expr, row), value(right_expr, row)
    if left is None or right is None:
        return None
    if op in ("=", "!="):
        return equal(left, right) == (op == "=")
    if op in ("<", ">", "<=", ">="):
        a, b = as_number(left), as_number(right)
        if a is None or b is None:
            a, b = text_value(left), text_value(right)
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
    a, b = as_number(left), as_number(right)
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


def call(name: str, args, row: dict):
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
        stamp, period = as_number(stamp), as_number(period)
        if stamp is None or not period:
            return None
        floor = int(stamp // period * period)
        return Time(floor if name != "dateceil" or floor == stamp else floor + int(period))
    if any(v is None for v in values):
        return None
    if name == "strcontains":
        return 1 if text_value(values[1]) in text_value(values[0]) else 0
    if name == "concat":
        return "".join(text_value(v) for v in values)
    if name == "tolower":
        return text_value(values[0]).lower()
    if name == "toupper":
        return text_value(values[0]).upper()
    if name == "strlen":
        return len(text_value(values[0]))
    if name == "substr":
        text = text_value(values[0])
        start = int(as_number(values[1]) or 0)
        return text[start : start + int(as_number(values[2]))] if len(values) > 2 else text[start:]
    if name == "replace":
        return text_value(values[0]).replace(text_value(values[1]), text_value(values[2]))
    if name in ("trim", "ltrim", "rtrim"):
        text = text_value(values[0])
        return {"trim": text.strip, "ltrim": text.lstrip, "rtrim": text.rstrip}[name]()
    if name == "isvalidip":
        return re.fullmatch(r"(\d{1,3}\.){3}\d{1,3}", text_value(values[0])) is not None
    if name == "frommillis":
        return Time(int(as_number(values[0]) or 0))
    if name == "tomillis":
        return as_number(values[0])
    numbers = [as_number(v) for v in values]
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


class Time(int):
    """A time value (milliseconds) that prints as Logs Insights prints times."""


def as_number(v):
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


def equal(a, b) -> bool:
    x, y = as_number(a), as_number(b)
    if x is not None and y is not None and not (isinstance(a, str) and isinstance(b, str)):
        return x == y
    return text_value(a) == text_value(b)


def truth(v):
    if v is None:
        return None
    return truthy(v)


def truthy(v) -> bool:
    if v is None or v is False:
        return False
    if v is True:
        return True
    if isinstance(v, (int, float)):
        return v != 0
    return v != ""


def sort_key(v):
    number = as_number(v)
    return (0, number, "") if number is not None else (1, 0, text_value(v))


def text_value(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, Time):
        return time_text(int(v))
    if isinstance(v, float):
        return format(v, ".15g") if not v.is_integer() else str(int(v))
    return str(v)


def time_text(millis: int) -> str:
    stamp = datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{millis % 1000:03d}"


def cell_text(field: str, v) -> str:
    if field in ("@timestamp", "@ingestionTime") and isinstance(v, (int, float)) and not isinstance(v, bool):
        return time_text(int(v))
    return text_value(v)
