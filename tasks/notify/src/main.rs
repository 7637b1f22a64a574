//! Lambda entry point: set up once, then serve.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let runtime = sfn_task::TaskRuntime::init("notify").await?;
    let config = notify::Config::from_env()?;
    let sqs = aws_sdk_sqs::Client::new(runtime.aws().await);
    runtime
        .run(|request, ctx| notify::handle(&sqs, &config, request, ctx))
        .await
}
