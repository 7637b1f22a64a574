//! The `backup` binary's S3 runs end to end: a fake Lambda Runtime API
//! drives it, the moto server stands in for S3, and a fault proxy in front
//! of moto counts (and slows) the task's requests.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use devstack::faults::{Fault, FaultProxy, Rule};
use serde_json::Value;
use tests::backup_run::{
    BACKUPS, SOURCE, manifest_entries, manifest_index, moto_with_buckets, put_objects,
    run_to_completion, s3_request, start_task,
};
use tests::export_server::pattern_byte;
use tests::fixture::envelope;
use tests::moto::MotoServer;

const BUDGET: Duration = Duration::from_secs(120);
const MIB: u64 = 1024 * 1024;
const RUN: &str = "2026-11-24T00:00:00Z";
const RUN_KEY: &str = "backups/crm-nightly/20261124T000000Z/";

/// Copy requests into this run's data keys that the proxy saw, by key.
fn copies_seen(proxy: &FaultProxy) -> BTreeMap<String, u32> {
    tests::backup_run::copies_seen(proxy, BACKUPS, RUN_KEY)
}

#[tokio::test]
async fn a_prefix_listed_in_small_pages_is_copied_once_across_invocations() {
    let moto = moto_with_buckets().await;
    let mut keys: Vec<String> = (0..1050)
        .map(|i| format!("daily/part-{i:05}.json"))
        .collect();
    keys.push("other/not-included.json".to_owned());
    put_objects(&moto, keys).await;
    let proxy = FaultProxy::start(&moto.endpoint())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Pages of 100 and a 4 s deadline: many invocations, each listing only
    // from where the last stopped.
    let (api, _process) = start_task(
        &moto,
        Some(&proxy.url),
        &[
            ("TASK_DEADLINE_MARGIN_MS", "200"),
            ("BACKUP_STOP_BEFORE_MS", "1500"),
            ("BACKUP_LIST_PAGE_SIZE", "100"),
        ],
    )
    .await;
    let run = run_to_completion(&api, &s3_request(RUN), Duration::from_millis(4000)).await;
    eprintln!("{} invocations, {} retries", run.invocations, run.retries);
    assert!(
        run.invocations >= 2,
        "the short deadline must force a continuation"
    );
    let output = &run.output;
    assert_eq!(output["object_count"], 1050);
    assert_eq!(output["run_key"], RUN_KEY);
    assert_eq!(output["run_id"], "20261124T000000Z");
    assert_eq!(output["manifest_key"], format!("{RUN_KEY}manifest.json"));

    // Every object copied exactly once, whatever the invocations did.
    let copies = copies_seen(&proxy);
    assert_eq!(copies.len(), 1050);
    let twice: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty() || run.retries > 0,
        "copied twice: {twice:?}"
    );
    // No listing started from the beginning again: 11 pages of 100, each
    // listed by at most the invocation that stopped in it and the next.
    let listings = proxy
        .seen()
        .iter()
        .filter(|s| {
            s.request.starts_with(&format!("GET /{SOURCE}?")) && s.request.contains("list-type=2")
        })
        .count();
    assert!(
        listings <= 11 + run.invocations as usize + run.retries as usize,
        "{listings} listings"
    );

    let index = manifest_index(&moto, RUN_KEY).await;
    assert_eq!(index["schema_version"], 2);
    assert_eq!(index["totals"]["objects"], 1050);
    assert_eq!(
        index["invocations"], run.invocations,
        "answered invocations"
    );
    assert_eq!(index["correlation_id"], "backup-1");
    let entries = manifest_entries(&moto, &index).await;
    let mut sources: Vec<&str> = entries
        .iter()
        .map(|e| e["source_key"].as_str().unwrap_or_default())
        .collect();
    sources.sort_unstable();
    sources.dedup();
    assert_eq!(sources.len(), 1050, "each object once in the manifest");
    assert_eq!(entries.len(), 1050);
    // The way back from a backup key to the source key.
    let entry = entries
        .iter()
        .find(|e| e["key"] == format!("{RUN_KEY}data/part-00042.json"))
        .unwrap_or_else(|| panic!("part-00042 is not in the manifest"));
    assert_eq!(entry["source_key"], "daily/part-00042.json");
    assert_eq!(entry["outcome"], "copied");
    let bytes: u64 = (0..1050)
        .map(|i| format!("content of daily/part-{i:05}.json").len() as u64)
        .sum();
    assert_eq!(index["totals"]["bytes"], bytes);
    assert_eq!(output["bytes"], bytes);
    let head = moto
        .s3()
        .head_object()
        .bucket(BACKUPS)
        .key(format!("{RUN_KEY}data/part-00042.json"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        head.storage_class().map(|s| s.as_str()),
        Some("STANDARD_IA")
    );
    let metadata = head.metadata().cloned().unwrap_or_default();
    assert_eq!(
        metadata.get("correlation-id").map(String::as_str),
        Some("backup-1")
    );
    assert!(metadata.contains_key("source-etag"));

    // A rerun of the same run copies nothing.
    let before = copies_seen(&proxy);
    let rerun = api
        .invoke(envelope("backup-1", 0, s3_request(RUN)), BUDGET)
        .await;
    let out = rerun.response();
    assert_eq!(out["done"], true);
    assert_eq!(out["copied"], 0);
    assert_eq!(out["already_copied"], 1050);
    assert_eq!(copies_seen(&proxy), before, "no copy requests");

    // The next run (the schedule's next slot) is a run of its own.
    let next = api
        .invoke(
            envelope("backup-2", 0, s3_request("2026-11-24T12:00:00Z")),
            BUDGET,
        )
        .await;
    assert_eq!(next.response()["done"], true);
    assert_eq!(next.response()["copied"], 1050);
    assert_eq!(
        next.response()["run_key"],
        "backups/crm-nightly/20261124T120000Z/"
    );
    let first = manifest_index(&moto, RUN_KEY).await;
    assert_eq!(
        first["correlation_id"], "backup-1",
        "the first run's manifest stays"
    );
    assert_eq!(moto.open_uploads(BACKUPS).await, 0);
}

