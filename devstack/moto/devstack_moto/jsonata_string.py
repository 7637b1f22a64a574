"""``$string`` as JSONata's reference implementation (JavaScript) gives it.

jsonata-python serialises with Python's ``json.dumps`` defaults: every
non-ASCII character becomes a ``\\uXXXX`` escape and nested numbers keep
Python's spelling (``1.0``, ``1e-07``). JSONata (and so AWS) uses
``JSON.stringify`` with each number rounded to 15 significant digits:
``$string({"a": "ü", "b": 1.0})`` is ``{"a":"ü","b":1}``. A workflow that
measures a payload with ``$length($string(...))`` would otherwise see up to
six times the size it has on AWS.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from jsonata import functions as jsonata_functions
from jsonata import parser as jsonata_parser
from jsonata import utils as jsonata_utils

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_PYTHON_FLOAT = re.compile(r"(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$")


def js_number(value: float) -> str:
    """A number as JavaScript's ``String(Number(x.toPrecision(15)))``."""
    if not math.isfinite(value):
        return "null"
    rounded = float(f"{value:.15g}")
    if rounded == int(rounded) and abs(rounded) < 1e21:
        return str(int(rounded))
    match = _PYTHON_FLOAT.match(repr(rounded))
    if match is None:  # repr of a finite float always matches
        return repr(rounded)
    sign, whole, fraction, exponent = match.groups()
    all_digits = whole + (fraction or "")
    digits = all_digits.lstrip("0")
    # value = 0.<digits> * 10**point
    point = len(whole) + int(exponent or 0) - (len(all_digits) - len(digits))
    digits = digits.rstrip("0")
    count = len(digits)
    if count <= point <= 21:
        text = digits + "0" * (point - count)
    elif 0 < point <= 21:
        text = f"{digits[:point]}.{digits[point:]}"
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        power = point - 1
        mantissa = digits[0] + (f".{digits[1:]}" if count > 1 else "")
        text = f"{mantissa}e{'+' if power >= 0 else '-'}{abs(power)}"
    return sign + text


def _quote(text: str) -> str:
    quoted = json.dumps(text, ensure_ascii=False)
    # Well-formed JSON.stringify escapes a lone surrogate instead of
    # emitting it (Python strings hold pairs as one code point).
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


def _is_function(value: Any) -> bool:
    from jsonata import jsonata

    return isinstance(value, (jsonata.Jsonata.JFunction, jsonata_parser.Parser.Symbol))


def stringify(value: Any, indent: str = "", depth: int = 0) -> str | None:
    """``JSON.stringify(value, <JSONata's replacer>, indent)``."""
    if value is None or value is jsonata_utils.Utils.NULL_VALUE:
        return "null"
    if _is_function(value):
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return js_number(float(value))
    if isinstance(value, str):
        return _quote(value)
    inner = "\n" + indent * (depth + 1) if indent else ""
    outer = "\n" + indent * depth if indent else ""
    if isinstance(value, dict):
        colon = ": " if indent else ":"
        members = [
            f"{inner}{_quote(str(k))}{colon}{stringify(v, indent, depth + 1)}"
            for k, v in value.items()
        ]
        return "{" + ",".join(members) + outer + "}" if members else "{}"
    if isinstance(value, (list, tuple)):
        items = [f"{inner}{stringify(v, indent, depth + 1)}" for v in value]
        return "[" + ",".join(items) + outer + "]" if items else "[]"
    return _quote(str(value))


def _string(arg: Any, prettify: bool) -> str:
    if _is_function(arg):
        return ""
    return stringify(arg, "  " if prettify else "") or ""


def install() -> None:
    jsonata_functions.Functions._string = staticmethod(_string)
