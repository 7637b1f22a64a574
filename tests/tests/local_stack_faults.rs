//! The workflows of `template.yaml` on the local stack with the functions'
//! S3 and SQS traffic going through the fault proxy: a persistent fault
//! makes a task fail with `Task.Retryable`; once it stops, the state
//! machine's `Retry` completes the run, and nothing is missing, partial or
//! sent twice.

use std::time::{Duration, Instant};

use devstack::faults::{Fault, Rule};
use devstack::workflow;
use serde_json::{Value, json};
use tests::local_stack::{Builder, LocalStack, WORKFLOW_LIMIT, event};

/// Waits until `execution`'s history shows a task that failed with `error`:
/// the point where the fault has been seen through to Step Functions.
async fn wait_for_task_failure(stack: &LocalStack, execution: &str, error: &str) {
    let started = Instant::now();
    loop {
        let events = workflow::history(&stack.sfn(), execution)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        if events
            .iter()
            .any(|e| e.kind == "TaskFailed" && e.error.as_deref() == Some(error))
        {
            return;
        }
        assert!(
            events.iter().all(|e| e.kind != "ExecutionFailed"),
            "the execution failed: {events:?}"
        );
        assert!(
            started.elapsed() < WORKFLOW_LIMIT,
            "no task failed with {error}: {events:?}"
        );
        // Polling the service's own history, as an operator's tool would.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start(stack: &LocalStack, state_machine: &str, name: &str, input: &Value) -> String {
    let arn = stack
        .stack
        .state_machine_arn(state_machine)
        .unwrap_or_else(|e| panic!("{e}"));
    workflow::start(&stack.sfn(), &arn, name, input)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

async fn open_uploads(stack: &LocalStack, bucket: &str) -> usize {
    stack
        .s3()
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .uploads()
        .len()
}

async fn keys(stack: &LocalStack, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = stack
        .s3()
        .list_objects_v2()
        .bucket(bucket)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.unwrap_or_else(|e| panic!("{e}"));
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    keys
}

#[tokio::test]
async fn invoice_workflow_completes_once_s3_faults_stop_and_notifies_once() {
    let stack = Builder::project().with_fault_proxy().start().await;
    let proxy = stack
        .stack
        .faults
        .as_ref()
        .unwrap_or_else(|| panic!("no fault proxy"));
    let bucket = stack
        .stack
        .bucket_name("InvoiceBucket")
        .unwrap_or_else(|e| panic!("{e}"));

    // S3 throttles every upload of the invoice until the fault is cleared.
    proxy.inject(Rule::always(
        &format!("PUT /{bucket}/invoices/"),
        Fault::SlowDown,
    ));
    let execution = start(
        &stack,
        "InvoiceStateMachine",
        "faults-A-1001",
        &json!({
            "correlation_id": "order-A-1001",
            "order_total": 1214.87,
            "order": event("invoice_order.json"),
        }),
    )
    .await;
    wait_for_task_failure(&stack, &execution, "Task.Retryable").await;
    proxy.clear();
    // Then the notification's first answer is lost after SQS took it.
    proxy.inject(Rule::times(1, "AmazonSQS.SendMessage", Fault::LostResponse));

    let run = stack.wait(&execution).await;
    assert_eq!(run.status, "SUCCEEDED", "{:?}", run.cause);
    let render = run
        .path()
        .into_iter()
        .find(|s| s.name == "Render and store invoice")
        .unwrap_or_else(|| panic!("no render state"));
    assert!(
        !render.failures.is_empty() && render.failures.iter().all(|f| f == "Task.Retryable"),
        "{:?}",
        render.failures
    );

    assert_eq!(keys(&stack, &bucket).await, ["invoices/A-1001.pdf"]);
    let output = run.output().unwrap_or_else(|e| panic!("{e:#}"));
    let pdf = stack
        .s3()
        .get_object()
        .bucket(&bucket)
        .key("invoices/A-1001.pdf")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_bytes();
    assert_eq!(
        output["invoice"]["sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&pdf)),
        "the stored PDF is whole"
    );
    assert_eq!(open_uploads(&stack, &bucket).await, 0);
    let ready: Vec<Value> = stack
        .notifications()
        .await
        .into_iter()
        .map(|m| m.body)
        .filter(|b| b["kind"] == "invoice_ready")
        .collect();
    assert_eq!(ready.len(), 1, "one notification: {ready:?}");
    assert!(
        proxy.faults_applied() >= 4,
        "3 SDK attempts and a lost answer: {:#?}",
        proxy.seen()
    );

    let lines = stack.finish().await;
    let invoice_ends: Vec<&str> = lines
        .iter()
        .filter(|l| l["service"] == "invoice" && l["message"] == "task finished")
        .filter_map(|l| l["outcome"].as_str())
        .collect();
    assert_eq!(invoice_ends.last(), Some(&"success"), "{invoice_ends:?}");
    assert_eq!(invoice_ends.len(), render.failures.len() + 1);
}

#[tokio::test]
async fn backup_workflow_completes_once_s3_faults_stop_with_every_object_copied() {
    const SOURCE: &str = "test-faults-source";
    const OBJECTS: usize = 40;
    let stack = Builder::project()
        .parameter("BackupSourceBuckets", SOURCE)
        .with_fault_proxy()
        .start()
        .await;
    let proxy = stack
        .stack
        .faults
        .as_ref()
        .unwrap_or_else(|| panic!("no fault proxy"));
    stack
        .fill_bucket(
            SOURCE,
            (0..OBJECTS).map(|i| {
                (
                    format!("daily/part-{i:04}.json"),
                    format!("{{\"n\": {i}}}").into_bytes(),
                )
            }),
        )
        .await;
    let bucket = stack
        .stack
        .bucket_name("BackupBucket")
        .unwrap_or_else(|e| panic!("{e}"));

    // Every tenth copy is reset on its first try (absorbed by the SDK), and
    // the manifest cannot be written until the fault is cleared.
    for i in (0..OBJECTS).step_by(10) {
        proxy.inject(Rule::times(1, &format!("part-{i:04}.json"), Fault::Reset));
    }
    proxy.inject(Rule::always("manifest.json", Fault::InternalError));
    let execution = start(
        &stack,
        "BackupStateMachine",
        "faults-backup",
        &json!({
            "correlation_id": "backup-faults",
            "backup": {"name": "crm", "run_id": "2026-11-24T00:00:00Z",
                       "source": {"type": "s3", "bucket": SOURCE, "prefix": "daily/"}},
        }),
    )
    .await;
    wait_for_task_failure(&stack, &execution, "Task.Retryable").await;
    proxy.clear();
    let run = stack.wait(&execution).await;
    assert_eq!(run.status, "SUCCEEDED", "{:?}", run.cause);
    let output = run.output().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(output["run"]["object_count"], OBJECTS);

    let stored = keys(&stack, &bucket).await;
    for i in 0..OBJECTS {
        let key = format!("backups/crm/20261124T000000Z/data/part-{i:04}.json");
        assert!(stored.contains(&key), "{key} missing: {stored:?}");
    }
    let data = stored.iter().filter(|k| k.contains("/data/")).count();
    assert_eq!(data, OBJECTS, "the objects, once each: {stored:?}");
    assert!(stored.contains(&"backups/crm/20261124T000000Z/manifest.json".to_owned()));
    assert_eq!(open_uploads(&stack, &bucket).await, 0);
    let succeeded: Vec<Value> = stack
        .notifications()
        .await
        .into_iter()
        .map(|m| m.body)
        .filter(|b| b["kind"] == "backup_succeeded")
        .collect();
    assert_eq!(succeeded.len(), 1);
    assert!(proxy.faults_applied() > OBJECTS / 10);
    stack.finish().await;
}
