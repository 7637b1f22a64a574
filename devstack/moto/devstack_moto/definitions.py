"""What AWS refuses when a state machine is created or updated, and what the
local engine cannot run, refused loudly at the same moment.

AWS validates a definition on ``CreateStateMachine``/``UpdateStateMachine``;
moto only parses it. Checked here, as AWS documents:
- a ``{% %}`` string must be a JSONata expression that parses
  (``INVALID_JSONATA_EXPRESSION``);
- ``$states.result`` only in the ``Output`` and ``Assign`` of a Task, Map or
  Parallel state, ``$states.errorOutput`` only in a ``Catch``'s ``Output``
  and ``Assign``: "Attempting to access ``$states.result`` or
  ``$states.errorOutput`` in fields and states where they are not
  accessible will be caught at creation";
- "a variable assigned in an inner scope cannot have the same name as one
  assigned in an outer scope" (Map iterations and Parallel branches);
- an ``ItemBatcher`` only in a Distributed Map, with valid limits
  (``item_batcher.check``).

And one refusal that is the local stack's own: a JSONPath the local
JSONPath library cannot parse (Jayway, AWS's, reads more: ``in``, ``!``,
``length()``...) is refused with a message saying so, instead of failing
the first execution that reaches it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from jsonpath_ng.ext import parse as parse_jsonpath

from moto.stepfunctions.parser import models as parser_models
from moto.stepfunctions.parser.api import InvalidDefinition

from . import item_batcher
from .jsonata_states import compile_expression

_RESULT = re.compile(r"\$states\.result\b")
_ERROR_OUTPUT = re.compile(r"\$states\.errorOutput\b")
_EXECUTION_STATES = {"Task", "Map", "Parallel"}
# JSONPath fields whose value is a path.
_PATH_FIELDS = {"InputPath", "OutputPath", "ResultPath", "ItemsPath", "Variable"}


class Refused(Exception):
    """A definition AWS (or the local stack) would not create."""


def _jsonata(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith("{%") and value.endswith("%}"):
        return value[2:-2].strip()
    return None


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string leaf of a field value, with its location."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _strings(inner, f"{where}/{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _strings(inner, f"{where}[{i}]")


def _check_expression(expression: str, where: str, allowed: set[str]) -> None:
    try:
        compile_expression(expression)
    except Exception as e:
        raise Refused(f"INVALID_JSONATA_EXPRESSION: {e} at {where}") from None
    for name, pattern in (("result", _RESULT), ("errorOutput", _ERROR_OUTPUT)):
        if name not in allowed and pattern.search(expression):
            raise Refused(
                f"SCHEMA_VALIDATION_FAILED: The field $states.{name} is not "
                f"accessible at {where}"
            )


def _check_jsonpath(path: str, where: str) -> None:
    if path.startswith("$$") or not path.startswith("$"):
        return
    if re.match(r"^\$[A-Za-z_]", path):  # a variable, read with JSONata
        return
    try:
        parse_jsonpath(path)
    except Exception as e:
        raise Refused(
            f"DEVSTACK_UNSUPPORTED_JSONPATH: the local stack cannot evaluate "
            f"the JSONPath {path!r} ({e}); AWS's JsonPath (Jayway) may accept "
            f"it (see docs/local-fidelity.md) at {where}"
        ) from None


def _check_jsonpath_fields(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if isinstance(key, str) and key.endswith(".$") and isinstance(inner, str):
                _check_jsonpath(inner, f"{where}/{key}")
            else:
                _check_jsonpath_fields(inner, f"{where}/{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            _check_jsonpath_fields(inner, f"{where}[{i}]")


def _check_fields(state: dict, where: str, language: str) -> None:
    kind = state.get("Type")
    for field, value in state.items():
        if field in ("Branches", "ItemProcessor", "Iterator", "Choices", "Catch"):
            continue
        location = f"{where}/{field}"
        if language == "JSONata":
            allowed = {"result"} if (
                kind in _EXECUTION_STATES and field in ("Output", "Assign")
            ) else set()
            for leaf_where, text in _strings(value, location):
                expression = _jsonata(text)
                if expression is not None:
                    _check_expression(expression, leaf_where, allowed)
        elif field in _PATH_FIELDS and isinstance(value, str):
            _check_jsonpath(value, location)
        elif field.endswith("Path") and isinstance(value, str):
            _check_jsonpath(value, location)
        else:
            _check_jsonpath_fields(value, location)
    for i, rule in enumerate(state.get("Choices") or []):
        _check_rule(rule, f"{where}/Choices[{i}]", language)
    for i, catcher in enumerate(state.get("Catch") or []):
        for field in ("Output", "Assign", "ResultPath"):
            if field not in catcher:
                continue
            location = f"{where}/Catch[{i}]/{field}"
            if language == "JSONata":
                for leaf_where, text in _strings(catcher[field], location):
                    expression = _jsonata(text)
                    if expression is not None:
                        _check_expression(expression, leaf_where, {"errorOutput"})
            else:
                _check_jsonpath_fields(catcher[field], location)


def _check_rule(rule: dict, where: str, language: str) -> None:
    for field, value in rule.items():
        location = f"{where}/{field}"
        if field in ("And", "Or"):
            for i, inner in enumerate(value or []):
                _check_rule(inner, f"{location}[{i}]", language)
        elif field == "Not" and isinstance(value, dict):
            _check_rule(value, location, language)
        elif language == "JSONata":
            for leaf_where, text in _strings(value, location):
                expression = _jsonata(text)
                if expression is not None:
                    _check_expression(expression, leaf_where, set())
        elif (field == "Variable" or field.endswith("Path")) and isinstance(value, str):
            _check_jsonpath(value, location)


def _assigned(state: dict) -> set[str]:
    """Variables a state assigns in its own scope."""
    names = set((state.get("Assign") or {}).keys())
    for rule in state.get("Choices") or []:
        names.update((rule.get("Assign") or {}).keys())
    for catcher in state.get("Catch") or []:
        names.update((catcher.get("Assign") or {}).keys())
    return names


def _inner_machines(state: dict) -> Iterator[tuple[str, dict]]:
    for i, branch in enumerate(state.get("Branches") or []):
        yield f"Branches[{i}]", branch
    for key in ("ItemProcessor", "Iterator"):
        if isinstance(state.get(key), dict):
            yield key, state[key]


def _check_machine(
    machine: dict, where: str, language: str, outer_names: set[str]
) -> None:
    language = machine.get("QueryLanguage", language)
    states = machine.get("States") or {}
    scope_names: set[str] = set()
    for state in states.values():
        if isinstance(state, dict):
            scope_names |= _assigned(state)
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        state_where = f"{where}/States/{name}"
        clash = _assigned(state) & outer_names
        if clash:
            raise Refused(
                f"SCHEMA_VALIDATION_FAILED: The variable {sorted(clash)[0]!r} is "
                f"assigned in an outer scope and cannot be assigned in an inner "
                f"scope at {state_where}"
            )
        state_language = state.get("QueryLanguage", language)
        _check_fields(state, state_where, state_language)
        if "ItemBatcher" in state:
            try:
                item_batcher.check(state, state_language, state_where)
            except item_batcher.Refused as refused:
                raise Refused(str(refused)) from None
        for inner_where, inner in _inner_machines(state):
            _check_machine(
                inner, f"{state_where}/{inner_where}", language, outer_names | scope_names
            )


def check(definition: str) -> None:
    """Raises :class:`Refused` for what AWS (or the local stack) refuses."""
    machine = json.loads(definition)
    if isinstance(machine, dict):
        _check_machine(machine, "", machine.get("QueryLanguage", "JSONPath"), set())


_original_validate = parser_models.StepFunctionsParserBackend._validate_definition


def _validate_definition(definition: str) -> None:
    _original_validate(definition)
    try:
        check(definition)
    except Refused as refused:
        raise InvalidDefinition(
            message=f"Invalid State Machine Definition: '{refused}'"
        ) from None


def install() -> None:
    parser_models.StepFunctionsParserBackend._validate_definition = staticmethod(
        _validate_definition
    )
