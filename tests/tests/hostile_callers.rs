//! The workflows of `template.yaml` on the local stack, driven as a careless
//! or hostile caller would: a made-up order total, currencies without a
//! threshold, every shape of approval answer, inputs of every JSON type,
//! execution names with characters the correlation-ID rules refuse, and
//! orders too large for a task payload. Whatever comes in, a run either
//! succeeds or fails with a notification that says so; none ends in an
//! error no `Catch` can see, none stores an invoice it should not.

use devstack::faults::{Fault, Rule};
use devstack::queue::{Inbox, Received};
use devstack::workflow::{self, Finished};
use futures_util::future::join_all;
use serde_json::{Value, json};
use tests::local_stack::{Builder, LocalStack, WORKFLOW_LIMIT, event};

/// Errors that end an execution without any Catch seeing them.
const UNCATCHABLE: &[&str] = &[
    "States.Runtime",
    "States.DataLimitExceeded",
    "States.QueryEvaluationError",
];

async fn invoice_keys(stack: &LocalStack) -> Vec<String> {
    let bucket = stack
        .stack
        .bucket_name("InvoiceBucket")
        .unwrap_or_else(|e| panic!("{e}"));
    stack
        .s3()
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

fn states(run: &Finished) -> Vec<String> {
    run.path().into_iter().map(|s| s.name).collect()
}

/// Starts `input` on the invoice workflow as `name`; the execution ARN.
async fn start(stack: &LocalStack, machine: &str, name: &str, input: &Value) -> String {
    let arn = stack
        .stack
        .state_machine_arn(machine)
        .unwrap_or_else(|e| panic!("{e}"));
    workflow::start(&stack.sfn(), &arn, name, input)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// A consumer of the notification queue (a portal's view of it).
fn inbox(stack: &LocalStack) -> Inbox {
    let queue = stack
        .stack
        .queue_url("NotificationQueue")
        .unwrap_or_else(|e| panic!("{e}"));
    Inbox::new(stack.sqs(), &queue)
}

/// The approval request of `correlation_id`, off the queue.
async fn approval_request(inbox: &mut Inbox, correlation_id: &str) -> Received {
    inbox
        .approval(correlation_id, WORKFLOW_LIMIT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// How many messages of `kind` the inbox has taken.
async fn taken(inbox: &mut Inbox, kind: &str) -> usize {
    inbox.drain().await.unwrap_or_else(|e| panic!("{e:#}"));
    inbox
        .messages()
        .iter()
        .filter(|m| m.body["kind"] == kind)
        .count()
}

async fn answer(stack: &LocalStack, request: &Received, output: &str) {
    let token = devstack::queue::task_token(request).unwrap_or_else(|e| panic!("{e:#}"));
    stack
        .sfn()
        .send_task_success()
        .task_token(token)
        .output(output)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
}

fn in_currency(currency: &str, unit_price: &str) -> Value {
    let mut order = event("invoice_order.json");
    order["order_id"] = json!(format!("CUR-{currency}"));
    order["currency"] = json!(currency);
    order["lines"] = json!([{"description": "One thing", "quantity": "1", "unit_price": unit_price, "tax_rate": "0"}]);
    order
}

#[tokio::test]
async fn the_approval_is_decided_on_the_computed_total_per_currency() {
    let stack = Builder::project().start().await;
    let mut inbox = inbox(&stack);
    // JPY 5,500,000 computed; the caller claims 1.
    let big = start(
        &stack,
        "InvoiceStateMachine",
        "claims-a-tiny-total",
        &json!({"correlation_id": "big-order", "order_total": 1, "order": event("invoice_order_large.json")}),
    )
    .await;
    let request = approval_request(&mut inbox, "big-order").await;
    let details = &request.body["details"];
    assert_eq!(
        (details["total"].as_str(), details["currency"].as_str()),
        (Some("5500000"), Some("JPY")),
        "the approver sees what the invoice will charge: {details}"
    );
    assert_eq!(details["total_minor"], 5_500_000);
    assert!(
        request.body["subject"]
            .as_str()
            .is_some_and(|s| s.contains("JPY 5500000")),
        "{}",
        request.body["subject"]
    );
    assert!(
        invoice_keys(&stack).await.is_empty(),
        "nothing stored before the decision"
    );
    answer(&stack, &request, r#"{"approved": false}"#).await;
    let rejected = stack.wait(&big).await;
    assert_eq!(rejected.error.as_deref(), Some("Approval.Rejected"));

    // EUR 1,214.87 computed; the caller claims millions: no approval.
    let small = stack
        .run(
            "InvoiceStateMachine",
            "claims-a-huge-total",
            &json!({"correlation_id": "small-order", "order_total": 99_999_999, "order": event("invoice_order.json")}),
        )
        .await;
    assert_eq!(small.status, "SUCCEEDED", "{:?}", small.cause);
    assert!(!states(&small).contains(&"Ask for approval".to_owned()));

    // A currency with no threshold always asks, however small the order.
    let sek = start(
        &stack,
        "InvoiceStateMachine",
        "no-threshold-for-sek",
        &json!({"correlation_id": "sek-order", "order": in_currency("SEK", "1.00")}),
    )
    .await;
    let request = approval_request(&mut inbox, "sek-order").await;
    assert_eq!(request.body["details"]["currency"], "SEK");
    answer(&stack, &request, r#"{"approved": true}"#).await;
    let approved = stack.wait(&sek).await;
    assert_eq!(approved.status, "SUCCEEDED", "{:?}", approved.cause);
    assert!(
        invoice_keys(&stack)
            .await
            .contains(&"invoices/CUR-SEK.pdf".to_owned())
    );
    stack.finish().await;
}

#[tokio::test]
async fn only_an_explicit_approved_true_approves() {
    let stack = Builder::project().start().await;
    let mut inbox = inbox(&stack);
    let answers = [
        r#"{"approved": "true"}"#,
        r#"{"approved": 1}"#,
        "{}",
        r#"{"approval": {"approved": true}}"#,
        r#""approved""#,
        "[true]",
        "true",
        "null",
        r#"{"approved": false}"#,
        r#"{"approved": [true]}"#,
    ];
    let started = join_all(answers.iter().enumerate().map(|(i, _)| {
        let stack = &stack;
        async move {
            let id = format!("answer-{i}");
            let mut order = event("invoice_order_large.json");
            order["order_id"] = json!(format!("ANS-{i}"));
            start(
                stack,
                "InvoiceStateMachine",
                &id,
                &json!({"correlation_id": id, "order": order}),
            )
            .await
        }
    }))
    .await;
    for (i, (execution, output)) in started.iter().zip(answers).enumerate() {
        let request = approval_request(&mut inbox, &format!("answer-{i}")).await;
        answer(&stack, &request, output).await;
        let run = stack.wait(execution).await;
        assert_eq!(
            (run.status.as_str(), run.error.as_deref()),
            ("FAILED", Some("Approval.Rejected")),
            "answer {output}: {:?}",
            run.cause
        );
        assert!(
            states(&run).contains(&"Notify invoice failed".to_owned()),
            "{output}"
        );
    }
    // An approver's failure answer is a rejection too.
    let failed = start(
        &stack,
        "InvoiceStateMachine",
        "answered-with-a-failure",
        &json!({"correlation_id": "answer-failure", "order": event("invoice_order_large.json")}),
    )
    .await;
    let request = approval_request(&mut inbox, "answer-failure").await;
    stack
        .sfn()
        .send_task_failure()
        .task_token(devstack::queue::task_token(&request).unwrap_or_default())
        .error("Approval.Rejected")
        .cause("amount not agreed")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let run = stack.wait(&failed).await;
    assert_eq!(run.error.as_deref(), Some("Approval.Rejected"));
    assert!(
        invoice_keys(&stack).await.is_empty(),
        "no rejected invoice stored"
    );

    let failures = taken(&mut inbox, "invoice_failed").await;
    assert_eq!(failures, answers.len() + 1, "every rejection is notified");
    stack.finish().await;
}

#[tokio::test]
async fn no_input_ends_in_an_error_no_catch_sees() {
    let stack = Builder::project().start().await;
    let valid = event("invoice_order.json");
    let invoice_inputs = [
        json!("just a string"),
        json!([1, 2]),
        json!(42),
        json!(null),
        json!({}),
        json!({"order": "not an order"}),
        json!({"order": [valid.clone()]}),
        json!({"correlation_id": {"nested": true}, "order": {"order_id": "X"}}),
        json!({"correlation_id": 42, "order": {}}),
        json!({"correlation_id": null, "order": null}),
        json!({"correlation_id": "x".repeat(500), "order": {}}),
    ];
    let backup_inputs = [
        json!("just a string"),
        json!({}),
        json!({"backup": "not an object"}),
        json!({"backup": {"name": 5, "source": []}}),
        json!({"correlation_id": ["a"], "backup": {"name": "x", "source": {"type": "s3"}}}),
    ];
    let runs = [
        ("InvoiceStateMachine", &invoice_inputs[..]),
        ("BackupStateMachine", &backup_inputs[..]),
        ("BackupBatchedStateMachine", &backup_inputs[..]),
    ];
    for (machine, inputs) in runs {
        let executions = join_all(inputs.iter().enumerate().map(|(i, input)| {
            let stack = &stack;
            async move {
                let name = format!("hostile-{machine}-{i}");
                let arn = start(stack, machine, &name, input).await;
                (name, input, stack.wait(&arn).await)
            }
        }))
        .await;
        for (name, input, run) in executions {
            let error = run.error.clone().unwrap_or_default();
            assert!(
                !UNCATCHABLE.contains(&error.as_str()),
                "{machine} on {input}: {error} ({:?})",
                run.cause
            );
            assert_eq!(
                run.status, "FAILED",
                "{machine} on {input}: {:?}",
                run.output
            );
            let notified = states(&run)
                .iter()
                .any(|s| s.starts_with("Notify") && s.ends_with("failed"));
            assert!(
                notified,
                "{machine} on {input} ({name}): {:?}",
                states(&run)
            );
        }
    }
    assert!(invoice_keys(&stack).await.is_empty());
    stack.finish().await;
}

#[tokio::test]
async fn execution_names_aws_accepts_give_one_correlation_id_per_execution() {
    // The first attempt of every notification fails (SQS throttles it for
    // the SDK's three tries): the retry must carry the same correlation ID
    // (and so the same dedup ID).
    let stack = Builder::project().with_fault_proxy().start().await;
    let names = [
        "order@acme",
        "rerun(2)",
        "o'brien-1",
        "Ünïcødé-Läuf",
        "山田-注文",
        &"n".repeat(80),
        "plain-name_1",
    ];
    for (i, name) in names.iter().enumerate() {
        let mut order = event("invoice_order.json");
        order["order_id"] = json!(format!("NAME-{i}"));
        if let Some(proxy) = &stack.stack.faults {
            proxy.inject(Rule::times(3, "SendMessage", Fault::SlowDown));
        }
        // No correlation_id: the execution name is the candidate.
        let run = stack
            .run("InvoiceStateMachine", name, &json!({"order": order}))
            .await;
        assert_eq!(run.status, "SUCCEEDED", "{name}: {:?}", run.cause);
        let output = run.output().unwrap_or_else(|e| panic!("{e:#}"));
        let id = output["invoice"]["correlation_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if sfn_task::CorrelationId::parse(name).is_ok() {
            assert_eq!(id, *name, "a valid name is the ID itself");
        } else {
            assert_eq!(id.len(), 36, "{name}: a derived UUID, got {id}");
            assert!(!id.contains(name));
        }
        assert_eq!(
            output["notification"]["correlation_id"],
            json!(id),
            "{name}"
        );
        // Every task line of the execution, every attempt, has it.
        let execution = &run.arn;
        let lines = stack.stack.log_lines().unwrap_or_default();
        let mine: Vec<Value> = lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["execution_id"].as_str() == Some(execution))
            .collect();
        let attempts = mine
            .iter()
            .filter(|l| l["message"] == "task started" && l["service"] == "notify")
            .count();
        assert_eq!(attempts, 2, "{name}: the notification was retried once");
        for line in &mine {
            assert_eq!(line["correlation_id"], json!(id), "{name}: {line}");
        }
    }
    stack.finish().await;
}

/// An order whose JSON is about `bytes` long (a few bytes under), its
/// lines' descriptions in two-byte characters so bytes and characters
/// differ.
fn order_of_about(bytes: usize) -> Value {
    let size = |o: &Value| serde_json::to_string(o).map_or(0, |t| t.len());
    let line = |i: usize, chars: usize| {
        json!({"description": format!("{i:03} {}", "ü".repeat(chars)), "quantity": "1",
               "unit_price": "1.00", "tax_rate": "0"})
    };
    let mut order = event("invoice_order.json");
    order["order_id"] = json!("NEAR-LIMIT");
    let mut lines = Vec::new();
    loop {
        lines.push(line(lines.len(), 240));
        order["lines"] = json!(lines);
        if size(&order) > bytes {
            lines.pop();
            break;
        }
    }
    order["lines"] = json!(lines);
    let left = bytes.saturating_sub(size(&order) + 100);
    lines.push(line(lines.len(), (left / 2).clamp(1, 240)));
    order["lines"] = json!(lines);
    order
}

#[tokio::test]
async fn an_order_too_large_for_a_task_payload_is_caught_and_notified() {
    let stack = Builder::project().start().await;
    let too_large = order_of_about(259_500);
    let size = serde_json::to_string(&too_large).map_or(0, |t| t.len());
    assert!((258_049..262_000).contains(&size), "{size} bytes");
    let run = stack
        .run(
            "InvoiceStateMachine",
            "near-the-limit",
            &json!({"correlation_id": "near-limit", "order": too_large}),
        )
        .await;
    assert_eq!(run.status, "FAILED");
    assert_eq!(
        run.error.as_deref(),
        Some("Invoice.OrderTooLarge"),
        "{:?}",
        run.cause
    );
    assert_eq!(
        &states(&run)[..],
        ["Check the order", "Notify invoice failed", "Invoice failed"]
    );

    // Just under the budget (and within every task's payload): it goes
    // through pricing, rendering and storing.
    let fits = order_of_about(250_000);
    let run = stack
        .run(
            "InvoiceStateMachine",
            "under-the-limit",
            &json!({"correlation_id": "under-limit", "order": fits}),
        )
        .await;
    assert_eq!(run.status, "SUCCEEDED", "{:?} {:?}", run.error, run.cause);
    assert_eq!(invoice_keys(&stack).await, ["invoices/NEAR-LIMIT.pdf"]);
    let failed = stack
        .notifications()
        .await
        .into_iter()
        .filter(|m| m.body["kind"] == "invoice_failed")
        .count();
    assert_eq!(failed, 1);
    stack.finish().await;
}

#[tokio::test]
async fn the_invoice_charges_the_total_the_approver_saw() {
    // The approval is on the pricing step's numbers; the invoice renders
    // the same order and charges the same total.
    let stack = Builder::project().start().await;
    let mut inbox = inbox(&stack);
    let execution = start(
        &stack,
        "InvoiceStateMachine",
        "approved-order",
        &json!({"correlation_id": "approved-order", "order": event("invoice_order_large.json")}),
    )
    .await;
    let request = approval_request(&mut inbox, "approved-order").await;
    let shown = request.body["details"]["total"].clone();
    answer(&stack, &request, r#"{"approved": true, "approver": "ops"}"#).await;
    let run = stack.wait(&execution).await;
    let output = run.output().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(output["invoice"]["total"], shown);
    stack.finish().await;
}
