//! A function from someone else's project, for the local stack's foreign
//! template test: plain `lambda_runtime`, no `common`, plain-text logs.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

async fn greet(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let name = event.payload["user"]["name"]
        .as_str()
        .ok_or("user.name is missing")?;
    println!("greeting user number {}", event.payload["position"]);
    Ok(json!({
        "greeting": format!("Welcome, {name}!"),
        "position": event.payload["position"],
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(greet)).await
}
