//! The template's saved Logs Insights queries (`AWS::Logs::QueryDefinition`)
//! run, through the SDK and the AWS CLI, against the logs of a real run on
//! the local stack, and return the rows that run should give: a wrong field
//! name or a wrong filter in one of them fails here, not in production.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use tests::aws_cli::aws_json;
use tests::local_stack::{Builder, LocalStack, event};

const FLAKY: &str = "order-flaky-1";

fn invoice_input(correlation_id: &str, order_file: &str, total: Value) -> Value {
    json!({ "correlation_id": correlation_id, "order_total": total, "order": event(order_file) })
}

/// Every JSON line the functions wrote, parsed, with the function it came from.
fn local_lines(stack: &LocalStack) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for function in &stack.stack.spec.functions {
        let dir = stack.stack.log_dir.join(&function.name);
        let lines = devstack::trail::read_stream_lines(&dir).unwrap_or_default();
        for line in lines {
            if let Ok(value) = serde_json::from_str::<Value>(&line) {
                out.push((function.name.clone(), value));
            }
        }
    }
    out
}

fn window() -> (i64, i64) {
    let now = chrono::Utc::now().timestamp();
    (now - 3600, now + 60)
}

async fn saved(
    stack: &LocalStack,
    logical_id: &str,
    replace: &[(&str, &str)],
) -> devstack::insights::Answer {
    let query = stack
        .stack
        .spec
        .saved_query(logical_id)
        .unwrap_or_else(|| panic!("no saved query {logical_id}"))
        .clone();
    let mut text = query.query.clone();
    for (from, to) in replace {
        text = text.replace(from, to);
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(&stack.stack.aws);
    let (start, end) = window();
    let answer = devstack::insights::run(&logs, &query.log_groups, &text, start, end)
        .await
        .unwrap_or_else(|e| panic!("{logical_id}: {e:#}"));
    let unknown = devstack::insights::unknown_fields(
        &devstack::clients::http(),
        &stack.stack.endpoint,
        &stack.stack.spec.placement.region,
        &answer.query_id,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        unknown.is_empty(),
        "saved query {logical_id} reads fields no log line of the run has: {unknown:?}"
    );
    answer
}

fn number(row: &devstack::insights::Row, field: &str) -> f64 {
    row.get(field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {field} in {row:?}"))
}

/// Waits until CloudWatch Logs holds every `task finished` line written locally.
async fn wait_for_shipping(stack: &LocalStack, groups: &[String]) {
    let expected = local_lines(stack)
        .iter()
        .filter(|(_, l)| l["message"] == "task finished")
        .count();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&stack.stack.aws);
    let (start, end) = window();
    for _ in 0..100 {
        let answer = devstack::insights::run(
            &logs,
            groups,
            r#"filter message = "task finished" | stats count(*) as n"#,
            start,
            end,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
        if answer.rows.first().map(|r| number(r, "n")) == Some(expected as f64) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("CloudWatch Logs never held the {expected} task-finished lines");
}

#[tokio::test]
async fn every_saved_query_returns_what_the_run_logged() {
    let stack = Builder::project().with_fault_proxy().start().await;
    let ok = stack
        .run(
            "InvoiceStateMachine",
            "insights-ok",
            &invoice_input("order-A-1001", "invoice_order.json", json!(1214.87)),
        )
        .await;
    assert_eq!(ok.status, "SUCCEEDED", "{:?}", ok.cause);
    let bad = stack
        .run(
            "InvoiceStateMachine",
            "insights-bad",
            &invoice_input("order-bad-1", "invoice_order_bad.json", json!(10)),
        )
        .await;
    assert_eq!(bad.error.as_deref(), Some("Task.InvalidInput"));
    if let Some(proxy) = &stack.stack.faults {
        proxy.inject(devstack::faults::Rule::times(
            6,
            "/invoices/",
            devstack::faults::Fault::SlowDown,
        ));
    }
    let flaky = stack
        .run(
            "InvoiceStateMachine",
            "insights-flaky",
            &invoice_input(FLAKY, "invoice_order.json", json!(1214.87)),
        )
        .await;
    assert_eq!(flaky.status, "SUCCEEDED", "{:?}", flaky.cause);

    let groups = stack
        .stack
        .spec
        .saved_query("QueryFailures")
        .map(|q| q.log_groups.clone())
        .unwrap_or_default();
    wait_for_shipping(&stack, &groups).await;
    let lines = local_lines(&stack);
    let finished: Vec<&Value> = lines
        .iter()
        .map(|(_, l)| l)
        .filter(|l| l["message"] == "task finished")
        .collect();

    // Failures by task and error type: the run's failed ends, counted.
    let mut expected: BTreeMap<(String, String), usize> = BTreeMap::new();
    for line in finished.iter().filter(|l| l["outcome"] != "success") {
        let key = (
            line["service"].as_str().unwrap_or_default().to_owned(),
            line["error_type"].as_str().unwrap_or_default().to_owned(),
        );
        *expected.entry(key).or_default() += 1;
    }
    assert!(
        expected.contains_key(&("invoice".to_owned(), "Task.Retryable".to_owned())),
        "{expected:?}"
    );
    let failures = saved(&stack, "QueryFailures", &[]).await;
    let got: BTreeMap<(String, String), usize> = failures
        .rows
        .iter()
        .map(|r| {
            (
                (r["service"].clone(), r["error_type"].clone()),
                number(r, "failures") as usize,
            )
        })
        .collect();
    assert_eq!(got, expected);
    let counts: Vec<f64> = failures
        .rows
        .iter()
        .map(|r| number(r, "failures"))
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] >= w[1]),
        "sorted desc: {counts:?}"
    );

    // Duration percentiles: one row per service that finished, ordered.
    let durations = saved(&stack, "QueryDurations", &[]).await;
    let services: BTreeSet<&str> = finished
        .iter()
        .filter_map(|l| l["service"].as_str())
        .collect();
    let got: BTreeSet<&str> = durations
        .rows
        .iter()
        .map(|r| r["service"].as_str())
        .collect();
    assert_eq!(got, services);
    for row in &durations.rows {
        let (p50, p95, p99) = (number(row, "p50"), number(row, "p95"), number(row, "p99"));
        assert!(p50 <= p95 && p95 <= p99, "{row:?}");
        let invocations = finished
            .iter()
            .filter(|l| l["service"] == row["service"].as_str())
            .count();
        assert_eq!(number(row, "invocations") as usize, invocations, "{row:?}");
    }

    // Cold starts: as many as processes the local Lambda service started.
    let colds = saved(&stack, "QueryColdStarts", &[]).await;
    let mut started: BTreeMap<String, usize> = BTreeMap::new();
    let mut service_of: BTreeMap<&str, &str> = BTreeMap::new();
    for (function, line) in &lines {
        if let Some(service) = line["service"].as_str() {
            service_of.insert(function, service);
        }
    }
    for (function, line) in &lines {
        if line["type"] == "platform.initStart" {
            let service = service_of
                .get(function.as_str())
                .copied()
                .unwrap_or_default();
            *started.entry(service.to_owned()).or_default() += 1;
        }
    }
    let got: BTreeMap<String, usize> = colds
        .rows
        .iter()
        .map(|r| (r["service"].clone(), number(r, "cold_starts") as usize))
        .collect();
    assert_eq!(got, started);

    // One correlation ID's trail: every line, across tasks, oldest first.
    let trail = saved(
        &stack,
        "QueryCorrelationTrail",
        &[("REPLACE-WITH-CORRELATION-ID", FLAKY)],
    )
    .await;
    assert_eq!(trail.rows.len(), stack.trail(FLAKY).len());
    let stamps: Vec<&str> = trail
        .rows
        .iter()
        .map(|r| r["@timestamp"].as_str())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    let trail_services: BTreeSet<&str> = trail
        .rows
        .iter()
        .filter_map(|r| r.get("service"))
        .map(String::as_str)
        .collect();
    assert!(
        trail_services.is_superset(&BTreeSet::from(["invoice", "notify"])),
        "{trail_services:?}"
    );

    // Retries: the flaky run's second and third attempts, newest first.
    let retries = saved(&stack, "QueryRetries", &[]).await;
    let retried: Vec<(String, String)> = retries
        .rows
        .iter()
        .map(|r| (r["correlation_id"].clone(), r["retry_count"].clone()))
        .collect();
    assert_eq!(
        retried,
        [
            (FLAKY.to_owned(), "2".to_owned()),
            (FLAKY.to_owned(), "1".to_owned())
        ]
    );

    // The AWS CLI gets the same answer from the same endpoint.
    let (start, end) = window();
    let failures_query = stack
        .stack
        .spec
        .saved_query("QueryFailures")
        .map(|q| q.query.clone())
        .unwrap_or_default();
    let mut args = vec![
        "logs",
        "start-query",
        "--query-string",
        failures_query.as_str(),
    ];
    let (start, end) = (start.to_string(), end.to_string());
    args.extend([
        "--start-time",
        start.as_str(),
        "--end-time",
        end.as_str(),
        "--log-group-names",
    ]);
    args.extend(groups.iter().map(String::as_str));
    let started = aws_json(&stack.stack.endpoint, &args).await;
    let id = started["queryId"].as_str().unwrap_or_default().to_owned();
    let results = aws_json(
        &stack.stack.endpoint,
        &["logs", "get-query-results", "--query-id", &id],
    )
    .await;
    assert_eq!(results["status"], "Complete");
    assert_eq!(
        results["results"].as_array().map(Vec::len),
        Some(failures.rows.len())
    );
    stack.finish().await;
}

