//! Faults between the tasks and S3/SQS: the task binaries talk to moto
//! through the fault-injecting proxy, the tests check what moto really
//! holds. Transient faults must be absorbed by the SDK's retries; persistent
//! ones must end as `Task.Retryable` with nothing half-written, and the next
//! attempt must complete once they stop.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use devstack::faults::{Fault, FaultProxy, Rule};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tests::export_server::{ExportServer, pattern_byte};
use tests::fixture::envelope;
use tests::moto::MotoServer;
use tests::process::TaskProcess;
use tests::runtime_api::LocalRuntimeApi;

const BUDGET: Duration = Duration::from_secs(60);
const INVOICES: &str = "invoices-faults";
const BACKUPS: &str = "backups-faults";
const MIB: u64 = 1024 * 1024;
/// Short enough that a stalled attempt is abandoned and retried quickly.
const ATTEMPT_TIMEOUT_MS: &str = "3000";
/// A stall longer than the attempt timeout: the SDK must give up and retry.
const STALL: Duration = Duration::from_millis(4000);

/// Every kind of transient fault the proxy injects.
const TRANSIENT: [Fault; 5] = [
    Fault::SlowDown,
    Fault::InternalError,
    Fault::Reset,
    Fault::LostResponse,
    Fault::Stall(STALL),
];

async fn moto_and_proxy() -> (MotoServer, FaultProxy) {
    let moto = MotoServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    let proxy = FaultProxy::start(&moto.endpoint())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    (moto, proxy)
}

/// Starts `task` with every AWS request going through `proxy`.
async fn start_task(
    task: &str,
    moto: &MotoServer,
    proxy: &FaultProxy,
    extra: &[(&'static str, &str)],
) -> (LocalRuntimeApi, TaskProcess) {
    let mut all: Vec<(&'static str, &str)> = vec![
        ("AWS_ENDPOINT_URL", &proxy.url),
        ("AWS_ATTEMPT_TIMEOUT_MS", ATTEMPT_TIMEOUT_MS),
    ];
    all.extend_from_slice(extra);
    moto.start_task(task, &all).await
}

/// How many requests matching `pattern` the proxy saw.
fn seen(proxy: &FaultProxy, pattern: &str) -> usize {
    proxy
        .seen()
        .iter()
        .filter(|s| s.request.contains(pattern))
        .count()
}

fn order(order_id: &str) -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/invoice_order.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut order: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    order["order_id"] = json!(order_id);
    order
}

/// The stored invoice matches what the task reported, byte for byte.
async fn assert_invoice_intact(moto: &MotoServer, out: &Value) {
    let key = out["key"].as_str().unwrap_or_default();
    let body = moto.read_object(INVOICES, key).await;
    assert!(body.starts_with(b"%PDF-"), "{key} is a PDF");
    assert_eq!(out["sha256"], hex::encode(Sha256::digest(&body)), "{key}");
    assert_eq!(out["size"], body.len(), "{key}");
}

#[tokio::test]
async fn invoice_absorbs_transient_s3_faults() {
    let (moto, proxy) = moto_and_proxy().await;
    moto.create_bucket(INVOICES).await;
    let (api, process) =
        start_task("invoice", &moto, &proxy, &[("INVOICE_BUCKET", INVOICES)]).await;

    for (n, fault) in TRANSIENT.into_iter().enumerate() {
        let order_id = format!("F-{n}");
        let put = format!("PUT /{INVOICES}/invoices/{order_id}.pdf");
        // Two faults in a row, inside the SDK's three attempts.
        let count = if matches!(fault, Fault::Stall(_)) {
            1
        } else {
            2
        };
        proxy.inject(Rule::times(count, &put, fault));
        let done = api
            .invoke(envelope(&order_id, 0, order(&order_id)), BUDGET)
            .await;
        let out = done.response().clone();
        assert_invoice_intact(&moto, &out).await;
        assert!(
            seen(&proxy, &put) > count as usize,
            "{fault:?}: the SDK retried the upload"
        );
        // A lost response means the first upload landed: the retry finds the
        // same bytes under the key and reports them as already there.
        assert_eq!(
            out["already_existed"],
            fault == Fault::LostResponse,
            "{fault:?}"
        );
        proxy.clear();
    }
    assert_eq!(proxy.faults_applied(), 9);
    assert_eq!(moto.object_keys(INVOICES).await.len(), TRANSIENT.len());
    let lines = process.stop().json_lines();
    let errors: Vec<_> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(
        errors.is_empty(),
        "absorbed faults are no errors: {errors:#?}"
    );
}

#[tokio::test]
async fn invoice_persistent_s3_faults_are_retryable_and_the_next_attempt_completes() {
    let (moto, proxy) = moto_and_proxy().await;
    moto.create_bucket(INVOICES).await;
    let (api, _process) =
        start_task("invoice", &moto, &proxy, &[("INVOICE_BUCKET", INVOICES)]).await;
    let put = format!("PUT /{INVOICES}/invoices/");

    for fault in [Fault::SlowDown, Fault::InternalError, Fault::Reset] {
        proxy.inject(Rule::always(&put, fault));
        let before = seen(&proxy, &put);
        let failed = api
            .invoke(envelope("order-P-1", 0, order("P-1")), BUDGET)
            .await;
        assert_eq!(
            failed.error()["errorType"],
            "Task.Retryable",
            "{fault:?}: {:?}",
            failed.error()
        );
        assert_eq!(
            seen(&proxy, &put) - before,
            3,
            "{fault:?}: the SDK's three attempts, then the task gives up"
        );
        assert!(moto.object_keys(INVOICES).await.is_empty(), "{fault:?}");
        proxy.clear();
    }

    // The state machine's Retry: the faults have stopped.
    let done = api
        .invoke(envelope("order-P-1", 1, order("P-1")), BUDGET)
        .await;
    assert_invoice_intact(&moto, done.response()).await;
    assert_eq!(done.response()["already_existed"], false);
    assert_eq!(moto.object_keys(INVOICES).await.len(), 1);
}

async fn fifo_queue(moto: &MotoServer, name: &str) -> String {
    let mut create = moto.sqs().create_queue().queue_name(name);
    if name.ends_with(".fifo") {
        create = create.attributes(QueueAttributeName::FifoQueue, "true");
    }
    create
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
        .queue_url()
        .unwrap_or_default()
        .to_owned()
}

fn notification(subject: &str) -> Value {
    json!({"kind": "invoice_ready", "subject": subject, "details": {"key": "invoices/A-1.pdf"}})
}

/// The `dedup_id` attribute of every message on the queue.
async fn dedup_ids(moto: &MotoServer, queue_url: &str) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let out = moto
            .sqs()
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        if out.messages().is_empty() {
            return ids;
        }
        for m in out.messages() {
            let body: Value =
                serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null);
            ids.push(body["dedup_id"].as_str().unwrap_or_default().to_owned());
        }
    }
}

