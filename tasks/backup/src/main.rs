//! Lambda entry point: set up once, then serve.

// Multi-threaded, unlike the other tasks: large backups run on functions
// with more than one vCPU, where streaming, checksums and TLS for several
// parts in flight use them; per-invocation latency does not matter here.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let runtime = sfn_task::TaskRuntime::init("backup").await?;
    let config = backup::Config::from_env()?;
    let s3 = runtime.s3_client().await;
    runtime
        .run(|request, ctx| backup::handle(&s3, &config, request, ctx))
        .await
}
