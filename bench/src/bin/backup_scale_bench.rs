//! `make bench`'s backup-at-scale measurements on the local stack, written
//! as a Markdown fragment (`backup-scale.md`) for BENCHMARKS.md and the
//! Distributed Map decision in `tasks/backup/README.md`:
//!
//! - the template's backup state machine (the continuation loop) over
//!   prefixes of 1,000 and 10,000 small objects and over one multi-GiB
//!   object, with the backup function's timeout cut to 60 s so that the
//!   15-minute limit bites at bench scale: wall time, objects/s,
//!   invocations, state transitions, the largest `Max Memory Used`;
//! - the template's batched backup (`backup_batched.asl.json`: a
//!   Distributed Map, S3 prefix `ItemReader`, batches of 1,000 objects, each
//!   child calling the backup task with its batch, then `finish`) over the
//!   same prefixes: the same measures, the children's transitions counted
//!   from the task's invocations (the local engine keeps them out of the
//!   parent's history);
//! - a Distributed Map with one child per object copying it with the
//!   `aws-sdk:s3:copyObject` integration (no Lambda), up to
//!   `BENCH_BACKUP_DMAP_MAX` objects (default 10,000: moto runs such
//!   children at about 35 a second); above it only its transitions are
//!   given (one per child plus the map's own).
//!
//! Usage: `backup-scale-bench <out-dir> <release-bin-dir>` from the
//! repository root, with `MOTO_SERVER` set. `BENCH_BACKUP_COUNTS` (default
//! `1000,10000,100000`; the 100,000-object loop takes about 12 minutes
//! here, see BENCHMARKS.md 5c) and
//! `BENCH_BACKUP_HUGE_GIB` (default 2, 0 skips it) size the runs.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use devstack::stack::{Options, Stack};
use serde_json::{Value, json};

const SOURCE: &str = "bench-scale-source";
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(60);
const HUGE_FUNCTION_TIMEOUT: Duration = Duration::from_secs(25);
const RUN_LIMIT: Duration = Duration::from_secs(3 * 3600);
const MIB: u64 = 1024 * 1024;
/// `MaxItemsPerBatch` of `backup_batched.asl.json`.
const BATCH: usize = 1000;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, out_dir, bin_dir] = args.as_slice() else {
        bail!("usage: backup-scale-bench <out-dir> <release-bin-dir>");
    };
    let counts: Vec<usize> = std::env::var("BENCH_BACKUP_COUNTS")
        .unwrap_or_else(|_| "1000,10000,100000".to_owned())
        .split(',')
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().parse().context("BENCH_BACKUP_COUNTS"))
        .collect::<Result<_>>()?;
    let huge_gib: u64 = std::env::var("BENCH_BACKUP_HUGE_GIB")
        .unwrap_or_else(|_| "2".to_owned())
        .parse()
        .context("BENCH_BACKUP_HUGE_GIB")?;
    let dmap_max: usize = std::env::var("BENCH_BACKUP_DMAP_MAX")
        .unwrap_or_else(|_| "10000".to_owned())
        .parse()
        .context("BENCH_BACKUP_DMAP_MAX")?;
    let out_dir = PathBuf::from(out_dir);
    std::fs::create_dir_all(&out_dir)?;
    let root = std::env::current_dir()?;
    let bin_dir = PathBuf::from(bin_dir);
    let mut report = String::new();
    if !counts.is_empty() {
        let stack = start(&root, &bin_dir, FUNCTION_TIMEOUT, &[]).await?;
        let result = many_objects(&stack, &counts, dmap_max).await;
        stack.stop().await;
        report.push_str(&result?);
    }
    if huge_gib > 0 {
        // A shorter invocation and parts small enough that the copy needs
        // several invocations (moto copies at about 200 MB/s).
        let stack = start(
            &root,
            &bin_dir,
            HUGE_FUNCTION_TIMEOUT,
            &[
                ("BACKUP_MULTIPART_COPY_THRESHOLD", "268435456"),
                ("BACKUP_COPY_PART_SIZE", "67108864"),
            ],
        )
        .await?;
        let result = one_huge_object(&stack, huge_gib).await;
        stack.stop().await;
        report.push_str(&result?);
    }
    print!("{report}");
    std::fs::write(out_dir.join("backup-scale.md"), report)?;
    Ok(())
}

