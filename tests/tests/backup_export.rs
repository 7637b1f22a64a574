//! The `backup` binary's HTTP exports end to end: a local export server
//! (with and without `Range` support, paced to outlast a short deadline),
//! the moto server for S3, the task against a fake Runtime API.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tests::backup_run::{
    BACKUPS, SOURCE, manifest_entries, manifest_index, moto_with_buckets, run_to_completion,
    start_task,
};
use tests::export_server::{ExportServer, pattern_byte, pattern_byte_v2};
use tests::fixture::envelope;
use tests::moto::MotoServer;

const BUDGET: Duration = Duration::from_secs(120);
const MIB: u64 = 1024 * 1024;
const RUN_KEY: &str = "backups/billing-export/20261124T000000Z/";
const DATA_KEY: &str = "backups/billing-export/20261124T000000Z/data/billing.ndjson";

fn http_request(url: &str) -> Value {
    json!({
        "name": "billing-export",
        "run_id": "2026-11-24T00:00:00Z",
        "source": {"type": "http", "url": url, "file_name": "billing.ndjson"},
    })
}

fn sha256_of(size: u64, pattern: fn(u64) -> u8) -> String {
    let mut hash = Sha256::new();
    let mut offset = 0u64;
    while offset < size {
        let end = (offset + MIB).min(size);
        let chunk: Vec<u8> = (offset..end).map(pattern).collect();
        hash.update(&chunk);
        offset = end;
    }
    hex::encode(hash.finalize())
}

