"""Step Functions' payload limit where moto does not apply it.

AWS: "Maximum input or output size for a task, state, or execution: 256 KiB
of data as a UTF-8 encoded string. This quota affects tasks (activity,
Lambda function, or integrated service), state or execution output, and
input data when scheduling a task" - past it, States.DataLimitExceeded,
which no Catch can match. moto checks a state's output, not what a Task
state sends to its resource, so a workflow that sends a too-large payload
to a Lambda function passed locally and failed on AWS.
"""

from __future__ import annotations

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service,
)
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

from .errors import data_limit_failure

PAYLOAD_LIMIT = 262_144

_original_before = state_task_service.StateTaskService._before_eval_execution


def _before_eval_execution(self, env, resource_runtime_part, raw_parameters, state_credentials):
    size = len(to_json_str(raw_parameters).encode("utf-8"))
    if size > PAYLOAD_LIMIT:
        raise data_limit_failure(
            env,
            f"The state/task '{self.name}' provided parameters with a size "
            f"exceeding the maximum number of bytes service limit.",
        )
    _original_before(self, env, resource_runtime_part, raw_parameters, state_credentials)


def install() -> None:
    state_task_service.StateTaskService._before_eval_execution = _before_eval_execution
