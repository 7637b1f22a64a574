//! The `notify` binary end to end: a fake Lambda Runtime API drives it, the
//! moto server stands in for SQS.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::{Value, json};
use tests::fixture;
use tests::moto::MotoServer;
use tests::process::TaskProcess;
use tests::runtime_api::LocalRuntimeApi;

const BUDGET: Duration = Duration::from_secs(30);
use tests::fixture::EXECUTION;

struct Setup {
    moto: MotoServer,
    queue_url: String,
    api: LocalRuntimeApi,
    process: TaskProcess,
}

async fn setup(queue: &str) -> Setup {
    let moto = MotoServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    let mut create = moto.sqs().create_queue().queue_name(queue);
    if queue.ends_with(".fifo") {
        create = create.attributes(QueueAttributeName::FifoQueue, "true");
    }
    let queue_url = create
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    let (api, process) = start_task(&moto, &queue_url).await;
    Setup {
        moto,
        queue_url,
        api,
        process,
    }
}

async fn start_task(moto: &MotoServer, queue_url: &str) -> (LocalRuntimeApi, TaskProcess) {
    moto.start_task(
        "notify",
        &[
            ("NOTIFY_QUEUE_URL", queue_url),
            ("NOTIFY_EXTRA_KINDS", "welcome_sent, trial_ending"),
        ],
    )
    .await
}

fn step(correlation_id: &str, retry_count: u32, input: Value) -> Value {
    fixture::envelope_from("Notify invoice ready", correlation_id, retry_count, input)
}

fn ready() -> Value {
    json!({
        "kind": "invoice_ready",
        "subject": "Invoice A-1001 is ready",
        "details": {"key": "invoices/A-1001.pdf", "total": "1214.87", "iban": "DE89 3704 0044 0532 0130 00"},
        "recipient": "zoe.mueller@example.com",
        "sensitive": ["iban"],
    })
}

struct Received {
    body: Value,
    attributes: HashMap<String, String>,
    group_id: Option<String>,
}

/// Every message on the queue (received and left invisible).
async fn drain(moto: &MotoServer, queue_url: &str) -> Vec<Received> {
    let mut all = Vec::new();
    loop {
        let out = moto
            .sqs()
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        if out.messages().is_empty() {
            return all;
        }
        for m in out.messages() {
            let body = serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null);
            let attributes = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let group_id = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                .cloned();
            all.push(Received {
                body,
                attributes,
                group_id,
            });
        }
    }
}

