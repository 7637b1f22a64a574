"""The Python side-by-side: what users pick instead of `common`.

Powertools for AWS Lambda's Logger with the Lambda context injected and the
correlation ID taken from the Step Functions payload, a start and an end line,
the input echoed back.
"""

import time

from aws_lambda_powertools import Logger

logger = Logger(service="echo")


@logger.inject_lambda_context(correlation_id_path="correlation_id")
def handler(event, context):
    started = time.perf_counter()
    logger.info("task started")
    result = dict(event)
    logger.info("task finished", extra={"outcome": "success", "duration_ms": (time.perf_counter() - started) * 1000})
    return result
