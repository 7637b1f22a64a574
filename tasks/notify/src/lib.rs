//! The `notify` task: tells the outside world what a workflow did, or asks a
//! human for an approval, by sending one message to SQS.
//!
//! Message body, schema version 1 (documented in `tasks/notify/README.md`):
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "kind": "invoice_ready",
//!   "correlation_id": "order-A-1001",
//!   "execution_id": "arn:aws:states:...:execution:Invoice:run-1",
//!   "state_name": "Notify invoice ready",
//!   "created_at": "2026-11-24T12:00:00.000Z",
//!   "subject": "Invoice A-1001 is ready",
//!   "details": {"key": "invoices/A-1001.pdf"},
//!   "recipient": "zoe@example.com",
//!   "task_token": "AQCE...",
//!   "dedup_id": "5f1c..."
//! }
//! ```
//!
//! `execution_id`, `state_name`, `recipient` and `task_token` are omitted
//! when absent. The same step sends the same `dedup_id`: on a FIFO queue it
//! is the `MessageDeduplicationId` (with `MessageGroupId` = correlation ID),
//! so retries and reruns within SQS's 5-minute window send one message; on a
//! standard queue consumers drop duplicates by the `dedup_id` attribute.

pub mod request;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;
use serde::Serialize;
use serde_json::Value;
use sfn_task::{TaskContext, TaskError};
use sha2::{Digest, Sha256};

pub use request::NotifyRequest;

/// Version of the message body schema.
pub const SCHEMA_VERSION: u32 = 1;
/// SQS's limit on a message, body and attributes together.
pub const MAX_MESSAGE_BYTES: usize = 262_144;

/// Settings read at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `NOTIFY_QUEUE_URL`.
    pub queue_url: String,
    /// `NOTIFY_EXTRA_KINDS`: comma-separated kinds allowed besides the built-in ones.
    pub extra_kinds: Vec<String>,
}

impl Config {
    /// Reads `NOTIFY_QUEUE_URL` and `NOTIFY_EXTRA_KINDS`.
    pub fn from_env() -> Result<Self, TaskError> {
        let queue_url = std::env::var("NOTIFY_QUEUE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| TaskError::failed("NOTIFY_QUEUE_URL is not set"))?;
        let extra_kinds = std::env::var("NOTIFY_EXTRA_KINDS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Self {
            queue_url,
            extra_kinds,
        })
    }

    /// Whether the queue is FIFO (its name ends in `.fifo`).
    pub fn is_fifo(&self) -> bool {
        self.queue_url.ends_with(".fifo")
    }
}

/// The task's output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Output {
    /// SQS message ID.
    pub message_id: String,
    /// FIFO sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
    /// Queue URL.
    pub queue: String,
    /// The deduplication ID sent.
    pub dedup_id: String,
    /// The notification kind.
    pub kind: String,
}

#[derive(Debug, Serialize)]
struct Body<'a> {
    schema_version: u32,
    kind: &'a str,
    correlation_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_name: Option<&'a str>,
    created_at: String,
    subject: &'a str,
    details: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_token: Option<&'a str>,
    dedup_id: &'a str,
}

