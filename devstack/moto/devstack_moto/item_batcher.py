"""A Distributed Map's ``ItemBatcher`` as AWS runs it (the ItemBatcher page
of the Step Functions guide): each child execution receives
``{"BatchInput": ..., "Items": [...]}`` instead of one item.

moto's grammar has no ``ItemBatcher``: it refused such a definition with
``InvalidDefinition``, so a workflow built the way AWS recommends for large
S3 prefixes could not run locally at all. Here the field is taken out of
the definition before moto's parser sees it, checked as AWS checks it at
``CreateStateMachine``, and applied when the Map runs:

- items are batched after ``ItemSelector`` (or ``Parameters``) has shaped
  each of them, in order, each batch holding at most ``MaxItemsPerBatch``
  items and at most ``MaxInputBytesPerBatch`` bytes (256 KiB, Step
  Functions' payload limit, when neither is given);
- ``BatchInput`` is evaluated once against the Map state's input (JSONPath
  paths in keys ending ``.$``, or JSONata ``{% %}`` expressions) and added
  to every batch;
- ``MaxItemsPerBatchPath`` / ``MaxInputBytesPerBatchPath`` (JSONPath) or a
  ``{% %}`` value (JSONata) are read when the Map starts; a value that is
  not a positive integer fails the state with ``States.Runtime``.

What the guide does not say and the local stack assumes is listed in
``docs/local-fidelity.md``.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Callable

from jsonpath_ng.ext import parse as parse_jsonpath

from moto.stepfunctions.parser.asl.component.state.exec.state_map import state_map
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
    distributed_iteration_component as distributed,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import (
    state_parallel,
)
from moto.stepfunctions.parser.asl.eval.states import ItemData, MapData
from moto.stepfunctions.parser.asl.parse import asl_parser

from .errors import runtime_failure
from .jsonata_states import checked
from .limits import PAYLOAD_LIMIT

_FIELDS = {
    "MaxItemsPerBatch",
    "MaxItemsPerBatchPath",
    "MaxInputBytesPerBatch",
    "MaxInputBytesPerBatchPath",
    "BatchInput",
}


class Refused(Exception):
    """An ``ItemBatcher`` AWS would not create."""


class Batcher:
    """One Map state's ``ItemBatcher``, in the state's query language."""

    def __init__(self, spec: dict, language: str):
        self.spec = spec
        self.language = language

    # ------------------------------------------------------------ at run time

    def _number(self, env, name: str, state_input: Any) -> int | None:
        value = self.spec.get(name)
        path = self.spec.get(f"{name}Path")
        if self.language == "JSONata" and _is_expression(value):
            value = checked(env, _expression(value), with_states=True)
        elif path is not None:
            value = _read_path(env, path, state_input, name)
        if value is None:
            return None
        return _positive(value, name, "", lambda m: runtime_failure(env, m))

    def batch_input(self, env, state_input: Any) -> Any:
        template = self.spec.get("BatchInput")
        if template is None:
            return None
        if self.language == "JSONata":
            return _jsonata_template(env, template)
        return _jsonpath_template(env, template, state_input)

    def batches(self, env, items: list, state_input: Any) -> list[dict]:
        """The children's inputs: ``items`` cut into batches."""
        most_items = self._number(env, "MaxItemsPerBatch", state_input)
        most_bytes = self._number(env, "MaxInputBytesPerBatch", state_input)
        most_bytes = min(most_bytes or PAYLOAD_LIMIT, PAYLOAD_LIMIT)
        shared = self.batch_input(env, state_input)
        empty = {"Items": []} if shared is None else {"BatchInput": shared, "Items": []}
        # `,` between items: the size of a batch is its empty shape plus
        # each item plus a separator after the first.
        base = _json_bytes(empty)
        batches: list[dict] = []
        current: list = []
        size = base
        for index, item in enumerate(items):
            item_size = _json_bytes(item)
            grown = size + item_size + (1 if current else 0)
            full = most_items is not None and len(current) >= most_items
            if current and (full or grown > most_bytes):
                batches.append(dict(empty, Items=current))
                current, size = [], base
                grown = size + item_size
            if grown > most_bytes:
                raise runtime_failure(
                    env,
                    f"Item {index} ({item_size} bytes) does not fit in a batch of "
                    f"at most {most_bytes} bytes (MaxInputBytesPerBatch)",
                )
            current.append(item)
            size = grown
        if current:
            batches.append(dict(empty, Items=current))
        return batches


