//! Lambda entry point: set up once, then serve.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let runtime = sfn_task::TaskRuntime::init("backup").await?;
    let config = backup::Config::from_env()?;
    let s3 = runtime.s3_client().await;
    runtime
        .run(|request, ctx| backup::handle(&s3, &config, request, ctx))
        .await
}
