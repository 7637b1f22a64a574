//! The `common` runtime driven through `lambda_runtime` in a real child
//! process, against a fake Lambda Runtime API on 127.0.0.1.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tests::fixture::{self, envelope};
use tests::process::{Captured, TaskProcess};
use tests::runtime_api::{FUNCTION_ARN, LocalRuntimeApi};

const BUDGET: Duration = Duration::from_secs(10);

async fn start(extra: &[(&'static str, &str)]) -> (LocalRuntimeApi, TaskProcess) {
    fixture::start(env!("CARGO_BIN_EXE_fixture-task"), extra).await
}

/// Lines grouped by `function_request_id`.
fn by_request(lines: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut map: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in lines {
        if let Some(id) = line["function_request_id"].as_str() {
            map.entry(id.to_owned()).or_default().push(line.clone());
        }
    }
    map
}

fn lifecycle<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["message"] == message).collect()
}

const CONTEXT_KEYS: [&str; 10] = [
    "timestamp",
    "level",
    "message",
    "service",
    "correlation_id",
    "cold_start",
    "function_name",
    "function_arn",
    "function_memory_size",
    "function_request_id",
];

#[tokio::test]
async fn every_path_through_one_warm_process() {
    let (api, process) = start(&[]).await;
    let private_text = "Zoë Müller, Łódź";

    let echo = api
        .invoke(
            envelope(
                "order-A-1001",
                2,
                json!({"action": "echo", "text": private_text}),
            ),
            BUDGET,
        )
        .await;
    let body = echo.response();
    assert_eq!(
        body["correlation_id"], "order-A-1001",
        "output carries it on"
    );
    assert_eq!(body["seen_correlation_id"], "order-A-1001");
    assert_eq!(body["retry_count"], 2);
    assert_eq!(body["echo"], private_text);

    let bare = api
        .invoke(json!({"action": "echo", "text": "bare"}), BUDGET)
        .await;
    let generated = bare.response()["correlation_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    assert_eq!(&generated[14..15], "7", "UUID v7: {generated}");

    let mut expected_errors = vec![];
    for (payload, error_type, message) in [
        (
            json!({"action": "fail", "kind": "invalid_input"}),
            "Task.InvalidInput",
            "field `text`: must not be empty",
        ),
        (
            json!({"action": "fail", "kind": "retryable"}),
            "Task.Retryable",
            "dependency answered 503",
        ),
        (
            json!({"action": "fail", "kind": "failed"}),
            "Task.Failed",
            "access denied to bucket",
        ),
        (
            json!({"action": "panic"}),
            "Task.Panic",
            // The payload's message and, from the panic hook, where it was.
            "task panicked: fixture panicked on purpose (at tests/src/bin/fixture_task.rs:45)",
        ),
    ] {
        let done = api.invoke(envelope("errors-1", 0, payload), BUDGET).await;
        assert_eq!(
            done.error(),
            &json!({"errorType": error_type, "errorMessage": message}),
            "exact error body"
        );
        expected_errors.push((done.request_id.clone(), error_type));
    }

    let unknown = api
        .invoke(
            envelope("errors-1", 0, json!({"action": "explode"})),
            BUDGET,
        )
        .await;
    assert_eq!(unknown.error()["errorType"], "Task.InvalidInput");
    let message = unknown.error()["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("unknown variant"), "{message}");
    assert!(
        !message.contains("explode"),
        "input values are not echoed: {message}"
    );

    let bad_envelope = api
        .invoke(json!({"input": {}, "retry_count": "many"}), BUDGET)
        .await;
    assert_eq!(bad_envelope.error()["errorType"], "Task.InvalidInput");
    assert!(
        bad_envelope.error()["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("retry_count")
    );

    let big = api
        .invoke(json!({"action": "big", "bytes": 300_000}), BUDGET)
        .await;
    assert_eq!(big.error()["errorType"], "Task.Failed");
    let message = big.error()["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("262144"), "{message}");

    let hostile = "evil\n{\"level\":\"ERROR\",\"message\":\"forged\"}";
    let replaced = api
        .invoke(
            envelope(hostile, 0, json!({"action": "echo", "text": "x"})),
            BUDGET,
        )
        .await;
    let replacement = replaced.response()["correlation_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_ne!(replacement, hostile);

    let after_panic = api
        .invoke(
            envelope("still-alive", 0, json!({"action": "echo", "text": "ok"})),
            BUDGET,
        )
        .await;
    assert_eq!(after_panic.response()["correlation_id"], "still-alive");

    let captured = process.stop();
    let lines = captured.json_lines();
    let outside: Vec<_> = lines
        .iter()
        .filter(|l| l.get("function_request_id").is_none())
        .collect();
    assert!(
        outside.is_empty(),
        "lines without invocation context: {outside:#?}"
    );
    let requests = by_request(&lines);
    assert_eq!(requests.len(), 11, "one group per invocation");

    for (request_id, group) in &requests {
        let starts = lifecycle(group, "task started");
        let ends = lifecycle(group, "task finished");
        assert_eq!(starts.len(), 1, "{request_id}: one start line");
        assert_eq!(ends.len(), 1, "{request_id}: one end line");
        let correlation = &starts[0]["correlation_id"];
        for line in group {
            for key in CONTEXT_KEYS {
                assert!(
                    line.get(key).is_some(),
                    "{request_id}: {key} missing on {line}"
                );
            }
            assert_eq!(
                &line["correlation_id"], correlation,
                "same ID on every line"
            );
            assert_eq!(line["service"], "fixture");
            assert_eq!(line["function_arn"], FUNCTION_ARN);
            assert_eq!(line["function_name"], "fixture-task");
            assert_eq!(line["function_memory_size"], 128);
            assert!(
                line["xray_trace_id"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("Root="))
            );
        }
        for line in starts.iter().chain(&ends) {
            for key in line
                .as_object()
                .map(|o| o.keys().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                assert!(
                    key == "_aws" || sfn_task::logging::LOG_FIELDS.contains(&key.as_str()),
                    "undocumented key `{key}` on a lifecycle line"
                );
            }
        }
        let end = ends[0];
        assert!(end["duration_ms"].as_f64().is_some_and(|d| d >= 0.0));
        assert!(
            end["_aws"]["CloudWatchMetrics"].is_array(),
            "end line is EMF"
        );
        let outcome = end["outcome"].as_str().unwrap_or_default();
        assert!(["success", "error", "timeout"].contains(&outcome));
        if outcome == "success" {
            assert_eq!(end["success_count"], 1);
            assert!(end.get("error_type").is_none());
        } else {
            assert_eq!(end["error_count"], 1);
            assert!(
                end["error_type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("Task."))
            );
            assert!(end["error_message"].is_string());
        }
    }

    // Envelope context on every line of an envelope invocation.
    let first = &requests[&echo.request_id];
    for line in first {
        assert_eq!(line["correlation_id"], "order-A-1001");
        assert_eq!(line["retry_count"], 2);
        assert_eq!(line["state_name"], "Render invoice");
        assert!(
            line["execution_id"]
                .as_str()
                .is_some_and(|e| e.ends_with(":run-1"))
        );
    }
    assert!(
        first
            .iter()
            .any(|l| l["message"] == "echoing" && l["chars"] == 16),
        "task code lines carry the context"
    );
    assert_eq!(
        lifecycle(first, "task started")[0]["correlation_id_source"],
        "envelope"
    );

    // cold_start is true on the first invocation only.
    for (request_id, group) in &requests {
        let cold = request_id == &echo.request_id;
        assert!(
            group.iter().all(|l| l["cold_start"] == cold),
            "{request_id}"
        );
    }

    let bare_start = lifecycle(&requests[&bare.request_id], "task started")[0];
    assert_eq!(bare_start["correlation_id"], generated.as_str());
    assert_eq!(bare_start["correlation_id_source"], "generated");
    assert_eq!(bare_start["retry_count"], 0);

    for (request_id, error_type) in &expected_errors {
        let end = lifecycle(&requests[request_id], "task finished")[0];
        assert_eq!(end["error_type"], *error_type);
        assert_eq!(
            end["level"],
            if *error_type == "Task.InvalidInput" {
                "WARN"
            } else {
                "ERROR"
            }
        );
    }
    let panic_lines = &requests[&expected_errors[3].0];
    assert!(
        panic_lines
            .iter()
            .any(|l| l["message"] == "task panicked" && l["panic_location"].is_string()),
        "the panic is logged as JSON with the invocation's context"
    );

    let refused = &requests[&replaced.request_id];
    assert_eq!(
        lifecycle(refused, "task started")[0]["correlation_id_source"],
        "replaced"
    );
    assert!(
        refused
            .iter()
            .any(|l| l["message"] == "correlation id refused; one derived from it is used")
    );

    assert_no_line_contains(&captured, private_text);
    assert_no_line_contains(&captured, "forged");
    assert!(captured.stderr.is_empty(), "stderr: {:?}", captured.stderr);
}

fn assert_no_line_contains(captured: &Captured, needle: &str) {
    for line in captured.stdout.iter().chain(&captured.stderr) {
        assert!(!line.contains(needle), "`{needle}` leaked into: {line}");
    }
}

#[tokio::test]
async fn deadline_guard_answers_before_the_deadline() {
    let (api, process) = start(&[("TASK_DEADLINE_MARGIN_MS", "700")]).await;
    let done = api
        .invoke(
            envelope("slow-1", 0, json!({"action": "sleep", "ms": 60_000})),
            Duration::from_millis(2000),
        )
        .await;
    assert_eq!(
        done.error(),
        &json!({
            "errorType": "Task.Timeout",
            "errorMessage": "task stopped by the deadline guard 700 ms before the Lambda deadline"
        })
    );
    assert!(
        done.received_ms < done.deadline_ms,
        "answered {} ms after the deadline",
        done.received_ms - done.deadline_ms
    );

    // The process survives and serves the next invocation.
    let next = api
        .invoke(
            envelope("slow-2", 0, json!({"action": "sleep", "ms": 1})),
            BUDGET,
        )
        .await;
    assert_eq!(next.response()["slept_ms"], 1);

    let lines = process.stop().json_lines();
    let end = lines
        .iter()
        .find(|l| l["message"] == "task finished" && l["correlation_id"] == "slow-1")
        .unwrap_or_else(|| panic!("no end line for the timed-out invocation"));
    assert_eq!(end["outcome"], "timeout");
    assert_eq!(end["timeout_count"], 1);
    assert_eq!(end["error_type"], "Task.Timeout");
}

#[tokio::test]
async fn lifecycle_lines_survive_a_quiet_log_level() {
    let (api, process) = start(&[("AWS_LAMBDA_LOG_LEVEL", "ERROR")]).await;
    api.invoke(
        envelope("quiet-1", 0, json!({"action": "echo", "text": "x"})),
        BUDGET,
    )
    .await
    .response();
    let lines = process.stop().json_lines();
    let messages: Vec<_> = lines.iter().map(|l| l["message"].clone()).collect();
    assert_eq!(
        messages,
        vec![json!("task started"), json!("task finished")]
    );
    assert!(lines.iter().all(|l| l["correlation_id"] == "quiet-1"));
}

#[tokio::test]
async fn text_format_for_local_work() {
    let (api, process) = start(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]).await;
    api.invoke(
        envelope("text-1", 0, json!({"action": "echo", "text": "x"})),
        BUDGET,
    )
    .await
    .response();
    let captured = process.stop();
    let started: Vec<_> = captured
        .stdout
        .iter()
        .filter(|l| l.contains("task started"))
        .collect();
    assert_eq!(started.len(), 1, "{:?}", captured.stdout);
    assert!(
        serde_json::from_str::<Value>(started[0]).is_err(),
        "readable text, not JSON"
    );
    assert!(
        started[0].contains("correlation_id=\"text-1\"")
            || started[0].contains("correlation_id=text-1")
    );
}

/// What lambda_runtime cannot deserialize (nesting past serde_json's
/// recursion limit) and what is too large still gets `common`'s treatment:
/// `Task.InvalidInput` naming the limit, a start and an end line, the
/// envelope's correlation ID, and a process that keeps serving.
#[tokio::test]
async fn payloads_past_the_parser_limits_are_refused_by_common() {
    let (api, process) = start(&[]).await;
    let depth = 1000;
    let deep = format!(
        r#"{{"correlation_id": "deep-1", "retry_count": 0, "input": {}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let refused = api.invoke_raw(deep, BUDGET).await;
    assert_eq!(refused.error()["errorType"], "Task.InvalidInput");
    let message = refused.error()["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("nested deeper than"), "{message}");

    let huge = format!(r#"{{"input": "{}"}}"#, "x".repeat(6 * 1024 * 1024));
    let too_big = api.invoke_raw(huge, BUDGET).await;
    assert_eq!(too_big.error()["errorType"], "Task.InvalidInput");
    let message = too_big.error()["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("bytes"), "{message}");

    let after = api
        .invoke(
            envelope(
                "after-1",
                0,
                json!({"action": "echo", "text": "still here"}),
            ),
            BUDGET,
        )
        .await;
    assert_eq!(after.response()["echo"], "still here");

    let captured = process.stop();
    let lines = captured.json_lines();
    let requests = by_request(&lines);
    for (completed, correlation) in [(&refused, Some("deep-1")), (&too_big, None)] {
        let own = &requests[&completed.request_id];
        assert_eq!(lifecycle(own, "task started").len(), 1, "{own:?}");
        let end = lifecycle(own, "task finished");
        assert_eq!(end.len(), 1, "{own:?}");
        assert_eq!(end[0]["error_type"], "Task.InvalidInput");
        if let Some(id) = correlation {
            assert_eq!(
                end[0]["correlation_id"], id,
                "the envelope's ID, read without the input"
            );
        }
    }
}