def check(state: dict, language: str, where: str) -> None:
    """Raises :class:`Refused` for an ``ItemBatcher`` AWS refuses at
    ``CreateStateMachine``."""
    spec = state.get("ItemBatcher")
    where = f"{where}/ItemBatcher"
    processor = state.get("ItemProcessor") or {}
    mode = (processor.get("ProcessorConfig") or {}).get("Mode", "INLINE")
    if state.get("Type") != "Map" or mode != "DISTRIBUTED":
        raise Refused(
            f"SCHEMA_VALIDATION_FAILED: ItemBatcher is only supported in a "
            f"Map state in DISTRIBUTED mode at {where}"
        )
    if not isinstance(spec, dict):
        raise Refused(f"SCHEMA_VALIDATION_FAILED: ItemBatcher must be an object at {where}")
    unknown = sorted(set(spec) - _FIELDS)
    if unknown:
        raise Refused(
            f"SCHEMA_VALIDATION_FAILED: The field '{unknown[0]}' is not "
            f"supported in ItemBatcher at {where}"
        )
    for name in ("MaxItemsPerBatch", "MaxInputBytesPerBatch"):
        if name in spec and f"{name}Path" in spec:
            raise Refused(
                f"SCHEMA_VALIDATION_FAILED: {name} and {name}Path are "
                f"mutually exclusive at {where}"
            )
        if language == "JSONata" and f"{name}Path" in spec:
            raise Refused(
                f"SCHEMA_VALIDATION_FAILED: The field '{name}Path' is not "
                f"supported in JSONata states at {where}"
            )
        value = spec.get(name)
        if value is not None and not _is_expression(value):
            _positive(value, name, where, lambda m: Refused(f"SCHEMA_VALIDATION_FAILED: {m}"))
    bytes_limit = spec.get("MaxInputBytesPerBatch")
    if isinstance(bytes_limit, int) and bytes_limit > PAYLOAD_LIMIT:
        raise Refused(
            f"SCHEMA_VALIDATION_FAILED: MaxInputBytesPerBatch must be at "
            f"most {PAYLOAD_LIMIT} at {where}"
        )
    batch_input = spec.get("BatchInput")
    if batch_input is not None and not isinstance(batch_input, dict):
        if not (language == "JSONata" and _is_expression(batch_input)):
            raise Refused(f"SCHEMA_VALIDATION_FAILED: BatchInput must be an object at {where}")
    if language != "JSONata":
        _check_template(batch_input or {}, f"{where}/BatchInput")


# ------------------------------------------------------------------ helpers


