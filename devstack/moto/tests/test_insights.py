"""The Logs Insights evaluator against hand-made events (no server).

Run: ``.venv/bin/python -m unittest discover -s devstack/moto/tests -t devstack/moto``
(``make test`` does).
"""

from __future__ import annotations

import json
import unittest
from types import SimpleNamespace

from devstack_moto.insights import evaluate, fields, query


def events(*lines, start=1_000_000):
    out = []
    for i, line in enumerate(lines):
        message = line if isinstance(line, str) else json.dumps(line)
        event = SimpleNamespace(message=message, timestamp=start + i * 1000, ingestion_time=start + i * 1000)
        out.append(fields.record("/aws/lambda/f", "stream-1", event, i))
    return out


def run(text, records, limit=10_000, ptr=False):
    commands = query.parse(text)
    evaluate.check(commands)
    rows = [dict(row) for row in evaluate.run(commands, records, limit).rows]
    return rows if ptr else [{k: v for k, v in row.items() if k != "@ptr"} for row in rows]


FINISHED = [
    {"message": "task finished", "service": "invoice", "outcome": "success", "duration_ms": 10, "cold_start": True},
    {"message": "task finished", "service": "invoice", "outcome": "error", "error_type": "Invoice.Invalid", "duration_ms": 30},
    {"message": "task finished", "service": "notify", "outcome": "error", "error_type": "Notify.Failed", "duration_ms": 20},
    {"message": "task finished", "service": "notify", "outcome": "error", "error_type": "Notify.Failed", "duration_ms": 40},
    {"message": "task started", "service": "notify", "cold_start": False},
    "plain text line",
]


class Parsing(unittest.TestCase):
    def test_every_saved_query_shape_parses(self):
        for text in [
            'fields @timestamp, service | filter correlation_id = "x" | sort @timestamp asc | limit 1000',
            'filter message = "task finished" and outcome != "success" | stats count(*) as failures by service, error_type | sort failures desc',
            "stats pct(duration_ms, 50) as p50, count(*) by service, bin(5m)",
            'parse @message "user=* action=*" as user, action | display user',
            "filter @message like /(?i)timeout/ | stats count_distinct(@requestId)",
            "filter level in ['ERROR', 'WARN'] and not ispresent(error_type)",
            "# a comment\nfields `odd-name` | sort by @timestamp desc",
        ]:
            query.parse(text)

    def test_malformed_queries_name_the_position(self):
        for text, where in [
            ("", 0),
            ("fields a |", 10),
            ("filter a = ", 11),
            ("stats a by b", 0),
            ("limit -1", 6),
            ("select *", 0),
            ('parse @message "a*b*" as x', 15),
        ]:
            with self.assertRaises(query.QuerySyntaxError, msg=text) as caught:
                query.parse(text)
            self.assertEqual(caught.exception.position, where, text)

    def test_unknown_functions_and_misplaced_aggregates_are_refused(self):
        for text in ["fields nosuch(a)", "filter count(*) > 1", "fields *"]:
            with self.assertRaises(query.QuerySyntaxError, msg=text):
                evaluate.check(query.parse(text))

    def test_referenced_fields_leave_out_what_the_query_defines(self):
        commands = query.parse(
            'parse @message "id=*" as id | fields concat(id, service) as key | filter key = "x" and level = "E"'
        )
        self.assertEqual(query.referenced_fields(commands), ["@message", "service", "level"])


class Fields(unittest.TestCase):
    def test_json_is_flattened_booleans_are_numbers_and_null_is_absent(self):
        (record,) = events('prefix {"a": {"b": 1}, "ok": true, "no": false, "n": null, "l": [3, 4]} tail')
        self.assertEqual(record["a.b"], 1)
        self.assertEqual((record["ok"], record["no"]), (1, 0))
        self.assertNotIn("n", record)
        self.assertEqual((record["l.0"], record["l.1"]), (3, 4))
        self.assertEqual(record["@log"], "123456789012:/aws/lambda/f")

    def test_report_lines_give_lambdas_fields(self):
        (record,) = events(
            "REPORT RequestId: id-1\tDuration: 38.66 ms\tBilled Duration: 243 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 54 MB\tInit Duration: 203.69 ms\t"
        )
        self.assertEqual(record["@type"], "REPORT")
        self.assertEqual(record["@requestId"], "id-1")
        self.assertEqual(record["@duration"], 38.66)
        self.assertEqual(record["@billedDuration"], 243)
        self.assertEqual(record["@memorySize"], 128_000_000)
        self.assertEqual(record["@initDuration"], 203.69)


