//! Lambda entry point: set up once, then serve.

// One thread: a function up to 1,769 MB has at most one vCPU, and a second
// worker only adds cross-thread wake-ups to every invocation (BENCHMARKS.md,
// warm overhead).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let runtime = sfn_task::TaskRuntime::init("notify").await?;
    let config = notify::Config::from_env()?;
    // Built on the first invocation: init stays a bare function's.
    let sqs = &runtime.lazy_client(aws_sdk_sqs::Client::new);
    let config = &config;
    runtime
        .run(move |request, ctx| async move {
            notify::handle(sqs.get().await, config, request, ctx).await
        })
        .await
}
