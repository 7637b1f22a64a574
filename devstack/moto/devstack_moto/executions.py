"""Executions started as AWS starts them.

- ``StartExecution`` without a name: AWS names the execution with a UUID;
  moto leaves the name ``None`` (``...:execution:machine:None``), so
  ``$$.Execution.Name`` is null and a second nameless start collides.
- ``$$.Execution.StartTime`` is an ISO 8601 string on AWS; moto puts a
  Python datetime in the context object, so a state that outputs
  ``$states.context`` (or ``$$``) breaks ``DescribeExecution`` with HTTP 500.
  ``$$.State.EnteredTime`` gets AWS's form too (milliseconds, ``Z``).
- An execution is ``SUCCEEDED`` on AWS together with its output; moto sets
  the status first and the output after, so a ``DescribeExecution`` in
  between (likelier the larger the output, e.g. a Distributed Map's
  thousand results) saw a succeeded execution without output.
- ``DescribeExecution``'s ``output`` is JSON text on AWS; moto returns an
  execution whose output is a JSON string (``"done"``) without its quotes,
  which no client can parse.
"""

from __future__ import annotations

import datetime
import json
import uuid

from moto.stepfunctions import responses
from moto.stepfunctions.parser import models as parser_models
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.eval import program_state
from moto.stepfunctions.parser.backend import execution as execution_module

_original_start = parser_models.StepFunctionsParserBackend.start_execution
_original_details = execution_module.Execution.get_start_execution_details


def _start_execution(self, state_machine_arn, name=None, *args, **kwargs):
    return _original_start(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)


def iso_time(value) -> str:
    """AWS's timestamp form in the context object: ``2026-11-24T10:00:00.123Z``."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        value = value.astimezone(datetime.timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value


def _start_details(self):
    details = _original_details(self)
    details.start_time = iso_time(details.start_time)
    return details


_original_state_input = state_module.CommonStateField._eval_state_input


def _state_input(self, env) -> None:
    # Runs right after moto records the state's EnteredTime.
    state = env.states.context_object.context_object_data.get("State")
    if state and isinstance(state.get("EnteredTime"), str):
        entered = datetime.datetime.fromisoformat(state["EnteredTime"])
        state["EnteredTime"] = iso_time(entered)
    _original_state_input(self, env)


_original_describe = responses.StepFunctionResponse.describe_execution


def _describe_execution(self):
    described = _original_describe(self)
    execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
    if isinstance(execution.output, str) and "output" in described.result:
        described.result["output"] = json.dumps(execution.output)
    return described


_original_reflect = execution_module.BaseExecutionWorkerCommunication._reflect_execution_status


def _reflect_execution_status(self) -> None:
    env = self.execution.exec_worker.env
    if isinstance(env.program_state(), program_state.ProgramEnded):
        # The output first: the status moto sets next makes it visible.
        self.execution.output = env.states.get_input()
    _original_reflect(self)


def install() -> None:
    execution_module.BaseExecutionWorkerCommunication._reflect_execution_status = (
        _reflect_execution_status
    )
    responses.StepFunctionResponse.describe_execution = _describe_execution
    state_module.CommonStateField._eval_state_input = _state_input
    parser_models.StepFunctionsParserBackend.start_execution = _start_execution
    execution_module.Execution.get_start_execution_details = _start_details
