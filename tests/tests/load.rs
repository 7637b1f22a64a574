//! Load: many invoice workflows at once on the local stack (200 by default,
//! `LOAD_EXECUTIONS` to change; `make load` runs a larger batch). Every run
//! must succeed, every task invocation must write exactly one start and one
//! end line, and every correlation ID's trail must be complete: both tasks'
//! lines, its PDF tagged with it, one notification carrying it.
//!
//! Throughput and p95 latency are printed (and written to
//! `target/load-report.md`), never asserted: they depend on the machine.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use tests::local_stack::{Builder, LocalStack, event};

fn executions() -> usize {
    std::env::var("LOAD_EXECUTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn correlation_id(i: usize) -> String {
    format!("load-{i:04}")
}

fn input(i: usize) -> Value {
    let mut order = event("invoice_order.json");
    order["order_id"] = json!(format!("L-{i:04}"));
    json!({
        "correlation_id": correlation_id(i),
        "order_total": 1214.87,
        "order": order,
    })
}

/// Each failed execution's error, cause and the failures in its history:
/// a load failure must say which call failed, or it cannot be told from a
/// slow moment of the machine.
async fn why_failed(
    sfn: &aws_sdk_sfn::Client,
    machine: &str,
    failed: &[(&String, &String)],
) -> String {
    let mut out = Vec::new();
    for (name, status) in failed {
        let arn = format!(
            "{}:{name}",
            machine.replace(":stateMachine:", ":execution:")
        );
        let described = sfn.describe_execution().execution_arn(&arn).send().await;
        let (error, cause) = described
            .as_ref()
            .map(|d| {
                (
                    d.error().unwrap_or("-").to_owned(),
                    d.cause().unwrap_or("-").to_owned(),
                )
            })
            .unwrap_or_else(|e| ("?".to_owned(), format!("{e:?}")));
        let attempts: Vec<String> = devstack::workflow::history(sfn, &arn)
            .await
            .map(|events| {
                events
                    .iter()
                    .filter(|e| e.error.is_some())
                    .map(|e| {
                        format!(
                            "{} {}: {}",
                            e.kind,
                            e.error.as_deref().unwrap_or(""),
                            e.cause.as_deref().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(format!(
            "{name} {status} {error}: {cause}; history: {attempts:?}"
        ));
    }
    out.join("\n")
}

/// Waits until no execution of `arn` is running, polling the service's
/// own list as a dashboard would; returns the status of each.
async fn wait_all(stack: &LocalStack, arn: &str, count: usize) -> BTreeMap<String, String> {
    let sfn = stack.sfn();
    let limit = Duration::from_secs(60 + 3 * count as u64);
    let started = Instant::now();
    loop {
        let listed: Vec<_> = sfn
            .list_executions()
            .state_machine_arn(arn)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let running = listed
            .iter()
            .filter(|e| e.status() == &ExecutionStatus::Running)
            .count();
        if listed.len() == count && running == 0 {
            return listed
                .iter()
                .map(|e| (e.name().to_owned(), e.status().as_str().to_owned()))
                .collect();
        }
        assert!(
            started.elapsed() < limit,
            "{running} of {count} still running after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test]
async fn concurrent_invoice_workflows_all_succeed_with_complete_trails() {
    let count = executions();
    let stack = Builder::project().start().await;
    let arn = stack
        .stack
        .state_machine_arn("InvoiceStateMachine")
        .unwrap_or_else(|e| panic!("{e}"));
    let sfn = stack.sfn();

    let clock = Instant::now();
    let started: Vec<String> = futures_util::stream::iter(0..count)
        .map(|i| {
            let sfn = sfn.clone();
            let arn = arn.clone();
            async move {
                devstack::workflow::start(&sfn, &arn, &format!("load-{i:04}"), &input(i)).await
            }
        })
        .buffer_unordered(32)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let statuses = wait_all(&stack, &arn, count).await;
    let wall = clock.elapsed();
    let failed: Vec<_> = statuses.iter().filter(|(_, s)| *s != "SUCCEEDED").collect();
    if !failed.is_empty() {
        panic!(
            "not all succeeded: {}",
            why_failed(&sfn, &arn, &failed).await
        );
    }

    // Latency per execution, from the service's own start and stop times.
    let mut latencies: Vec<Duration> = futures_util::stream::iter(started)
        .map(|execution| {
            let sfn = sfn.clone();
            async move {
                let described = sfn
                    .describe_execution()
                    .execution_arn(&execution)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let start = described.start_date().to_millis().unwrap_or(0);
                let stop = described
                    .stop_date()
                    .and_then(|d| d.to_millis().ok())
                    .unwrap_or(start);
                Duration::from_millis(u64::try_from(stop - start).unwrap_or(0))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    latencies.sort();

    let bucket = stack
        .stack
        .bucket_name("InvoiceBucket")
        .unwrap_or_else(|e| panic!("{e}"));
    let s3 = stack.s3();
    let tagged: BTreeMap<String, String> = futures_util::stream::iter(0..count)
        .map(|i| {
            let s3 = s3.clone();
            let bucket = bucket.clone();
            async move {
                let key = format!("invoices/L-{i:04}.pdf");
                let head = s3
                    .head_object()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{key}: {e}"));
                let correlation = head
                    .metadata()
                    .and_then(|m| m.get("correlation-id"))
                    .cloned()
                    .unwrap_or_default();
                (key, correlation)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for i in 0..count {
        assert_eq!(tagged[&format!("invoices/L-{i:04}.pdf")], correlation_id(i));
    }

    let mut notified: BTreeMap<String, usize> = BTreeMap::new();
    let queue = stack
        .stack
        .queue_url("NotificationQueue")
        .unwrap_or_else(|e| panic!("{e}"));
    // Hidden long enough to receive a thousand messages ten at a time.
    let messages = devstack::queue::peek_all(&stack.sqs(), &queue, Duration::from_secs(900))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    for message in messages {
        if message.body["kind"] == "invoice_ready" {
            let id = message
                .attributes
                .get("correlation_id")
                .cloned()
                .unwrap_or_default();
            *notified.entry(id).or_default() += 1;
        }
    }
    let expected: BTreeMap<String, usize> = (0..count).map(|i| (correlation_id(i), 1)).collect();
    assert_eq!(notified, expected, "one notification per correlation ID");

    let lines = stack.finish().await;
    check_invocation_lines(&lines);
    check_trails(&lines, count);

    let p50 = percentile(&latencies, 50.0);
    let p95 = percentile(&latencies, 95.0);
    let max = latencies.last().copied().unwrap_or_default();
    let throughput = count as f64 / wall.as_secs_f64();
    let report = format!(
        "# Load: {count} concurrent invoice workflows on the local stack\n\n\
         | executions | wall time | throughput | p50 latency | p95 latency | max latency | log lines |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n\
         | {count} | {:.1} s | {throughput:.1} executions/s | {} ms | {} ms | {} ms | {} |\n\n\
         Machine: {} cores. Debug builds, moto's Step Functions engine, each workflow = render + notify.\n",
        wall.as_secs_f64(),
        p50.as_millis(),
        p95.as_millis(),
        max.as_millis(),
        lines.len(),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    eprintln!("{report}");
    let target = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/load-report.md");
    let _ = std::fs::write(target, &report);
}

/// Every task invocation (one `function_request_id`) has exactly one start
/// and one end line.
fn check_invocation_lines(lines: &[Value]) {
    let mut per_request: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for line in lines {
        let Some(request) = line["function_request_id"].as_str() else {
            continue;
        };
        let counts = per_request.entry(request).or_default();
        match line["message"].as_str() {
            Some("task started") => counts.0 += 1,
            Some("task finished") => counts.1 += 1,
            _ => {}
        }
    }
    assert!(!per_request.is_empty());
    let broken: Vec<_> = per_request
        .iter()
        .filter(|(_, counts)| **counts != (1, 1))
        .collect();
    assert!(
        broken.is_empty(),
        "invocations without exactly one start and one end: {broken:?}"
    );
}

/// Every correlation ID has a successful start and end of both tasks.
fn check_trails(lines: &[Value], count: usize) {
    let mut trails: BTreeMap<&str, BTreeSet<(String, String)>> = BTreeMap::new();
    for line in lines {
        let (Some(id), Some(service), Some(message)) = (
            line["correlation_id"].as_str(),
            line["service"].as_str(),
            line["message"].as_str(),
        ) else {
            continue;
        };
        let outcome = line["outcome"].as_str().unwrap_or("");
        trails.entry(id).or_default().insert((
            service.to_owned(),
            format!("{message} {outcome}").trim().to_owned(),
        ));
    }
    assert_eq!(trails.len(), count, "one trail per correlation ID");
    for (id, trail) in &trails {
        for service in ["invoice", "notify"] {
            for step in ["task started", "task finished success"] {
                assert!(
                    trail.contains(&(service.to_owned(), step.to_owned())),
                    "{id}: no `{step}` line from {service}: {trail:?}"
                );
            }
        }
    }
}
