"""Step Functions' payload limit, measured and applied as AWS does.

AWS: "Maximum input or output size for a task, state, or execution: 256 KiB
of data as a UTF-8 encoded string. This quota affects tasks (activity,
Lambda function, or integrated service), state or execution output, and
input data when scheduling a task" - past it, States.DataLimitExceeded,
which no Catch can match. moto differs twice:
- it checks a state's output, not what a Task state sends to its resource,
  so a workflow that sends a too-large payload to a Lambda function passed
  locally and failed on AWS;
- it measures Python's default ``json.dumps`` text, with ``\\uXXXX`` for
  every non-ASCII character and a space after each comma and colon, so a
  state output of 100 KiB of accented text failed locally (three times its
  UTF-8 size) and passed on AWS; and an output of exactly 256 KiB failed.
"""

from __future__ import annotations

import json
from typing import Any

from moto.stepfunctions.parser.asl.component.state import state
from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
    state_task_lambda,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service,
)

from .errors import data_limit_failure

PAYLOAD_LIMIT = 262_144


def payload_bytes(value: Any) -> int:
    """The size of ``value`` as compact JSON in UTF-8 (a string as itself)."""
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    )
    return len(text.encode("utf-8", "surrogatepass"))


def is_within_size_quota(value: Any) -> bool:
    return payload_bytes(value) <= PAYLOAD_LIMIT


_original_before = state_task_service.StateTaskService._before_eval_execution


def _before_eval_execution(self, env, resource_runtime_part, raw_parameters, state_credentials):
    if not is_within_size_quota(raw_parameters):
        raise data_limit_failure(
            env,
            f"The state/task '{self.name}' provided parameters with a size "
            f"exceeding the maximum number of bytes service limit.",
        )
    _original_before(self, env, resource_runtime_part, raw_parameters, state_credentials)


def install() -> None:
    state_task_service.StateTaskService._before_eval_execution = _before_eval_execution
    # Each module imported moto's check by name.
    for module in (state, state_task_lambda, state_task_service):
        module.is_within_size_quota = is_within_size_quota
