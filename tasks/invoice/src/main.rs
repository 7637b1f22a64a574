//! Lambda entry point: set up once, then serve.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let runtime = common::TaskRuntime::init("invoice").await?;
    let config = invoice::Config::from_env()?;
    let s3 = runtime.s3_client();
    // Parse the embedded fonts during init rather than in the first invocation.
    let _ = invoice::fonts::Fonts::get();
    runtime
        .run(|order, ctx| invoice::handle(&s3, &config, order, ctx))
        .await
}
