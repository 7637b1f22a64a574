//! `make bench`'s process-level measurements, written as Markdown fragments
//! for BENCHMARKS.md:
//!
//! - cold starts: process start → first `/next`, and → first response, for
//!   each task, the bare `lambda_runtime` echo, the `common` echo and the
//!   Python Powertools handler, each against its own local Runtime API;
//! - peak RSS of each after its first response;
//! - warm overhead: round trips through a Runtime API loop, echo with and
//!   without `common`, Sentry off and on (a local endpoint);
//!
//! Usage: `runtime-bench <out-dir> <release-bin-dir> <python>` from the
//! repository root; `runtime-bench warm <program>...` runs only the
//! interleaved warm loop over the given echo programs (A/B runs of two
//! builds) and prints its table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use axum::body::Bytes;
use bench::{Program, TimedApi, summarise};
use devstack::stack::{Options, Stack};
use serde_json::{Value, json};

const STARTS: usize = 30;
const WARM_INVOCATIONS: usize = 5000;
const WARM_UP: usize = 200;
const LIMIT: Duration = Duration::from_secs(30);
const SOURCE_BUCKET: &str = "bench-source";

fn envelope(correlation_id: &str, input: Value) -> Bytes {
    Bytes::from(
        json!({
            "correlation_id": correlation_id,
            "execution_id": "arn:aws:states:eu-west-1:123456789012:execution:bench:run-1",
            "state_name": "Bench",
            "retry_count": 0,
            "input": input,
        })
        .to_string(),
    )
}