def _json_bytes(value: Any) -> int:
    """The size of ``value`` as compact JSON in UTF-8 (a string with its quotes)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}")


def _expression(value: str) -> str:
    return value[2:-2].strip()


def _positive(value: Any, name: str, where: str, error: Callable[[str], Exception]) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
        suffix = f" at {where}" if where else ""
        raise error(f"{name} must be a positive integer, got {json.dumps(value)}{suffix}")
    return int(value)


def _check_template(template: Any, where: str) -> None:
    if isinstance(template, dict):
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str) or not value.startswith("$"):
                    raise Refused(
                        f"DEVSTACK_UNSUPPORTED_BATCH_INPUT: the local stack evaluates "
                        f"only paths ($. or $$.) in BatchInput, not {value!r} "
                        f"(see docs/local-fidelity.md) at {where}/{key}"
                    )
            else:
                _check_template(value, f"{where}/{key}")
    elif isinstance(template, list):
        for i, value in enumerate(template):
            _check_template(value, f"{where}[{i}]")


def _read_path(env, path: str, state_input: Any, name: str) -> Any:
    if re.match(r"^\$[A-Za-z_]", path):
        # A variable (`$name.field`), read as moto reads one: with JSONata.
        return checked(env, path, with_states=False)
    if path.startswith("$$"):
        data, path = env.states.context_object.context_object_data, "$" + path[2:]
    else:
        data = state_input
    found = [match.value for match in parse_jsonpath(path).find(data)]
    if not found:
        raise runtime_failure(
            env, f"Invalid path '{path}' for {name}: no value at that path of the input"
        )
    return found[0]


def _jsonpath_template(env, template: Any, state_input: Any) -> Any:
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = _read_path(env, value, state_input, "BatchInput")
            else:
                out[key] = _jsonpath_template(env, value, state_input)
        return out
    if isinstance(template, list):
        return [_jsonpath_template(env, v, state_input) for v in template]
    return template


def _jsonata_template(env, template: Any) -> Any:
    if _is_expression(template):
        return checked(env, _expression(template), with_states=True)
    if isinstance(template, dict):
        return {k: _jsonata_template(env, v) for k, v in template.items()}
    if isinstance(template, list):
        return [_jsonata_template(env, v) for v in template]
    return template


# ----------------------------------------------- taken out before the parser


def _machines(machine: dict, language: str, where: str):
    """Every (state, its language, its location) of ``machine``, nested too."""
    language = machine.get("QueryLanguage", language)
    for name, state in (machine.get("States") or {}).items():
        if not isinstance(state, dict):
            continue
        state_where = f"{where}/States/{name}"
        yield state, state.get("QueryLanguage", language), state_where
        for i, branch in enumerate(state.get("Branches") or []):
            if isinstance(branch, dict):
                yield from _machines(branch, language, f"{state_where}/Branches[{i}]")
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from _machines(state[key], language, f"{state_where}/{key}")


def take_batchers(definition: str) -> tuple[str, dict[str, Batcher]]:
    """The definition without ``ItemBatcher`` fields, and each one by the
    location of its Map state (:func:`check` has refused what AWS refuses
    when the state machine was created)."""
    try:
        machine = json.loads(definition)
    except ValueError:
        return definition, {}
    if not isinstance(machine, dict):
        return definition, {}
    batchers: dict[str, Batcher] = {}
    for state, language, where in _machines(machine, machine.get("QueryLanguage", "JSONPath"), ""):
        spec = state.pop("ItemBatcher", None)
        if isinstance(spec, dict):
            batchers[where] = Batcher(spec, language)
    if not batchers:
        return definition, {}
    return json.dumps(machine), batchers


def _attach(program, batchers: dict[str, Batcher], where: str = "") -> None:
    states = getattr(getattr(program, "states", None), "states", None) or {}
    for name, state in states.items():
        state_where = f"{where}/States/{name}"
        if isinstance(state, state_map.StateMap):
            component = state.iteration_component
            batcher = batchers.get(state_where)
            if batcher is not None:
                component._devstack_batcher = batcher
            inner = "ItemProcessor" if hasattr(component, "_processor_config") else "Iterator"
            _attach(component._get_iteration_program(), batchers, f"{state_where}/{inner}")
        elif isinstance(state, state_parallel.StateParallel):
            for i, branch in enumerate(state.branches.programs):
                _attach(branch, batchers, f"{state_where}/Branches[{i}]")


_original_parse = asl_parser.AmazonStateLanguageParser.parse


def _parse(definition: str):
    stripped, batchers = take_batchers(definition)
    program, tree = _original_parse(stripped)
    if batchers:
        _attach(program, batchers)
    return program, tree


# ------------------------------------------------------------- at run time

_original_map_run = distributed.DistributedIterationComponent._map_run


def _selected(env, eval_input, items: list, state_input: Any) -> list:
    """Each item as ``ItemSelector`` (or ``Parameters``) shapes it."""
    selector = eval_input.item_selector or eval_input.parameters
    if selector is None:
        return items
    shaped = []
    for index, item in enumerate(items):
        frame = env.open_inner_frame()
        try:
            frame.states.context_object.context_object_data["Map"] = MapData(
                Item=ItemData(Index=index, Value=item)
            )
            frame.states.reset(input_value=state_input)
            frame.stack.append(state_input)
            selector.eval(frame)
            shaped.append(frame.stack[-1])
        finally:
            env.close_frame(frame)
    return shaped


def _map_run(self, env, eval_input) -> None:
    batcher: Batcher | None = getattr(self, "_devstack_batcher", None)
    if batcher is None:
        return _original_map_run(self, env, eval_input)
    items = env.stack.pop()
    # The Map state's input, where moto's own workers read it for
    # ItemSelector (the top of the stack under the items).
    state_input = env.stack[-1] if env.stack else env.states.get_input()
    shaped = _selected(env, eval_input, items, state_input)
    env.stack.append(batcher.batches(env, shaped, state_input))
    # The items are shaped already: the children get their batch as it is.
    plain = copy.copy(eval_input)
    plain.item_selector = None
    plain.parameters = None
    return _original_map_run(self, env, plain)


def install() -> None:
    asl_parser.AmazonStateLanguageParser.parse = staticmethod(_parse)
    distributed.DistributedIterationComponent._map_run = _map_run
