//! The local Lambda service's Invoke API, checked with the real AWS CLI
//! (`aws lambda invoke`, from the project venv) against the fixture task:
//! success with the log tail, function errors, timeouts, unknown functions,
//! `Event` invocations, warm reuse, and the logs in CloudWatch Logs.

use std::path::PathBuf;
use std::process::Output;

use base64::Engine;
use serde_json::{Value, json};
use tests::local_stack::{Builder, LocalStack};

fn aws_cli() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/aws"))
}

/// Runs `aws <args>` against the stack's endpoint.
async fn aws(stack: &LocalStack, args: &[&str]) -> Output {
    tokio::process::Command::new(aws_cli())
        .args(args)
        .args(["--endpoint-url", &stack.stack.endpoint, "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_DEFAULT_REGION", tests::moto::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}: {e} (make test installs it)", aws_cli().display()))
}

struct Invoked {
    meta: Value,
    payload: Value,
}

/// `aws lambda invoke` with `--log-type Tail`; the payload lands in a file.
async fn invoke(stack: &LocalStack, function: &str, payload: &Value, extra: &[&str]) -> Invoked {
    let out_file = std::env::temp_dir().join(format!(
        "invoke-{}-{}.json",
        std::process::id(),
        NEXT_FILE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let payload_text = payload.to_string();
    let mut args = vec![
        "lambda",
        "invoke",
        "--function-name",
        function,
        "--payload",
        // AWS CLI v1 sends a blob parameter as given.
        &payload_text,
    ];
    args.extend_from_slice(extra);
    let out_path = out_file.to_string_lossy().into_owned();
    args.push(&out_path);
    let output = aws(stack, &args).await;
    assert!(
        output.status.success(),
        "aws lambda invoke failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let meta: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    let payload = std::fs::read(&out_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let _ = std::fs::remove_file(&out_file);
    Invoked { meta, payload }
}

static NEXT_FILE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn log_tail(meta: &Value) -> String {
    let encoded = meta["LogResult"].as_str().unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_else(|e| panic!("LogResult is not base64 ({e}): {encoded}"));
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn the_invoke_api_answers_as_lambda_does() {
    let stack = Builder::fixture().start().await;
    let function = stack.stack.spec.functions[0].arn.clone();

    // Success, with the invocation's log lines in the tail.
    let ok = invoke(
        &stack,
        &function,
        &json!({"correlation_id": "cli-1", "input": {"action": "echo", "text": "hello"}}),
        &["--log-type", "Tail"],
    )
    .await;
    assert_eq!(ok.meta["StatusCode"], 200);
    assert!(ok.meta.get("FunctionError").is_none(), "{}", ok.meta);
    assert_eq!(ok.payload["echo"], "hello");
    assert_eq!(ok.payload["correlation_id"], "cli-1");
    let tail = log_tail(&ok.meta);
    assert!(tail.contains("\"task started\""), "{tail}");
    assert!(tail.contains("\"task finished\""), "{tail}");
    assert!(tail.contains("cli-1"), "{tail}");

    // The same process again (warm), by name instead of ARN.
    let name = stack.stack.spec.functions[0].name.clone();
    let warm = invoke(
        &stack,
        &name,
        &json!({"correlation_id": "cli-2", "input": {"action": "echo", "text": "again"}}),
        &["--log-type", "Tail"],
    )
    .await;
    assert!(log_tail(&warm.meta).contains("\"cold_start\":false"));

    // A function error: 200, FunctionError, the task's errorType.
    let failed = invoke(
        &stack,
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
        &stack,
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
        &stack,
        &function,
        &json!({"input": {"action": "echo", "text": "fresh"}}),
        &["--log-type", "Tail"],
    )
    .await;
    assert_eq!(after.payload["echo"], "fresh");
    assert!(log_tail(&after.meta).contains("\"cold_start\":true"));

    // Event invocations are accepted with 202.
    let event = invoke(
        &stack,
        &function,
        &json!({"input": {"action": "echo", "text": "async"}}),
        &["--invocation-type", "Event"],
    )
    .await;
    assert_eq!(event.meta["StatusCode"], 202);

    // An unknown function.
    let missing = aws(
        &stack,
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
        &stack,
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
        invoke(&stack, &function, &slow, &["--log-type", "Tail"]),
        invoke(&stack, &function, &slow, &["--log-type", "Tail"]),
    );
    for one in [&a, &b] {
        assert_eq!(one.payload["slept_ms"], 400, "{}", one.payload);
        assert!(log_tail(&one.meta).contains("\"cold_start\":true"));
    }
    let lines = stack.finish().await;
    let cold_starts = lines
        .iter()
        .filter(|l| l["message"] == "task started" && l["cold_start"] == true)
        .count();
    assert_eq!(cold_starts, 2, "two processes, each started cold");
}