class Evaluation(unittest.TestCase):
    def test_failures_by_service_and_error_type(self):
        rows = run(
            'filter message = "task finished" and outcome != "success" '
            "| stats count(*) as failures by service, error_type | sort failures desc",
            events(*FINISHED),
        )
        self.assertEqual(
            rows,
            [
                {"service": "notify", "error_type": "Notify.Failed", "failures": "2"},
                {"service": "invoice", "error_type": "Invoice.Invalid", "failures": "1"},
            ],
        )

    def test_a_comparison_with_a_missing_field_drops_the_event_either_way(self):
        records = events(*FINISHED)
        self.assertEqual(len(run('filter outcome != "success"', records)), 3)
        self.assertEqual(len(run('filter not (outcome = "success")', records)), 3)
        self.assertEqual(len(run("filter not ispresent(outcome)", records)), 2)

    def test_percentiles_sums_of_booleans_and_averages(self):
        rows = run(
            'filter message = "task finished" | stats pct(duration_ms, 50) as p50, pct(duration_ms, 99) as p99, '
            "avg(duration_ms) as mean, sum(cold_start) as cold, count(*) as n by service | sort service asc",
            events(*FINISHED),
        )
        self.assertEqual(rows[0], {"service": "invoice", "p50": "10", "p99": "30", "mean": "20", "cold": "1", "n": "2"})
        self.assertEqual(rows[1], {"service": "notify", "p50": "20", "p99": "40", "mean": "30", "n": "2"})

    def test_fields_sort_limit_and_ptr(self):
        rows = run("fields service, duration_ms | filter duration_ms > 15 | sort duration_ms asc | limit 2", events(*FINISHED), ptr=True)
        self.assertEqual([row["duration_ms"] for row in rows], ["20", "30"])
        self.assertTrue(all("@ptr" in row for row in rows))

    def test_without_fields_rows_are_newest_first_with_timestamp_and_message(self):
        rows = run('filter @message like "plain"', events(*FINISHED))
        self.assertEqual(rows[0]["@message"], "plain text line")
        self.assertEqual(rows[0]["@timestamp"], "1970-01-01 00:16:45.000")
        rows = run("fields service", events(*FINISHED))
        self.assertEqual(rows[0], {})  # the text line has no service
        self.assertEqual(rows[1]["service"], "notify")

    def test_parse_glob_and_regex(self):
        records = events("user=ann action=login", "user=bob action=logout")
        self.assertEqual(
            run('parse @message "user=* action=*" as user, action | display user, action | sort user asc', records),
            [{"user": "ann", "action": "login"}, {"user": "bob", "action": "logout"}],
        )
        self.assertEqual(
            run("parse @message /user=(?<who>\\w+)/ | stats count(*) by who | sort who asc", records),
            [{"who": "ann", "count(*)": "1"}, {"who": "bob", "count(*)": "1"}],
        )

    def test_bin_groups_by_period_in_time_order(self):
        records = events(*["x"] * 130, start=0)
        rows = run("stats count(*) as n by bin(1m)", records)
        self.assertEqual(
            [(row["bin(1m)"], row["n"]) for row in rows],
            [("1970-01-01 00:00:00.000", "60"), ("1970-01-01 00:01:00.000", "60"), ("1970-01-01 00:02:00.000", "10")],
        )

    def test_in_like_regex_and_count_distinct(self):
        records = events(*FINISHED)
        self.assertEqual(len(run("filter error_type in ['Notify.Failed', 'Other']", records)), 2)
        self.assertEqual(len(run("filter error_type not in ['Notify.Failed']", records)), 1)
        self.assertEqual(run("filter error_type like /^Notify/ | stats count_distinct(service) as s", records), [{"s": "1"}])

    def test_numbers_in_strings_compare_as_numbers(self):
        records = events({"n": "10"}, {"n": "9"}, {"n": 11})
        self.assertEqual(len(run("filter n > 9.5", records)), 2)
        self.assertEqual(len(run('filter n = "10"', records)), 1)

    def test_stats_with_no_events_counts_zero(self):
        self.assertEqual(run('filter message = "nothing" | stats count(*) as n', events(*FINISHED)), [{"n": "0"}])

    def test_arithmetic_over_aggregates(self):
        rows = run('filter message = "task finished" | stats sum(duration_ms) / count(*) as mean', events(*FINISHED))
        self.assertEqual(rows, [{"mean": "25"}])


if __name__ == "__main__":
    unittest.main()
