//! The `invoice` binary end to end: a fake Lambda Runtime API drives it,
//! the moto server stands in for S3.

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tests::fixture::{self, envelope};
use tests::moto::MotoServer;
use tests::process::TaskProcess;
use tests::runtime_api::LocalRuntimeApi;

const BUCKET: &str = "invoices-test";
const BUDGET: Duration = Duration::from_secs(30);

struct Setup {
    moto: MotoServer,
    api: LocalRuntimeApi,
    process: TaskProcess,
}

async fn setup(bucket_exists: bool) -> Setup {
    let moto = MotoServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    if bucket_exists {
        moto.create_bucket(BUCKET).await;
    }
    let (api, process) = moto
        .start_task("invoice", &[("INVOICE_BUCKET", BUCKET)])
        .await;
    Setup { moto, api, process }
}

fn order() -> Value {
    fixture::event("invoice_order.json")
}

#[tokio::test]
async fn stores_the_invoice_once_and_a_retry_writes_nothing() {
    let Setup { moto, api, process } = setup(true).await;

    let first = api
        .invoke(envelope("order-A-1001", 0, order()), BUDGET)
        .await;
    let out = first.response().clone();
    assert_eq!(out["bucket"], BUCKET);
    assert_eq!(out["key"], "invoices/A-1001.pdf");
    assert_eq!(out["page_count"], 1);
    assert_eq!(out["total"], "1214.87");
    assert_eq!(out["currency"], "EUR");
    assert_eq!(out["already_existed"], false);
    assert_eq!(out["correlation_id"], "order-A-1001");

    let object = moto
        .s3()
        .get_object()
        .bucket(BUCKET)
        .key("invoices/A-1001.pdf")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(object.content_type(), Some("application/pdf"));
    let metadata = object.metadata().cloned().unwrap_or_default();
    let etag = object.e_tag().map(str::to_owned);
    let body = object
        .body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_bytes();
    assert!(body.starts_with(b"%PDF-"));
    let sha = hex::encode(Sha256::digest(&body));
    assert_eq!(out["sha256"], sha.as_str());
    assert_eq!(out["size"], body.len());
    assert_eq!(metadata.get("sha256"), Some(&sha));
    assert_eq!(
        metadata.get("correlation-id").map(String::as_str),
        Some("order-A-1001")
    );
    assert_eq!(metadata.get("order-id").map(String::as_str), Some("A-1001"));

    // A Step Functions retry (or a rerun under a new execution).
    let retry = api
        .invoke(envelope("order-A-1001", 1, order()), BUDGET)
        .await;
    let again = retry.response();
    assert_eq!(again["already_existed"], true);
    assert_eq!(again["sha256"], sha.as_str());
    let head = moto
        .s3()
        .head_object()
        .bucket(BUCKET)
        .key("invoices/A-1001.pdf")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(head.e_tag().map(str::to_owned), etag, "not rewritten");
    assert_eq!(moto.object_keys(BUCKET).await.len(), 1);

    let captured = process.stop();
    for line in captured.stdout.iter().chain(&captured.stderr) {
        for address in ["zoe.mueller@example.com", "billing@acme.example"] {
            assert!(
                !line.contains(address),
                "e-mail address in a log line: {line}"
            );
        }
        assert!(!line.contains("Zoë"), "personal name in a log line: {line}");
    }
    let stored = captured
        .json_lines()
        .into_iter()
        .filter(|l| l["message"] == "invoice stored")
        .count();
    assert_eq!(stored, 2);
}

#[tokio::test]
async fn different_content_under_an_issued_number_fails_and_never_overwrites() {
    let Setup {
        moto,
        api,
        process: _p,
    } = setup(true).await;
    let first = api.invoke(envelope("c-1", 0, order()), BUDGET).await;
    let sha = first.response()["sha256"].clone();

    let mut changed = order();
    changed["lines"][0]["quantity"] = json!("3");
    let second = api.invoke(envelope("c-2", 0, changed), BUDGET).await;
    assert_eq!(second.error()["errorType"], "Task.Failed");
    let message = second.error()["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("invoice already issued with different content"),
        "{message}"
    );

    let body = moto.read_object(BUCKET, "invoices/A-1001.pdf").await;
    assert_eq!(
        json!(hex::encode(Sha256::digest(&body))),
        sha,
        "original kept"
    );
}

/// An invoice number is issued once, whatever the date: a rerun dated in
/// the next year must not store the same number a second time.
#[tokio::test]
async fn an_issued_number_is_never_issued_again_under_another_date() {
    let Setup {
        moto,
        api,
        process: _p,
    } = setup(true).await;
    let first = api.invoke(envelope("c-1", 0, order()), BUDGET).await;
    assert_eq!(first.response()["key"], "invoices/A-1001.pdf");

    let mut next_year = order();
    next_year["issue_date"] = json!("2027-01-05");
    next_year["due_date"] = json!("2027-02-04");
    let second = api.invoke(envelope("c-1", 1, next_year), BUDGET).await;
    assert_eq!(second.error()["errorType"], "Task.Failed");
    assert!(
        second.error()["errorMessage"]
            .as_str()
            .is_some_and(|m| m.starts_with("invoice already issued with different content")),
        "{}",
        second.error()
    );
    assert_eq!(moto.object_keys(BUCKET).await, ["invoices/A-1001.pdf"]);
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_written() {
    let Setup {
        moto,
        api,
        process: _p,
    } = setup(true).await;
    let bad_file: Value = {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/invoice_order_bad.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let mut cases: Vec<(Value, &str)> = vec![(bad_file, "order_id")];
    let mut set = |pointer: &str, value: Value, field: &'static str| {
        let mut o = order();
        if let Some(slot) = o.pointer_mut(pointer) {
            *slot = value;
        }
        cases.push((o, field));
    };
    set("/currency", json!("XYZ"), "currency");
    set("/lines/0/quantity", json!("-2"), "lines[0].quantity");
    set("/lines/0/unit_price", json!(12.5), "lines[0].unit_price");
    set(
        "/lines/1/description",
        json!("a\u{0000}b"),
        "lines[1].description",
    );
    set("/buyer/email", json!("nobody"), "buyer.email");
    set("/order_id", json!("A 1001"), "order_id");
    set("/lines", json!([]), "lines");
    let mut missing = order();
    if let Some(map) = missing.as_object_mut() {
        map.remove("seller");
    }
    cases.push((missing, "seller"));

    for (input, field) in cases {
        let done = api.invoke(envelope("bad-1", 0, input), BUDGET).await;
        assert_eq!(done.error()["errorType"], "Task.InvalidInput", "{field}");
        let message = done.error()["errorMessage"].as_str().unwrap_or_default();
        assert!(
            message.contains(field),
            "message names `{field}`: {message}"
        );
    }
    assert!(moto.object_keys(BUCKET).await.is_empty(), "nothing written");
    assert_eq!(moto.open_uploads(BUCKET).await, 0);
}

#[tokio::test]
async fn a_missing_bucket_is_task_failed() {
    let Setup {
        moto: _m,
        api,
        process: _p,
    } = setup(false).await;
    let done = api.invoke(envelope("nb-1", 0, order()), BUDGET).await;
    assert_eq!(done.error()["errorType"], "Task.Failed");
    let message = done.error()["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("NoSuchBucket"), "{message}");
}
