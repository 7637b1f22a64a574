//! `make demo`: the template's workflows on sample data, shown live, then a
//! report of what they did. Everything started here is stopped at the end,
//! on failure and on Ctrl-C.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use devstack::stack::{Options, Stack};
use devstack::workflow::{self, Finished};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use crate::WORKFLOW_LIMIT;

/// The bucket the demo's backups copy from: a user's own bucket, named in
/// the `BackupSourceBuckets` parameter as a deployment would.
const SOURCE_BUCKET: &str = "local-crm-exports";
/// Objects put into it: enough for several invocations with the demo budget.
const SOURCE_OBJECTS: usize = 300;

/// One invoice workflow run.
struct InvoiceRun {
    what: &'static str,
    order_file: &'static str,
    correlation_id: &'static str,
    approve: bool,
}

const INVOICE_RUNS: &[fn() -> InvoiceRun] = &[
    || InvoiceRun {
        what: "order A-1001, priced at EUR 1,214.87: under EUR's approval threshold",
        order_file: "events/invoice_order.json",
        correlation_id: "order-A-1001",
        approve: false,
    },
    || InvoiceRun {
        what: "order B-2002, priced at JPY 5,500,000: above JPY's threshold, a human approves",
        order_file: "events/invoice_order_large.json",
        correlation_id: "order-B-2002",
        approve: true,
    },
    || InvoiceRun {
        what: "a bad order (negative quantity, unsafe order id): Task.InvalidInput, caught, reported",
        order_file: "events/invoice_order_bad.json",
        correlation_id: "order-bad-1",
        approve: false,
    },
];

pub(crate) async fn run(mut options: Options) -> Result<()> {
    options
        .parameters
        .insert("BackupSourceBuckets".to_owned(), SOURCE_BUCKET.to_owned());
    // A short budget per backup invocation, so a few hundred objects need
    // several invocations and the workflow's continuation loop shows.
    options
        .function_timeouts
        .insert("BackupFunction".to_owned(), Duration::from_secs(4));
    options.function_env.insert(
        "BackupFunction".to_owned(),
        [("BACKUP_STOP_BEFORE_MS".to_owned(), "2000".to_owned())].into(),
    );
    let out_dir = options.state_dir.join("demo");
    heading("Starting the local stack: moto and the local Lambda service");
    let stack = Stack::start(options).await?;
    println!("endpoint {}", stack.endpoint);
    println!(
        "console  {} (open it while the demo runs: executions, approvals, Logs Insights)",
        stack.console_url()
    );
    let result = tokio::select! {
        result = scenarios(&stack, &out_dir) => result,
        signal = tokio::signal::ctrl_c() => match signal {
            Ok(()) => Err(anyhow!("interrupted")),
            Err(e) => Err(anyhow!("waiting for Ctrl-C: {e}")),
        },
    };
    heading("Stopping everything the demo started");
    stack.stop().await;
    result
}

async fn scenarios(stack: &Stack, out_dir: &Path) -> Result<()> {
    let sfn = aws_sdk_sfn::Client::new(&stack.aws);
    let invoice_machine = stack.state_machine_arn("InvoiceStateMachine")?;
    let mut finished: Vec<(String, Finished)> = Vec::new();

    for make in INVOICE_RUNS {
        let run = make();
        heading(&format!("Invoice workflow: {}", run.what));
        let order: Value = read_json(run.order_file)?;
        let input = json!({"correlation_id": run.correlation_id, "order": order});
        let name = execution_name(run.correlation_id);
        let execution = workflow::start(&sfn, &invoice_machine, &name, &input).await?;
        // The console's approvals page is the portal: the demo answers
        // through it, as a person pressing Approve would.
        let portal = run.approve.then(|| {
            let console = stack.console_url();
            let id = run.correlation_id;
            tokio::spawn(async move {
                let subject = approve_in_console(&console, id).await?;
                println!(
                    "  [portal] approval request for {id} ({subject}) approved on {console}approvals (SendTaskSuccess)"
                );
                anyhow::Ok(())
            })
        });
        let done = follow(&sfn, &execution, run.correlation_id).await?;
        if let Some(portal) = portal {
            portal.await.context("the approval portal")??;
        }
        finished.push((run.correlation_id.to_owned(), done));
    }

    heading(&format!(
        "Backup workflow: {SOURCE_OBJECTS} objects from s3://{SOURCE_BUCKET}/daily/, a 4 s function timeout so the run continues across invocations"
    ));
    fill_source_bucket(stack).await?;
    let backup_machine = stack.state_machine_arn("BackupStateMachine")?;
    let input = json!({
        "correlation_id": "backup-crm-nightly",
        "backup": {"name": "crm-nightly", "source": {"type": "s3", "bucket": SOURCE_BUCKET, "prefix": "daily/"}},
    });
    let execution = workflow::start(
        &sfn,
        &backup_machine,
        &execution_name("backup-crm-nightly"),
        &input,
    )
    .await?;
    let done = follow(&sfn, &execution, "backup-crm-nightly").await?;
    finished.push(("backup-crm-nightly".to_owned(), done));

    report(stack, &finished, out_dir).await?;
    check_expected(&finished)
}

