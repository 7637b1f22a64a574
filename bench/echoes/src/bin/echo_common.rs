//! The same echo through `common`: correlation, start and end lines with
//! EMF, the guards and (when `SENTRY_DSN` is set) the Sentry scope.

use serde_json::Value;
use sfn_task::{TaskContext, TaskError};

async fn echo(input: Value, _ctx: TaskContext) -> Result<Value, TaskError> {
    Ok(input)
}

// As the tasks' (and README's) main: one thread. The bare echo keeps
// `#[tokio::main]`, as lambda_runtime's examples have it.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    sfn_task::run("echo", echo).await
}
