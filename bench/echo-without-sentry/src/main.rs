//! `echo-common` built without Sentry: what `common` costs a task that
//! does not report errors (built alone: `cargo build -p echo-without-sentry`).

use serde_json::Value;
use sfn_task::{TaskContext, TaskError};

async fn echo(input: Value, _ctx: TaskContext) -> Result<Value, TaskError> {
    Ok(input)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    sfn_task::run("echo", echo).await
}