#[tokio::test]
async fn a_misspelt_field_is_reported_and_a_malformed_query_refused() {
    let stack = Builder::project().start().await;
    let ok = stack
        .run(
            "InvoiceStateMachine",
            "insights-typo",
            &invoice_input("order-A-1001", "invoice_order.json", json!(1214.87)),
        )
        .await;
    assert_eq!(ok.status, "SUCCEEDED", "{:?}", ok.cause);
    let groups = stack.stack.spec.log_groups.clone();
    wait_for_shipping(&stack, &groups).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&stack.stack.aws);
    let (start, end) = window();

    let answer = devstack::insights::run(
        &logs,
        &groups,
        r#"fields correlation_idd, service | filter message = "task finished""#,
        start,
        end,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!answer.rows.is_empty());
    let unknown = devstack::insights::unknown_fields(
        &devstack::clients::http(),
        &stack.stack.endpoint,
        &stack.stack.spec.placement.region,
        &answer.query_id,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(unknown, ["correlation_idd"]);

    let refused = logs
        .start_query()
        .set_log_group_names(Some(groups.clone()))
        .query_string("stats count(*) by")
        .start_time(start)
        .end_time(end)
        .send()
        .await
        .map_err(aws_sdk_cloudwatchlogs::Error::from);
    assert!(
        matches!(
            refused,
            Err(aws_sdk_cloudwatchlogs::Error::MalformedQueryException(_))
        ),
        "{refused:?}"
    );

    // A finished query cannot be stopped; an unknown one does not exist.
    let stopped = logs
        .stop_query()
        .query_id(&answer.query_id)
        .send()
        .await
        .map_err(aws_sdk_cloudwatchlogs::Error::from);
    assert!(
        matches!(
            stopped,
            Err(aws_sdk_cloudwatchlogs::Error::InvalidParameterException(_))
        ),
        "{stopped:?}"
    );
    let missing = logs
        .get_query_results()
        .query_id("no-such-query")
        .send()
        .await
        .map_err(aws_sdk_cloudwatchlogs::Error::from);
    assert!(
        matches!(
            missing,
            Err(aws_sdk_cloudwatchlogs::Error::ResourceNotFoundException(_))
        ),
        "{missing:?}"
    );
    stack.finish().await;
}
