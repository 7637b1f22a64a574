//! The `backup` binary end to end: a fake Lambda Runtime API drives it, the
//! moto server stands in for S3, a local HTTP server plays the export.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tests::binaries::task_binary;
use tests::export_server::{ExportServer, pattern_byte};
use tests::fixture::{self, envelope};
use tests::moto::MotoServer;
use tests::process::TaskProcess;
use tests::runtime_api::{LocalRuntimeApi, Outcome};

const BACKUPS: &str = "backups-test";
const SOURCE: &str = "crm-exports";
const BUDGET: Duration = Duration::from_secs(120);
const MIB: u64 = 1024 * 1024;

async fn moto_with_buckets() -> MotoServer {
    let moto = MotoServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    moto.create_bucket(BACKUPS).await;
    moto.create_bucket(SOURCE).await;
    moto
}

async fn start(
    moto: &MotoServer,
    extra: &[(&'static str, &str)],
) -> (LocalRuntimeApi, TaskProcess) {
    let env = moto.task_env();
    let mut all: Vec<(&'static str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend([
        ("BACKUP_BUCKET", BACKUPS),
        ("BACKUP_SOURCE_BUCKETS", SOURCE),
        ("BACKUP_STOP_BEFORE_MS", "1000"),
    ]);
    all.extend_from_slice(extra);
    fixture::start(&task_binary("backup"), &all).await
}

async fn put_objects(moto: &MotoServer, keys: Vec<String>) {
    let s3 = moto.s3();
    futures_util::stream::iter(keys)
        .for_each_concurrent(32, |key| {
            let s3 = s3.clone();
            async move {
                let body = format!("content of {key}");
                s3.put_object()
                    .bucket(SOURCE)
                    .key(&key)
                    .body(ByteStream::from(body.into_bytes()))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e:?}"));
            }
        })
        .await;
}

/// A run's manifest, parsed.
async fn manifest(moto: &MotoServer, run_key: &str) -> Value {
    let bytes = moto
        .read_object(BACKUPS, &format!("{run_key}manifest.json"))
        .await;
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"))
}

fn s3_request(continuation: Option<&Value>) -> Value {
    let mut input = json!({
        "name": "crm-nightly",
        "run_date": "2026-11-24",
        "source": {"type": "s3", "bucket": SOURCE, "prefix": "daily/"},
        "storage_class": "STANDARD_IA",
    });
    if let Some(c) = continuation {
        input["continuation"] = c.clone();
    }
    input
}

