//! Backup throughput, side by side with `aws s3 cp`, against the moto server
//! and a local export server. Prints Markdown; asserts nothing.
//!
//! `bench-backup <release backup binary> <aws cli>`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use futures_util::StreamExt;
use serde_json::json;
use tests::export_server::ExportServer;
use tests::fixture::envelope;
use tests::moto::MotoServer;
use tests::runtime_api::{Completed, LocalRuntimeApi};

const MIB: u64 = 1024 * 1024;
const BUCKET: &str = "bench-backups";
const SOURCE: &str = "bench-source";
/// Export runs per size and side: single runs of either side swing by a
/// tenth or more against moto on a small machine.
const ROUNDS: usize = 3;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let backup = args
        .next()
        .ok_or("usage: bench-backup <backup binary> <aws cli>")?;
    let aws = args
        .next()
        .ok_or("usage: bench-backup <backup binary> <aws cli>")?;
    let moto = MotoServer::start().await?;
    for bucket in [BUCKET, SOURCE] {
        moto.create_bucket(bucket).await;
    }
    let server = ExportServer::start().await?;
    let hosts = server.host_port();
    let env = moto.task_env();
    let extra = [
        ("BACKUP_BUCKET", BUCKET),
        ("BACKUP_SOURCE_BUCKETS", SOURCE),
        ("BACKUP_EXPORT_HOSTS", hosts.as_str()),
        ("BACKUP_ALLOWED_ADDRESSES", "127.0.0.1"),
        ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
    ];

    // `BACKUP_*` settings, the SDK's checksum switches and glibc's `MALLOC_*`
    // tunables of the bench's own environment reach the task, so part sizes,
    // concurrency, checksums and the allocator can be swept without a
    // rebuild (`aws s3 cp` inherits the same environment).
    // Read once for the whole run, so leaking the names costs nothing.
    let overrides: Vec<(&'static str, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("BACKUP_UPLOAD_")
                || k.starts_with("BACKUP_PART_")
                || k == "AWS_REQUEST_CHECKSUM_CALCULATION"
                || k.starts_with("MALLOC_")
        })
        .map(|(k, v)| (&*k.leak(), v))
        .collect();
    let extra: Vec<(&'static str, &str)> = extra
        .into_iter()
        .chain(overrides.iter().map(|(k, v)| (*k, v.as_str())))
        .collect();

    println!("## Backup (moto on 127.0.0.1; release build)\n");
    println!(
        "{ROUNDS} rounds per size, the task and the CLI taking turns at going first; \
         median (min–max).\n"
    );
    println!("| what | size | wall s | MB/s | peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for size in [256 * MIB, 1024 * MIB] {
        let url = server.url(&format!("/export/{size}"));
        let (mut task, mut cli) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let key = format!("{size}-{round}");
            // One order favours whoever goes first (moto's memory, the
            // page cache), so the order alternates.
            if round % 2 == 0 {
                task.push(export_with_task(&moto, &backup, &extra, &url, &key).await);
                cli.push(export_with_cli(&moto, &aws, &env, &url, &key)?);
            } else {
                cli.push(export_with_cli(&moto, &aws, &env, &url, &key)?);
                task.push(export_with_task(&moto, &backup, &extra, &url, &key).await);
            }
            // Each round's copies are gone before the next is measured.
            empty_bucket(&moto, BUCKET).await;
        }
        let (task, cli) = (Summary::of(&task), Summary::of(&cli));
        task.print("backup task, HTTP export", size);
        cli.print("`aws s3 cp -`", size);
        ratios.push(format!(
            "{} MiB: {:.2} of the CLI's throughput at {:.2} of its peak RSS",
            size / MIB,
            cli.secs / task.secs,
            task.peak as f64 / cli.peak.max(1) as f64
        ));
    }
    // The goal, in one line per size: at least 0.9 of the
    // throughput at at most 0.25 of the RSS.
    println!(
        "\nBackup task vs `aws s3 cp -` (medians): {}.",
        ratios.join("; ")
    );

    let count = 2000usize;
    let s3 = moto.s3();
    futures_util::stream::iter(0..count)
        .for_each_concurrent(32, |i| {
            let s3 = s3.clone();
            async move {
                let _ = s3
                    .put_object()
                    .bucket(SOURCE)
                    .key(format!("objects/{i:06}"))
                    .body(ByteStream::from(vec![b'x'; 1024]))
                    .send()
                    .await;
            }
        })
        .await;
    let (api, _process) = moto.start_program(&backup, &extra).await;
    let input = json!({"name": "bench-s3", "run_id": "2026-11-24T00:00:00Z",
        "source": {"type": "s3", "bucket": SOURCE, "prefix": "objects/"}});
    let (secs, done) = timed_invoke(&api, input).await;
    println!(
        "\nS3 → S3 server-side copy: {count} objects of 1 KiB in {secs:.2} s = {:.0} objects/s (copy concurrency 8, including listing, verification and manifest; done = {})",
        count as f64 / secs,
        done.response()["done"]
    );
    Ok(())
}

