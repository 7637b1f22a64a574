//! Batched backups (`statemachines/backup_batched.asl.json`): a Distributed
//! Map lists the prefix and runs batches in child executions, each calling
//! the backup task with its `items`, and one last call with `finish` writes
//! the run's manifest. The workflow runs on the local stack against the
//! real binary; the task's own checks of `items` and `finish` run against a
//! fake Runtime API.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tests::backup_run::{
    BACKUPS, SOURCE, copies_seen, manifest_entries, manifest_index, moto_with_buckets, put_objects,
    s3_request, start_task,
};
use tests::fixture::envelope;
use tests::local_stack::Builder;

const BUDGET: Duration = Duration::from_secs(60);
const RUN: &str = "2026-12-01T00:00:00Z";
const RUN_KEY: &str = "backups/crm-nightly/20261201T000000Z/";

/// A batch as the Distributed Map's S3 ItemReader and ItemBatcher give it.
fn item(key: &str) -> Value {
    json!({"Key": key, "Etag": "\"0\"", "Size": 1, "LastModified": 1_796_000_000, "StorageClass": "STANDARD"})
}

fn batch_request(keys: &[&str]) -> Value {
    let mut request = s3_request(RUN);
    request["items"] = keys.iter().map(|k| item(k)).collect();
    request
}

fn finish_request(parts: &Value) -> Value {
    let mut request = s3_request(RUN);
    request["finish"] = json!({"parts": parts, "started_at": RUN, "invocations": 2});
    request
}

