//! Lambda entry point: set up once, then serve. `INVOICE_MODE=price` makes
//! this function the workflow's pricing step (no S3 client, no bucket).

use invoice::pricing::{self, Mode};

// One thread: a function up to 1,769 MB has at most one vCPU, and a second
// worker only adds cross-thread wake-ups to every invocation (BENCHMARKS.md,
// warm overhead).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    if pricing::Mode::from_env()? == Mode::Price {
        return sfn_task::run("invoice-pricing", |order, _ctx| async move {
            pricing::price(order)
        })
        .await;
    }
    let runtime = sfn_task::TaskRuntime::init("invoice").await?;
    let config = invoice::Config::from_env()?;
    // Built on the first invocation: init stays a bare function's.
    let s3 = &runtime.lazy_s3_client();
    // Parse the embedded fonts during init rather than in the first invocation.
    let _ = invoice::fonts::Fonts::get();
    let config = &config;
    runtime
        .run(move |order, ctx| async move {
            invoice::handle(s3.get().await, config, order, ctx).await
        })
        .await
}