#[tokio::test]
async fn a_prefix_over_1000_objects_continues_across_invocations_and_a_rerun_copies_nothing() {
    let moto = moto_with_buckets().await;
    let mut keys: Vec<String> = (0..1050)
        .map(|i| format!("daily/part-{i:05}.json"))
        .collect();
    keys.push("other/not-included.json".to_owned());
    put_objects(&moto, keys).await;

    // A short deadline: every invocation has about 2.3 s of work and 1.3 s
    // for the copies in flight when it stops (less was too little for moto
    // on a loaded machine: no progress, or the deadline guard firing).
    let (api, _process) = start(
        &moto,
        &[
            ("TASK_DEADLINE_MARGIN_MS", "200"),
            ("BACKUP_STOP_BEFORE_MS", "1500"),
        ],
    )
    .await;
    let mut continuation: Option<Value> = None;
    // Invocations that made progress: the manifest counts those.
    let mut invocations = 0;
    let mut retries = 0;
    let output = loop {
        assert!(invocations + retries < 200, "the run never finished");
        let done = api
            .invoke(
                envelope("backup-1", 0, s3_request(continuation.as_ref())),
                Duration::from_millis(4000),
            )
            .await;
        // What the state machine's Retry does with a slow moment (no
        // progress, or the deadline guard): the same continuation again.
        if let Outcome::Error(e) = &done.outcome
            && (e["errorType"] == "Task.Retryable" || e["errorType"] == "Task.Timeout")
        {
            retries += 1;
            assert!(retries < 5, "no progress, again and again: {e}");
            continue;
        }
        let out = done.response().clone();
        invocations += 1;
        if out["done"] == true {
            break out;
        }
        assert!(out["continuation"].is_object(), "{out}");
        continuation = Some(out["continuation"].clone());
    };
    eprintln!("{invocations} invocations");
    assert!(
        invocations >= 2,
        "the short deadline must force a continuation"
    );
    assert_eq!(output["object_count"], 1050);
    // A retried invocation may have copied some objects already: its retry
    // finds them in place.
    let copied = output["copied"].as_u64().unwrap_or_default();
    let skipped = output["skipped"].as_u64().unwrap_or_default();
    assert_eq!(copied + skipped, 1050, "{output}");
    if retries == 0 {
        assert_eq!(copied, 1050);
    }
    assert_eq!(output["run_key"], "backups/crm-nightly/2026-11-24/");
    let manifest_key = output["manifest_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(manifest_key, "backups/crm-nightly/2026-11-24/manifest.json");

    let manifest = manifest(&moto, "backups/crm-nightly/2026-11-24/").await;
    assert_eq!(manifest["totals"]["objects"], 1050);
    assert_eq!(manifest["objects"].as_array().map(Vec::len), Some(1050));
    // The way back from a backup key to the source key.
    let entry = manifest["objects"]
        .as_array()
        .and_then(|objects| {
            objects
                .iter()
                .find(|o| o["key"] == "backups/crm-nightly/2026-11-24/data/part-00042.json")
        })
        .unwrap_or_else(|| panic!("part-00042 is not in the manifest"));
    assert_eq!(entry["source_key"], "daily/part-00042.json");
    assert_eq!(manifest["invocations"], invocations);
    assert_eq!(manifest["correlation_id"], "backup-1");
    let bytes: u64 = (0..1050)
        .map(|i| format!("content of daily/part-{i:05}.json").len() as u64)
        .sum();
    assert_eq!(manifest["totals"]["bytes"], bytes);
    assert_eq!(output["bytes"], bytes);
    let copy = moto
        .read_object(
            BACKUPS,
            "backups/crm-nightly/2026-11-24/data/part-00042.json",
        )
        .await;
    assert_eq!(copy, b"content of daily/part-00042.json");
    let head = moto
        .s3()
        .head_object()
        .bucket(BACKUPS)
        .key("backups/crm-nightly/2026-11-24/data/part-00042.json")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        head.storage_class().map(|s| s.as_str()),
        Some("STANDARD_IA")
    );

    // A rerun (new execution, same run) copies nothing new.
    let rerun = api
        .invoke(envelope("backup-1", 0, s3_request(None)), BUDGET)
        .await;
    let out = rerun.response();
    assert_eq!(out["done"], true);
    assert_eq!(out["copied"], 0);
    assert_eq!(out["skipped"], 1050);
    assert_eq!(moto.open_uploads(BACKUPS).await, 0);
}

