//! Lambda entry point: set up once, then serve.

// Multi-threaded, unlike the other tasks: large backups run on functions
// with more than one vCPU, where streaming, checksums and TLS for several
// parts in flight use them; per-invocation latency does not matter here.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let runtime = sfn_task::TaskRuntime::init("backup").await?;
    let config = backup::Config::from_env()?;
    // Built on the first invocation: init stays a bare function's.
    let s3 = &runtime.lazy_s3_client();
    let config = &config;
    runtime
        .run(move |request, ctx| async move {
            backup::handle(s3.get().await, config, request, ctx).await
        })
        .await
}
