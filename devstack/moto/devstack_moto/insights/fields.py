"""The fields Logs Insights discovers in one log event.

AWS ("Supported logs and discovered fields"): every event has ``@message``,
``@timestamp``, ``@ingestionTime``, ``@logStream`` and ``@log``
(``account-id:log-group-name``); the first JSON object in a line gives its
keys as fields, nested keys joined with ``.``; a Lambda log group's
``START``, ``END`` and ``REPORT`` lines give ``@type``, ``@requestId`` and
the REPORT line's ``@duration``, ``@billedDuration``, ``@memorySize``,
``@maxMemoryUsed`` and ``@initDuration``.

Assumptions, not checked against AWS (docs/local-fidelity.md lists them):
JSON ``true``/``false`` become 1 and 0 (what users report of AWS); a JSON
``null`` is no field at all; an array's items are fields ``key.0``,
``key.1``; ``@memorySize`` and ``@maxMemoryUsed`` are in bytes of 10^6 per
MB; a JSON-format ``platform.report`` record gives only its own nested
fields (``record.metrics.durationMs``), no ``@duration``.
"""

from __future__ import annotations

import json
import re

ACCOUNT_ID = "123456789012"

# AWS discovers at most this many fields per JSON event.
MAX_JSON_FIELDS = 1000

SYSTEM_FIELDS = ("@timestamp", "@message", "@ingestionTime", "@logStream", "@log", "@ptr")

_DECODER = json.JSONDecoder()

_PLATFORM_LINE = re.compile(r"^(START|END|REPORT) RequestId: ([0-9A-Za-z-]+)")
_REPORT_FIELDS = {
    "Duration": ("@duration", 1),
    "Billed Duration": ("@billedDuration", 1),
    "Memory Size": ("@memorySize", 1_000_000),
    "Max Memory Used": ("@maxMemoryUsed", 1_000_000),
    "Init Duration": ("@initDuration", 1),
}
_REPORT_PART = re.compile(r"(Duration|Billed Duration|Memory Size|Max Memory Used|Init Duration): ([0-9.]+)")


def record(group: str, stream: str, event, index: int) -> dict:
    """The fields of one moto ``LogEvent`` in ``group``/``stream``."""
    message = event.message
    fields = {
        "@timestamp": event.timestamp,
        "@ingestionTime": event.ingestion_time,
        "@message": message,
        "@logStream": stream,
        "@log": f"{ACCOUNT_ID}:{group}",
        "@ptr": f"{group}/{stream}/{index}",
    }
    platform = _PLATFORM_LINE.match(message)
    if platform:
        fields["@type"] = platform.group(1)
        fields["@requestId"] = platform.group(2)
        if platform.group(1) == "REPORT":
            for name, value in _REPORT_PART.findall(message):
                field, scale = _REPORT_FIELDS[name]
                fields[field] = _number(value) * scale
        return fields
    discovered = json_fields(message)
    for key, value in discovered.items():
        fields.setdefault(key, value)
    return fields


def json_fields(message: str) -> dict:
    """The flattened fields of the first JSON object in ``message``."""
    start = message.find("{")
    if start < 0:
        return {}
    try:
        value, _ = _DECODER.raw_decode(message, start)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    out: dict = {}
    _flatten("", value, out)
    return out


def _flatten(prefix: str, value, out: dict) -> None:
    if len(out) >= MAX_JSON_FIELDS:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}{key}" if not prefix else f"{prefix}.{key}", item, out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _flatten(f"{prefix}.{i}", item, out)
    elif isinstance(value, bool):
        out[prefix] = 1 if value else 0
    elif value is not None:
        out[prefix] = value


def _number(text: str):
    value = float(text)
    return int(value) if value.is_integer() else value