async fn put(moto: &MotoServer, key: &str, body: Vec<u8>) {
    moto.s3()
        .put_object()
        .bucket(SOURCE)
        .key(key)
        .content_type("application/x-custom")
        .metadata("owner", "crm")
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
}

#[tokio::test]
async fn a_rerun_recopies_exactly_what_changed_in_the_source() {
    let moto = moto_with_buckets().await;
    put_objects(&moto, (0..5).map(|i| format!("daily/{i}.json")).collect()).await;
    // Multipart-sized, so its copy's ETag is not the source's.
    let big: Vec<u8> = (0..12 * MIB).map(pattern_byte).collect();
    put(&moto, "daily/big.bin", big.clone()).await;
    let (api, _process) = start_task(
        &moto,
        None,
        &[
            ("BACKUP_MULTIPART_COPY_THRESHOLD", "6291456"),
            ("BACKUP_COPY_PART_SIZE", "5242880"),
        ],
    )
    .await;
    let first = api
        .invoke(envelope("change-1", 0, s3_request(RUN)), BUDGET)
        .await;
    assert_eq!(first.response()["copied"], 6, "{:?}", first.response());

    // Same sizes, other bytes: only the source ETag can tell.
    put_objects(&moto, vec!["daily/3.json".to_owned()]).await; // same content
    moto.s3()
        .put_object()
        .bucket(SOURCE)
        .key("daily/1.json")
        .body(ByteStream::from(b"CONTENT OF daily/1.json".to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let mut changed_big = big.clone();
    changed_big[7] ^= 0xff;
    put(&moto, "daily/big.bin", changed_big.clone()).await;

    let rerun = api
        .invoke(envelope("change-2", 0, s3_request(RUN)), BUDGET)
        .await;
    let out = rerun.response();
    assert_eq!(out["copied"], 2, "{out}");
    assert_eq!(out["already_copied"], 4, "{out}");
    assert_eq!(
        moto.read_object(BACKUPS, &format!("{RUN_KEY}data/1.json"))
            .await,
        b"CONTENT OF daily/1.json"
    );
    let big_copy = moto
        .read_object(BACKUPS, &format!("{RUN_KEY}data/big.bin"))
        .await;
    assert!(
        big_copy == changed_big,
        "the big copy holds the new version"
    );
    let index = manifest_index(&moto, RUN_KEY).await;
    let entries = manifest_entries(&moto, &index).await;
    let outcome = |key: &str| {
        entries
            .iter()
            .find(|e| e["source_key"] == key)
            .map(|e| e["outcome"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(outcome("daily/1.json"), "copied");
    assert_eq!(outcome("daily/big.bin"), "copied");
    assert_eq!(outcome("daily/3.json"), "already_copied");
    assert_eq!(moto.open_uploads(BACKUPS).await, 0);
}

#[tokio::test]
async fn large_objects_take_the_multipart_copy_path() {
    let moto = moto_with_buckets().await;
    let big: Vec<u8> = (0..12 * MIB).map(pattern_byte).collect();
    put(&moto, "daily/big.bin", big.clone()).await;
    // A source object named like the manifest must not collide with it.
    put_objects(
        &moto,
        vec![
            "daily/small.json".to_owned(),
            "daily/manifest.json".to_owned(),
        ],
    )
    .await;
    let (api, _process) = start_task(
        &moto,
        None,
        &[
            ("BACKUP_MULTIPART_COPY_THRESHOLD", "6291456"),
            ("BACKUP_COPY_PART_SIZE", "5242880"),
        ],
    )
    .await;
    let done = api
        .invoke(envelope("mp-1", 0, s3_request(RUN)), BUDGET)
        .await;
    assert_eq!(done.response()["done"], true);
    assert_eq!(done.response()["object_count"], 3);
    let copied_manifest = moto
        .read_object(BACKUPS, &format!("{RUN_KEY}data/manifest.json"))
        .await;
    assert_eq!(copied_manifest, b"content of daily/manifest.json");
    let index = manifest_index(&moto, RUN_KEY).await;
    assert_eq!(index["totals"]["objects"], 3);

    let key = format!("{RUN_KEY}data/big.bin");
    let copy = moto.read_object(BACKUPS, &key).await;
    assert!(copy == big, "the multipart copy has the same bytes");
    let head = moto
        .s3()
        .head_object()
        .bucket(BACKUPS)
        .key(&key)
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

    // A rerun recognises the multipart copy by its recorded source ETag
    // (its own ETag is another).
    let rerun = api
        .invoke(envelope("mp-1", 0, s3_request(RUN)), BUDGET)
        .await;
    assert_eq!(rerun.response()["copied"], 0);
    assert_eq!(rerun.response()["already_copied"], 3);
}

#[tokio::test]
async fn a_multipart_copy_continues_across_invocations_copying_each_part_once() {
    let moto = moto_with_buckets().await;
    let size = 40 * MIB;
    let big: Vec<u8> = (0..size).map(pattern_byte).collect();
    put(&moto, "daily/huge.bin", big.clone()).await;
    put_objects(&moto, vec!["daily/after.json".to_owned()]).await;
    let proxy = FaultProxy::start(&moto.endpoint())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Each part takes half a second: eight parts two at a time outlast a
    // 3 s invocation.
    proxy.inject(Rule::always(
        "partNumber=",
        Fault::Stall(Duration::from_millis(500)),
    ));
    let (api, _process) = start_task(
        &moto,
        Some(&proxy.url),
        &[
            ("TASK_DEADLINE_MARGIN_MS", "200"),
            ("BACKUP_STOP_BEFORE_MS", "1500"),
            ("BACKUP_MULTIPART_COPY_THRESHOLD", "6291456"),
            ("BACKUP_COPY_PART_SIZE", "5242880"),
            ("BACKUP_PART_CONCURRENCY", "2"),
        ],
    )
    .await;
    let run = run_to_completion(&api, &s3_request(RUN), Duration::from_millis(3000)).await;
    eprintln!("{} invocations, {} retries", run.invocations, run.retries);
    assert!(run.invocations >= 2, "the copy must span invocations");
    assert_eq!(run.output["object_count"], 2);
    let copies = copies_seen(&proxy);
    let parts: Vec<_> = copies
        .keys()
        .filter(|k| k.starts_with("huge.bin#"))
        .collect();
    assert_eq!(parts.len(), 8, "{copies:?}");
    if run.retries == 0 {
        assert!(
            copies.values().all(|n| *n == 1),
            "a part copied twice: {copies:?}"
        );
    }
    let copy = moto
        .read_object(BACKUPS, &format!("{RUN_KEY}data/huge.bin"))
        .await;
    assert!(copy == big, "the copy is byte-identical");
    assert_eq!(moto.open_uploads(BACKUPS).await, 0);
}
