//! `make bench`'s first-call section: cold start and the first AWS request
//! over TLS, under Lambda-like CPU shares.
//!
//! - TLS: a TLS-terminating proxy on 127.0.0.1 in front of the local stack,
//!   with a certificate from a test CA made here by `openssl`. Programs trust
//!   it through `SSL_CERT_FILE` (read by the SDK's rustls-native-certs), set
//!   to the system bundle plus the test CA: parsing a full bundle is part of
//!   what a cold start pays, as on Lambda (one bundle of about 140 roots).
//!   Verification is never turned off.
//! - CPU: Lambda gives a function CPU in proportion to its memory, one vCPU
//!   at 1,769 MB. A CPU-quota cgroup per share (`cpu.cfs_quota_us` over a
//!   100 ms `cpu.cfs_period_us` on cgroup v1, `cpu.max` on v2) holds each
//!   program: 128 MB → 7.24 %, 512 MB → 28.9 %, 1,769 MB → 100 % of one CPU.
//!   The proxy and the local stack stay outside it, as AWS's endpoints are.
//!   Lambda does not document whether init gets more CPU, so init runs
//!   under the same share.
//!
//! Usage: `first-call-bench <out-dir> <release-bin-dir>` from the repository
//! root (as root, to write the cgroup files).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::body::Bytes;
use bench::{Program, TimedApi, summarise};
use devstack::runtime_api::Reply;
use devstack::stack::{Options, Stack};
use serde_json::json;
use tests::tls_proxy::{start_proxy, test_tls};

const STARTS: usize = 10;
const LIMIT: Duration = Duration::from_secs(60);
const PERIOD_US: u64 = 100_000;
/// Lambda's memory sizes for the shares measured, and the one with a whole vCPU.
const MEMORY_MB: [u64; 3] = [128, 512, 1769];
const FULL_CPU_MB: u64 = 1769;

/// The CPU quota per period for a function of `memory_mb`.
fn quota_us(memory_mb: u64) -> u64 {
    PERIOD_US * memory_mb.min(FULL_CPU_MB) / FULL_CPU_MB
}

/// A CPU-quota cgroup this bench made, removed on drop.
struct CpuShare {
    dir: PathBuf,
    procs: PathBuf,
}

impl CpuShare {
    fn create(memory_mb: u64) -> Result<Self> {
        let quota = quota_us(memory_mb);
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let name = format!("sfn-task-bench-{memory_mb}mb");
        if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(name);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::write(dir.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
            std::fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string())?;
            return Ok(Self {
                procs: dir.join("cgroup.procs"),
                dir,
            });
        }
        let v2 = Path::new("/sys/fs/cgroup");
        if v2.join("cgroup.controllers").exists() {
            let dir = v2.join(name);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::write(dir.join("cpu.max"), format!("{quota} {PERIOD_US}"))?;
            return Ok(Self {
                procs: dir.join("cgroup.procs"),
                dir,
            });
        }
        bail!("no cgroup CPU controller at /sys/fs/cgroup (v1 cpu or v2)")
    }
}