#[tokio::test]
async fn batches_copy_their_items_and_finish_counts_what_the_parts_hold() {
    let moto = moto_with_buckets().await;
    let keys: Vec<String> = (0..6).map(|i| format!("daily/{i}.json")).collect();
    put_objects(&moto, keys.clone()).await;
    let (api, _process) = start_task(&moto, None, &[("BACKUP_LIST_PAGE_SIZE", "2")]).await;
    let invoke = |input: Value| api.invoke(envelope("batched-1", 0, input), BUDGET);

    // Two batches; the second names a key that is not in the source (it
    // was deleted after the listing).
    let first = invoke(batch_request(&[
        "daily/2.json",
        "daily/0.json",
        "daily/1.json",
    ]))
    .await;
    let first = first.response().clone();
    assert_eq!(first["done"], true);
    assert_eq!(first["copied"], 3);
    assert!(
        first.get("manifest_key").is_none(),
        "a batch writes no index"
    );
    let first_parts = first["manifest_parts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(first_parts.len(), 2, "pages of 2: {first}");
    let second = invoke(batch_request(&["daily/3.json", "daily/gone.json"])).await;
    let second = second.response().clone();
    assert_eq!(second["copied"], 1);
    assert_eq!(second["vanished"], 1);
    let parts: Vec<Value> = first_parts
        .iter()
        .chain(second["manifest_parts"].as_array().into_iter().flatten())
        .cloned()
        .collect();
    assert!(
        parts.iter().all(|p| p
            .as_str()
            .is_some_and(|p| p.starts_with(&format!("{RUN_KEY}manifest/batch-")))),
        "{parts:?}"
    );

    // A batch run again (a retried child) finds its copies and copies
    // nothing: its claim on the batch tells it to look first.
    let again = invoke(batch_request(&["daily/3.json", "daily/gone.json"])).await;
    assert_eq!(again.response()["already_copied"], 1);
    assert_eq!(again.response()["copied"], 0);
    assert_eq!(again.response()["manifest_parts"], second["manifest_parts"]);

    let done = invoke(finish_request(&json!(parts))).await;
    let done = done.response().clone();
    assert_eq!(done["done"], true);
    assert_eq!(done["object_count"], 4);
    assert_eq!(done["vanished"], 1);
    let index = manifest_index(&moto, RUN_KEY).await;
    assert_eq!(index["totals"]["objects"], 4, "counted from the parts");
    assert_eq!(index["invocations"], 3);
    let entries = manifest_entries(&moto, &index).await;
    let mut sources: Vec<&str> = entries
        .iter()
        // The batch run again rewrote its part: 3.json is already_copied.
        .filter(|e| e["outcome"] != "vanished")
        .filter_map(|e| e["source_key"].as_str())
        .collect();
    sources.sort_unstable();
    assert_eq!(
        sources,
        [
            "daily/0.json",
            "daily/1.json",
            "daily/2.json",
            "daily/3.json"
        ]
    );
    assert!(!keys.is_empty());

    // What a careless or hostile caller sends is refused, and nothing is
    // written: items outside the prefix or twice, no items, a finish naming
    // another run's parts, a part that does not exist, both at once.
    let mut too_many = s3_request(RUN);
    too_many["items"] = (0..10_001).map(|i| item(&format!("daily/{i}"))).collect();
    let mut both = batch_request(&["daily/0.json"]);
    both["finish"] = json!({"parts": parts, "started_at": RUN, "invocations": 1});
    let mut http = finish_request(&json!(parts));
    http["source"] = json!({"type": "http", "url": "https://exports.example.com/x"});
    for (why, input, says) in [
        (
            "outside the prefix",
            batch_request(&["other/secret.json"]),
            "items",
        ),
        (
            "twice",
            batch_request(&["daily/0.json", "daily/0.json"]),
            "items",
        ),
        ("empty", batch_request(&[]), "items"),
        ("too many", too_many, "items"),
        ("both", both, "items"),
        ("an http source", http, "items"),
        (
            "another run's parts",
            finish_request(&json!([
                "backups/crm-nightly/20261124T000000Z/manifest/batch-0/part-000001.jsonl"
            ])),
            "finish.parts",
        ),
        (
            "a traversal",
            finish_request(&json!([format!(
                "{RUN_KEY}manifest/batch-x/../../data/0.json.jsonl"
            )])),
            "finish.parts",
        ),
        (
            "a part that does not exist",
            finish_request(&json!([format!(
                "{RUN_KEY}manifest/batch-0000000000000000/part-000009.jsonl"
            )])),
            "finish.parts",
        ),
    ] {
        let answer = invoke(input).await;
        let error = answer.error();
        assert_eq!(error["errorType"], "Task.InvalidInput", "{why}: {error}");
        assert!(
            error["errorMessage"]
                .as_str()
                .is_some_and(|m| m.starts_with(says)),
            "{why}: {error}"
        );
    }
    let index_after = manifest_index(&moto, RUN_KEY).await;
    assert_eq!(
        index_after["finished_at"], index["finished_at"],
        "the index stays"
    );
    assert!(
        !moto
            .read_object(BACKUPS, &format!("{RUN_KEY}data/0.json"))
            .await
            .is_empty()
    );
    assert_eq!(moto.open_uploads(BACKUPS).await, 0);
}

#[tokio::test]
async fn the_batched_workflow_copies_each_object_once_across_child_executions() {
    const OBJECTS: usize = 2_300;
    const HUGE: usize = 12 << 20;
    let stack = Builder::project()
        .parameter("BackupSourceBuckets", SOURCE)
        // A short budget per invocation (5 s to start copies, 2.5 s more
        // to finish them) and an object whose multipart copy needs more
        // than one (three 5 MiB parts, one at a time, each slowed to 2 s):
        // its batch's child loops with its continuation.
        .function_timeout("BackupFunction", Duration::from_secs(10))
        .function_env("BackupFunction", "BACKUP_STOP_BEFORE_MS", "5000")
        .function_env(
            "BackupFunction",
            "BACKUP_MULTIPART_COPY_THRESHOLD",
            "6291456",
        )
        .function_env("BackupFunction", "BACKUP_COPY_PART_SIZE", "5242880")
        .function_env("BackupFunction", "BACKUP_PART_CONCURRENCY", "1")
        .with_fault_proxy()
        .start()
        .await;
    let proxy = stack
        .stack
        .faults
        .as_ref()
        .unwrap_or_else(|| panic!("no fault proxy"));
    proxy.inject(devstack::faults::Rule::always(
        "partNumber=",
        devstack::faults::Fault::Stall(Duration::from_millis(2000)),
    ));
    let small = (0..OBJECTS).map(|i| {
        (
            format!("daily/{i:05}.json"),
            format!("{{\"n\": {i}}}").into_bytes(),
        )
    });
    let huge = ("daily/01500-huge.bin".to_owned(), vec![7u8; HUGE]);
    stack
        .fill_bucket(SOURCE, small.chain(std::iter::once(huge)))
        .await;

    let input = json!({
        "correlation_id": "batched-crm",
        "backup": {"name": "crm", "run_id": RUN,
                   "source": {"type": "s3", "bucket": SOURCE, "prefix": "daily/"}},
    });
    let run = stack
        .run("BackupBatchedStateMachine", "batched-1", &input)
        .await;
    let output = run.output().unwrap_or_else(|e| panic!("{e:#}"));
    let total = OBJECTS + 1;
    assert_eq!(output["run"]["object_count"], total, "{output}");
    // A copy cut off at an invocation's deadline is found done by the next
    // (already_copied), never copied twice.
    assert_eq!(
        output["run"]["copied"].as_u64().unwrap_or(0)
            + output["run"]["already_copied"].as_u64().unwrap_or(0),
        total as u64,
        "{output}"
    );

    let bucket = stack
        .stack
        .bucket_name("BackupBucket")
        .unwrap_or_else(|e| panic!("{e}"));
    let run_key = "backups/crm/20261201T000000Z/";
    // Every object copied exactly once (each part of the huge one once),
    // by whichever child had it.
    let copies = copies_seen(proxy, &bucket, run_key);
    let twice: BTreeMap<&String, &u32> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "copied more than once: {twice:?}");
    let objects: std::collections::BTreeSet<&str> = copies
        .keys()
        .map(|k| k.split('#').next().unwrap_or_default())
        .collect();
    assert_eq!(objects.len(), total);
    assert_eq!(
        copies
            .keys()
            .filter(|k| k.starts_with("01500-huge.bin#"))
            .count(),
        3
    );

    // One manifest for the run: three batches' parts, each object once.
    let s3 = stack.s3();
    let index: Value = serde_json::from_slice(
        &s3.get_object()
            .bucket(&bucket)
            .key(format!("{run_key}manifest.json"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("manifest: {e}"))
            .body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(index["totals"]["objects"], total);
    assert_eq!(index["correlation_id"], "batched-crm");
    let batches: std::collections::BTreeSet<&str> = index["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str()?.split('/').nth(4))
        .collect();
    assert_eq!(batches.len(), 3, "{index}");
    assert!(
        index["invocations"].as_u64().is_some_and(|n| n > 4),
        "the batch with the huge object continued: {index}"
    );
    let open = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(open.uploads().is_empty(), "{:?}", open.uploads());
    let succeeded: Vec<Value> = stack
        .notifications()
        .await
        .into_iter()
        .map(|m| m.body)
        .filter(|b| b["kind"] == "backup_succeeded")
        .collect();
    assert_eq!(succeeded.len(), 1);
    assert_eq!(succeeded[0]["details"]["objects"], total);

    // An empty prefix is a run of no objects, as with the loop.
    let empty = json!({"backup": {"name": "crm", "source": {"type": "s3", "bucket": SOURCE, "prefix": "nothing/"}}});
    let run = stack
        .run("BackupBatchedStateMachine", "batched-empty", &empty)
        .await;
    let output = run.output().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(output["run"]["object_count"], 0, "{output}");
    assert!(output["run"]["manifest_key"].is_string(), "{output}");
    stack.finish().await;
}
