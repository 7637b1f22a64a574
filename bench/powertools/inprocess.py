"""Powertools' side of the in-process comparison: the handler called
directly (context injection, correlation ID, two JSON lines to a sink), and
the echo alone, in microseconds per call (median of 7 repeats).

Usage: python inprocess.py  (prints two tab-separated lines: label, µs)
"""

import os
import statistics
import sys
import timeit

# Powertools' Logger writes to sys.stdout as it is when the logger is made.
real_stdout = sys.stdout
sys.stdout = open(os.devnull, "w")

import handler  # noqa: E402


class Context:
    function_name = "bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:bench"
    memory_limit_in_mb = 128
    aws_request_id = "bench-request"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self):
        return 60_000


EVENT = {
    "correlation_id": "order-A-1001",
    "execution_id": "arn:aws:states:eu-west-1:123456789012:execution:bench:run-1",
    "state_name": "Echo",
    "retry_count": 0,
    "input": {"order_id": "A-1001", "n": 1},
}


def per_call(function, number=20_000):
    runs = timeit.repeat(function, number=number, repeat=7)
    return statistics.median(runs) / number * 1e6


context = Context()
with_powertools = per_call(lambda: handler.handler(EVENT, context))
alone = per_call(lambda: dict(EVENT))
print(f"handler with Powertools Logger\t{with_powertools:.2f}", file=real_stdout)
print(f"echo alone\t{alone:.2f}", file=real_stdout)