/// One export's wall time and peak RSS (bytes), and whether it finished.
struct Run {
    secs: f64,
    peak: u64,
    ok: bool,
}

/// The median (and range) of one side's runs.
struct Summary {
    secs: f64,
    min_secs: f64,
    max_secs: f64,
    peak: u64,
    failed: bool,
}

impl Summary {
    fn of(runs: &[Run]) -> Self {
        let mut secs: Vec<f64> = runs.iter().map(|r| r.secs).collect();
        secs.sort_by(f64::total_cmp);
        let mut peaks: Vec<u64> = runs.iter().map(|r| r.peak).collect();
        peaks.sort_unstable();
        Self {
            secs: secs.get(secs.len() / 2).copied().unwrap_or(f64::NAN),
            min_secs: secs.first().copied().unwrap_or(f64::NAN),
            max_secs: secs.last().copied().unwrap_or(f64::NAN),
            peak: peaks.get(peaks.len() / 2).copied().unwrap_or(0),
            failed: runs.iter().any(|r| !r.ok),
        }
    }

    fn print(&self, what: &str, size: u64) {
        let rate = |secs: f64| size as f64 / 1e6 / secs;
        println!(
            "| {what}{} | {} MiB | {:.2} ({:.2}–{:.2}) | {:.1} ({:.1}–{:.1}) | {} |",
            if self.failed { " (FAILED)" } else { "" },
            size / MIB,
            self.secs,
            self.min_secs,
            self.max_secs,
            rate(self.secs),
            rate(self.max_secs),
            rate(self.min_secs),
            self.peak / MIB
        );
    }
}

/// The backup task streams `url` into a multipart upload, in a process of
/// its own so its peak RSS is its own.
async fn export_with_task(
    moto: &MotoServer,
    backup: &str,
    extra: &[(&'static str, &str)],
    url: &str,
    key: &str,
) -> Run {
    let (api, process) = moto.start_program(backup, extra).await;
    let input = json!({"name": format!("bench-{key}"), "run_id": "2026-11-24T00:00:00Z",
        "source": {"type": "http", "url": url, "file_name": "export.bin"}});
    let (secs, done) = timed_invoke(&api, input).await;
    Run {
        secs,
        peak: process.peak_rss().unwrap_or(0),
        ok: done.response()["done"] == true,
    }
}

/// One backup invocation and its wall time in seconds.
async fn timed_invoke(api: &LocalRuntimeApi, input: serde_json::Value) -> (f64, Completed) {
    let started = Instant::now();
    let done = api
        .invoke(envelope("bench", 0, input), Duration::from_secs(900))
        .await;
    (started.elapsed().as_secs_f64(), done)
}

/// The same stream piped into `aws s3 cp -` to the same endpoint, peak RSS
/// from `/usr/bin/time` (the CLI is the largest process of the pipe).
fn export_with_cli(
    moto: &MotoServer,
    aws: &str,
    env: &[(&'static str, String)],
    url: &str,
    key: &str,
) -> Result<Run, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let script = format!(
        "curl -sS {url} | {aws} --endpoint-url {} s3 cp - s3://{BUCKET}/cli-{key}.bin",
        moto.endpoint()
    );
    let mut child = Command::new("/usr/bin/time")
        .args(["-f", "%M", "sh", "-c", &script])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        pipe.read_to_string(&mut stderr)?;
    }
    let status = child.wait()?;
    let secs = started.elapsed().as_secs_f64();
    let kib: u64 = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    Ok(Run {
        secs,
        peak: kib * 1024,
        ok: status.success(),
    })
}

/// Deletes every object of `bucket`, so moto does not hold gigabytes of
/// earlier rounds while the next one is measured.
async fn empty_bucket(moto: &MotoServer, bucket: &str) {
    let s3 = moto.s3();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(Ok(page)) = pages.next().await {
        for object in page.contents() {
            if let Some(key) = object.key() {
                let _ = s3.delete_object().bucket(bucket).key(key).send().await;
            }
        }
    }
}
