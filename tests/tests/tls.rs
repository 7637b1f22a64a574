//! On AWS every request a task makes is HTTPS; every other test talks plain
//! HTTP to local endpoints. Here the task binaries go through TLS endpoints
//! with a test CA they trust through `SSL_CERT_FILE` (verification stays
//! on), as their one TLS stack (rustls on *ring*, `sfn_task::tls`) does on
//! Lambda: the SDK's client to SQS and S3, Sentry's transport, and the
//! backup's export client.

use std::time::Duration;

use serde_json::json;
use tests::export_server::ExportServer;
use tests::fixture::{envelope, envelope_from};
use tests::moto::MotoServer;
use tests::sentry_sink::{Behaviour, SentrySink};
use tests::tls_proxy::{TestTls, start_proxy, test_tls};

const BUDGET: Duration = Duration::from_secs(60);

/// `https://127.0.0.1:<port>` in front of `upstream` (`http://host:port`).
async fn https(tls: &TestTls, upstream: &str) -> String {
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let proxy = start_proxy(tls.acceptor.clone(), upstream)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The certificate names 127.0.0.1 too: no name resolution involved.
    proxy.replace("localhost", "127.0.0.1")
}

fn notification(kind: &str) -> serde_json::Value {
    json!({"kind": kind, "subject": "Over TLS", "details": {"n": 1}})
}

#[tokio::test]
async fn tasks_reach_aws_sentry_and_exports_over_tls_with_verification() {
    let dir = std::env::temp_dir().join(format!("sfn-task-tls-{}", std::process::id()));
    let tls = test_tls(&dir).unwrap_or_else(|e| panic!("{e}"));
    let bundle = tls.bundle.display().to_string();
    let moto = MotoServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    let queue_url = moto
        .sqs()
        .create_queue()
        .queue_name("tls-notifications")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    let aws = https(&tls, &moto.endpoint()).await;
    let sink = SentrySink::start(Behaviour::Accept)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The sink's DSN is `http://public@<host:port>/1`.
    let plain_dsn = sink.dsn();
    let sink_host = plain_dsn
        .trim_start_matches("http://public@")
        .trim_end_matches("/1");
    let sentry = https(&tls, sink_host).await;
    let dsn = sentry.replace("https://", "https://public@") + "/1";

    // SQS through the SDK's client, and a report to Sentry, both over TLS.
    let (api, _process) = moto
        .start_task(
            "notify",
            &[
                ("AWS_ENDPOINT_URL", &aws),
                ("SSL_CERT_FILE", &bundle),
                ("NOTIFY_QUEUE_URL", &queue_url),
                ("SENTRY_DSN", &dsn),
                ("SENTRY_REPORT_INVALID_INPUT", "true"),
            ],
        )
        .await;
    let step = |id: &str, input| envelope_from("Notify", id, 0, input);
    let sent = api
        .invoke(step("tls-1", notification("invoice_ready")), BUDGET)
        .await;
    assert!(
        sent.response()["message_id"].is_string(),
        "{:?}",
        sent.outcome
    );
    let received = moto
        .sqs()
        .receive_message()
        .queue_url(&queue_url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(received.messages().len(), 1, "the message went through TLS");
    let refused = api
        .invoke(step("tls-2", notification("no_such_kind")), BUDGET)
        .await;
    assert_eq!(refused.error()["errorType"], "Task.InvalidInput");
    let events = sink.events();
    assert!(
        events
            .iter()
            .any(|e| e["tags"]["correlation_id"] == "tls-2"),
        "the report went through TLS: {events:?}"
    );

    // The test CA unknown (the system's roots only): nothing is sent.
    let (api, _process) = moto
        .start_task(
            "notify",
            &[("AWS_ENDPOINT_URL", &aws), ("NOTIFY_QUEUE_URL", &queue_url)],
        )
        .await;
    let untrusted = api
        .invoke(step("tls-3", notification("invoice_ready")), BUDGET)
        .await;
    assert_eq!(untrusted.error()["errorType"], "Task.Retryable");

    // An HTTP export over TLS into S3 over TLS.
    for bucket in ["tls-backups", "tls-source"] {
        moto.create_bucket(bucket).await;
    }
    let server = ExportServer::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let export = https(&tls, &server.url("")).await;
    let host = export.trim_start_matches("https://").to_owned();
    let (api, _process) = moto
        .start_task(
            "backup",
            &[
                ("AWS_ENDPOINT_URL", &aws),
                ("SSL_CERT_FILE", &bundle),
                ("BACKUP_BUCKET", "tls-backups"),
                ("BACKUP_EXPORT_HOSTS", &host),
                ("BACKUP_ALLOWED_ADDRESSES", "127.0.0.1"),
            ],
        )
        .await;
    let size = 7 << 20;
    let input = json!({"name": "tls", "run_id": "2026-12-06T00:00:00Z",
        "source": {"type": "http", "url": format!("{export}/export/{size}")}});
    let done = api.invoke(envelope("tls-4", 0, input), BUDGET).await;
    assert_eq!(done.response()["bytes"], size, "{:?}", done.outcome);
    assert_eq!(moto.open_uploads("tls-backups").await, 0);
    let _ = std::fs::remove_dir_all(&dir);
}
