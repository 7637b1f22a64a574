//! The local Lambda service's Invoke API, checked with the real AWS CLI
//! (`aws lambda invoke`, from the project venv) against the fixture task:
//! success with the log tail, function errors, timeouts, unknown functions,
//! `Event` invocations, warm reuse, and the logs in CloudWatch Logs.

use serde_json::{Value, json};
use tests::aws_cli::{aws, invoke};
use tests::local_stack::Builder;

#[tokio::test]
async fn the_invoke_api_answers_as_lambda_does() {
    let stack = Builder::fixture().start().await;
    let function = stack.stack.spec.functions[0].arn.clone();

    // Success, with the invocation's log lines in the tail.
    let ok = invoke(
        &stack.stack.endpoint,
        &function,
        &json!({"correlation_id": "cli-1", "input": {"action": "echo", "text": "hello"}}),
        &["--log-type", "Tail"],
    )
    .await;
    assert_eq!(ok.meta["StatusCode"], 200);
    assert!(ok.meta.get("FunctionError").is_none(), "{}", ok.meta);
    assert_eq!(ok.payload["echo"], "hello");
    assert_eq!(ok.payload["correlation_id"], "cli-1");
    let tail = ok.log_tail();
    assert!(tail.contains("\"task started\""), "{tail}");
    assert!(tail.contains("\"task finished\""), "{tail}");
    assert!(tail.contains("cli-1"), "{tail}");

    // The same process again (warm), by name instead of ARN.
    let name = stack.stack.spec.functions[0].name.clone();
    let warm = invoke(
        &stack.stack.endpoint,
        &name,
        &json!({"correlation_id": "cli-2", "input": {"action": "echo", "text": "again"}}),
        &["--log-type", "Tail"],
    )
    .await;
    assert!(warm.log_tail().contains("\"cold_start\":false"));

    // A function error: 200, FunctionError, the task's errorType.
    let failed = invoke(
        &stack.stack.endpoint,
        &function,
        &json!({"input": {"action": "fail", "kind": "invalid_input"}}),
        &[],
    )
    .await;
    assert_eq!(failed.meta["StatusCode"], 200);
    assert_eq!(failed.meta["FunctionError"], "Unhandled");
    assert_eq!(failed.payload["errorType"], "Task.InvalidInput");

    // A hung task the guard cannot stop: killed at the function's Timeout.
    let hung = invoke(
        &stack.stack.endpoint,
        &function,
        &json!({"input": {"action": "block", "ms": 10_000}}),
        &[],
    )
    .await;
    assert_eq!(hung.meta["FunctionError"], "Unhandled");
    assert_eq!(hung.payload["errorType"], "Sandbox.Timedout");
    let message = hung.payload["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("Task timed out after 2.00 seconds"),
        "{message}"
    );

    // The next invocation gets a new (cold) process.
    let after = invoke(
        &stack.stack.endpoint,
        &function,
        &json!({"input": {"action": "echo", "text": "fresh"}}),
        &["--log-type", "Tail"],
    )
    .await;
    assert_eq!(after.payload["echo"], "fresh");
    assert!(after.log_tail().contains("\"cold_start\":true"));

    // Event invocations are accepted with 202.
    let event = invoke(
        &stack.stack.endpoint,
        &function,
        &json!({"input": {"action": "echo", "text": "async"}}),
        &["--invocation-type", "Event"],
    )
    .await;
    assert_eq!(event.meta["StatusCode"], 202);

    // An unknown function.
    let missing = aws(
        &stack.stack.endpoint,
        &[
            "lambda",
            "invoke",
            "--function-name",
            "no-such-function",
            "/dev/null",
        ],
    )
    .await;
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("ResourceNotFoundException"), "{stderr}");

    // The lines are in CloudWatch Logs, under the function's log group.
    let group = stack.stack.spec.functions[0].logging.group.clone();
    let logs = aws(
        &stack.stack.endpoint,
        &["logs", "filter-log-events", "--log-group-name", &group],
    )
    .await;
    assert!(
        logs.status.success(),
        "{}",
        String::from_utf8_lossy(&logs.stderr)
    );
    let events: Value = serde_json::from_slice(&logs.stdout).unwrap_or_default();
    let messages: Vec<&str> = events["events"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["message"].as_str()).collect())
        .unwrap_or_default();
    assert!(messages.iter().any(|m| m.contains("cli-1")), "{messages:?}");
    stack.finish().await;
}

#[tokio::test]
async fn concurrent_invocations_get_their_own_processes() {
    let stack = Builder::fixture().start().await;
    let function = stack.stack.spec.functions[0].arn.clone();
    let slow = json!({"input": {"action": "sleep", "ms": 400}});
    let (a, b) = tokio::join!(
        invoke(
            &stack.stack.endpoint,
            &function,
            &slow,
            &["--log-type", "Tail"]
        ),
        invoke(
            &stack.stack.endpoint,
            &function,
            &slow,
            &["--log-type", "Tail"]
        ),
    );
    for one in [&a, &b] {
        assert_eq!(one.payload["slept_ms"], 400, "{}", one.payload);
        assert!(one.log_tail().contains("\"cold_start\":true"));
    }
    let lines = stack.finish().await;
    let cold_starts = lines
        .iter()
        .filter(|l| l["message"] == "task started" && l["cold_start"] == true)
        .count();
    assert_eq!(cold_starts, 2, "two processes, each started cold");
}
