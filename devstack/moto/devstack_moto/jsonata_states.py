"""JSONata in moto's Step Functions engine.

moto (like LocalStack, whose engine it vendors) parses ``QueryLanguage:
JSONata`` but never wires an evaluator: every expression fails the
execution with ``States.Runtime``. Here expressions are evaluated by
``jsonata-python``, a port of the reference jsonata-java, with ``$states``
and the workflow's variables passed as bindings (moto pastes them into the
expression text, unescaped), plus the functions Step Functions adds.

What AWS documents and this module gives:
- an expression that throws, or returns undefined, is
  ``States.QueryEvaluationError`` (catchable), its cause naming the
  expression and the field as ``Output/a/b``;
- ``$partition``, ``$range``, ``$hash``, ``$random`` (seeded like
  ``java.util.Random``, as AWS's is), ``$uuid`` and ``$parse``; ``$eval`` is
  not bound, as on AWS;
- a ``Condition`` that is not a boolean is ``States.QueryEvaluationError``.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import uuid
from typing import Any

import jsonata as jsonata_lib
from jsonata import utils as jsonata_utils

from moto.stepfunctions.parser.asl.component.common import outputdecl, parargs
from moto.stepfunctions.parser.asl.component.common.assign import (
    assign_decl,
    assign_template_binding,
)
from moto.stepfunctions.parser.asl.component.common.jsonata import (
    jsonata_template_binding,
)
from moto.stepfunctions.parser.asl.component.common.query_language import (
    QueryLanguageMode,
)
from moto.stepfunctions.parser.asl.component.common.string import string_expression
from moto.stepfunctions.parser.asl.component.common.timeouts import heartbeat, timeout
from moto.stepfunctions.parser.asl.component.state.choice.comparison import (
    comparison,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map import (
    item_selector,
    max_concurrency,
    tolerated_failure,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.items import items
from moto.stepfunctions.parser.asl.component.state.fail import cause_decl, error_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
    seconds,
    timestamp,
)
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata

from .errors import query_failure

# Compiled expressions, per thread: a jsonata-python expression keeps its
# evaluation state on itself, and moto runs executions on threads.
_compiled = threading.local()
_CACHE_LIMIT = 1024
# AWS fails an expression past its recursion limit ("Stack overflow error").
_STACK_LIMIT = 500
# AWS refuses arrays this large from $range with its memory limit (observed:
# 360,145 elements); the local stack refuses them too rather than build them.
_RANGE_LIMIT = 360_144


class QueryError(Exception):
    """An expression that cannot be evaluated."""


def compile_expression(expression: str) -> jsonata_lib.Jsonata:
    """The compiled expression (cached); raises on a syntax error."""
    cache = getattr(_compiled, "expressions", None)
    if cache is None:
        cache = _compiled.expressions = {}
    compiled = cache.get(expression)
    if compiled is None:
        compiled = jsonata_lib.Jsonata(expression, stack=_STACK_LIMIT)
        # Keeps JSONata's null apart from undefined (Python None).
        compiled.set_output_convert_nulls(False)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[expression] = compiled
    return compiled


# ---------------------------------------------------------------- functions


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise QueryError(f"{what} must be an integer")
    # AWS: "functions that require integer values ... round down".
    return math.floor(value)


def _partition(array: Any, size: Any) -> list:
    if not isinstance(array, list):
        raise QueryError("$partition: the first argument must be an array")
    size = _integer(size, "$partition: the chunk size")
    if size < 1:
        raise QueryError("$partition: the chunk size must be positive")
    return [array[i : i + size] for i in range(0, len(array), size)]


def _range(first: Any, last: Any, step: Any) -> list:
    first = _integer(first, "$range: the first element")
    last = _integer(last, "$range: the final element")
    step = _integer(step, "$range: the delta")
    if step == 0:
        raise QueryError("$range: the delta must not be 0")
    if (step > 0 and first > last) or (step < 0 and first < last):
        return []
    count = (last - first) // step + 1
    if count > _RANGE_LIMIT:
        raise QueryError("Expression evaluation memory limit exceeded")
    return list(range(first, last + (1 if step > 0 else -1), step))


_HASHES = {
    "MD5": hashlib.md5,
    "SHA-1": hashlib.sha1,
    "SHA-256": hashlib.sha256,
    "SHA-384": hashlib.sha384,
    "SHA-512": hashlib.sha512,
}


def _hash(value: Any, algorithm: Any) -> str:
    if not isinstance(value, str):
        raise QueryError("$hash: the first argument must be a string")
    digest = _HASHES.get(algorithm)
    if digest is None:
        raise QueryError(f"$hash: the algorithm must be one of {', '.join(_HASHES)}")
    return digest(value.encode("utf-8")).hexdigest()


def java_random_double(seed: int) -> float:
    """``new java.util.Random(seed).nextDouble()``: what AWS's seeded
    ``$random`` returns (``$random(42)`` is 0.7275636800328681)."""
    mask = (1 << 48) - 1
    state = (seed ^ 0x5DEECE66D) & mask

    def bits(n: int) -> int:
        nonlocal state
        state = (state * 0x5DEECE66D + 0xB) & mask
        return state >> (48 - n)

    return ((bits(26) << 27) + bits(27)) * (1.0 / (1 << 53))


def _random(*seed: Any) -> float:
    if not seed or seed[0] is None:
        return random.random()
    return java_random_double(_integer(seed[0], "$random: the seed"))


def _uuid() -> str:
    return str(uuid.uuid4())


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        raise QueryError("$parse: the argument must be a string")
    try:
        return json.loads(text)
    except ValueError as e:
        raise QueryError(f"$parse: the argument is not JSON: {e}") from None


def _bind(function):
    return jsonata_lib.Jsonata.JLambda(function)


# What Step Functions adds to JSONata. "$eval is not available" on AWS: it
# is bound to nothing, so calling it fails as calling any unbound name does
# (T1006), as it does on AWS.
_FUNCTIONS = {
    "partition": _bind(_partition),
    "range": _bind(_range),
    "hash": _bind(_hash),
    "random": _bind(_random),
    "uuid": _bind(_uuid),
    "parse": _bind(_parse),
    "eval": None,
}


# ---------------------------------------------------------------- evaluation


def _variables(env) -> dict:
    store = env.variable_store
    bindings = dict(store._outer_scope)
    bindings.update(store._inner_scope)
    # A binding of Python None is undefined to jsonata-python; a variable
    # assigned JSON null must read as null.
    return {
        name: jsonata_utils.Utils.NULL_VALUE if value is None else value
        for name, value in bindings.items()
    }


def evaluate(env, expression: str, with_states: bool) -> Any:
    """The value of ``expression`` with the workflow's variables (and
    ``$states`` in a JSONata state). Python None is undefined; JSONata's
    null is still ``jsonata.utils.Utils.NULL_VALUE``."""
    bindings = dict(_FUNCTIONS)
    bindings.update(_variables(env))
    if with_states:
        bindings["states"] = env.states._states_data
    try:
        compiled = compile_expression(expression)
        # jsonata-python's $now() and $millis() read the thread's current
        # instance: make it this one.
        jsonata_lib.Jsonata.CURRENT.jsonata = compiled
        return compiled.evaluate(None, bindings)
    except QueryError:
        raise
    except RecursionError:
        raise QueryError("Stack overflow error") from None
    except Exception as e:  # jsonata-python raises JException, and others
        raise QueryError(str(e) or type(e).__name__) from None


def field_path(env) -> str:
    """Where in the state the expression being evaluated sits, as AWS names
    it in causes (``Arguments/Payload/order``)."""
    path = getattr(env, "_devstack_field_path", None)
    return "/".join(path) if path else (env.next_field_name or "")


def checked(env, expression: str, with_states: bool) -> Any:
    """Evaluates a ``{% %}`` string as a field value: undefined, an error or
    a function are ``States.QueryEvaluationError``, as AWS has them."""
    field = field_path(env)
    try:
        result = evaluate(env, expression, with_states)
    except QueryError as e:
        raise query_failure(
            env,
            f"The JSONata expression '{expression}' specified for the field "
            f"'{field}' threw an error during evaluation. {e}",
            field,
        ) from None
    if result is None:
        raise query_failure(
            env,
            f"The JSONata expression '{expression}' specified for the field "
            f"'{field}' returned nothing (undefined).",
            field,
        )
    if isinstance(result, jsonata_lib.Jsonata.JFunctionCallable) or callable(result):
        raise query_failure(
            env,
            f"The JSONata expression '{expression}' specified for the field "
            f"'{field}' returned an unsupported result type.",
            field,
        )
    return jsonata_utils.Utils.convert_nulls(result)


def _string_jsonata_eval_body(self, env) -> None:
    env.stack.append(checked(env, self.expression, with_states=True))


def _string_variable_sample_eval_body(self, env) -> None:
    # A variable read (`"x.$": "$name"`), also in JSONPath states.
    with_states = self.query_language_mode == QueryLanguageMode.JSONata
    env.stack.append(checked(env, self.expression, with_states))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _condition_eval_body(self, env) -> None:
    self.string_jsonata.eval(env=env)
    result = env.stack[-1]
    if not isinstance(result, bool):
        expression = self.string_jsonata.expression
        raise query_failure(
            env,
            f"The JSONata expression '{expression}' specified for the field "
            f"'Condition' returned an unexpected result type. Expected "
            f"'boolean', but was '{_json_type(result)}' for value: "
            f"{json.dumps(result, separators=(',', ':'))}",
            "Condition",
        )


def _leftover(expression: str) -> Any:
    # Whatever of moto's still composes expression text ends here instead of
    # calling None.
    return jsonata_utils.Utils.convert_nulls(
        compile_expression(expression).evaluate(None, dict(_FUNCTIONS))
    )


# ---------------------------------------------------------------- field paths


def _segment(cls, name) -> None:
    """Makes ``cls`` name one step of the field path while it evaluates."""
    original = cls.eval

    def eval_with_segment(self, env) -> None:
        path = env.__dict__.setdefault("_devstack_field_path", [])
        path.append(name(self) if callable(name) else name)
        try:
            original(self, env)
        finally:
            path.pop()

    cls.eval = eval_with_segment


def _install_field_paths() -> None:
    by_identifier = lambda component: component.identifier  # noqa: E731
    for cls, name in [
        (outputdecl.Output, "Output"),
        (parargs.Arguments, "Arguments"),
        (assign_decl.AssignDecl, "Assign"),
        (assign_template_binding.AssignTemplateBinding, by_identifier),
        (jsonata_template_binding.JSONataTemplateBinding, by_identifier),
        (item_selector.ItemSelector, "ItemSelector"),
        (items.Items, "Items"),
        (comparison.ConditionStringJSONata, "Condition"),
        (timeout.TimeoutSecondsJSONata, "TimeoutSeconds"),
        (heartbeat.HeartbeatSecondsJSONata, "HeartbeatSeconds"),
        (seconds.SecondsJSONata, "Seconds"),
        (timestamp.Timestamp, "Timestamp"),
        (error_decl.Error, "Error"),
        (cause_decl.Cause, "Cause"),
        (max_concurrency.MaxConcurrencyJSONata, "MaxConcurrency"),
        (tolerated_failure.ToleratedFailureCountStringJSONata, "ToleratedFailureCount"),
        (
            tolerated_failure.ToleratedFailurePercentageStringJSONata,
            "ToleratedFailurePercentage",
        ),
    ]:
        _segment(cls, name)


def install() -> None:
    string_expression.StringJSONata._eval_body = _string_jsonata_eval_body
    string_expression.StringVariableSample._eval_body = (
        _string_variable_sample_eval_body
    )
    comparison.ConditionStringJSONata._eval_body = _condition_eval_body
    moto_jsonata._eval_jsonata = _leftover
    _install_field_paths()
