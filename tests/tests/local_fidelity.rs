//! The rows of `docs/local-fidelity.md` about JSONata, JSONPath and how
//! executions start: each case is run on the local stack, which must do what
//! AWS does, and on moto as released, which must still do what the table
//! says it does (`tests::fidelity`).
//!
//! A case is a small state machine and its input; the fixture template's
//! function (the `fixture-task` binary) stands in for a Lambda task.

use std::time::Duration;

use serde_json::{Value, json};
use tests::fidelity::{Case, Expect, check, fixture_task, jsonata, jsonpath};
use tests::local_stack::Builder;

/// What moto as released does with any JSONata expression.
const MOTO_NO_JSONATA: Expect =
    Expect::Failed("States.Runtime", "'NoneType' object is not callable");
/// ... and with one in a Parallel branch or Map iteration, whose States.*
/// error it cannot pass on.
const MOTO_NO_BRANCH_ERRORS: Expect = Expect::Failed(
    "States.Runtime",
    "Custom Error Names MUST NOT begin with the prefix 'States.'",
);

fn fixture_function() -> String {
    "arn:aws:lambda:eu-west-1:123456789012:function:test-fixture".to_owned()
}

#[tokio::test]
async fn jsonata_states_evaluate_as_on_aws() {
    let function = fixture_function();
    check(vec![
        Case {
            name: "Arguments, Output, $states.input and $states.result",
            definition: jsonata(
                json!({"Echo": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Arguments": {"FunctionName": function, "Payload": {
                        "correlation_id": "{% $states.input.id %}",
                        "state_name": "{% $states.context.State.Name %}",
                        "input": {"action": "echo", "text": "{% $uppercase($states.input.text) %}"}}},
                    "Output": "{% {'echo': $states.result.Payload.echo, 'cid': $states.result.Payload.seen_correlation_id, 'status': $states.result.StatusCode} %}",
                    "End": true}}),
                "Echo",
            ),
            input: json!({"id": "fidelity-1", "text": "hello"}),
            aws: Expect::Output(json!({"echo": "HELLO", "cid": "fidelity-1", "status": 200})),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "variables across states, Assign and Output both see the values of state entry",
            definition: jsonata(
                json!({
                    "First": {"Type": "Pass", "Assign": {"x": 1, "quote": "{% $states.input.quote %}"}, "Next": "Second"},
                    "Second": {"Type": "Pass",
                        "Assign": {"x": "{% $x + 10 %}", "old_x": "{% $x %}"},
                        "Output": {"x_in_output": "{% $x %}"}, "Next": "Third"},
                    "Third": {"Type": "Pass",
                        "Output": "{% {'x': $x, 'old_x': $old_x, 'quote': $quote, 'input': $states.input} %}",
                        "End": true}}),
                "First",
            ),
            input: json!({"quote": "a \"quoted\" \\ value"}),
            aws: Expect::Output(json!({
                "x": 11, "old_x": 1, "quote": "a \"quoted\" \\ value",
                "input": {"x_in_output": 1}})),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "a variable assigned null reads as null",
            definition: jsonata(
                json!({
                    "Set": {"Type": "Pass", "Assign": {"nothing": null}, "Next": "Read"},
                    "Read": {"Type": "Pass", "Output": {"n": "{% $nothing %}"}, "End": true}}),
                "Set",
            ),
            input: json!({}),
            aws: Expect::Output(json!({"n": null})),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "Step Functions' JSONata functions",
            definition: jsonata(
                json!({"F": {"Type": "Pass", "Output": {
                    "partition": "{% $partition([1,2,3,4,5], 2) %}",
                    "range": "{% $range(0, 10, 2) %}",
                    "hash": "{% $hash('input', 'SHA-1') %}",
                    "seeded": "{% $random(42) %}",
                    "random": "{% $random() %}",
                    "uuid": "{% $uuid() %}",
                    "parse": "{% $parse('{\"a\": [1, 2]}') %}"}, "End": true}}),
                "F",
            ),
            input: json!({}),
            aws: Expect::OutputWhere("the documented values", |o| {
                o["partition"] == json!([[1, 2], [3, 4], [5]])
                    && o["range"] == json!([0, 2, 4, 6, 8, 10])
                    && o["hash"] == "140f86aae51ab9e1cda9b4254fe98a74eb54c1a1"
                    && o["seeded"] == json!(0.727_563_680_032_868_1)
                    && o["random"].as_f64().is_some_and(|r| (0.0..1.0).contains(&r))
                    && o["uuid"].as_str().is_some_and(|u| u.len() == 36 && u.as_bytes()[14] == b'4')
                    && o["parse"] == json!({"a": [1, 2]})
            }),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "$string serialises as JSON.stringify (jsonata-python escapes non-ASCII)",
            definition: jsonata(
                json!({"S": {"Type": "Pass", "Output": {
                    "text": "{% $string($states.input) %}",
                    "length": "{% $length($string($states.input)) %}"}, "End": true}}),
                "S",
            ),
            input: json!({"name": "Zoë", "n": 1.5, "tiny": 0.000_000_1}),
            aws: Expect::Output(json!({
                "text": "{\"n\":1.5,\"name\":\"Zoë\",\"tiny\":1e-7}",
                "length": 34
            })),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "$range past AWS's memory limit",
            definition: jsonata(
                json!({"R": {"Type": "Pass", "Output": {"n": "{% $count($range(1, 400000, 1)) %}"}, "End": true}}),
                "R",
            ),
            input: json!({}),
            aws: Expect::Failed("States.QueryEvaluationError", "Expression evaluation memory limit exceeded"),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "numbers keep Python's int and float (AWS: JavaScript numbers)",
            definition: jsonata(
                json!({"N": {"Type": "Pass", "Output": {"same": "{% $states.input.x %}", "text": "{% $string($states.input.x) %}", "sum": "{% $states.input.x + 1 %}"}, "End": true}}),
                "N",
            ),
            input: json!({"x": 1.0}),
            // AWS gives {"same": 1, ...}: the one known difference in numbers.
            aws: Expect::Output(json!({"same": 1.0, "text": "1", "sum": 2})),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "$eval is not available",
            definition: jsonata(
                json!({"E": {"Type": "Pass", "Output": "{% $eval('1 + 1') %}", "End": true}}),
                "E",
            ),
            input: json!({}),
            aws: Expect::Failed("States.QueryEvaluationError", "Attempted to invoke a non-function"),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "an undefined result is States.QueryEvaluationError naming the field",
            definition: jsonata(
                json!({"U": {"Type": "Pass", "Output": {"a": {"b": "{% $states.input.missing %}"}}, "End": true}}),
                "U",
            ),
            input: json!({"present": 1}),
            aws: Expect::Failed(
                "States.QueryEvaluationError",
                "The JSONata expression '$states.input.missing' specified for the field 'Output/a/b' returned nothing (undefined).",
            ),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "a Condition that is not a boolean is States.QueryEvaluationError",
            definition: jsonata(
                json!({
                    "C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n %}", "Next": "D"}], "Default": "D"},
                    "D": {"Type": "Succeed"}}),
                "C",
            ),
            input: json!({"n": 5}),
            aws: Expect::Failed("States.QueryEvaluationError", "Expected 'boolean', but was 'number'"),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "expression errors are caught; a Fail state re-raises with the cause unchanged",
            definition: jsonata(
                json!({
                    "Branches": {"Type": "Parallel",
                        "Branches": [{"StartAt": "Add", "States": {"Add": {"Type": "Pass", "Output": "{% $states.input.text + 1 %}", "End": true}}}],
                        "Catch": [{"ErrorEquals": ["States.QueryEvaluationError"],
                                   "Assign": {"caught": "{% $states.errorOutput %}"}, "Next": "Rethrow"}],
                        "End": true},
                    "Rethrow": {"Type": "Fail", "Error": "{% $caught.Error %}", "Cause": "{% 'rethrown: ' & $caught.Cause %}"}}),
                "Branches",
            ),
            input: json!({"text": "not a number"}),
            aws: Expect::Failed("States.QueryEvaluationError", "rethrown: An error occurred while executing the state 'Add'"),
            moto: MOTO_NO_BRANCH_ERRORS,
        },
        Case {
            name: "a Lambda error reaches a Catch's $states.errorOutput",
            definition: jsonata(
                json!({
                    "Fail": {
                        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                        "Arguments": {"FunctionName": function, "Payload": {"input": {"action": "fail", "kind": "invalid_input"}}},
                        "Catch": [{"ErrorEquals": ["Task.InvalidInput"], "Output": "{% {'error': $states.errorOutput.Error} %}", "Next": "Done"}],
                        "End": true},
                    "Done": {"Type": "Succeed"}}),
                "Fail",
            ),
            input: json!({}),
            aws: Expect::Output(json!({"error": "Task.InvalidInput"})),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "Map: Items, ItemSelector and $states.context.Map.Item; inner states read outer variables",
            definition: jsonata(
                json!({
                    "Set": {"Type": "Pass", "Assign": {"factor": 10}, "Next": "Each"},
                    "Each": {"Type": "Map",
                        "Items": "{% $states.input.xs %}",
                        "ItemSelector": {"v": "{% $states.context.Map.Item.Value %}", "i": "{% $states.context.Map.Item.Index %}"},
                        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Scale", "States": {
                            "Scale": {"Type": "Pass", "Assign": {"scaled": "{% $states.input.v * $factor %}"}, "Next": "Report"},
                            "Report": {"Type": "Pass", "Output": "{% $scaled + $states.input.i %}", "End": true}}},
                        "Assign": {"count": "{% $count($states.result) %}"},
                        "Next": "After"},
                    "After": {"Type": "Pass", "Output": "{% {'results': $states.input, 'count': $count} %}", "End": true}}),
                "Set",
            ),
            input: json!({"xs": [1, 2, 3]}),
            aws: Expect::Output(json!({"results": [10, 21, 32], "count": 3})),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "variables of a Map iteration are gone after the Map",
            definition: jsonata(
                json!({
                    "Each": {"Type": "Map", "Items": [1],
                        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Inner",
                            "States": {"Inner": {"Type": "Pass", "Assign": {"inner": 1}, "End": true}}},
                        "Next": "After"},
                    "After": {"Type": "Pass", "Output": "{% $inner %}", "End": true}}),
                "Each",
            ),
            input: json!({}),
            aws: Expect::Failed("States.QueryEvaluationError", "'$inner' specified for the field 'Output' returned nothing"),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "an inner scope may not assign a variable of an outer scope",
            definition: jsonata(
                json!({
                    "Set": {"Type": "Pass", "Assign": {"outer": 1}, "Next": "Each"},
                    "Each": {"Type": "Map", "Items": [1],
                        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Inner",
                            "States": {"Inner": {"Type": "Pass", "Assign": {"outer": 2}, "End": true}}},
                        "End": true}}),
                "Set",
            ),
            input: json!({}),
            aws: Expect::Refused("'outer' is assigned in an outer scope"),
            moto: Expect::Failed("States.Runtime", "Custom Error Names MUST NOT begin with the prefix 'States.'"),
        },
        Case {
            name: "Parallel branches read outer variables",
            definition: jsonata(
                json!({
                    "Set": {"Type": "Pass", "Assign": {"base": 5}, "Next": "Both"},
                    "Both": {"Type": "Parallel", "Branches": [
                        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Output": "{% $base + 1 %}", "End": true}}},
                        {"StartAt": "B", "States": {"B": {"Type": "Pass", "Output": "{% $base + 2 %}", "End": true}}}],
                        "End": true}}),
                "Set",
            ),
            input: json!({}),
            aws: Expect::Output(json!([6, 7])),
            moto: MOTO_NO_BRANCH_ERRORS,
        },
        Case {
            name: "a Choice rule whose Next is the Default state does not get the state's Assign",
            definition: jsonata(
                json!({
                    "C": {"Type": "Choice", "Assign": {"path": "default"},
                        "Choices": [{"Condition": "{% $states.input.n > 1 %}", "Assign": {"path": "rule"}, "Next": "D"}],
                        "Default": "D"},
                    "D": {"Type": "Pass", "Output": {"path": "{% $path %}"}, "End": true}}),
                "C",
            ),
            input: json!({"n": 5}),
            aws: Expect::Output(json!({"path": "rule"})),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "a JSONata expression that does not parse is refused at creation",
            definition: jsonata(
                json!({"P": {"Type": "Pass", "Output": "{% $states.input + %}", "End": true}}),
                "P",
            ),
            input: json!({}),
            aws: Expect::Refused("INVALID_JSONATA_EXPRESSION"),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "$states.result is refused where it is not available",
            definition: jsonata(
                json!({"T": fixture_task_with(&function, json!({"action": "echo", "text": "{% $string($states.result) %}"}))}),
                "T",
            ),
            input: json!({}),
            aws: Expect::Refused("$states.result is not accessible at /States/T/Arguments/Payload/input/text"),
            moto: MOTO_NO_JSONATA,
        },
        Case {
            name: "a variable read in a JSONPath state",
            definition: jsonpath(
                json!({
                    "Set": {"Type": "Pass", "Assign": {"v.$": "$.value"}, "Next": "Read"},
                    "Read": {"Type": "Pass", "Parameters": {"got.$": "$v"}, "End": true}}),
                "Set",
            ),
            input: json!({"value": "it \"works\""}),
            aws: Expect::Output(json!({"got": "it \"works\""})),
            moto: MOTO_NO_JSONATA,
        },
    ])
    .await;
}

