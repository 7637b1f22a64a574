//! Sentry over its real HTTP transport into a local endpoint: what arrives,
//! and that a hanging, refusing or failing endpoint changes neither the
//! task's result nor its time bound.

use std::time::Duration;

use serde_json::{Value, json};
use tests::fixture::{self, envelope};
use tests::runtime_api::Completed;
use tests::sentry_sink::{Behaviour, SentrySink};

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture-task");

#[tokio::test]
async fn errors_and_panics_arrive_with_tags_and_lambda_context() {
    let sink = SentrySink::start(Behaviour::Accept)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dsn = sink.dsn();
    let (api, process) = fixture::start(
        FIXTURE,
        &[
            ("SENTRY_DSN", &dsn),
            ("SENTRY_ENVIRONMENT", "test"),
            ("SENTRY_RELEASE", "fixture@1.2.3"),
        ],
    )
    .await;
    let budget = Duration::from_secs(10);

    // Not reported by default: the caller's mistake, not a bug.
    let invalid = api
        .invoke(
            envelope(
                "sentry-0",
                0,
                json!({"action": "fail", "kind": "invalid_input"}),
            ),
            budget,
        )
        .await;
    assert_eq!(invalid.error()["errorType"], "Task.InvalidInput");

    let failed = api
        .invoke(
            envelope(
                "sentry-1",
                3,
                json!({"action": "fail", "kind": "retryable"}),
            ),
            budget,
        )
        .await;
    assert_eq!(failed.error()["errorType"], "Task.Retryable");

    let panicked = api
        .invoke(envelope("sentry-2", 0, json!({"action": "panic"})), budget)
        .await;
    assert_eq!(panicked.error()["errorType"], "Task.Panic");

    let events = sink.wait_for_events(2, Duration::from_secs(10)).await;
    drop(process);
    assert_eq!(events.len(), 2, "{events:#?}");

    let retryable = find(&events, "sentry-1");
    assert_eq!(
        retryable["exception"]["values"][0]["type"],
        "Task.Retryable"
    );
    assert_eq!(
        retryable["exception"]["values"][0]["value"],
        "dependency answered 503"
    );
    assert_eq!(retryable["environment"], "test");
    assert_eq!(retryable["release"], "fixture@1.2.3");
    let tags = &retryable["tags"];
    assert_eq!(tags["task"], "fixture");
    assert_eq!(tags["retry_count"], "3");
    assert_eq!(tags["state_name"], "Render invoice");
    assert_eq!(tags["function_request_id"], failed.request_id.as_str());
    assert!(
        tags["execution_id"]
            .as_str()
            .is_some_and(|e| e.ends_with(":run-1"))
    );
    let lambda = &retryable["contexts"]["lambda"];
    assert_eq!(lambda["function_name"], "fixture-task");
    assert_eq!(lambda["request_id"], failed.request_id.as_str());
    assert_eq!(lambda["log_group"], "/aws/lambda/fixture-task");
    assert_eq!(lambda["log_stream"], "2026/11/24/[$LATEST]abc");
    assert!(
        lambda["remaining_time_ms"]
            .as_u64()
            .is_some_and(|ms| ms > 0 && ms <= 10_000)
    );
    let breadcrumbs = retryable["breadcrumbs"]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        breadcrumbs.iter().any(|b| b["message"] == "task started"),
        "log lines become breadcrumbs: {breadcrumbs:#?}"
    );
    assert!(
        !breadcrumbs
            .iter()
            .any(|b| b.to_string().contains("sentry-0")),
        "a fresh scope per invocation"
    );

    let panic = find(&events, "sentry-2");
    let value = panic["exception"]["values"][0]["value"]
        .as_str()
        .unwrap_or_default();
    assert!(value.contains("fixture panicked on purpose"), "{panic:#}");
    assert_eq!(
        panic["tags"]["function_request_id"],
        panicked.request_id.as_str()
    );
}

fn find<'a>(events: &'a [Value], correlation_id: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["tags"]["correlation_id"] == correlation_id)
        .unwrap_or_else(|| panic!("no event tagged {correlation_id}: {events:#?}"))
}

/// Runs one failing and one succeeding invocation against a broken Sentry
/// with a short budget and checks the answers are the usual ones, in time.
async fn results_unchanged_with(dsn: &str) {
    let (api, process) = fixture::start(FIXTURE, &[("SENTRY_DSN", dsn)]).await;
    // Budget 1.6 s, guard margin 1 s: only the flush's deadline cap keeps a
    // hanging Sentry (2 s default flush) from pushing the answer past it.
    let budget = Duration::from_millis(1600);
    for _ in 0..2 {
        let failed = api
            .invoke(
                envelope(
                    "broken-sentry",
                    0,
                    json!({"action": "fail", "kind": "failed"}),
                ),
                budget,
            )
            .await;
        assert_eq!(
            failed.error(),
            &json!({"errorType": "Task.Failed", "errorMessage": "access denied to bucket"})
        );
        assert_in_time(&failed);
        let ok = api
            .invoke(
                envelope("broken-sentry", 0, json!({"action": "echo", "text": "x"})),
                budget,
            )
            .await;
        assert_eq!(ok.response()["echo"], "x");
        assert_in_time(&ok);
    }
    let lines = process.stop().json_lines();
    let ends = lines
        .iter()
        .filter(|l| l["message"] == "task finished")
        .count();
    assert_eq!(ends, 4);
    let errors: Vec<_> = lines
        .iter()
        .filter(|l| l["level"] == "ERROR" && l["message"] != "task finished")
        .collect();
    assert!(
        errors.is_empty(),
        "only the task's own error at ERROR: {errors:#?}"
    );
}

fn assert_in_time(done: &Completed) {
    assert!(
        done.received_ms <= done.deadline_ms,
        "answered {} ms past the deadline",
        done.received_ms - done.deadline_ms
    );
}

#[tokio::test]
async fn a_hanging_sentry_changes_nothing() {
    let sink = SentrySink::start(Behaviour::Hang)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    results_unchanged_with(&sink.dsn()).await;
}

#[tokio::test]
async fn a_refusing_sentry_changes_nothing() {
    let dsn = SentrySink::refusing_dsn().unwrap_or_else(|e| panic!("{e}"));
    results_unchanged_with(&dsn).await;
}

#[tokio::test]
async fn a_rate_limiting_or_failing_sentry_changes_nothing() {
    for status in [429, 500] {
        let sink = SentrySink::start(Behaviour::Status(status))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        results_unchanged_with(&sink.dsn()).await;
    }
}
