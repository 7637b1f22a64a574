//! The bare echo on a current-thread runtime: `echo-common`'s like for
//! like (the tasks run on one thread), beside `echo-bare` as
//! lambda_runtime's examples write it.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