fn fixture_task_with(function: &str, input: Value) -> Value {
    let mut task = fixture_task(function, input);
    task["End"] = json!(true);
    task
}

#[tokio::test]
async fn jsonpath_states_follow_aws() {
    let items = json!({"items": [{"a": 2, "b": "x"}, {"a": 0, "b": "x"}, {"a": 5, "b": "y"}]});
    check(vec![
        Case {
            name: "a Choice rule on a path that does not exist fails the execution",
            definition: jsonpath(
                json!({
                    "C": {"Type": "Choice",
                        "Choices": [{"Variable": "$.missing", "NumericEquals": 1, "Next": "A"}],
                        "Default": "B"},
                    "A": {"Type": "Pass", "Result": {"took": "a"}, "End": true},
                    "B": {"Type": "Pass", "Result": {"took": "b"}, "End": true}}),
                "C",
            ),
            input: json!({"present": 1}),
            aws: Expect::Failed("States.Runtime", "Invalid path '$.missing': The choice state's condition path references an invalid value."),
            moto: Expect::Output(json!({"took": "b"})),
        },
        Case {
            name: "IsPresent on a path that does not exist is false, not an error",
            definition: jsonpath(
                json!({
                    "C": {"Type": "Choice",
                        "Choices": [{"Variable": "$.missing", "IsPresent": true, "Next": "A"}],
                        "Default": "B"},
                    "A": {"Type": "Pass", "Result": {"took": "a"}, "End": true},
                    "B": {"Type": "Pass", "Result": {"took": "b"}, "End": true}}),
                "C",
            ),
            input: json!({"present": 1}),
            aws: Expect::Output(json!({"took": "b"})),
            moto: Expect::Output(json!({"took": "b"})),
        },
        Case {
            name: "a Parameters path that does not exist",
            definition: jsonpath(
                json!({"P": {"Type": "Pass", "Parameters": {"x.$": "$.missing"}, "End": true}}),
                "P",
            ),
            input: json!({"present": 1}),
            aws: Expect::Failed("States.Runtime", "The JSONPath '$.missing' specified for the field 'x.$' could not be found"),
            moto: Expect::Failed("States.Runtime", "The JSONPath '$.missing' specified for the field 'x.$' could not be found"),
        },
        Case {
            name: "States.ALL does not catch States.Runtime",
            definition: jsonpath(
                json!({
                    "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": fixture_function(), "Payload": {"x.$": "$.missing"}},
                        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                        "End": true},
                    "Caught": {"Type": "Pass", "Result": {"caught": true}, "End": true}}),
                "T",
            ),
            input: json!({"present": 1}),
            aws: Expect::Failed("States.Runtime", "could not be found in the input"),
            moto: Expect::Output(json!({"caught": true})),
        },
        Case {
            name: "a task input over 256 KiB is States.DataLimitExceeded, which no Catch matches",
            definition: jsonpath(
                json!({
                    "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": fixture_function(),
                            "Payload": {"input": {"action": "echo", "text.$": "$.text"}, "again.$": "$.text"}},
                        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                        "End": true},
                    "Caught": {"Type": "Pass", "Result": {"caught": true}, "End": true}}),
                "T",
            ),
            // 2 x 140,000 bytes: each half fits, the payload does not.
            input: json!({"text": "x".repeat(140_000)}),
            aws: Expect::Failed("States.DataLimitExceeded", "provided parameters with a size exceeding"),
            // moto sends the payload, and its States.ALL catches what follows.
            moto: Expect::Output(json!({"caught": true})),
        },
        Case {
            name: "the 256 KiB limit counts UTF-8 bytes of compact JSON",
            definition: jsonpath(
                json!({"P": {"Type": "Pass", "Parameters": {"a.$": "$.text", "b.$": "$.text"}, "End": true}}),
                "P",
            ),
            // 2 x 120,000 bytes of UTF-8 (two bytes a character): within
            // 256 KiB; as \u00fc escapes, almost three times over.
            input: json!({"text": "ü".repeat(60_000)}),
            aws: Expect::OutputWhere("both copies", |o| {
                o["a"].as_str().is_some_and(|a| a.chars().count() == 60_000) && o["a"] == o["b"]
            }),
            moto: Expect::Failed("States.DataLimitExceeded", "returned a result with a size exceeding"),
        },
        Case {
            name: "an execution whose output is a JSON string",
            definition: jsonpath(
                json!({"P": {"Type": "Pass", "Result": "done", "End": true}}),
                "P",
            ),
            input: json!({}),
            aws: Expect::Output(json!("done")),
            moto: Expect::UnreadableOutput,
        },
        Case {
            name: "filters with && and || select as Jayway does; one that matches nothing is []",
            definition: jsonpath(
                json!({"P": {"Type": "Pass", "Parameters": {
                    "both.$": "$.items[?(@.a > 1 && @.b == 'x')].a",
                    "either.$": "$.items[?(@.a > 4 || @.b == 'x')].a",
                    "none.$": "$.items[?(@.a > 100 && @.b == 'x')]"}, "End": true}}),
                "P",
            ),
            input: items.clone(),
            aws: Expect::Output(json!({"both": [2], "either": [2, 0, 5], "none": []})),
            moto: Expect::Failed("States.Runtime", "could not be found in the input"),
        },
        Case {
            name: "a path string with JSON escapes (double-quoted filter strings)",
            definition: jsonpath(
                json!({"P": {"Type": "Pass", "Parameters": {"ys.$": "$.items[?(@.b == \"y\" || @.a == 0)].a"}, "End": true}}),
                "P",
            ),
            input: items,
            aws: Expect::Output(json!({"ys": [0, 5]})),
            moto: Expect::Failed("States.Runtime", "JsonPathParserError"),
        },
        Case {
            name: "a JSONPath the local JSONPath library cannot read is refused loudly at creation",
            definition: jsonpath(
                json!({"P": {"Type": "Pass", "Parameters": {"n.$": "$.items.length()"}, "End": true}}),
                "P",
            ),
            input: json!({"items": [1, 2]}),
            aws: Expect::Refused("DEVSTACK_UNSUPPORTED_JSONPATH"),
            moto: Expect::Failed("States.Runtime", "JsonPathParserError"),
        },
    ])
    .await;
}

