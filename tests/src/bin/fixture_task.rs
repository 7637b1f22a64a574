//! A task built on `common` whose behaviour the input chooses, so tests can
//! drive every path of the runtime through a real process.

use serde::Deserialize;
use serde_json::{Value, json};
use sfn_task::{TaskContext, TaskError};

#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
enum Action {
    /// Logs a line and answers with what the context says.
    Echo { text: String },
    /// Fails with the named kind: `invalid_input`, `retryable` or `failed`.
    Fail { kind: String },
    /// Panics.
    Panic,
    /// Sleeps, then answers.
    Sleep { ms: u64 },
    /// Blocks its thread (a hung task the deadline guard cannot stop), then answers.
    Block { ms: u64 },
    /// Answers with a string of this many bytes.
    Big { bytes: usize },
    /// Builds an SQS client from the process's AWS configuration (its
    /// first use) and answers with the region.
    AwsClient,
}

async fn handle(action: Action, ctx: TaskContext) -> Result<Value, TaskError> {
    match action {
        Action::Echo { text } => {
            tracing::info!(chars = text.chars().count(), "echoing");
            Ok(json!({
                "echo": text,
                "seen_correlation_id": ctx.correlation_id(),
                "retry_count": ctx.retry_count(),
                // What the platform's Max Memory Used must at least report.
                "peak_rss_kib": devstack::process_memory::peak_rss_kib(std::process::id()),
            }))
        }
        Action::Fail { kind } => Err(match kind.as_str() {
            "invalid_input" => TaskError::invalid_input("field `text`: must not be empty"),
            "retryable" => TaskError::retryable("dependency answered 503"),
            _ => TaskError::failed("access denied to bucket"),
        }),
        Action::Panic => panic!("fixture panicked on purpose"),
        Action::Sleep { ms } => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            Ok(json!({"slept_ms": ms}))
        }
        Action::Block { ms } => {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            Ok(json!({"blocked_ms": ms}))
        }
        Action::Big { bytes } => Ok(json!({"blob": "x".repeat(bytes)})),
        Action::AwsClient => {
            let client = aws_sdk_sqs::Client::new(ctx.aws().await);
            let region = client.config().region().map(ToString::to_string);
            Ok(json!({ "region": region }))
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sfn_task::run("fixture", handle).await
}
