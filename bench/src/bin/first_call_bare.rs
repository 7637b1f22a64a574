//! The first-call baseline: a bare `lambda_runtime` function sending one SQS
//! message per invocation (to the notify task's FIFO queue) with a plain SDK client, nothing of `common`.
//! `FIRST_CALL_MODE` says when the SDK's work happens:
//!
//! - `lazy`: configuration and client on the first invocation;
//! - `init` (default, what AWS's examples do): configuration and client at
//!   init, so the HTTPS client and its trust store are built before the
//!   first event, and the TLS connection opens on the first request;
//! - `warm`: as `init`, plus one `GetQueueAttributes` request at init, so
//!   the first invocation finds an open TLS connection in the pool.
//!
//! `FIRST_CALL_TLS=ring` builds the SDK's HTTPS client on rustls with
//! *ring*, as `common` does, instead of the default client (rustls on
//! aws-lc), so the two TLS stacks can be told apart from `common` itself.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use tokio::sync::OnceCell;

async fn client() -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if std::env::var("FIRST_CALL_TLS").is_ok_and(|tls| tls == "ring") {
        loader = loader.http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_https(),
        );
    }
    Client::new(&loader.load().await)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let queue_url = std::env::var("NOTIFY_QUEUE_URL")?;
    let mode = std::env::var("FIRST_CALL_MODE").unwrap_or_else(|_| "init".to_owned());
    let sqs = OnceCell::new();
    if mode != "lazy" {
        let client = client().await;
        if mode == "warm" {
            client
                .get_queue_attributes()
                .queue_url(&queue_url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await?;
        }
        let _ = sqs.set(client);
    }
    let (sqs, queue_url) = (&sqs, &queue_url);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let sqs = sqs.get_or_init(client).await;
        let sent = sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(event.payload.to_string())
            // The notify queue is FIFO, as the template makes it.
            .message_group_id("bench")
            .message_deduplication_id(&event.context.request_id)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        Ok::<Value, Error>(serde_json::json!({ "message_id": sent.message_id() }))
    }))
    .await
}
