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

/// How one Sentry endpoint behaved for the task: invocation times in ms.
struct Measured {
    failing: Vec<u64>,
    succeeding: Vec<u64>,
}

/// Budget 1.6 s, guard margin 1 s: only the flush's deadline cap keeps a
/// hanging Sentry (2 s default flush) from pushing the answer past it.
const SENTRY_BUDGET: Duration = Duration::from_millis(1600);
const ROUNDS: usize = 5;

/// Runs failing and succeeding invocations with `dsn` (`None`: Sentry off)
/// and checks the answers are the usual ones, each within its deadline.
async fn results_unchanged_with(dsn: Option<&str>) -> Measured {
    let env: Vec<(&'static str, &str)> = dsn.map(|d| ("SENTRY_DSN", d)).into_iter().collect();
    let (api, process) = fixture::start(FIXTURE, &env).await;
    let mut measured = Measured {
        failing: Vec::new(),
        succeeding: Vec::new(),
    };
    for _ in 0..ROUNDS {
        let failed = api
            .invoke(
                envelope(
                    "broken-sentry",
                    0,
                    json!({"action": "fail", "kind": "failed"}),
                ),
                SENTRY_BUDGET,
            )
            .await;
        assert_eq!(
            failed.error(),
            &json!({"errorType": "Task.Failed", "errorMessage": "access denied to bucket"})
        );
        measured.failing.push(in_time(&failed));
        let ok = api
            .invoke(
                envelope("broken-sentry", 0, json!({"action": "echo", "text": "x"})),
                SENTRY_BUDGET,
            )
            .await;
        assert_eq!(ok.response()["echo"], "x");
        measured.succeeding.push(in_time(&ok));
    }
    let lines = process.stop().json_lines();
    let ends = lines
        .iter()
        .filter(|l| l["message"] == "task finished")
        .count();
    assert_eq!(ends, 2 * ROUNDS);
    let errors: Vec<_> = lines
        .iter()
        .filter(|l| l["level"] == "ERROR" && l["message"] != "task finished")
        .collect();
    assert!(
        errors.is_empty(),
        "only the task's own error at ERROR: {errors:#?}"
    );
    measured
}

/// Asserts the answer came before the deadline; returns how long it took.
fn in_time(done: &Completed) -> u64 {
    assert!(
        done.received_ms <= done.deadline_ms,
        "answered {} ms past the deadline",
        done.received_ms - done.deadline_ms
    );
    let started = done.deadline_ms - SENTRY_BUDGET.as_millis() as u64;
    done.received_ms.saturating_sub(started)
}

fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

/// A hanging, refusing, rate-limiting or failing Sentry changes neither
/// results nor time bounds. The times are measured and reported beside
/// Sentry off and a healthy Sentry (`target/sentry-faults.md`), not
/// asserted beyond the deadline: they depend on the machine.
#[tokio::test]
async fn a_broken_sentry_changes_no_result_and_no_time_bound() {
    let healthy = SentrySink::start(Behaviour::Accept)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let hanging = SentrySink::start(Behaviour::Hang)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let limiting = SentrySink::start(Behaviour::Status(429))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let failing = SentrySink::start(Behaviour::Status(500))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let refusing = SentrySink::refusing_dsn().unwrap_or_else(|e| panic!("{e}"));
    let cases = [
        ("off", None),
        ("healthy (200)", Some(healthy.dsn())),
        ("hanging", Some(hanging.dsn())),
        ("refusing connections", Some(refusing)),
        ("429 rate limited", Some(limiting.dsn())),
        ("500", Some(failing.dsn())),
    ];
    let mut report = String::from(
        "| Sentry endpoint | failing invocation, median ms | succeeding invocation, median ms | deadline |\n\
         |---|---:|---:|---:|\n",
    );
    for (name, dsn) in &cases {
        let measured = results_unchanged_with(dsn.as_deref()).await;
        report.push_str(&format!(
            "| {name} | {} | {} | {} ms |\n",
            median(&measured.failing),
            median(&measured.succeeding),
            SENTRY_BUDGET.as_millis()
        ));
    }
    // The healthy endpoint really received the failures: the others were
    // given real work to fail at.
    assert!(
        !healthy.events().is_empty(),
        "the healthy Sentry got events"
    );
    eprintln!("{report}");
    let _ = std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/sentry-faults.md"),
        report,
    );
}
