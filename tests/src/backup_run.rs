//! Driving the `backup` binary through whole runs: buckets on a moto
//! server, the task against a fake Runtime API, invocations repeated with
//! each continuation as the state machine's loop does, and the manifest
//! read back part by part.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use devstack::faults::FaultProxy;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::fixture::envelope;
use crate::moto::MotoServer;
use crate::process::TaskProcess;
use crate::runtime_api::{LocalRuntimeApi, Outcome};

/// The backup bucket.
pub const BACKUPS: &str = "backups-test";
/// The allowlisted source bucket.
pub const SOURCE: &str = "crm-exports";

/// A moto server with both buckets.
pub async fn moto_with_buckets() -> MotoServer {
    let moto = MotoServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    moto.create_bucket(BACKUPS).await;
    moto.create_bucket(SOURCE).await;
    moto
}

/// The backup task against `moto` (or `s3_endpoint`, e.g. a fault proxy
/// in front of it), with `extra` settings.
pub async fn start_task(
    moto: &MotoServer,
    s3_endpoint: Option<&str>,
    extra: &[(&'static str, &str)],
) -> (LocalRuntimeApi, TaskProcess) {
    let mut all: Vec<(&'static str, &str)> = Vec::new();
    if let Some(endpoint) = s3_endpoint {
        all.push(("AWS_ENDPOINT_URL_S3", endpoint));
    }
    all.extend([
        ("BACKUP_BUCKET", BACKUPS),
        ("BACKUP_SOURCE_BUCKETS", SOURCE),
        ("BACKUP_STOP_BEFORE_MS", "1000"),
    ]);
    all.extend_from_slice(extra);
    moto.start_task("backup", &all).await
}

/// Puts `content of {key}` at each key of the source bucket.
pub async fn put_objects(moto: &MotoServer, keys: Vec<String>) {
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

/// The input of a run of `daily/` under `run_id`.
pub fn s3_request(run_id: &str) -> Value {
    json!({
        "name": "crm-nightly",
        "run_id": run_id,
        "source": {"type": "s3", "bucket": SOURCE, "prefix": "daily/"},
        "storage_class": "STANDARD_IA",
    })
}

/// A finished run.
#[derive(Debug)]
pub struct Run {
    /// The last invocation's output.
    pub output: Value,
    /// Invocations that answered (each continuation's and the last).
    pub invocations: u32,
    /// Invocations that failed with `Task.Retryable` or `Task.Timeout` and
    /// were repeated, as the state machine's `Retry` does.
    pub retries: u32,
}

/// Invokes the task with `input` and each continuation it returns until it
/// is done, each invocation with `budget` before its deadline.
pub async fn run_to_completion(api: &LocalRuntimeApi, input: &Value, budget: Duration) -> Run {
    let mut continuation: Option<Value> = None;
    let (mut invocations, mut retries) = (0, 0);
    loop {
        assert!(invocations + retries < 400, "the run never finished");
        let mut request = input.clone();
        if let Some(c) = &continuation {
            request["continuation"] = c.clone();
        }
        let done = api
            .invoke(envelope("backup-1", retries.min(1), request), budget)
            .await;
        if let Outcome::Error(e) = &done.outcome
            && (e["errorType"] == "Task.Retryable" || e["errorType"] == "Task.Timeout")
        {
            retries += 1;
            eprintln!("retrying after {e}");
            assert!(retries < 10, "no progress, again and again: {e}");
            continue;
        }
        let out = done.response().clone();
        invocations += 1;
        if out["done"] == true {
            return Run {
                output: out,
                invocations,
                retries,
            };
        }
        assert!(out["continuation"].is_object(), "{out}");
        continuation = Some(out["continuation"].clone());
    }
}

/// A run's manifest index.
pub async fn manifest_index(moto: &MotoServer, run_key: &str) -> Value {
    let bytes = moto
        .read_object(BACKUPS, &format!("{run_key}manifest.json"))
        .await;
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"))
}

/// Every entry of every part the index lists, in order.
pub async fn manifest_entries(moto: &MotoServer, index: &Value) -> Vec<Value> {
    let mut entries = Vec::new();
    for part in index["parts"].as_array().into_iter().flatten() {
        let key = part.as_str().unwrap_or_default();
        let text = moto.read_object(BACKUPS, key).await;
        for line in String::from_utf8_lossy(&text).lines() {
            entries.push(serde_json::from_str(line).unwrap_or_else(|e| panic!("{key}: {e}")));
        }
    }
    entries
}

/// Copy requests into `run_key`'s data keys of `bucket` that the proxy saw,
/// by key: `CopyObject`s and `UploadPartCopy`s (the task puts no data of
/// an S3 run itself).
pub fn copies_seen(proxy: &FaultProxy, bucket: &str, run_key: &str) -> BTreeMap<String, u32> {
    let prefix = format!("PUT /{bucket}/{run_key}data/");
    let mut counts = BTreeMap::new();
    for seen in proxy.seen() {
        if let Some(rest) = seen.request.strip_prefix(&prefix) {
            let what = rest.split(' ').next().unwrap_or_default();
            // One entry per object, or per object and part.
            let key = match what.split_once('?') {
                Some((key, query)) => {
                    let part = query
                        .split('&')
                        .find(|p| p.starts_with("partNumber="))
                        .unwrap_or("");
                    format!("{key}#{part}")
                }
                None => what.to_owned(),
            };
            *counts.entry(key).or_insert(0) += 1;
        }
    }
    counts
}
