//! Starting the `fixture-task` binary against a fresh fake Runtime API.

use serde_json::{Value, json};

use crate::process::TaskProcess;
use crate::runtime_api::LocalRuntimeApi;

/// The Lambda environment a task process gets, with `extra` added or
/// overriding: JSON logs, a region, and no instance metadata look-ups.
pub fn lambda_env(
    api: &LocalRuntimeApi,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AWS_LAMBDA_RUNTIME_API", api.host_port()),
        ("AWS_LAMBDA_FUNCTION_NAME", "fixture-task".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/fixture-task".to_owned(),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/11/24/[$LATEST]abc".to_owned(),
        ),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ("AWS_REGION", "eu-west-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k, (*v).to_owned()));
    }
    env
}

/// Starts a fake Runtime API and `program` (a task binary) against it.
pub async fn start(
    program: &str,
    extra: &[(&'static str, &str)],
) -> (LocalRuntimeApi, TaskProcess) {
    let api = LocalRuntimeApi::start()
        .await
        .unwrap_or_else(|e| panic!("fake runtime API: {e}"));
    let process = TaskProcess::spawn(program, &lambda_env(&api, extra))
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    (api, process)
}

/// The execution every fixture envelope belongs to.
pub const EXECUTION: &str = "arn:aws:states:eu-west-1:123456789012:execution:Invoice:run-1";

/// The envelope a Step Functions task state sends.
pub fn envelope(correlation_id: &str, retry_count: u32, input: Value) -> Value {
    envelope_from("Render invoice", correlation_id, retry_count, input)
}

/// The envelope the state `state_name` of [`EXECUTION`] sends.
pub fn envelope_from(
    state_name: &str,
    correlation_id: &str,
    retry_count: u32,
    input: Value,
) -> Value {
    json!({
        "correlation_id": correlation_id,
        "execution_id": EXECUTION,
        "state_name": state_name,
        "retry_count": retry_count,
        "input": input,
    })
}

/// A fixture of `events/` (`invoice_order.json`, ...).
pub fn event(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