/// moto with the backup buckets, an export server, and the backup task
/// allowed to reach it, with `extra` settings.
async fn export_setup(
    extra: &[(&'static str, &str)],
) -> (
    MotoServer,
    ExportServer,
    tests::runtime_api::LocalRuntimeApi,
    tests::process::TaskProcess,
) {
    let moto = moto_with_buckets().await;
    let server = ExportServer::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (api, process) = export_task(&moto, &server, extra).await;
    (moto, server, api, process)
}

async fn export_task(
    moto: &MotoServer,
    server: &ExportServer,
    extra: &[(&'static str, &str)],
) -> (
    tests::runtime_api::LocalRuntimeApi,
    tests::process::TaskProcess,
) {
    let hosts = server.host_port();
    let mut all: Vec<(&'static str, &str)> = vec![
        ("BACKUP_EXPORT_HOSTS", &hosts),
        ("BACKUP_ALLOWED_ADDRESSES", "127.0.0.1"),
        ("BACKUP_UPLOAD_PART_SIZE", "5242880"),
    ];
    all.extend_from_slice(extra);
    start_task(moto, None, &all).await
}

/// The settings that make a paced export outlast one invocation.
const SHORT: &[(&str, &str)] = &[
    ("TASK_DEADLINE_MARGIN_MS", "200"),
    ("BACKUP_STOP_BEFORE_MS", "1500"),
];
const SHORT_BUDGET: Duration = Duration::from_millis(4000);

#[tokio::test]
async fn an_http_export_streams_with_memory_independent_of_its_size() {
    let moto = moto_with_buckets().await;
    let server = ExportServer::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut peaks = Vec::new();
    for size in [32 * MIB, 256 * MIB] {
        let (api, process) = export_task(&moto, &server, &[]).await;
        let url = server.url(&format!("/export/{size}"));
        let mut request = http_request(&url);
        request["name"] = json!(format!("export-{}", size / MIB));
        let done = api.invoke(envelope("export-1", 0, request), BUDGET).await;
        assert_eq!(done.response()["bytes"], size, "{:?}", done.outcome);
        peaks.push(
            process
                .peak_rss()
                .unwrap_or_else(|| panic!("no /proc status")),
        );
        let run_key = format!("backups/export-{}/20261124T000000Z/", size / MIB);
        let index = manifest_index(&moto, &run_key).await;
        let entries = manifest_entries(&moto, &index).await;
        assert_eq!(entries[0]["sha256"], sha256_of(size, pattern_byte));
        assert_eq!(entries[0]["size"], size);
        assert_eq!(index["totals"]["bytes"], size);
        // Declared at CreateMultipartUpload, S3 keeps a checksum of the
        // object (composite CRC32 of the parts) that readers can verify.
        let stored = moto
            .s3()
            .head_object()
            .bucket(BACKUPS)
            .key(entries[0]["key"].as_str().unwrap_or_default())
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(stored.checksum_crc32().is_some(), "{stored:?}");
    }
    // Eight times the data must not mean more memory: a few 5 MiB parts
    // are buffered at a time. Allow for allocator noise, not for buffering.
    let (small, large) = (peaks[0], peaks[1]);
    eprintln!(
        "peak RSS: {} MiB for 32 MiB, {} MiB for 256 MiB",
        small / MIB,
        large / MIB
    );
    assert!(
        large < small + 24 * MIB,
        "peak RSS grew with the export: {small} → {large}"
    );
    assert!(large < 96 * MIB, "peak RSS {} MiB", large / MIB);
    assert_eq!(moto.open_uploads(BACKUPS).await, 0);
}

#[tokio::test]
async fn an_export_longer_than_an_invocation_resumes_with_ranges() {
    let (moto, server, api, _process) = export_setup(SHORT).await;
    let size = 40 * MIB;
    let url = server.url(&format!("/ranged/{size}?mibps=8"));
    let run = run_to_completion(&api, &http_request(&url), SHORT_BUDGET).await;
    eprintln!("{} invocations, {} retries", run.invocations, run.retries);
    assert!(run.invocations >= 2, "the export must span invocations");
    assert_eq!(run.output["bytes"], size);

    let stored = moto.read_object(BACKUPS, DATA_KEY).await;
    let expected: Vec<u8> = (0..size).map(pattern_byte).collect();
    assert!(stored == expected, "byte-identical after resuming");
    let index = manifest_index(&moto, RUN_KEY).await;
    let entries = manifest_entries(&moto, &index).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["sha256"], sha256_of(size, pattern_byte));
    assert_eq!(
        index["invocations"], run.invocations,
        "answered invocations"
    );

    // The first request reads from the start; every later one continues at
    // a part boundary, except that a retried invocation (a timeout under a
    // loaded machine) starts again from the continuation it was given, which
    // is the start if it was the first. No more is read again than one part
    // per stop, plus what a retried invocation had read.
    let requests = server.requests();
    assert_eq!(requests[0].range, None);
    assert_eq!(requests[0].status, 200);
    let mut from_the_start = 0;
    for later in &requests[1..] {
        let Some(range) = later.range.as_deref() else {
            from_the_start += 1;
            assert_eq!(later.status, 200, "{later:?}");
            continue;
        };
        let from: u64 = range
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-')?.parse().ok())
            .unwrap_or_else(|| panic!("{later:?}"));
        assert_eq!(from % (5 * MIB), 0, "{later:?}");
        assert_eq!(later.status, 206, "{later:?}");
    }
    assert!(from_the_start <= run.retries, "{requests:?}");
    let stops = requests.len() as u64;
    // (A stop also leaves what the sockets had buffered unread.)
    let retried = u64::from(run.retries) * 40 * MIB;
    assert!(
        server.bytes_sent() <= size + stops * 6 * MIB + retried,
        "{} bytes sent",
        server.bytes_sent()
    );
    assert_eq!(moto.open_uploads(BACKUPS).await, 0);
}

#[tokio::test]
async fn an_export_that_changes_between_invocations_starts_over() {
    let (moto, server, api, _process) = export_setup(SHORT).await;
    let size = 30 * MIB;
    let url = server.url(&format!("/changes-once/{size}?mibps=8"));
    let run = run_to_completion(&api, &http_request(&url), SHORT_BUDGET).await;
    assert!(run.invocations >= 2);
    // The second request's If-Range failed: the new version came whole.
    let requests = server.requests();
    assert!(requests.len() >= 2);
    assert!(requests[1].range.is_some());
    assert_eq!(requests[1].status, 200, "{requests:?}");
    let stored = moto.read_object(BACKUPS, DATA_KEY).await;
    let expected: Vec<u8> = (0..size).map(pattern_byte_v2).collect();
    assert!(stored == expected, "only the new version, never spliced");
    let entries = manifest_entries(&moto, &manifest_index(&moto, RUN_KEY).await).await;
    assert_eq!(entries[0]["sha256"], sha256_of(size, pattern_byte_v2));
    assert_eq!(moto.open_uploads(BACKUPS).await, 0);
}

#[tokio::test]
async fn an_export_without_range_support_fails_once_and_clearly() {
    let (moto, server, api, _process) = export_setup(SHORT).await;
    let url = server.url(&format!("/export/{}?mibps=8", 40 * MIB));
    let done = api
        .invoke(envelope("norange-1", 0, http_request(&url)), SHORT_BUDGET)
        .await;
    let error = done.error();
    assert_eq!(error["errorType"], "Task.Failed", "{error}");
    let message = error["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("Range") && message.contains("900 s"),
        "{message}"
    );
    assert_eq!(server.requests().len(), 1, "one download, not five");
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
async fn an_export_failing_mid_stream_is_retryable_and_leaves_no_upload() {
    let (moto, server, api, _process) = export_setup(&[]).await;
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

/// A "proxy" that counts connections and answers none.
async fn counting_listener() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "http://{}",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::Relaxed);
            drop(socket);
        }
    });
    (url, count)
}

