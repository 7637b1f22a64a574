"""CloudWatch Logs Insights queries that run: ``StartQuery``,
``GetQueryResults``, ``StopQuery`` and ``DescribeQueries`` answered by a
real evaluator of the query language (``query.py``, ``evaluate.py``).

moto's own ``start_query`` understands little beyond ``@timestamp``,
``@message``, ``sort`` and ``limit``: a saved query with a wrong field name,
a ``stats`` or a ``filter`` ran "green" locally and showed nothing useful.

AWS runs a query asynchronously; here it runs inside ``StartQuery``, so the
first ``GetQueryResults`` already says ``Complete`` (clients that poll until
``Complete`` work unchanged). A query AWS would refuse is refused the same
way: ``MalformedQueryException`` at ``StartQuery``.

One addition AWS does not have, ignored by SDKs: ``GetQueryResults`` lists
``devstackUnknownFields``, the fields the query reads that no scanned event
has (AWS silently returns empty columns for a misspelt field).
"""

from __future__ import annotations

import json
import time
import uuid

from moto.core.exceptions import JsonRESTError
from moto.logs import responses
from moto.logs.exceptions import InvalidParameterException, ResourceNotFoundException

from . import evaluate, fields, query

# StartQuery's limit: 1 to 10,000; 10,000 if not given (API reference).
MAX_LIMIT = 10_000


class MalformedQueryException(JsonRESTError):
    """AWS's answer to a query that does not compile."""

    code = 400

    def __init__(self, error: query.QuerySyntaxError):
        super().__init__("MalformedQueryException", str(error))
        self.description = json.dumps(
            {
                "__type": "MalformedQueryException",
                "message": str(error),
                "queryCompileError": {
                    "location": {"startCharOffset": error.position, "endCharOffset": error.position},
                    "message": str(error),
                },
            }
        )


class InsightsQuery:
    """One query that ran: what ``DescribeQueries`` and ``GetQueryResults`` show."""

    def __init__(self, query_id: str, text: str, groups: list, start: int, end: int, limit: int):
        self.query_id = query_id
        self.query = text
        self.log_group_names = [group.name for group in groups]
        self.create_time_ms = int(time.time() * 1000)
        try:
            commands = query.parse(text)
            evaluate.check(commands)
        except query.QuerySyntaxError as error:
            raise MalformedQueryException(error) from error
        records = []
        for group in groups:
            for stream in list(group.streams.values()):
                for index, event in enumerate(list(stream.events)):
                    if start * 1000 <= event.timestamp <= end * 1000 + 999:
                        records.append(fields.record(group.name, stream.log_stream_name, event, index))
        try:
            self.result = evaluate.run(commands, records, limit)
        except query.QuerySyntaxError as error:
            raise MalformedQueryException(error) from error
        present = set(fields.SYSTEM_FIELDS)
        for record in records:
            present.update(record)
        self.unknown_fields = [name for name in query.referenced_fields(commands) if name not in present]
        self.status = "Complete"

    def to_json(self, log_group_name) -> dict:
        return {
            "queryId": self.query_id,
            "queryString": self.query,
            "status": self.status,
            "createTime": self.create_time_ms,
            "logGroupName": log_group_name or (self.log_group_names[0] if self.log_group_names else ""),
        }

    def to_result_json(self) -> dict:
        result = self.result
        return {
            "queryLanguage": "CWLI",
            "results": [[{"field": f, "value": v} for f, v in row] for row in result.rows],
            "statistics": {
                "recordsMatched": float(result.records_matched),
                "recordsScanned": float(result.records_scanned),
                "bytesScanned": float(result.bytes_scanned),
            },
            "status": self.status,
            "devstackUnknownFields": self.unknown_fields,
        }


def _group_names(self) -> list[str]:
    name = self._get_param("logGroupName")
    names = self._get_param("logGroupNames")
    identifiers = self._get_param("logGroupIdentifiers")
    given = [x for x in (name, names, identifiers) if x]
    if len(given) != 1:
        raise InvalidParameterException(
            "Exactly one of logGroupName, logGroupNames or logGroupIdentifiers is required."
        )
    chosen = [name] if name else list(names or identifiers)
    # An identifier may be a log group's ARN: arn:aws:logs:region:account:log-group:NAME[:*]
    return [item.split(":log-group:", 1)[1].removesuffix(":*") if ":log-group:" in item else item for item in chosen]


def _start_query(self) -> str:
    backend = self.logs_backend
    names = _group_names(self)
    start, end = self._get_int_param("startTime"), self._get_int_param("endTime")
    if start is None or end is None:
        raise InvalidParameterException("startTime and endTime are required.")
    if end < start:
        raise InvalidParameterException("endTime must not be before startTime.")
    limit = self._get_int_param("limit") or MAX_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameterException(f"limit must be from 1 to {MAX_LIMIT}.")
    text = self._get_param("queryString") or ""
    groups = []
    for name in names:
        if name not in backend.groups:
            raise ResourceNotFoundException(f"Log group '{name}' does not exist.")
        groups.append(backend.groups[name])
    query_id = str(uuid.uuid4())
    backend.queries[query_id] = InsightsQuery(query_id, text, groups, start, end, limit)
    return json.dumps({"queryId": query_id})


def _known_query(self):
    query_id = self._get_param("queryId")
    found = self.logs_backend.queries.get(query_id)
    if found is None:
        raise ResourceNotFoundException(f"Query '{query_id}' does not exist.")
    return found


def _get_query_results(self) -> str:
    return json.dumps(_known_query(self).to_result_json())


def _stop_query(self) -> str:
    found = _known_query(self)
    if found.status in ("Complete", "Failed", "Cancelled", "Timeout"):
        # AWS: "If the query has already ended, the operation returns an
        # error indicating that the specified query is not running."
        raise InvalidParameterException(f"Query '{found.query_id}' is not running.")
    found.status = "Cancelled"
    return json.dumps({"success": True})


def install() -> None:
    """Replaces moto's query operations with the evaluator."""
    responses.LogsResponse.start_query = _start_query
    responses.LogsResponse.get_query_results = _get_query_results
    responses.LogsResponse.stop_query = _stop_query