#[tokio::test]
async fn large_objects_take_the_multipart_copy_path() {
    let moto = moto_with_buckets().await;
    let big: Vec<u8> = (0..12 * MIB).map(pattern_byte).collect();
    moto.s3()
        .put_object()
        .bucket(SOURCE)
        .key("daily/big.bin")
        .content_type("application/x-custom")
        .metadata("owner", "crm")
        .body(ByteStream::from(big.clone()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    // A source object named like the manifest must not collide with it.
    put_objects(
        &moto,
        vec![
            "daily/small.json".to_owned(),
            "daily/manifest.json".to_owned(),
        ],
    )
    .await;
    let (api, _process) = start(
        &moto,
        &[
            ("BACKUP_MULTIPART_COPY_THRESHOLD", "6291456"),
            ("BACKUP_COPY_PART_SIZE", "5242880"),
        ],
    )
    .await;
    let done = api
        .invoke(envelope("mp-1", 0, s3_request(None)), BUDGET)
        .await;
    assert_eq!(done.response()["done"], true);
    assert_eq!(done.response()["object_count"], 3);
    let copied_manifest = moto
        .read_object(BACKUPS, "backups/crm-nightly/2026-11-24/data/manifest.json")
        .await;
    assert_eq!(copied_manifest, b"content of daily/manifest.json");
    let manifest = manifest(&moto, "backups/crm-nightly/2026-11-24/").await;
    assert_eq!(manifest["totals"]["objects"], 3);

    let key = "backups/crm-nightly/2026-11-24/data/big.bin";
    let copy = moto.read_object(BACKUPS, key).await;
    assert!(copy == big, "the multipart copy has the same bytes");
    let head = moto
        .s3()
        .head_object()
        .bucket(BACKUPS)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(
        head.e_tag().is_some_and(|e| e.contains("-3")),
        "3 parts: {:?}",
        head.e_tag()
    );
    let metadata = head.metadata().cloned().unwrap_or_default();
    assert_eq!(metadata.get("owner").map(String::as_str), Some("crm"));
    assert!(metadata.contains_key("source-etag"));
    assert_eq!(head.content_type(), Some("application/x-custom"));
    assert_eq!(moto.open_uploads(BACKUPS).await, 0);

    // A rerun recognises the multipart copy by its recorded source ETag.
    let rerun = api
        .invoke(envelope("mp-1", 0, s3_request(None)), BUDGET)
        .await;
    assert_eq!(rerun.response()["copied"], 0);
}

fn http_request(url: &str) -> Value {
    json!({
        "name": "billing-export",
        "run_date": "2026-11-24",
        "source": {"type": "http", "url": url, "file_name": "billing.ndjson"},
    })
}

async fn export_run(moto: &MotoServer, server: &ExportServer, bytes: u64) -> (Value, u64) {
    let hosts = server.host_port();
    let (api, process) = start(
        moto,
        &[
            ("BACKUP_EXPORT_HOSTS", &hosts),
            ("BACKUP_ALLOWED_ADDRESSES", "127.0.0.1"),
            ("BACKUP_UPLOAD_PART_SIZE", "5242880"),
        ],
    )
    .await;
    let url = server.url(&format!("/export/{bytes}"));
    let done = api
        .invoke(envelope("export-1", 0, http_request(&url)), BUDGET)
        .await;
    let peak = process
        .peak_rss()
        .unwrap_or_else(|| panic!("no /proc status"));
    (done.response().clone(), peak)
}

#[tokio::test]
async fn an_http_export_streams_with_memory_independent_of_its_size() {
    let moto = moto_with_buckets().await;
    let server = ExportServer::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let small_size = 32 * MIB;
    let large_size = 256 * MIB;
    let (small, small_peak) = export_run(&moto, &server, small_size).await;
    let (large, large_peak) = export_run(&moto, &server, large_size).await;

    assert_eq!(small["bytes"], small_size);
    assert_eq!(large["bytes"], large_size);
    let mut hash = Sha256::new();
    let mut offset = 0u64;
    while offset < large_size {
        let end = (offset + MIB).min(large_size);
        let chunk: Vec<u8> = (offset..end).map(pattern_byte).collect();
        hash.update(&chunk);
        offset = end;
    }
    let manifest = manifest(&moto, "backups/billing-export/2026-11-24/").await;
    assert_eq!(
        manifest["objects"][0]["sha256"],
        hex::encode(hash.finalize())
    );
    assert_eq!(manifest["objects"][0]["size"], large_size);
    assert_eq!(manifest["totals"]["bytes"], large_size);

    // Eight times the data must not mean more memory: one 5 MiB part is
    // buffered at a time. Allow for allocator noise, not for buffering.
    eprintln!(
        "peak RSS: {} MiB for 32 MiB, {} MiB for 256 MiB",
        small_peak / MIB,
        large_peak / MIB
    );
    assert!(
        large_peak < small_peak + 24 * MIB,
        "peak RSS grew with the export: {} MiB → {} MiB",
        small_peak / MIB,
        large_peak / MIB
    );
    assert!(large_peak < 96 * MIB, "peak RSS {} MiB", large_peak / MIB);
    assert_eq!(moto.open_uploads(BACKUPS).await, 0);
}

#[tokio::test]
async fn an_export_failing_mid_stream_is_retryable_and_leaves_no_upload() {
    let moto = moto_with_buckets().await;
    let server = ExportServer::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let hosts = server.host_port();
    let (api, _process) = start(
        &moto,
        &[
            ("BACKUP_EXPORT_HOSTS", &hosts),
            ("BACKUP_ALLOWED_ADDRESSES", "127.0.0.1"),
            ("BACKUP_UPLOAD_PART_SIZE", "5242880"),
        ],
    )
    .await;
    let url = server.url(&format!("/broken/{}", 12 * MIB));
    let done = api
        .invoke(envelope("broken-1", 0, http_request(&url)), BUDGET)
        .await;
    assert_eq!(
        done.error()["errorType"],
        "Task.Retryable",
        "{:?}",
        done.error()
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
}

#[tokio::test]
async fn allowlists_and_address_checks() {
    let moto = moto_with_buckets().await;
    let server = ExportServer::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let hosts = format!(
        "{},localhost:{}",
        server.host_port(),
        server.host_port().rsplit(':').next().unwrap_or("0")
    );
    // 127.0.0.1 is listed as a host but NOT allowed as an address.
    let (api, _process) = start(&moto, &[("BACKUP_EXPORT_HOSTS", &hosts)]).await;

    let not_allowed_bucket =
        json!({"name": "x", "source": {"type": "s3", "bucket": "someone-elses", "prefix": ""}});
    let cases = [
        (
            not_allowed_bucket,
            "Task.InvalidInput",
            "BACKUP_SOURCE_BUCKETS",
        ),
        (
            http_request("http://example.org/export"),
            "Task.InvalidInput",
            "BACKUP_EXPORT_HOSTS",
        ),
        (
            http_request(&server.url("/export/10")),
            "Task.InvalidInput",
            "non-public",
        ),
        (
            http_request(&server.url("/export/10").replace("127.0.0.1", "localhost")),
            "Task.InvalidInput",
            "non-public",
        ),
        (
            http_request("http://169.254.169.254/latest/meta-data/"),
            "Task.InvalidInput",
            "BACKUP_EXPORT_HOSTS",
        ),
        (
            json!({"name": "Bad Name", "source": {"type": "s3", "bucket": SOURCE}}),
            "Task.InvalidInput",
            "name",
        ),
        (
            json!({"name": "x", "source": {"type": "ftp"}}),
            "Task.InvalidInput",
            "source",
        ),
    ];
    for (input, error_type, needle) in cases {
        let done = api
            .invoke(envelope("guard-1", 0, input.clone()), BUDGET)
            .await;
        assert_eq!(done.error()["errorType"], error_type, "{input}");
        let message = done.error()["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{input}: {message}");
    }

    // With 127.0.0.1 allowed, a redirect (to the metadata address) is not followed.
    let (api, _process) = start(
        &moto,
        &[
            ("BACKUP_EXPORT_HOSTS", &server.host_port()),
            ("BACKUP_ALLOWED_ADDRESSES", "127.0.0.1"),
        ],
    )
    .await;
    let done = api
        .invoke(
            envelope("guard-2", 0, http_request(&server.url("/redirect"))),
            BUDGET,
        )
        .await;
    assert_eq!(done.error()["errorType"], "Task.Failed");
    assert!(
        done.error()["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("redirect")
    );
    assert!(
        moto.object_keys(BACKUPS).await.is_empty(),
        "nothing written"
    );
    assert_eq!(moto.open_uploads(BACKUPS).await, 0);
}
