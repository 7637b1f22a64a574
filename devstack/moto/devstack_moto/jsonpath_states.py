"""JSONPath as AWS evaluates it, where moto differs.

- A Choice rule whose ``Variable`` path does not exist fails the execution
  with ``States.Runtime`` on AWS ("Invalid path ... The choice state's
  condition path references an invalid value"); moto treats it as no match
  and takes ``Default``. ``IsPresent`` still answers false.
- A filter (``$.items[?(@.a > 1 && @.b == 'x')]``) that matches nothing is
  an empty array, as Jayway JsonPath (AWS's) gives for any indefinite path;
  moto fails the execution with ``States.Runtime``.
- Paths are JSON strings: moto strips the quotes of path strings without
  decoding their escapes, so ``"$.items[?(@.b == \\"y\\")]"`` reaches the
  JSONPath parser with its backslashes and fails.
"""

from __future__ import annotations

import json
import re
import sys

from moto.stepfunctions.parser.asl.antlt4utils import antlr4utils
from moto.stepfunctions.parser.asl.component.state.choice.comparison import (
    comparison_variable,
)
from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison_operator_type import (
    ComparisonOperatorType,
)
from moto.stepfunctions.parser.asl.component.state.choice.comparison.variable import (
    NoSuchVariable,
)
from moto.stepfunctions.parser.asl.parse import preprocessor
from moto.stepfunctions.parser.asl.utils import json_path

from .errors import runtime_failure

_FILTER = re.compile(r"\[\s*\?\s*\(")


def _comparison_variable_eval_body(self, env) -> None:
    self.variable.eval(env)
    value = env.stack[-1]
    operator = self.comparison_function.operator_type
    if isinstance(value, NoSuchVariable) and operator != ComparisonOperatorType.IsPresent:
        path = self.variable.string_sampler.literal_value
        raise runtime_failure(
            env,
            f"Invalid path '{path}': The choice state's condition path "
            f"references an invalid value.",
        )
    self.comparison_function.eval(env)


_original_extract_json = json_path.extract_json


def _extract_json(path, data):
    try:
        return _original_extract_json(path, data)
    except json_path.NoSuchJsonPathError:
        if _FILTER.search(path):
            return []
        raise


def _decoded(text: str) -> str:
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        try:
            return json.loads(text)
        except ValueError:
            return text[1:-1]
    return text


def _inner_string_of(parser_rule_context):
    if antlr4utils.is_terminal(parser_rule_context, preprocessor.ASLLexer.NULL):
        return None
    return _decoded(parser_rule_context.getText())


def _from_string_literal(parser_rule_context):
    return _decoded(parser_rule_context.getText())


def install() -> None:
    comparison_variable.ComparisonVariable._eval_body = _comparison_variable_eval_body
    # Every module that imported extract_json by name gets the fixed one.
    for name, module in list(sys.modules.items()):
        if (
            name.startswith("moto.stepfunctions.parser")
            and getattr(module, "extract_json", None) is _original_extract_json
        ):
            module.extract_json = _extract_json
    json_path.extract_json = _extract_json
    preprocessor.Preprocessor._inner_string_of = staticmethod(_inner_string_of)
    preprocessor.from_string_literal = _from_string_literal