#[tokio::test]
async fn standard_queue_message_body_and_attributes() {
    let Setup {
        moto,
        queue_url,
        api,
        process,
    } = setup("notifications").await;
    let done = api.invoke(step("order-A-1001", 0, ready()), BUDGET).await;
    let out = done.response().clone();
    assert!(out["message_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(out["queue"], queue_url.as_str());
    assert!(out.get("sequence_number").is_none());
    let dedup = out["dedup_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(dedup.len(), 64);

    let messages = drain(&moto, &queue_url).await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    let body = &m.body;
    assert_eq!(body["schema_version"], 1);
    assert_eq!(body["kind"], "invoice_ready");
    assert_eq!(body["correlation_id"], "order-A-1001");
    assert_eq!(body["execution_id"], EXECUTION);
    assert_eq!(body["state_name"], "Notify invoice ready");
    assert_eq!(body["subject"], "Invoice A-1001 is ready");
    assert_eq!(
        body["details"],
        ready()["details"],
        "the consumer gets the real values"
    );
    assert_eq!(body["recipient"], "zoe.mueller@example.com");
    assert_eq!(body["dedup_id"], dedup.as_str());
    assert!(body.get("task_token").is_none());
    let created = body["created_at"].as_str().unwrap_or_default();
    assert!(chrono_like(created), "{created}");

    assert_eq!(
        m.attributes.get("correlation_id").map(String::as_str),
        Some("order-A-1001")
    );
    assert_eq!(
        m.attributes.get("kind").map(String::as_str),
        Some("invoice_ready")
    );
    assert_eq!(
        m.attributes.get("execution_id").map(String::as_str),
        Some(EXECUTION)
    );
    assert_eq!(m.attributes.get("dedup_id"), Some(&dedup));
    assert!(m.attributes.len() <= 10, "SQS allows 10 attributes");

    let captured = process.stop();
    assert!(!captured.stdout.is_empty());
    for line in captured.stdout.iter().chain(&captured.stderr) {
        assert!(
            !line.contains("zoe.mueller@example.com"),
            "recipient in a log line: {line}"
        );
        assert!(
            !line.contains("DE89"),
            "a sensitive field in a log line: {line}"
        );
    }
    let sent: Vec<Value> = captured
        .json_lines()
        .into_iter()
        .filter(|l| l["message"] == "notification sent")
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["recipient"], "z***@***.com", "masked, not dropped");
}

fn chrono_like(ts: &str) -> bool {
    ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T'
}

#[tokio::test]
async fn fifo_same_step_twice_sends_one_message() {
    let Setup {
        moto,
        queue_url,
        api,
        process: _p,
    } = setup("notifications.fifo").await;
    let first = api.invoke(step("order-A-1001", 0, ready()), BUDGET).await;
    // A Step Functions retry, then a rerun under a new execution.
    let retry = api.invoke(step("order-A-1001", 1, ready()), BUDGET).await;
    let mut rerun_payload = step("order-A-1001", 0, ready());
    rerun_payload["execution_id"] = json!(format!("{EXECUTION}-rerun"));
    let rerun = api.invoke(rerun_payload, BUDGET).await;
    for done in [&first, &retry, &rerun] {
        assert_eq!(done.response()["dedup_id"], first.response()["dedup_id"]);
        assert!(done.response()["sequence_number"].is_string());
    }
    // Different content is a different notification.
    let mut other = ready();
    other["subject"] = json!("Invoice A-1001 is ready (corrected)");
    let second = api.invoke(step("order-A-1001", 0, other), BUDGET).await;
    assert_ne!(second.response()["dedup_id"], first.response()["dedup_id"]);

    let messages = drain(&moto, &queue_url).await;
    assert_eq!(messages.len(), 2, "one per distinct notification");
    for m in &messages {
        assert_eq!(m.group_id.as_deref(), Some("order-A-1001"));
    }
}

#[tokio::test]
async fn approval_requests_carry_the_task_token() {
    let Setup {
        moto,
        queue_url,
        api,
        process: _p,
    } = setup("approvals").await;
    let mut payload = step(
        "order-B-2002",
        0,
        json!({"kind": "approval_requested", "subject": "Approve invoice B-2002 (JPY 5,500,000)",
               "details": {"order_id": "B-2002", "total": "5500000"}}),
    );
    payload["task_token"] = json!("AQCEAAAAKgAAAAMAAAAAAAAAAeMc-token");
    let done = api.invoke(payload, BUDGET).await;
    assert_eq!(done.response()["kind"], "approval_requested");
    let messages = drain(&moto, &queue_url).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].body["task_token"],
        "AQCEAAAAKgAAAAMAAAAAAAAAAeMc-token"
    );

    let without_token = api
        .invoke(
            step(
                "order-B-2002",
                0,
                json!({"kind": "approval_requested", "subject": "Approve"}),
            ),
            BUDGET,
        )
        .await;
    assert_eq!(without_token.error()["errorType"], "Task.InvalidInput");
    assert!(drain(&moto, &queue_url).await.is_empty(), "nothing sent");
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_sent() {
    let Setup {
        moto,
        queue_url,
        api,
        process: _p,
    } = setup("notifications.fifo").await;
    let blob = "x".repeat(262_000);
    let cases = [
        (json!({"kind": "party", "subject": "x"}), "kind"),
        (json!({"kind": "invoice_ready"}), "subject"),
        (
            json!({"kind": "invoice_ready", "subject": "a\u{0007}"}),
            "subject",
        ),
        (
            json!({"kind": "invoice_ready", "subject": "x", "recipient": "not an address"}),
            "recipient",
        ),
        (
            json!({"kind": "invoice_ready", "subject": "x", "details": {"blob": blob}}),
            "message",
        ),
        (
            json!({"kind": "invoice_ready", "subject": "x", "colour": "red"}),
            "colour",
        ),
    ];
    for (input, field) in cases {
        let done = api.invoke(step("bad-1", 0, input), BUDGET).await;
        assert_eq!(done.error()["errorType"], "Task.InvalidInput", "{field}");
        let message = done.error()["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains(field), "names `{field}`: {message}");
        if field == "message" {
            assert!(
                message.contains("bytes") && message.contains("262144"),
                "{message}"
            );
        }
    }
    // An extra kind configured by environment is accepted without code changes.
    let extra = api
        .invoke(
            step(
                "ok-1",
                0,
                json!({"kind": "welcome_sent", "subject": "Welcome"}),
            ),
            BUDGET,
        )
        .await;
    assert_eq!(extra.response()["kind"], "welcome_sent");
    let messages = drain(&moto, &queue_url).await;
    assert_eq!(messages.len(), 1, "only the valid one was sent");
    assert_eq!(messages[0].body["kind"], "welcome_sent");
}

#[tokio::test]
async fn a_missing_queue_is_task_failed() {
    let moto = MotoServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    let url = format!("{}/123456789012/does-not-exist", moto.endpoint());
    let (api, _process) = start_task(&moto, &url).await;
    let done = api.invoke(step("nq-1", 0, ready()), BUDGET).await;
    assert_eq!(
        done.error()["errorType"],
        "Task.Failed",
        "{:?}",
        done.error()
    );
}