/// Waits for `correlation_id`'s approval request on the console's
/// approvals page and presses Approve; returns the request's subject.
async fn approve_in_console(console: &str, correlation_id: &str) -> Result<String> {
    let http = devstack::clients::http();
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let pending: Vec<Value> = http
            .get(format!("{console}api/approvals"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("reading the console's approvals")?
            .json()
            .await
            .context("the console's approvals")?;
        if let Some(request) = pending
            .iter()
            .find(|r| r["correlation_id"] == correlation_id)
        {
            let token = request["task_token"].as_str().unwrap_or_default();
            http.post(format!("{console}approvals/answer"))
                .form(&[
                    ("token", token),
                    ("decision", "approve"),
                    ("approver", "demo"),
                ])
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .context("pressing Approve in the console")?;
            return Ok(request["subject"].as_str().unwrap_or_default().to_owned());
        }
        if started.elapsed() > WORKFLOW_LIMIT {
            anyhow::bail!(
                "no approval request for {correlation_id} reached the console within {WORKFLOW_LIMIT:?}"
            );
        }
        // Polling, as a portal page refreshes.
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// The demo fails loudly when a workflow did not end as designed.
fn check_expected(finished: &[(String, Finished)]) -> Result<()> {
    for (id, run) in finished {
        let expected = if id == "order-bad-1" {
            "FAILED"
        } else {
            "SUCCEEDED"
        };
        if run.status != expected {
            return Err(anyhow!(
                "{id}: expected {expected}, got {} ({}: {})",
                run.status,
                run.error.as_deref().unwrap_or("-"),
                run.cause.as_deref().unwrap_or("-")
            ));
        }
    }
    Ok(())
}

async fn follow(sfn: &aws_sdk_sfn::Client, execution: &str, label: &str) -> Result<Finished> {
    let started = std::time::Instant::now();
    workflow::follow(sfn, execution, WORKFLOW_LIMIT, |event| {
        if let Some(line) = workflow::describe(event) {
            println!(
                "  [{label} +{:>5.2}s] {line}",
                started.elapsed().as_secs_f64()
            );
        }
    })
    .await
}

async fn report(stack: &Stack, finished: &[(String, Finished)], out_dir: &Path) -> Result<()> {
    let sqs = aws_sdk_sqs::Client::new(&stack.aws);
    let queue = stack.queue_url("NotificationQueue")?;
    heading("Executions: path, durations, state transitions");
    for (_, run) in finished {
        let name = run.arn.rsplit(':').next().unwrap_or(&run.arn);
        let took = match (run.events.first(), run.events.last()) {
            (Some(first), Some(last)) => format!("{} ms", last.time_ms - first.time_ms),
            _ => "-".to_owned(),
        };
        println!(
            "{name}  {}  {took}  {} state transitions{}",
            run.status,
            run.transitions(),
            run.error
                .as_ref()
                .map(|e| format!("  error {e}"))
                .unwrap_or_default()
        );
        for step in run.path() {
            let failures = if step.failures.is_empty() {
                String::new()
            } else {
                format!("  failed attempts: {}", step.failures.join(", "))
            };
            println!(
                "    {:<40} {:>8}{failures}",
                step.name,
                step.duration
                    .map(|d| format!("{} ms", d.as_millis()))
                    .unwrap_or_else(|| "-".to_owned())
            );
        }
    }

    heading("S3 objects written");
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let s3 = devstack::clients::s3(&stack.aws);
    for logical_id in ["InvoiceBucket", "BackupBucket"] {
        let bucket = stack.bucket_name(logical_id)?;
        let mut objects = Vec::new();
        let mut pages = s3.list_objects_v2().bucket(&bucket).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.with_context(|| format!("listing {bucket}"))?;
            objects.extend(page.contents().iter().cloned());
        }
        println!("s3://{bucket}: {} objects", objects.len());
        let shown: Vec<_> = objects
            .iter()
            .filter(|o| {
                let key = o.key().unwrap_or_default();
                key.ends_with(".pdf") || key.ends_with("manifest.json")
            })
            .collect();
        for object in shown {
            let key = object.key().unwrap_or_default();
            let head = s3.head_object().bucket(&bucket).key(key).send().await?;
            let correlation = head
                .metadata()
                .and_then(|m| m.get("correlation-id"))
                .map_or("-", String::as_str);
            let mut line = format!(
                "  {key}  {} bytes  correlation-id={correlation}",
                object.size().unwrap_or(0)
            );
            if key.ends_with(".pdf") {
                let local = out_dir.join(key.rsplit('/').next().unwrap_or("invoice.pdf"));
                let body = s3.get_object().bucket(&bucket).key(key).send().await?;
                let bytes = body.body.collect().await?.into_bytes();
                std::fs::write(&local, &bytes)
                    .with_context(|| format!("writing {}", local.display()))?;
                line.push_str(&format!("  → {}", local.display()));
            }
            println!("{line}");
        }
    }

    heading("SQS messages on the notification queue");
    let messages = devstack::queue::peek_all(&sqs, &queue, Duration::from_secs(60)).await?;
    for message in &messages {
        let body = &message.body;
        println!(
            "  {:<18} {:<20} {:?}  recipient={}",
            body["kind"].as_str().unwrap_or("?"),
            body["correlation_id"].as_str().unwrap_or("?"),
            body["subject"].as_str().unwrap_or(""),
            body["recipient"]
                .as_str()
                .map_or_else(|| "-".to_owned(), mask_email)
        );
    }
    println!(
        "  (the approval request for order-B-2002 was taken off the queue by the console's approvals page)"
    );

    let id = "order-B-2002";
    heading(&format!(
        "Every log line of correlation ID {id}, all tasks, from CloudWatch Logs"
    ));
    let logs = aws_sdk_cloudwatchlogs::Client::new(&stack.aws);
    for line in devstack::trail::from_cloudwatch(&logs, "/aws/lambda/", id).await? {
        println!("  {}", devstack::trail::format_line(&line));
    }
    println!(
        "\nPDF copies are in {}; `make logs ID=<correlation id>` prints any trail again.",
        out_dir.display()
    );
    Ok(())
}

async fn fill_source_bucket(stack: &Stack) -> Result<()> {
    let s3 = devstack::clients::s3(&stack.aws);
    devstack::provision::create_bucket(&s3, SOURCE_BUCKET, &stack.spec.placement.region).await?;
    futures_util::stream::iter(0..SOURCE_OBJECTS)
        .map(|i| {
            let s3 = s3.clone();
            async move {
                s3.put_object()
                    .bucket(SOURCE_BUCKET)
                    .key(format!("daily/customers-{i:05}.json"))
                    .body(format!("{{\"customer\": {i}}}").into_bytes().into())
                    .send()
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await
        .context("filling the demo source bucket")
}

/// `z***@example.com`: the console shows that a recipient is set, not who.
fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// A hint of why the run happened plus a unique suffix, as executions
/// should be named; the correlation ID stays the same across reruns.
fn execution_name(correlation_id: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("demo-{correlation_id}-{now}")
}

fn read_json(path: &str) -> Result<Value> {
    let path = PathBuf::from(path);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn heading(text: &str) {
    println!("\n== {text}");
}