#[tokio::test]
async fn notify_absorbs_sqs_faults_and_sends_each_notification_once() {
    let (moto, proxy) = moto_and_proxy().await;
    let queue_url = fifo_queue(&moto, "notify-faults.fifo").await;
    let (api, _process) =
        start_task("notify", &moto, &proxy, &[("NOTIFY_QUEUE_URL", &queue_url)]).await;
    let send = "AmazonSQS.SendMessage";

    let mut expected = Vec::new();
    for (n, fault) in TRANSIENT.into_iter().enumerate() {
        let count = if matches!(fault, Fault::Stall(_)) {
            1
        } else {
            2
        };
        proxy.inject(Rule::times(count, send, fault));
        let done = api
            .invoke(
                envelope("order-N-1", 0, notification(&format!("case {n}"))),
                BUDGET,
            )
            .await;
        expected.push(
            done.response()["dedup_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        proxy.clear();
    }

    // Persistent: the task gives up retryably; the Retry sends it once.
    proxy.inject(Rule::always(send, Fault::InternalError));
    let failed = api
        .invoke(envelope("order-N-1", 0, notification("persistent")), BUDGET)
        .await;
    assert_eq!(failed.error()["errorType"], "Task.Retryable");
    proxy.clear();
    let done = api
        .invoke(envelope("order-N-1", 1, notification("persistent")), BUDGET)
        .await;
    expected.push(
        done.response()["dedup_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );

    let mut received = dedup_ids(&moto, &queue_url).await;
    received.sort();
    expected.sort();
    assert_eq!(received, expected, "each notification exactly once");
    assert!(
        seen(&proxy, send) >= 2 * TRANSIENT.len(),
        "every fault was retried"
    );
}

#[tokio::test]
async fn a_lost_response_on_a_standard_queue_repeats_the_dedup_id() {
    // SQS standard queues deliver at least once and cannot deduplicate: a
    // send whose answer was lost is sent again. Consumers drop repeats by the
    // `dedup_id` attribute, which must therefore be the same on both.
    let (moto, proxy) = moto_and_proxy().await;
    let queue_url = fifo_queue(&moto, "notify-faults-standard").await;
    let (api, _process) =
        start_task("notify", &moto, &proxy, &[("NOTIFY_QUEUE_URL", &queue_url)]).await;
    proxy.inject(Rule::times(1, "AmazonSQS.SendMessage", Fault::LostResponse));
    let done = api
        .invoke(envelope("order-N-2", 0, notification("standard")), BUDGET)
        .await;
    let dedup_id = done.response()["dedup_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let received = dedup_ids(&moto, &queue_url).await;
    assert_eq!(received, vec![dedup_id.clone(), dedup_id]);
}

fn export_request(url: &str) -> Value {
    json!({
        "name": "billing-export",
        "run_id": "2026-11-24T00:00:00Z",
        "source": {"type": "http", "url": url, "file_name": "billing.ndjson"},
    })
}

/// The export's data object holds exactly the bytes served.
async fn assert_export_intact(moto: &MotoServer, run_key: &str, bytes: u64) {
    let keys: Vec<String> = moto
        .object_keys(BACKUPS)
        .await
        .into_iter()
        .filter(|k| k.starts_with(run_key) && k.ends_with("billing.ndjson"))
        .collect();
    assert_eq!(keys.len(), 1, "one data object: {keys:?}");
    let body = moto.read_object(BACKUPS, &keys[0]).await;
    assert_eq!(body.len() as u64, bytes);
    let expected: Vec<u8> = (0..bytes).map(pattern_byte).collect();
    assert!(body == expected, "the stored bytes are the exported ones");
}

#[tokio::test]
async fn backup_multipart_upload_under_faults_leaves_no_upload_open() {
    let (moto, proxy) = moto_and_proxy().await;
    moto.create_bucket(BACKUPS).await;
    let server = ExportServer::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let hosts = server.host_port();
    let (api, _process) = start_task(
        "backup",
        &moto,
        &proxy,
        &[
            ("BACKUP_BUCKET", BACKUPS),
            ("BACKUP_EXPORT_HOSTS", &hosts),
            ("BACKUP_ALLOWED_ADDRESSES", "127.0.0.1"),
            ("BACKUP_UPLOAD_PART_SIZE", "5242880"),
            ("BACKUP_STOP_BEFORE_MS", "1000"),
        ],
    )
    .await;
    let bytes = 12 * MIB;
    let url = server.url(&format!("/export/{bytes}"));
    let part = "partNumber=";
    let nth_part = |n: u32| format!("partNumber={n}&");

    // Persistent faults on the parts: retryable, the upload aborted.
    proxy.inject(Rule::always(part, Fault::SlowDown));
    let failed = api
        .invoke(envelope("export-F-1", 0, export_request(&url)), BUDGET)
        .await;
    assert_eq!(
        failed.error()["errorType"],
        "Task.Retryable",
        "{:?}",
        failed.error()
    );
    assert_eq!(
        moto.open_uploads(BACKUPS).await,
        0,
        "the upload was aborted"
    );
    assert!(
        moto.object_keys(BACKUPS).await.is_empty(),
        "no partial object"
    );
    proxy.clear();
    // Each part in flight got the SDK's three attempts.
    let persistent = proxy.faults_applied();
    assert!(persistent >= 3, "{persistent} faults");

    // Transient faults on each part and on completion: absorbed.
    proxy.inject(Rule::times(1, &nth_part(1), Fault::Reset));
    proxy.inject(Rule::times(1, &nth_part(2), Fault::LostResponse));
    proxy.inject(Rule::times(1, &nth_part(3), Fault::Stall(STALL)));
    proxy.inject(Rule::times(2, "?uploadId=", Fault::InternalError));
    let done = api
        .invoke(envelope("export-F-1", 1, export_request(&url)), BUDGET)
        .await;
    assert_eq!(done.response()["bytes"], bytes);
    assert_eq!(
        proxy.faults_applied() - persistent,
        5,
        "every injected fault was hit"
    );
    assert_export_intact(&moto, "backups/billing-export/", bytes).await;
    assert_eq!(moto.open_uploads(BACKUPS).await, 0);

    // Completion's answer lost after S3 completed the upload: the SDK's
    // retry of the same completion succeeds.
    proxy.inject(Rule::times(1, "?uploadId=", Fault::LostResponse));
    let mut request = export_request(&url);
    request["name"] = json!("billing-export-2");
    let done = api.invoke(envelope("export-F-2", 0, request), BUDGET).await;
    assert_eq!(done.response()["bytes"], bytes);
    assert_export_intact(&moto, "backups/billing-export-2/", bytes).await;
    assert_eq!(moto.open_uploads(BACKUPS).await, 0);
}
