//! Lambda entry point: set up once, then serve.

// One thread: a function up to 1,769 MB has at most one vCPU, and a second
// worker only adds cross-thread wake-ups to every invocation (BENCHMARKS.md,
// warm overhead).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let runtime = sfn_task::TaskRuntime::init("notify").await?;
    let config = notify::Config::from_env()?;
    let sqs = aws_sdk_sqs::Client::new(runtime.aws().await);
    runtime
        .run(|request, ctx| notify::handle(&sqs, &config, request, ctx))
        .await
}