#[tokio::test]
async fn an_export_never_goes_through_a_proxy_from_the_environment() {
    // A proxy resolves names itself, past the address checks: the export
    // must connect to the vetted address even when the environment names
    // a proxy.
    let moto = moto_with_buckets().await;
    let server = ExportServer::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (proxy, connections) = counting_listener().await;
    // The SDK honours the proxy variables too: S3 is reached by a name
    // NO_PROXY exempts, the export by its address, which it does not.
    let s3 = format!("http://localhost:{}", moto.port());
    let (api, _process) = export_task(
        &moto,
        &server,
        &[
            ("AWS_ENDPOINT_URL", &s3),
            ("NO_PROXY", "localhost"),
            ("no_proxy", "localhost"),
            ("HTTP_PROXY", &proxy),
            ("http_proxy", &proxy),
            ("HTTPS_PROXY", &proxy),
            ("ALL_PROXY", &proxy),
        ],
    )
    .await;
    let url = server.url(&format!("/export/{}", MIB));
    let done = api
        .invoke(envelope("proxy-1", 0, http_request(&url)), BUDGET)
        .await;
    assert_eq!(done.response()["bytes"], MIB, "{:?}", done.outcome);
    assert_eq!(connections.load(Ordering::Relaxed), 0, "the proxy was used");
    assert_eq!(server.requests().len(), 1);
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
    let (api, _process) = start_task(&moto, None, &[("BACKUP_EXPORT_HOSTS", &hosts)]).await;

    let run_id = "2026-11-24T00:00:00Z";
    let cases = [
        (
            json!({"name": "x", "run_id": run_id, "source": {"type": "s3", "bucket": "someone-elses", "prefix": ""}}),
            "BACKUP_SOURCE_BUCKETS",
        ),
        (
            http_request("http://example.org/export"),
            "BACKUP_EXPORT_HOSTS",
        ),
        (http_request(&server.url("/export/10")), "non-public"),
        (
            http_request(&server.url("/export/10").replace("127.0.0.1", "localhost")),
            "non-public",
        ),
        (
            http_request("http://169.254.169.254/latest/meta-data/"),
            "BACKUP_EXPORT_HOSTS",
        ),
        (
            json!({"name": "Bad Name", "run_id": run_id, "source": {"type": "s3", "bucket": SOURCE}}),
            "name",
        ),
        (
            json!({"name": "x", "run_id": run_id, "source": {"type": "ftp"}}),
            "source",
        ),
        (
            json!({"name": "x", "run_id": "../..", "source": {"type": "s3", "bucket": SOURCE}}),
            "run_id",
        ),
    ];
    for (input, needle) in cases {
        let done = api
            .invoke(envelope("guard-1", 0, input.clone()), BUDGET)
            .await;
        assert_eq!(done.error()["errorType"], "Task.InvalidInput", "{input}");
        let message = done.error()["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{input}: {message}");
    }

    // With 127.0.0.1 allowed, a redirect (to the metadata address) is not followed.
    let (api, _process) = export_task(&moto, &server, &[]).await;
    let done = api
        .invoke(
            envelope("guard-2", 0, http_request(&server.url("/redirect"))),
            BUDGET,
        )
        .await;
    assert_eq!(done.error()["errorType"], "Task.Failed");
    let message = done.error()["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("redirect"), "{message}");
    assert!(
        moto.object_keys(BACKUPS).await.is_empty(),
        "nothing written"
    );
    assert_eq!(moto.open_uploads(BACKUPS).await, 0);
}
