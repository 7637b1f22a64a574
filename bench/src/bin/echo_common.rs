//! The same echo through `common`: correlation, start and end lines with
//! EMF, the guards and (when `SENTRY_DSN` is set) the Sentry scope.

use common::{TaskContext, TaskError};
use serde_json::Value;

async fn echo(input: Value, _ctx: TaskContext) -> Result<Value, TaskError> {
    Ok(input)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    common::run("echo", echo).await
}
