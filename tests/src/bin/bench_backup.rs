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

const MIB: u64 = 1024 * 1024;
const BUCKET: &str = "bench-backups";
const SOURCE: &str = "bench-source";

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
    println!("| what | size | wall s | MB/s | peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for size in [256 * MIB, 1024 * MIB] {
        let (api, process) = moto.start_program(&backup, &extra).await;
        let url = server.url(&format!("/export/{size}"));
        let input = json!({"name": format!("bench-{size}"), "run_id": "2026-11-24T00:00:00Z",
            "source": {"type": "http", "url": url, "file_name": "export.bin"}});
        let started = Instant::now();
        let done = api
            .invoke(envelope("bench", 0, input), Duration::from_secs(900))
            .await;
        let secs = started.elapsed().as_secs_f64();
        let peak = process.peak_rss().unwrap_or(0);
        let task = (secs, peak);
        drop(process);
        let ok = done.response()["done"] == true;
        println!(
            "| backup task, HTTP export{} | {} MiB | {secs:.2} | {:.1} | {} |",
            if ok { "" } else { " (FAILED)" },
            size / MIB,
            size as f64 / 1e6 / secs,
            peak / MIB
        );

        // The same stream piped into `aws s3 cp -` to the same endpoint.
        let started = Instant::now();
        let script = format!(
            "curl -sS {url} | {aws} --endpoint-url {} s3 cp - s3://{BUCKET}/cli-{size}.bin",
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
        println!(
            "| `aws s3 cp -`{} | {} MiB | {secs:.2} | {:.1} | {} |",
            if status.success() { "" } else { " (FAILED)" },
            size / MIB,
            size as f64 / 1e6 / secs,
            kib / 1024
        );
        ratios.push(format!(
            "{} MiB: {:.2} of the CLI's throughput at {:.2} of its peak RSS",
            size / MIB,
            secs / task.0,
            task.1 as f64 / (kib as f64 * 1024.0).max(1.0)
        ));
    }
    // The goal, in one line per size: at least 0.9 of the
    // throughput at at most 0.25 of the RSS.
    println!("\nBackup task vs `aws s3 cp -`: {}.", ratios.join("; "));

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
    let started = Instant::now();
    let done = api
        .invoke(envelope("bench", 0, input), Duration::from_secs(900))
        .await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "\nS3 → S3 server-side copy: {count} objects of 1 KiB in {secs:.2} s = {:.0} objects/s (copy concurrency 8, including listing, verification and manifest; done = {})",
        count as f64 / secs,
        done.response()["done"]
    );
    Ok(())
}
