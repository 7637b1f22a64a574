//! The state machines of `template.yaml`, run by moto's Step Functions
//! engine against the real task binaries on the local stack: smoke tests,
//! error routing, retries and idempotent reruns.

use std::time::Duration;

use serde_json::{Value, json};
use tests::local_stack::{Builder, LocalStack, WORKFLOW_LIMIT, event};

fn invoice_input(correlation_id: &str, order_file: &str, order_total: Value) -> Value {
    json!({
        "correlation_id": correlation_id,
        "order_total": order_total,
        "order": event(order_file),
    })
}

async fn invoice_bucket_keys(stack: &LocalStack) -> Vec<String> {
    let bucket = stack
        .stack
        .bucket_name("InvoiceBucket")
        .unwrap_or_else(|e| panic!("{e}"));
    let listed = stack
        .s3()
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

async fn read_invoice(stack: &LocalStack, key: &str) -> (Vec<u8>, Option<String>) {
    let bucket = stack
        .stack
        .bucket_name("InvoiceBucket")
        .unwrap_or_else(|e| panic!("{e}"));
    let object = stack
        .s3()
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{key}: {e}"));
    let correlation = object
        .metadata()
        .and_then(|m| m.get("correlation-id"))
        .cloned();
    let bytes = object
        .body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_bytes()
        .to_vec();
    (bytes, correlation)
}

#[tokio::test]
async fn invoice_workflow_stores_the_pdf_and_notifies_and_approvals_resume_it() {
    let stack = Builder::project().start().await;

    let small = stack
        .run(
            "InvoiceStateMachine",
            "smoke-A-1001",
            &invoice_input("order-A-1001", "invoice_order.json", json!(1214.87)),
        )
        .await;
    let output = small.output().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(output["invoice"]["key"], "invoices/A-1001.pdf");
    assert_eq!(output["invoice"]["correlation_id"], "order-A-1001");
    assert_eq!(output["notification"]["kind"], "invoice_ready");
    let states: Vec<String> = small.path().into_iter().map(|s| s.name).collect();
    assert!(
        !states.contains(&"Ask for approval".to_owned()),
        "{states:?}"
    );
    let (pdf, correlation) = read_invoice(&stack, "invoices/A-1001.pdf").await;
    assert!(pdf.starts_with(b"%PDF-"));
    assert_eq!(correlation.as_deref(), Some("order-A-1001"));

    // Above the threshold: the workflow waits for a human; a portal takes
    // the request off the queue and answers with the task token.
    let sfn = stack.sfn();
    let arn = stack
        .stack
        .state_machine_arn("InvoiceStateMachine")
        .unwrap_or_else(|e| panic!("{e}"));
    let execution = devstack::workflow::start(
        &sfn,
        &arn,
        "smoke-B-2002",
        &invoice_input("order-B-2002", "invoice_order_large.json", json!(5_500_000)),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let queue = stack
        .stack
        .queue_url("NotificationQueue")
        .unwrap_or_else(|e| panic!("{e}"));
    let request = devstack::queue::answer_approval(
        &stack.sqs(),
        &sfn,
        &queue,
        "order-B-2002",
        &json!({"approved": true}),
        WORKFLOW_LIMIT,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        request.attributes.get("correlation_id").map(String::as_str),
        Some("order-B-2002")
    );
    let approved = stack.wait(&execution).await;
    assert_eq!(approved.status, "SUCCEEDED", "{:?}", approved.cause);
    let states: Vec<String> = approved.path().into_iter().map(|s| s.name).collect();
    assert_eq!(
        states,
        [
            "Check the order",
            "Price invoice",
            "Needs approval?",
            "Ask for approval",
            "Approved?",
            "Render and store invoice",
            "Notify invoice ready"
        ]
    );
    assert!(
        invoice_bucket_keys(&stack)
            .await
            .contains(&"invoices/B-2002.pdf".to_owned())
    );

    let messages = stack.notifications().await;
    let ready: Vec<&Value> = messages
        .iter()
        .map(|m| &m.body)
        .filter(|b| b["kind"] == "invoice_ready")
        .collect();
    assert_eq!(ready.len(), 2, "{messages:?}");
    for message in &messages {
        assert_eq!(
            message.attributes.get("correlation_id"),
            message.body["correlation_id"]
                .as_str()
                .map(str::to_owned)
                .as_ref(),
            "the SQS message attribute carries the correlation ID"
        );
    }
    stack.finish().await;
}

#[tokio::test]
async fn invalid_input_is_caught_reported_and_fails_the_execution_as_aws_would() {
    let stack = Builder::project().start().await;
    let run = stack
        .run(
            "InvoiceStateMachine",
            "bad-order",
            &invoice_input("order-bad-1", "invoice_order_bad.json", json!(10)),
        )
        .await;
    assert_eq!(run.status, "FAILED");
    assert_eq!(run.error.as_deref(), Some("Task.InvalidInput"));
    // The cause is the function's error payload, as Lambda returned it.
    let cause: Value = serde_json::from_str(run.cause.as_deref().unwrap_or_default())
        .unwrap_or_else(|e| panic!("cause is not the error JSON ({e}): {:?}", run.cause));
    assert_eq!(cause["errorType"], "Task.InvalidInput");
    assert!(
        cause["errorMessage"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );

    let path = run.path();
    // Refused by the pricing step, before anything could be rendered.
    let priced = path
        .iter()
        .find(|s| s.name == "Price invoice")
        .unwrap_or_else(|| panic!("{path:?}"));
    assert_eq!(priced.failures, ["Task.InvalidInput"], "never retried");
    assert!(
        !path.iter().any(|s| s.name == "Render and store invoice"),
        "{path:?}"
    );
    let names: Vec<&str> = path.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        &names[names.len() - 2..],
        ["Notify invoice failed", "Invoice failed"]
    );

    let messages = stack.notifications().await;
    let failed: Vec<&Value> = messages
        .iter()
        .map(|m| &m.body)
        .filter(|b| b["kind"] == "invoice_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{messages:?}");
    assert_eq!(failed[0]["details"]["error"], "Task.InvalidInput");
    assert!(
        invoice_bucket_keys(&stack).await.is_empty(),
        "nothing written"
    );
    stack.finish().await;
}

#[tokio::test]
async fn retryable_failures_are_retried_and_the_logs_show_retry_count_rising() {
    let stack = Builder::project().with_fault_proxy().start().await;
    // S3 throttles the invoice's writes for two whole attempts (the SDK
    // tries each request three times), then recovers.
    if let Some(proxy) = &stack.stack.faults {
        proxy.inject(devstack::faults::Rule::times(
            6,
            "/invoices/",
            devstack::faults::Fault::SlowDown,
        ));
    }
    let run = stack
        .run(
            "InvoiceStateMachine",
            "flaky-A-1001",
            &invoice_input("order-A-1001", "invoice_order.json", json!(1214.87)),
        )
        .await;
    assert_eq!(run.status, "SUCCEEDED", "{:?}", run.cause);
    let render = run
        .path()
        .into_iter()
        .find(|s| s.name == "Render and store invoice")
        .unwrap_or_else(|| panic!("no render state"));
    assert_eq!(render.failures, ["Task.Retryable", "Task.Retryable"]);

    let ends: Vec<(u64, String)> = stack
        .trail("order-A-1001")
        .into_iter()
        .filter(|l| l["service"] == "invoice" && l["message"] == "task finished")
        .map(|l| {
            (
                l["retry_count"].as_u64().unwrap_or(99),
                l["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        ends,
        [
            (0, "error".to_owned()),
            (1, "error".to_owned()),
            (2, "success".to_owned())
        ]
    );

    // The same trail, across the invoice and notify tasks, as `make logs`
    // reads it from the emulated CloudWatch Logs.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&stack.stack.aws);
    let shipped: Vec<Value> =
        devstack::trail::from_cloudwatch(&logs, "/aws/lambda/", "order-A-1001")
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
            .into_iter()
            .map(|t| t.line)
            .collect();
    let sorted = |lines: &[Value]| {
        let mut texts: Vec<String> = lines.iter().map(Value::to_string).collect();
        texts.sort();
        texts
    };
    assert_eq!(sorted(&shipped), sorted(&stack.trail("order-A-1001")));
    let services: std::collections::BTreeSet<&str> = shipped
        .iter()
        .filter_map(|l| l["service"].as_str())
        .collect();
    assert_eq!(services, ["invoice", "invoice-pricing", "notify"].into());
    stack.finish().await;
}

#[tokio::test]
async fn a_rerun_of_the_same_order_gives_the_same_bytes_and_one_notification() {
    let stack = Builder::project().start().await;
    let input = invoice_input("order-A-1001", "invoice_order.json", json!(1214.87));
    let first = stack.run("InvoiceStateMachine", "run-1", &input).await;
    assert_eq!(first.status, "SUCCEEDED", "{:?}", first.cause);
    let (bytes_1, _) = read_invoice(&stack, "invoices/A-1001.pdf").await;

    let second = stack.run("InvoiceStateMachine", "rerun-1", &input).await;
    let output = second.output().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(output["invoice"]["already_existed"], true);
    let (bytes_2, _) = read_invoice(&stack, "invoices/A-1001.pdf").await;
    assert_eq!(bytes_1, bytes_2);

    let bucket = stack
        .stack
        .bucket_name("InvoiceBucket")
        .unwrap_or_else(|e| panic!("{e}"));
    let versions = stack
        .s3()
        .list_object_versions()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        versions.versions().len(),
        1,
        "the rerun wrote no new version"
    );

    let ready: Vec<Value> = stack
        .notifications()
        .await
        .into_iter()
        .map(|m| m.body)
        .filter(|b| b["kind"] == "invoice_ready")
        .collect();
    assert_eq!(ready.len(), 1, "{ready:?}");
    stack.finish().await;
}

#[tokio::test]
async fn backup_workflow_continues_across_invocations_and_reports() {
    const SOURCE: &str = "test-crm-exports";
    const SMALL: usize = 400;
    const OBJECTS: usize = SMALL + 1;
    const HUGE: usize = 40 << 20;
    let stack = Builder::project()
        .parameter("BackupSourceBuckets", SOURCE)
        // A short budget per invocation, so the run needs several, and an
        // object too big to copy in one of them (5 MiB parts, each slowed
        // down by the fault proxy, two at a time).
        .function_timeout("BackupFunction", Duration::from_secs(4))
        .function_env("BackupFunction", "BACKUP_STOP_BEFORE_MS", "2000")
        .function_env(
            "BackupFunction",
            "BACKUP_MULTIPART_COPY_THRESHOLD",
            "6291456",
        )
        .function_env("BackupFunction", "BACKUP_COPY_PART_SIZE", "5242880")
        .function_env("BackupFunction", "BACKUP_PART_CONCURRENCY", "2")
        .with_fault_proxy()
        .start()
        .await;
    if let Some(proxy) = &stack.stack.faults {
        proxy.inject(devstack::faults::Rule::always(
            "partNumber=",
            devstack::faults::Fault::Stall(Duration::from_millis(400)),
        ));
    }
    let s3 = stack.s3();
    // The huge one in the middle of the listing: the keys after it must be
    // copied too.
    let small = (0..SMALL).map(|i| {
        (
            format!("daily/part-{i:04}.json"),
            format!("{{\"n\": {i}}}").into_bytes(),
        )
    });
    let huge = ("daily/part-0200-huge.bin".to_owned(), vec![7u8; HUGE]);
    stack
        .fill_bucket(SOURCE, small.chain(std::iter::once(huge)))
        .await;
    let run = stack
        .run(
            "BackupStateMachine",
            "backup-smoke",
            &json!({
                "correlation_id": "backup-crm",
                "backup": {"name": "crm", "run_id": "2026-11-24T00:00:00Z",
                           "source": {"type": "s3", "bucket": SOURCE, "prefix": "daily/"}},
            }),
        )
        .await;
    let output = run.output().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(output["run"]["object_count"], OBJECTS);
    let copies = run
        .path()
        .iter()
        .filter(|s| s.name == "Copy to backup bucket")
        .count();
    assert!(
        copies >= 2,
        "the run continued across invocations: {copies}"
    );

    let bucket = stack
        .stack
        .bucket_name("BackupBucket")
        .unwrap_or_else(|e| panic!("{e}"));
    let manifest = s3
        .head_object()
        .bucket(&bucket)
        .key("backups/crm/20261124T000000Z/manifest.json")
        .send()
        .await
        .unwrap_or_else(|e| panic!("manifest: {e}"));
    assert_eq!(
        manifest
            .metadata()
            .and_then(|m| m.get("correlation-id"))
            .map(String::as_str),
        Some("backup-crm")
    );
    let huge = s3
        .head_object()
        .bucket(&bucket)
        .key("backups/crm/20261124T000000Z/data/part-0200-huge.bin")
        .send()
        .await
        .unwrap_or_else(|e| panic!("the huge copy: {e}"));
    assert_eq!(huge.content_length(), Some(HUGE as i64));
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
    assert_eq!(succeeded[0]["details"]["objects"], OBJECTS);

    // Two more executions on the same day without a run_id: each is a run
    // of its own (its start time), and neither touches the first run.
    let mut run_keys = Vec::new();
    for name in ["backup-noon", "backup-midnight"] {
        let run = stack
            .run(
                "BackupStateMachine",
                name,
                &json!({"correlation_id": name,
                        "backup": {"name": "crm", "source": {"type": "s3", "bucket": SOURCE, "prefix": "daily/"}}}),
            )
            .await;
        let output = run.output().unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            output["run"]["copied"], OBJECTS,
            "a new run copies everything"
        );
        run_keys.push(
            output["run"]["run_key"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_ne!(run_keys[0], run_keys[1]);
    assert!(
        run_keys
            .iter()
            .all(|k| k.starts_with("backups/crm/2") && k != "backups/crm/20261124T000000Z/")
    );
    let first = s3
        .head_object()
        .bucket(&bucket)
        .key("backups/crm/20261124T000000Z/manifest.json")
        .send()
        .await
        .unwrap_or_else(|e| panic!("manifest: {e}"));
    assert_eq!(
        first.e_tag(),
        manifest.e_tag(),
        "the first run's manifest is untouched"
    );

    let lines = stack.finish().await;
    let starts = lines
        .iter()
        .filter(|l| l["service"] == "backup" && l["message"] == "task started")
        .count();
    assert!(starts >= copies + 2, "one start line per invocation");
}

/// The template's workflows are JSONata; the JSONPath invoice workflow they
/// replaced is kept as a fixture, so JSONPath stays proven on the local
/// stack: the same routing, the same outputs in JSONPath's shape.
#[tokio::test]
async fn the_jsonpath_invoice_workflow_still_runs_as_before() {
    let stack = Builder::project()
        .definition(
            "InvoiceStateMachine",
            "tests/fixtures/jsonpath/invoice.asl.json",
        )
        .start()
        .await;
    let small = stack
        .run(
            "InvoiceStateMachine",
            "jsonpath-A-1001",
            &invoice_input("order-A-1001", "invoice_order.json", json!(1214.87)),
        )
        .await;
    let output = small.output().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(output["invoice"]["output"]["key"], "invoices/A-1001.pdf");
    let states: Vec<String> = small.path().into_iter().map(|s| s.name).collect();
    assert_eq!(
        states,
        [
            "Fill in defaults",
            "Merge input with defaults",
            "Read approval threshold",
            "Needs approval?",
            "Render and store invoice",
            "Notify invoice ready"
        ]
    );

    let bad = stack
        .run(
            "InvoiceStateMachine",
            "jsonpath-bad",
            &invoice_input("order-bad-1", "invoice_order_bad.json", json!(10)),
        )
        .await;
    assert_eq!(bad.status, "FAILED");
    assert_eq!(bad.error.as_deref(), Some("Task.InvalidInput"));
    let names: Vec<String> = bad.path().into_iter().map(|s| s.name).collect();
    assert_eq!(
        &names[names.len() - 2..],
        ["Notify invoice failed", "Invoice failed"]
    );
    stack.finish().await;
}