/// The project's stack with `timeout` for the backup function and `env`
/// added to its environment.
async fn start(
    root: &Path,
    bin_dir: &Path,
    timeout: Duration,
    env: &[(&str, &str)],
) -> Result<Stack> {
    let mut options = Options::for_project(root, bin_dir.to_path_buf());
    options.state_dir = root.join(".local/bench-backup-scale");
    options.moto_binary = devstack::moto::default_binary();
    options
        .parameters
        .insert("BackupSourceBuckets".to_owned(), SOURCE.to_owned());
    options
        .function_timeouts
        .insert("BackupFunction".to_owned(), timeout);
    options.function_env.insert(
        "BackupFunction".to_owned(),
        env.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    let stack = Stack::start(options).await?;
    let s3 = devstack::clients::s3(&stack.aws);
    devstack::provision::create_bucket(&s3, SOURCE, &stack.spec.placement.region).await?;
    Ok(stack)
}

/// One measured run.
struct Measured {
    wall: Duration,
    transitions: usize,
    invocations: usize,
    peak_mb: u64,
}

/// The backup function's log streams, where its platform reports are.
fn backup_logs(stack: &Stack) -> Result<PathBuf> {
    let function = stack
        .spec
        .function("BackupFunction")
        .context("no BackupFunction")?;
    Ok(stack.log_dir.join(&function.name))
}

const TABLE_HEAD: &str = "| source | way | wall s | objects/s | MB/s | Lambda invocations | state transitions | largest Max Memory Used MB |\n\
    |---|---|---:|---:|---:|---:|---:|---:|\n";

async fn many_objects(stack: &Stack, counts: &[usize], dmap_max: usize) -> Result<String> {
    let s3 = devstack::clients::s3(&stack.aws);
    let sfn = aws_sdk_sfn::Client::new(&stack.aws);
    let backups = stack.bucket_name("BackupBucket")?;
    let loop_arn = stack.state_machine_arn("BackupStateMachine")?;
    let batched_arn = stack.state_machine_arn("BackupBatchedStateMachine")?;
    let log_dir = backup_logs(stack)?;
    let mut seen = HashSet::new();
    reports(&log_dir, &mut seen)?;

    let mut table = TABLE_HEAD.to_owned();
    for &count in counts {
        let prefix = format!("n{count}/");
        fill(&s3, &prefix, count).await?;
        let input = json!({"backup": {"name": format!("scale-{count}"),
            "source": {"type": "s3", "bucket": SOURCE, "prefix": prefix}}});
        let looped = run(&sfn, &loop_arn, &input, &log_dir, &mut seen).await?;
        row(
            &mut table,
            &format!("{count} × 1 KiB"),
            "continuation loop",
            count,
            count as u64 * 1024,
            &looped,
        );

        if count <= dmap_max {
            let dmap = create_dmap(&sfn, count, &prefix, &backups).await?;
            let mut mapped = run(&sfn, &dmap, &json!({}), &log_dir, &mut seen).await?;
            // The children's transitions are not in the parent's history
            // locally; each child enters its one state.
            mapped.transitions += count;
            row(
                &mut table,
                &format!("{count} × 1 KiB"),
                "Distributed Map, a child per object (aws-sdk:s3:copyObject)",
                count,
                count as u64 * 1024,
                &mapped,
            );
        } else {
            let _ = writeln!(
                table,
                "| {count} × 1 KiB | Distributed Map, a child per object (computed: above BENCH_BACKUP_DMAP_MAX) | - | - | - | - | {} | - |",
                count + 1
            );
        }
        let input = json!({"backup": {"name": format!("scale-batched-{count}"),
            "source": {"type": "s3", "bucket": SOURCE, "prefix": prefix}}});
        let mut batched = run(&sfn, &batched_arn, &input, &log_dir, &mut seen).await?;
        // Each child enters `Copy batch` and `Batch done?` once per backup
        // invocation and ends in `Batch copied`; two invocations are the
        // parent's (`check` and `finish`).
        batched.transitions += 2 * batched.invocations.saturating_sub(2) + count.div_ceil(BATCH);
        row(
            &mut table,
            &format!("{count} × 1 KiB"),
            &format!(
                "Distributed Map, {BATCH} objects per child running the backup task (backup_batched.asl.json)"
            ),
            count,
            count as u64 * 1024,
            &batched,
        );
    }
    Ok(format!(
        "The template's backup workflow on the local stack (release binaries, moto's \
         single-threaded S3), the backup function's timeout cut to {} s so continuations \
         happen at bench scale. Transitions are what a Standard workflow is billed by \
         (a Distributed Map's child executions are billed for theirs too). Wall times are \
         moto's: on AWS, S3 answers in parallel and a Distributed Map runs up to 10,000 \
         children at once.\n\n{table}\n",
        FUNCTION_TIMEOUT.as_secs()
    ))
}

async fn one_huge_object(stack: &Stack, huge_gib: u64) -> Result<String> {
    let s3 = devstack::clients::s3(&stack.aws);
    let sfn = aws_sdk_sfn::Client::new(&stack.aws);
    let loop_arn = stack.state_machine_arn("BackupStateMachine")?;
    let log_dir = backup_logs(stack)?;
    let mut seen = HashSet::new();
    reports(&log_dir, &mut seen)?;
    let size = huge_gib * 1024 * MIB;
    put_huge(&s3, "huge/blob.bin", size).await?;
    let input = json!({"backup": {"name": "scale-huge",
        "source": {"type": "s3", "bucket": SOURCE, "prefix": "huge/"}}});
    let looped = run(&sfn, &loop_arn, &input, &log_dir, &mut seen).await?;
    let mut table = TABLE_HEAD.to_owned();
    row(
        &mut table,
        &format!("1 × {huge_gib} GiB"),
        "continuation loop: UploadPartCopy, 64 MiB parts, 8 at a time",
        1,
        size,
        &looped,
    );
    Ok(format!(
        "One object too big for one invocation: the backup function's timeout cut to {} s \
         (the task stops 20 s before its deadline), the multipart threshold to 256 MiB. \
         The upload and its finished parts travel in the continuation.\n\n{table}",
        HUGE_FUNCTION_TIMEOUT.as_secs()
    ))
}

fn row(table: &mut String, source: &str, way: &str, count: usize, bytes: u64, m: &Measured) {
    let secs = m.wall.as_secs_f64();
    let _ = writeln!(
        table,
        "| {source} | {way} | {secs:.1} | {:.0} | {:.1} | {} | {} | {} |",
        count as f64 / secs,
        bytes as f64 / 1e6 / secs,
        m.invocations,
        m.transitions,
        if m.invocations > 0 {
            m.peak_mb.to_string()
        } else {
            "-".to_owned()
        }
    );
}

/// Runs `arn` on `input` to its end; the backup function's platform
/// reports written meanwhile give its invocations and peak memory.
async fn run(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    input: &Value,
    log_dir: &Path,
    seen: &mut HashSet<String>,
) -> Result<Measured> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "scale-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let started = Instant::now();
    let execution = devstack::workflow::start(sfn, arn, &name, input).await?;
    let done = devstack::workflow::follow(sfn, &execution, RUN_LIMIT, |_| {}).await?;
    let wall = started.elapsed();
    if done.status != "SUCCEEDED" {
        bail!("{arn}: {} {:?} {:?}", done.status, done.error, done.cause);
    }
    // The last report is written just after the answer: read until the
    // stream stops growing.
    let mut invocations = reports(log_dir, seen)?;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let more = reports(log_dir, seen)?;
        if more.is_empty() {
            break;
        }
        invocations.extend(more);
    }
    Ok(Measured {
        wall,
        transitions: done.transitions(),
        invocations: invocations.len(),
        peak_mb: invocations.iter().copied().max().unwrap_or(0),
    })
}