impl Drop for CpuShare {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// What one program's starts measured, in milliseconds.
#[derive(Default)]
struct Measured {
    init_ms: Vec<f64>,
    first_ms: Vec<f64>,
    total_ms: Vec<f64>,
}

async fn cold_starts(program: &Program, share: &CpuShare) -> Result<Measured> {
    let mut measured = Measured::default();
    for _ in 0..STARTS {
        // A start right after another would find the period's quota partly
        // spent by the one before (its TLS request, on up to two threads)
        // and be throttled for it: two whole periods give each start a
        // fresh quota, as a new execution environment has.
        tokio::time::sleep(Duration::from_micros(2 * PERIOD_US)).await;
        let api = TimedApi::start().await?;
        let (mut child, started) = program.spawn_in_cgroup(&api, &share.procs).await?;
        let asked = api.first_next(LIMIT).await?;
        let sent = Instant::now();
        let (answered, reply) = api.invoke_reply(program.payload.clone(), LIMIT).await?;
        let _ = child.kill().await;
        if let Reply::Error(body) = reply {
            bail!(
                "{}: the first invocation failed: {}",
                program.label,
                String::from_utf8_lossy(&body)
            );
        }
        measured.init_ms.push((asked - started).as_secs_f64() * 1e3);
        measured
            .first_ms
            .push((answered - sent).as_secs_f64() * 1e3);
        measured
            .total_ms
            .push((answered - started).as_secs_f64() * 1e3);
    }
    Ok(measured)
}

fn median(values: &[f64]) -> String {
    summarise(values).map_or("-".to_owned(), |s| {
        format!("{:.1} ({:.1}–{:.1})", s.p50, s.min, s.max)
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, out_dir, bin_dir] = args.as_slice() else {
        bail!("usage: first-call-bench <out-dir> <release-bin-dir>");
    };
    let (out_dir, bin_dir) = (PathBuf::from(out_dir), PathBuf::from(bin_dir));
    std::fs::create_dir_all(&out_dir)?;
    let root = std::env::current_dir()?;
    let report = match CpuShare::create(FULL_CPU_MB) {
        Err(err) => format!("Not measured on this machine: {err:#}.\n"),
        Ok(probe) => {
            drop(probe);
            let mut options = Options::for_project(&root, bin_dir.clone());
            options.state_dir = root.join(".local/bench-first-call");
            let stack = Stack::start(options).await?;
            let result = run(&stack, &bin_dir, &out_dir).await;
            stack.stop().await;
            result?
        }
    };
    std::fs::write(out_dir.join("first-call.md"), report)?;
    Ok(())
}

async fn run(stack: &Stack, bin_dir: &Path, out_dir: &Path) -> Result<String> {
    let tls = test_tls(&out_dir.join("first-call-tls"))?;
    let upstream = stack
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let endpoint = start_proxy(tls.acceptor.clone(), upstream).await?;
    let mut notify_env = stack.function_environment("NotifyFunction")?;
    notify_env.insert("AWS_ENDPOINT_URL".to_owned(), endpoint.clone());
    notify_env.insert("SSL_CERT_FILE".to_owned(), tls.bundle.display().to_string());
    notify_env.insert(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(),
        "128".to_owned(),
    );
    let payload = Bytes::from(
        json!({
            "correlation_id": "bench-first-call",
            "execution_id": "arn:aws:states:eu-west-1:123456789012:execution:bench:first-call",
            "state_name": "Notify",
            "retry_count": 0,
            "input": {"kind": "invoice_ready", "subject": "Invoice A-1001 is ready", "details": {"key": "invoices/A-1001.pdf"}},
        })
        .to_string(),
    );

    let program = |label: &str, binary: &str, extra: &[(&str, &str)]| {
        let mut env = notify_env.clone();
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Program::new(label, bin_dir.join(binary), env, payload.clone())
    };
    let programs = [
        program("echo-bare (no AWS call)", "echo-bare", &[]),
        program("echo-common (no AWS call)", "echo-common", &[]),
        program(
            "bare SDK, client on first use",
            "first-call-bare",
            &[("FIRST_CALL_MODE", "lazy")],
        ),
        program(
            "bare SDK, client at init",
            "first-call-bare",
            &[("FIRST_CALL_MODE", "init")],
        ),
        program(
            "bare SDK, client at init + one request at init",
            "first-call-bare",
            &[("FIRST_CALL_MODE", "warm")],
        ),
        program(
            "bare SDK on rustls + *ring* (as `common`), client on first use",
            "first-call-bare",
            &[("FIRST_CALL_MODE", "lazy"), ("FIRST_CALL_TLS", "ring")],
        ),
        program("notify (`common`)", "notify", &[]),
    ];
    let ca_only = tls.ca_only.display().to_string();
    let programs = programs.into_iter().chain([program(
        "bare SDK, client on first use, trust store of the test CA alone",
        "first-call-bare",
        &[
            ("FIRST_CALL_MODE", "lazy"),
            ("SSL_CERT_FILE", ca_only.as_str()),
        ],
    )]);
    let programs: Vec<Program> = programs.collect();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "Each program started {STARTS} times inside a CPU-quota cgroup; its first invocation sends one SQS message over TLS (test CA through `SSL_CERT_FILE`, system bundle + test CA). Median (min–max), ms.\n"
    );
    for memory_mb in MEMORY_MB {
        let share = CpuShare::create(memory_mb)?;
        let percent = quota_us(memory_mb) as f64 * 100.0 / PERIOD_US as f64;
        let _ = writeln!(
            report,
            "**{memory_mb} MB** (quota {} µs per {PERIOD_US} µs: {percent:.2} % of one CPU)\n\n| program | init | first invocation | init + first invocation |\n|---|---:|---:|---:|",
            quota_us(memory_mb)
        );
        for program in &programs {
            eprintln!("first call: {memory_mb} MB, {}", program.label);
            let m = cold_starts(program, &share).await?;
            let _ = writeln!(
                report,
                "| {} | {} | {} | {} |",
                program.label,
                median(&m.init_ms),
                median(&m.first_ms),
                median(&m.total_ms)
            );
        }
        report.push('\n');
    }
    Ok(report)
}
