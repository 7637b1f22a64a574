//! The same echo through `common`: correlation, start and end lines with
//! EMF, the guards and (when `SENTRY_DSN` is set) the Sentry scope.

use serde_json::Value;
use sfn_task::{TaskContext, TaskError};

async fn echo(input: Value, _ctx: TaskContext) -> Result<Value, TaskError> {
    Ok(input)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sfn_task::run("echo", echo).await
}