/// `maxMemoryUsedMB` of every `platform.report` not seen before.
fn reports(log_dir: &Path, seen: &mut HashSet<String>) -> Result<Vec<u64>> {
    let mut fresh = Vec::new();
    for line in devstack::trail::read_stream_lines(log_dir)? {
        let Ok(record) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if record["type"] != "platform.report" {
            continue;
        }
        let id = record["record"]["requestId"].as_str().unwrap_or_default();
        if seen.insert(id.to_owned()) {
            fresh.push(
                record["record"]["metrics"]["maxMemoryUsedMB"]
                    .as_u64()
                    .unwrap_or(0),
            );
        }
    }
    Ok(fresh)
}

/// `count` objects of 1 KiB under `prefix`.
async fn fill(s3: &aws_sdk_s3::Client, prefix: &str, count: usize) -> Result<()> {
    use futures_util::StreamExt;
    let body = vec![b'x'; 1024];
    let puts = (0..count).map(|i| {
        let request = s3
            .put_object()
            .bucket(SOURCE)
            .key(format!("{prefix}{i:06}.json"))
            .body(body.clone().into());
        async move { request.send().await.map(drop) }
    });
    let results: Vec<_> = futures_util::stream::iter(puts)
        .buffer_unordered(32)
        .collect()
        .await;
    match results.into_iter().find_map(Result::err) {
        Some(e) => bail!("filling {prefix}: {e:?}"),
        None => Ok(()),
    }
}

