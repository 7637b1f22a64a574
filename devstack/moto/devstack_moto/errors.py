"""Failures as AWS reports them, shared by the other modules; error names
that travel unchanged out of Parallel branches, Map iterations and Fail
states; a Fail state's cause reported as given; and the two errors no
Retry or Catch can match.

AWS: "A States.Runtime error isn't retriable, and will always cause the
execution to fail. A retry or catch on States.ALL won't catch
States.Runtime errors", and States.DataLimitExceeded is "a terminal error
which cannot be caught by the States.ALL error type". moto's States.ALL
matches everything, so a workflow whose Catch "handles" a runtime error
passed locally and failed on AWS."""

from __future__ import annotations

from moto.core.exceptions import AWSError
from moto.stepfunctions.parser import api as parser_api
from moto.stepfunctions.parser.api import (
    EvaluationFailedEventDetails,
    ExecutionFailedEventDetails,
    HistoryEventType,
    TaskFailedEventDetails,
)
from moto.stepfunctions.parser.asl.component.common.error_name import (
    custom_error_name,
    error_equals_decl,
)
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import (
    ErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.fail import state_fail
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails


def runtime_failure(env, cause: str) -> FailureEventException:
    """``States.Runtime``: uncatchable, it fails the execution."""
    error = StatesErrorNameType.StatesRuntime.to_name()
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=StatesErrorNameType.StatesRuntime),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(
                taskFailedEventDetails=TaskFailedEventDetails(error=error, cause=cause)
            ),
        )
    )


def query_failure(env, cause: str, location: str | None = None) -> FailureEventException:
    """``States.QueryEvaluationError``, with the ``EvaluationFailed`` history
    event AWS writes; Task, Map and Parallel states can retry and catch it."""
    error = StatesErrorNameType.StatesQueryEvaluationError.to_name()
    details = EvaluationFailedEventDetails(error=error, cause=cause)
    if location:
        details["location"] = location
    failure = FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(
                typ=StatesErrorNameType.StatesQueryEvaluationError
            ),
            event_type=HistoryEventType.EvaluationFailed,
            event_details=EventDetails(evaluationFailedEventDetails=details),
        )
    )
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.EvaluationFailed,
        event_details=EventDetails(
            evaluationFailedEventDetails=failure.get_evaluation_failed_event_details()
        ),
    )
    return failure


def _any_error_name(self, error_name) -> None:
    # moto refuses names starting with "States." when it re-raises the error
    # of a Parallel branch or Map iteration (or a function's errorType), and
    # fails the execution with States.Runtime instead. AWS passes the name
    # on, so a Catch on States.QueryEvaluationError, States.Timeout, ...
    # around a Parallel or Map state catches it.
    ErrorName.__init__(self, error_name=error_name)


class FailStateFailure(FailureEventException):
    """A Fail state's error: AWS reports its Error and Cause as given. moto
    prefixes the cause with "An error occurred while executing the state"
    when the error's name is States.Runtime or States.QueryEvaluationError,
    as it does for the engine's own errors, so a Fail state re-raising a
    caught error changed its cause."""

    def get_execution_failed_event_details(self):
        details = ExecutionFailedEventDetails()
        pair = self.extract_error_cause_pair()
        if pair is not None:
            error, cause = pair
            if error:
                details["error"] = error
            if cause:
                details["cause"] = cause
        return details


_original_fail_eval = state_fail.StateFail._eval_state


def _fail_eval_state(self, env) -> None:
    try:
        _original_fail_eval(self, env)
    except FailureEventException as failure:
        raise FailStateFailure(failure_event=failure.failure_event) from None


_TERMINAL = {
    StatesErrorNameType.StatesRuntime.to_name(),
    StatesErrorNameType.StatesStatesDataLimitExceeded.to_name(),
}
_original_error_equals = error_equals_decl.ErrorEqualsDecl._eval_body


def _error_equals_eval_body(self, env) -> None:
    error_name = env.stack[-1]
    if getattr(error_name, "error_name", None) in _TERMINAL:
        env.stack.pop()
        env.stack.append(False)
        return
    _original_error_equals(self, env)


def data_limit_failure(env, cause: str) -> FailureEventException:
    """``States.DataLimitExceeded``: terminal, it fails the execution."""
    error = StatesErrorNameType.StatesStatesDataLimitExceeded.to_name()
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(
                typ=StatesErrorNameType.StatesStatesDataLimitExceeded
            ),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(
                taskFailedEventDetails=TaskFailedEventDetails(error=error, cause=cause)
            ),
        )
    )


def _name_api_errors() -> None:
    # moto's Step Functions parser declares its API errors with `code` and
    # `status_code`, but their base class reads `TYPE` and `STATUS`: an
    # InvalidDefinition (or InvalidToken, ...) reached clients with an empty
    # error code, which SDKs cannot match.
    for value in vars(parser_api).values():
        if (
            isinstance(value, type)
            and issubclass(value, AWSError)
            and isinstance(getattr(value, "code", None), str)
            and not value.TYPE
        ):
            value.TYPE = value.code
            value.STATUS = getattr(value, "status_code", value.STATUS)


def install() -> None:
    custom_error_name.CustomErrorName.__init__ = _any_error_name
    state_fail.StateFail._eval_state = _fail_eval_state
    error_equals_decl.ErrorEqualsDecl._eval_body = _error_equals_eval_body
    _name_api_errors()