/// The deduplication ID of a notification: SHA-256 over the correlation ID,
/// the kind and the content (subject, details with keys sorted, recipient,
/// and for approvals the task token, since each attempt's token is new).
/// Execution ID and time are left out on purpose: a rerun of the same work
/// is the same notification.
pub fn dedup_id(correlation_id: &str, request: &NotifyRequest, task_token: Option<&str>) -> String {
    let mut hash = Sha256::new();
    for part in [
        correlation_id,
        &request.kind,
        &request.subject,
        &canonical(&request.details),
        request.recipient.as_deref().unwrap_or(""),
        task_token.unwrap_or(""),
    ] {
        hash.update(part.len().to_be_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// JSON with object keys sorted, whatever serde_json's map order is.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, TaskError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| TaskError::failed(format!("building a message attribute: {e}")))
}

/// The handler: validate, build, size-check, send once.
pub async fn handle(
    sqs: &Client,
    config: &Config,
    request: NotifyRequest,
    ctx: TaskContext,
) -> Result<Output, TaskError> {
    request.validate(&config.extra_kinds)?;
    let task_token = if request.kind == request::APPROVAL_REQUESTED {
        Some(ctx.task_token().ok_or_else(|| {
            TaskError::invalid_input(
                "kind: approval_requested needs the envelope's task_token \
                 (call it from a lambda:invoke.waitForTaskToken state)",
            )
        })?)
    } else {
        None
    };
    let dedup = dedup_id(ctx.correlation_id(), &request, task_token);
    let body = serde_json::to_string(&Body {
        schema_version: SCHEMA_VERSION,
        kind: &request.kind,
        correlation_id: ctx.correlation_id(),
        execution_id: ctx.execution_id(),
        state_name: ctx.state_name(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        subject: &request.subject,
        details: &request.details,
        recipient: request.recipient.as_deref(),
        task_token,
        dedup_id: &dedup,
    })
    .map_err(|e| TaskError::failed(format!("serialising the message: {e}")))?;

    let mut attributes = vec![
        ("correlation_id", ctx.correlation_id()),
        ("kind", request.kind.as_str()),
        ("dedup_id", dedup.as_str()),
    ];
    if let Some(execution_id) = ctx.execution_id() {
        attributes.push(("execution_id", execution_id));
    }
    // SQS counts attribute names, types and values against the limit too.
    let size = body.len()
        + attributes
            .iter()
            .map(|(name, value)| name.len() + "String".len() + value.len())
            .sum::<usize>();
    if size > MAX_MESSAGE_BYTES {
        return Err(TaskError::invalid_input(format!(
            "message: {size} bytes with attributes, over the SQS limit of {MAX_MESSAGE_BYTES}"
        )));
    }

    let mut send = sqs
        .send_message()
        .queue_url(&config.queue_url)
        .message_body(body);
    for (name, value) in &attributes {
        send = send.message_attributes(*name, attribute(value)?);
    }
    if config.is_fifo() {
        send = send
            .message_group_id(ctx.correlation_id())
            .message_deduplication_id(&dedup);
    }
    let sent = send
        .send()
        .await
        .map_err(|e| TaskError::from(e).context("sending the notification"))?;

    tracing::info!(
        kind = request.kind.as_str(),
        recipient = request.recipient.as_deref().map(request::mask_email),
        message_bytes = size,
        dedup_id = dedup.as_str(),
        "notification sent"
    );
    Ok(Output {
        message_id: sent.message_id().unwrap_or_default().to_owned(),
        sequence_number: sent.sequence_number().map(str::to_owned),
        queue: config.queue_url.clone(),
        dedup_id: dedup,
        kind: request.kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(details: Value) -> NotifyRequest {
        serde_json::from_value(
            json!({"kind": "invoice_ready", "subject": "Invoice ready", "details": details}),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn dedup_ids_are_stable_and_content_sensitive() {
        let a = dedup_id(
            "c-1",
            &request(json!({"a": 1, "b": [1, {"y": 2, "x": 1}]})),
            None,
        );
        let b = dedup_id(
            "c-1",
            &request(json!({"b": [1, {"x": 1, "y": 2}], "a": 1})),
            None,
        );
        assert_eq!(a, b, "key order does not matter");
        assert_eq!(a.len(), 64);
        assert_ne!(a, dedup_id("c-2", &request(json!({"a": 1})), None));
        assert_ne!(a, dedup_id("c-1", &request(json!({"a": 2})), None));
        let plain = dedup_id("c-1", &request(json!({})), None);
        assert_ne!(plain, dedup_id("c-1", &request(json!({})), Some("token")));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        assert_eq!(
            canonical(&json!({"b": {"d": 1, "c": "x"}, "a": [true, null]})),
            r#"{"a":[true,null],"b":{"c":"x","d":1}}"#
        );
    }
}
