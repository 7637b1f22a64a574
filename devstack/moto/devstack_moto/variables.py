"""Workflow variables as AWS evaluates them.

- AWS evaluates a state's ``Assign`` and ``Output`` "in parallel": both see
  the variables as they were on state entry, so "assigning variable values
  will not affect state Output". moto assigns first, so its ``Output`` sees
  the new values. Here assignments wait until the state's output is built.
- A Choice state's own ``Assign`` and ``Output`` apply when no rule
  matched (the ASL spec: "If a Choice Rule is chosen, the interpreter
  evaluates the Choice Rule's Assign field ... and does not evaluate the
  state's top-level Assign field"). moto decides by comparing the next
  state's name with ``Default``, so a matched rule whose ``Next`` is the
  default state got them too.
- The history's ``assignedVariables`` holds each value as JSON text; moto
  quotes strings without escaping them.
"""

from __future__ import annotations

import json
from typing import Any

from moto.stepfunctions.parser.asl.component.common.assign import assign_decl
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.choice import state_choice
from moto.stepfunctions.parser.asl.eval import variable_store

_PENDING = "_devstack_pending_assign"


def _assign_eval_body(self, env) -> None:
    declarations: dict[str, Any] = {}
    for binding in self.declaration_bindings:
        binding.eval(env=env)
        declarations.update(env.stack.pop())
    pending = env.__dict__.setdefault(_PENDING, {})
    pending.update(declarations)


def apply_pending(env) -> None:
    """Makes the state's assignments; the next state sees them."""
    pending = env.__dict__.pop(_PENDING, None)
    for name, value in (pending or {}).items():
        env.variable_store.set(variable_identifier=name, variable_value=value)


_original_exited_details = state_module.CommonStateField._get_state_exited_event_details


def _exited_details(self, env):
    # Called once the state's output is built, before its StateExited event
    # (which lists the assigned variables): the moment to assign.
    apply_pending(env)
    return _original_exited_details(self, env)


_MATCHED = "_devstack_choice_matched"


def _choice_eval_state(self, env) -> None:
    for rule in self.choices_decl.rules:
        rule.eval(env)
        if env.stack.pop() is True:
            if not rule.next_stmt:
                raise RuntimeError(f"Missing Next in a Choice rule of '{self.name}'.")
            env.__dict__[_MATCHED] = True
            env.stack.append(rule.next_stmt.name)
            return
    if self.default_state is None:
        raise RuntimeError(f"No Choice rule matched in '{self.name}' and it has no Default.")
    env.__dict__[_MATCHED] = False
    env.stack.append(self.default_state.state_name)


def _choice_eval_state_output(self, env) -> None:
    next_state_name: str = env.stack.pop()
    if not env.__dict__.pop(_MATCHED, False):
        if self.assign_decl:
            self.assign_decl.eval(env=env)
        if self.output:
            self.output.eval(env=env)
    if self._is_language_query_jsonpath():
        if self.output_path:
            self.output_path.eval(env=env)
        else:
            env.states.reset(input_value=env.stack.pop())
    env.next_state_name = next_state_name


def _assigned_variables(self) -> dict:
    return {
        name: json.dumps(self.get(name), separators=(",", ":"), ensure_ascii=False)
        for name in self._declaration_tracing
    }


def install() -> None:
    assign_decl.AssignDecl._eval_body = _assign_eval_body
    state_module.CommonStateField._get_state_exited_event_details = _exited_details
    state_choice.StateChoice._eval_state = _choice_eval_state
    state_choice.StateChoice._eval_state_output = _choice_eval_state_output
    variable_store.VariableStore.get_assigned_variables = _assigned_variables