#[tokio::test]
async fn executions_start_as_on_aws() {
    let ours = Builder::fixture().start().await;
    let plain = Builder::fixture().plain_moto().start().await;
    // JSONPath, so moto as released runs it too.
    let definition = jsonpath(
        json!({"P": {"Type": "Pass", "Parameters": {"execution.$": "$$.Execution"}, "End": true}}),
        "P",
    );
    let mut runs = Vec::new();
    for (stack, which) in [(&ours, "the local stack"), (&plain, "moto as released")] {
        let sfn = stack.sfn();
        let machine = sfn
            .create_state_machine()
            .name("context")
            .definition(definition.to_string())
            .role_arn("arn:aws:iam::123456789012:role/fidelity")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{which}: {e:?}"));
        // Without a name, AWS names the execution with a UUID.
        let started = sfn
            .start_execution()
            .state_machine_arn(machine.state_machine_arn())
            .input("{}")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{which}: {e:?}"));
        let name = started
            .execution_arn()
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        let finished = devstack::workflow::follow(
            &sfn,
            started.execution_arn(),
            Duration::from_secs(60),
            |_| {},
        )
        .await;
        runs.push((
            which,
            name,
            finished.map(|f| f.output).map_err(|e| format!("{e:#}")),
        ));
    }
    ours.finish().await;
    plain.finish().await;

    let (_, name, output) = &runs[0];
    assert_eq!(name.len(), 36, "a UUID name, got {name:?}");
    let output = output.as_ref().unwrap_or_else(|e| panic!("{e}"));
    let execution = &output.as_ref().unwrap_or_else(|| panic!("no output"))["execution"];
    assert_eq!(execution["Name"], json!(name));
    let start = execution["StartTime"].as_str().unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(start).is_ok()
            && start.ends_with('Z')
            && start.len() == 24,
        "StartTime as AWS writes it: {start:?}"
    );

    let (_, plain_name, plain_output) = &runs[1];
    assert_eq!(plain_name, "None", "moto as released names it None");
    assert!(
        plain_output.is_err() || plain_output.as_ref().is_ok_and(Option::is_none),
        "{plain_output:?}"
    );
}