/// One object of `size` bytes, uploaded in 256 MiB parts.
async fn put_huge(s3: &aws_sdk_s3::Client, key: &str, size: u64) -> Result<()> {
    let part = 256 * MIB;
    let upload = s3
        .create_multipart_upload()
        .bucket(SOURCE)
        .key(key)
        .send()
        .await?;
    let id = upload.upload_id().context("no upload id")?;
    let mut parts = Vec::new();
    let mut offset = 0;
    let mut number = 1;
    while offset < size {
        let len = part.min(size - offset);
        let body: Vec<u8> = (offset..offset + len).map(|i| (i % 251) as u8).collect();
        let done = s3
            .upload_part()
            .bucket(SOURCE)
            .key(key)
            .upload_id(id)
            .part_number(number)
            .body(body.into())
            .send()
            .await?;
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(done.e_tag().map(str::to_owned))
                .build(),
        );
        offset += len;
        number += 1;
    }
    s3.complete_multipart_upload()
        .bucket(SOURCE)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

/// A Distributed Map copying every object under `prefix` with one child
/// per object.
async fn create_dmap(
    sfn: &aws_sdk_sfn::Client,
    count: usize,
    prefix: &str,
    backups: &str,
) -> Result<String> {
    // JSONPath: moto's ItemReader is proven with it (`local_fidelity`).
    let definition = json!({
        "StartAt": "Copy each object",
        "States": {"Copy each object": {
            "Type": "Map",
            "MaxConcurrency": 40,
            "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
                           "Parameters": {"Bucket": SOURCE, "Prefix": prefix}},
            "ItemSelector": {"key.$": "$$.Map.Item.Value.Key"},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Copy",
                "States": {"Copy": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::aws-sdk:s3:copyObject",
                    "Parameters": {"Bucket": backups,
                                   "Key.$": "States.Format('dmap/{}', $.key)",
                                   "CopySource.$": format!("States.Format('{SOURCE}/{{}}', $.key)")},
                    "ResultPath": null,
                    "End": true}}
            },
            "ResultPath": null,
            "End": true}}
    });
    let created = sfn
        .create_state_machine()
        .name(format!("bench-dmap-{count}"))
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/bench")
        .send()
        .await
        .context("creating the Distributed Map")?;
    Ok(created.state_machine_arn().to_owned())
}