fn echo_env(name: &str) -> BTreeMap<String, String> {
    [
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

struct Cold {
    init_ms: Vec<f64>,
    first_response_ms: Vec<f64>,
    peak_rss_kib: Vec<f64>,
}

async fn cold_starts(program: &Program, starts: usize) -> Result<Cold> {
    let mut cold = Cold {
        init_ms: Vec::new(),
        first_response_ms: Vec::new(),
        peak_rss_kib: Vec::new(),
    };
    for _ in 0..starts {
        let api = TimedApi::start().await?;
        let (mut child, started) = program.spawn(&api)?;
        let asked = api.first_next(LIMIT).await?;
        let (answered, ok) = api.invoke(program.payload.clone(), LIMIT).await?;
        if !ok {
            bail!("{}: the first invocation failed", program.label);
        }
        cold.init_ms.push((asked - started).as_secs_f64() * 1e3);
        cold.first_response_ms
            .push((answered - started).as_secs_f64() * 1e3);
        if let Some(rss) = child.id().and_then(bench::peak_rss_kib) {
            cold.peak_rss_kib.push(rss as f64);
        }
        let _ = child.kill().await;
    }
    Ok(cold)
}

/// Round trips for every program, interleaved: all processes stay up and each
/// round invokes each one once, so drift on a busy machine (another process,
/// CPU frequency) lands on every program alike instead of on whichever ran
/// during it. Returns microseconds per program, in `programs`' order.
async fn warm_round_trips(programs: &[Program], invocations: usize) -> Result<Vec<Vec<f64>>> {
    let mut running = Vec::with_capacity(programs.len());
    for program in programs {
        let api = TimedApi::start().await?;
        let (child, _) = program.spawn(&api)?;
        running.push((program, api, child));
    }
    let mut micros = vec![Vec::with_capacity(invocations); programs.len()];
    for i in 0..invocations + WARM_UP {
        // Rotating the order keeps "first after a pause" from always being
        // the same program.
        for k in 0..running.len() {
            let index = (i + k) % running.len();
            let (program, api, _) = &running[index];
            let sent = Instant::now();
            let (answered, ok) = api.invoke(program.payload.clone(), LIMIT).await?;
            if !ok {
                bail!("{}: a warm invocation failed", program.label);
            }
            if i >= WARM_UP {
                micros[index].push((answered - sent).as_secs_f64() * 1e6);
            }
        }
    }
    for (_, _, mut child) in running {
        let _ = child.kill().await;
    }
    Ok(micros)
}

/// `runtime-bench warm <program>...`: the warm loop alone, for A/B runs.
async fn warm_ab(binaries: &[String]) -> Result<()> {
    let payload = envelope("bench-1", json!({"order_id": "A-1001", "n": 1}));
    let programs: Vec<Program> = binaries
        .iter()
        .map(|binary| {
            Program::new(
                binary.clone(),
                PathBuf::from(binary),
                echo_env("echo"),
                payload.clone(),
            )
        })
        .collect();
    let mut table = String::from(
        "| program | invocations | median µs | min | max | p99 |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for (program, micros) in programs
        .iter()
        .zip(warm_round_trips(&programs, WARM_INVOCATIONS).await?)
    {
        table.push_str(&row(&program.label, &micros, "µs"));
    }
    print!("{table}");
    Ok(())
}

fn row(label: &str, values: &[f64], unit: &str) -> String {
    match summarise(values) {
        Some(s) => format!(
            "| {label} | {} | {:.2} | {:.2} | {:.2} | {:.2} {unit} |\n",
            s.n, s.p50, s.min, s.max, s.p99
        ),
        None => format!("| {label} | 0 | - | - | - | - |\n"),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, binaries @ ..] = args.as_slice()
        && mode == "warm"
    {
        return warm_ab(binaries).await;
    }
    let [_, out_dir, bin_dir, python] = args.as_slice() else {
        bail!("usage: runtime-bench <out-dir> <release-bin-dir> <python>");
    };
    let out_dir = PathBuf::from(out_dir);
    let bin_dir = PathBuf::from(bin_dir);
    std::fs::create_dir_all(&out_dir)?;
    let root = std::env::current_dir()?;

    let mut options = Options::for_project(&root, bin_dir.clone());
    options.state_dir = root.join(".local/bench");
    options
        .parameters
        .insert("BackupSourceBuckets".to_owned(), SOURCE_BUCKET.to_owned());
    let stack = Stack::start(options).await?;
    // Absolute, but not canonical: the venv's python is a symlink whose
    // location is what selects the venv.
    let python = root.join(python);
    let result = run(&stack, &root, &bin_dir, &python, &out_dir).await;
    stack.stop().await;
    result
}

async fn run(stack: &Stack, root: &Path, bin_dir: &Path, python: &Path, out: &Path) -> Result<()> {
    bench::prepare_backup_source(stack, SOURCE_BUCKET).await?;
    let echo_payload = envelope("bench-1", json!({"order_id": "A-1001", "n": 1}));
    let order: Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("events/invoice_order.json"),
    )?)?;
    let task = |logical_id: &str, binary: &str, payload: Bytes| -> Result<Program> {
        Ok(Program::new(
            binary,
            bin_dir.join(binary),
            stack.function_environment(logical_id)?,
            payload,
        ))
    };
    let echo = |binary: &str| {
        Program::new(
            binary,
            bin_dir.join(binary),
            echo_env(binary),
            echo_payload.clone(),
        )
    };
    let powertools = Program {
        label: "Python 3 + Powertools Logger".to_owned(),
        command: python.to_path_buf(),
        args: vec!["bootstrap.py".to_owned()],
        cwd: Some(root.join("bench/powertools")),
        env: echo_env("powertools"),
        payload: echo_payload.clone(),
    };
    let programs = vec![
        echo("echo-bare"),
        echo("echo-common"),
        task("InvoiceFunction", "invoice", envelope("bench-1", order))?,
        task(
            "NotifyFunction",
            "notify",
            envelope(
                "bench-1",
                json!({"kind": "invoice_ready", "subject": "Invoice A-1001 is ready", "details": {"key": "invoices/A-1001.pdf"}}),
            ),
        )?,
        task(
            "BackupFunction",
            "backup",
            envelope(
                "bench-1",
                json!({"name": "bench", "run_id": "2026-11-24T00:00:00Z", "source": {"type": "s3", "bucket": SOURCE_BUCKET, "prefix": "daily/"}}),
            ),
        )?,
        powertools.clone(),
    ];

    let mut cold = String::from(
        "| program | starts | median ms | min | max | p99 |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let mut first = cold.clone();
    let mut memory = String::from(
        "| program | starts | median KiB | min | max | p99 |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for program in &programs {
        eprintln!("cold starts: {}", program.label);
        let measured = cold_starts(program, STARTS).await?;
        cold.push_str(&row(&program.label, &measured.init_ms, "ms"));
        first.push_str(&row(&program.label, &measured.first_response_ms, "ms"));
        memory.push_str(&row(&program.label, &measured.peak_rss_kib, "KiB"));
    }
    std::fs::write(
        out.join("cold.md"),
        format!(
            "Process start → first `/next` (init):\n\n{cold}\nProcess start → first response (init + first invocation; tasks talk to moto on 127.0.0.1):\n\n{first}"
        ),
    )?;
    std::fs::write(
        out.join("memory.md"),
        format!("Peak RSS (`VmHWM`) after the first response:\n\n{memory}"),
    )?;

    let sink = tests::sentry_sink::SentrySink::start(tests::sentry_sink::Behaviour::Accept).await?;
    let mut with_sentry = echo("echo-common");
    with_sentry.label = "echo-common, Sentry on (local endpoint)".to_owned();
    with_sentry.env.insert("SENTRY_DSN".to_owned(), sink.dsn());
    let mut warm = String::from(
        "| program | invocations | median µs | min | max | p99 |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let programs = [
        echo("echo-bare"),
        echo("echo-bare-current-thread"),
        echo("echo-common"),
        with_sentry,
        powertools,
    ];
    eprintln!("warm round trips, interleaved");
    let mut medians = BTreeMap::new();
    for (program, micros) in programs
        .iter()
        .zip(warm_round_trips(&programs, WARM_INVOCATIONS).await?)
    {
        if let Some(s) = summarise(&micros) {
            medians.insert(program.label.clone(), s.p50);
        }
        warm.push_str(&row(&program.label, &micros, "µs"));
    }
    let overhead = |label: &str, baseline: &str| {
        medians
            .get(label)
            .zip(medians.get(baseline))
            .map_or("-".to_owned(), |(a, b)| {
                // Below zero is noise or a real saving: say which baseline.
                format!("{:+.1} µs", a - b)
            })
    };
    for baseline in ["echo-bare", "echo-bare-current-thread"] {
        let _ = writeln!(
            warm,
            "\nAdded by `common` at p50 over `{baseline}`: {} (Sentry off), {} (Sentry on).",
            overhead("echo-common", baseline),
            overhead("echo-common, Sentry on (local endpoint)", baseline)
        );
    }
    std::fs::write(out.join("warm.md"), warm)?;

    Ok(())
}
