//! One execution's page: the definition drawn as a graph with what
//! happened on it, the path with each state's input, output, failed
//! attempts and retries, the correlation trail of log lines, and what the
//! run wrote.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use axum::extract::{Query, State};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use serde_json::Value;

use super::executions::{duration_text, time_text, urlencode};
use super::graph::{self, Visit, Visits};
use super::mask::masked_text;
use super::{Console, Page, layout_refreshing, text};

#[derive(Debug, Deserialize)]
pub(crate) struct ExecutionQuery {
    arn: String,
}

/// One state's part of the execution, from its history events.
#[derive(Debug, Default)]
struct StateRun {
    name: String,
    kind: String,
    entered_ms: i64,
    exited_ms: Option<i64>,
    input: Option<String>,
    output: Option<String>,
    /// (error, cause, time) of each failed attempt.
    failures: Vec<(String, String, i64)>,
    /// Lambda invocations started (time).
    scheduled: Vec<i64>,
}

pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Query(query): Query<ExecutionQuery>,
) -> Page {
    let sfn = console.sfn();
    let described = sfn
        .describe_execution()
        .execution_arn(&query.arn)
        .send()
        .await
        .with_context(|| format!("describing {}", query.arn))?;
    let machine = sfn
        .describe_state_machine()
        .state_machine_arn(described.state_machine_arn())
        .send()
        .await
        .context("describing the state machine")?;
    let definition: Value = serde_json::from_str(machine.definition()).unwrap_or(Value::Null);
    let mut events: Vec<HistoryEvent> = Vec::new();
    let mut pages = sfn
        .get_execution_history()
        .execution_arn(&query.arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        events.extend(
            page.context("reading the history")?
                .events()
                .iter()
                .cloned(),
        );
    }
    events.sort_by_key(HistoryEvent::id);
    let status = described.status().as_str().to_owned();
    let runs = state_runs(&events);
    let visits = visits(&runs, &status);
    let svg = graph::svg(&definition, &visits).unwrap_or_default();
    let input: Value = described
        .input()
        .and_then(|i| serde_json::from_str(i).ok())
        .unwrap_or(Value::Null);
    let correlation = input["correlation_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let trail = if correlation.is_empty() {
        Vec::new()
    } else {
        let lines = crate::trail::read_local_lines(&console.log_dir).unwrap_or_default();
        crate::trail::select(lines.iter().map(String::as_str), &correlation)
    };
    let mut written = Vec::new();
    let mut sent = Vec::new();
    let outputs = described
        .output()
        .into_iter()
        .chain(runs.iter().filter_map(|r| r.output.as_deref()));
    for output in outputs.filter_map(|o| serde_json::from_str::<Value>(o).ok()) {
        objects(&output, &mut written);
        messages(&output, &mut sent);
    }
    written.sort();
    written.dedup();
    sent.sort();
    sent.dedup();
    let start_ms = described.start_date().to_millis().unwrap_or(0);
    let stop_ms = described.stop_date().and_then(|d| d.to_millis().ok());
    // Where the error arose (the last state with a failed attempt) and where
    // the execution ended, which differ when a Catch routed the error on.
    let origin = runs.iter().rev().find(|r| !r.failures.is_empty());
    let ended_in = (status == "FAILED").then(|| runs.last()).flatten();
    Ok(layout_refreshing(
        described.name().unwrap_or("execution"),
        "executions",
        if status == "RUNNING" { 2 } else { 0 },
        html! {
            h1 { (described.name().unwrap_or_default()) " " span #status class=(format!("badge {status}")) { (status) } }
            div.card {
                div.kv {
                    div { "State machine" } div { (machine.name()) }
                    div { "Correlation ID" } div.mono { (correlation) }
                    div { "Started" } div.mono { (time_text(start_ms)) }
                    div { "Duration" } div { (stop_ms.map_or_else(|| "running…".to_owned(), |s| duration_text(s - start_ms))) }
                    div { "Transitions" } div { (runs.len()) }
                    @if let Some(error) = described.error() {
                        div { "Error" } div.mono #error { (error) }
                    }
                }
                @if let Some(cause) = described.cause() { div.errorbox { strong { "Cause " } span.mono { (masked_text(cause)) } } }
            }
            div.card.graph #graph {
                    h2 { "Graph" }
                    div.legend {
                        span { span.swatch style="background:#d1fadf" {} "succeeded" }
                        span { span.swatch style="background:#fee4e2" {} "failed" }
                        span { span.swatch style="background:#d1e9ff" {} "running" }
                        span { span.swatch style="background:#fff" {} "not entered" }
                        span { "— next · " span style="color:#175cd3" { "choice" } " · " span style="color:#b42318" { "catch" } " · " span style="color:#b54708" { "retry" } }
                    }
                    (PreEscaped(svg))
            }
            div.grid {
                div {
                    div.card #path {
                        h2 { "Path" }
                        @if let Some(origin) = origin.filter(|_| status != "SUCCEEDED") {
                            div.errorbox #failed-state {
                                strong { (origin.failures.last().map(|f| f.0.as_str()).unwrap_or_default()) }
                                " in " strong { (origin.name) }
                                @if let Some(end) = ended_in.filter(|e| e.name != origin.name) { "; the execution ended in " strong { (end.name) } }
                            }
                        } @else if let Some(end) = ended_in {
                            div.errorbox #failed-state { "The execution failed in " strong { (end.name) } }
                        }
                        @for run in &runs { (state_details(run, &visits)) }
                    }
                    @if !written.is_empty() || !sent.is_empty() {
                        div.card #written {
                            h2 { "What the run wrote" }
                            ul { @for (bucket, key) in &written {
                                li { a href=(format!("/console/object?bucket={}&key={}", urlencode(bucket), urlencode(key))) target="_blank" { "s3://" (bucket) "/" (key) } }
                            } }
                            ul #sent { @for (queue, kind, id) in &sent {
                                li { "SQS " strong { (kind) } " on " span.mono { (queue.rsplit('/').next().unwrap_or(queue)) } span.muted { " · message " (id) } }
                            } }
                        }
                    }
                }
            }
            div.card #trail {
                h2 { "Correlation trail " span.muted { "(every log line of " (correlation) ", all tasks, in time order)" } }
                table {
                    thead { tr { th { "Time" } th { "Service" } th { "Level" } th { "Message" } th { "State" } th { "Retry" } th { "Outcome" } th { "ms" } th { "Cold" } } }
                    tbody { @for line in &trail {
                        @let l = &line.line;
                        tr {
                            td.mono { (time_text(line.time_ms)) }
                            td { (text(&l["service"])) }
                            td { (text(&l["level"])) }
                            td { (text(&l["message"])) }
                            td { (text(&l["state_name"])) }
                            td { (text(&l["retry_count"])) }
                            td { (text(&l["outcome"])) " " span.mono { (text(&l["error_type"])) } }
                            td { (text(&l["duration_ms"])) }
                            td { (if l["cold_start"] == true { "cold" } else { "" }) }
                        }
                    } }
                }
            }
        },
    ))
}

fn state_details(run: &StateRun, visits: &Visits) -> Markup {
    let failed = visits.get(&run.name).is_some_and(|v| v.0 == Visit::Failed);
    let duration = run.exited_ms.map(|e| duration_text(e - run.entered_ms));
    html! {
        details class=(if failed { "state state-failed" } else { "state" }) data-state=(run.name) {
            summary {
                (run.name) " " span.muted { (run.kind) }
                @if let Some(d) = duration { " · " (d) }
                @if !run.scheduled.is_empty() { " · " (run.scheduled.len()) " invocation" @if run.scheduled.len() > 1 { "s" } }
                @if !run.failures.is_empty() { " · " span style="color:#b42318" { (run.failures.len()) " failed" } }
            }
            @for (i, (error, cause, at)) in run.failures.iter().enumerate() {
                div.errorbox {
                    "attempt " (i + 1) ": " strong { (error) }
                    @if let Some(next) = run.scheduled.get(i + 1) { " — retried after " (duration_text(next - at)) }
                    pre { (masked_text(cause)) }
                }
            }
            @if let Some(input) = &run.input { div.muted { "input" } pre { (masked_text(input)) } }
            @if let Some(output) = &run.output { div.muted { "output" } pre { (masked_text(output)) } }
        }
    }
}

fn state_runs(events: &[HistoryEvent]) -> Vec<StateRun> {
    let mut runs: Vec<StateRun> = Vec::new();
    for event in events {
        let at = event.timestamp().to_millis().unwrap_or(0);
        let kind = event.r#type().as_str();
        if let Some(entered) = event.state_entered_event_details() {
            runs.push(StateRun {
                name: entered.name().to_owned(),
                kind: kind.trim_end_matches("StateEntered").to_owned(),
                entered_ms: at,
                input: entered.input().map(str::to_owned),
                ..StateRun::default()
            });
        } else if let Some(exited) = event.state_exited_event_details() {
            if let Some(run) = runs
                .iter_mut()
                .rev()
                .find(|r| r.name == exited.name() && r.exited_ms.is_none())
            {
                run.exited_ms = Some(at);
                run.output = exited.output().map(str::to_owned);
            }
        } else if let Some(run) = runs.last_mut() {
            match event.r#type() {
                HistoryEventType::TaskScheduled | HistoryEventType::LambdaFunctionScheduled => {
                    run.scheduled.push(at)
                }
                HistoryEventType::TaskFailed => {
                    if let Some(d) = event.task_failed_event_details() {
                        run.failures.push((
                            d.error().unwrap_or("?").to_owned(),
                            d.cause().unwrap_or_default().to_owned(),
                            at,
                        ));
                    }
                }
                HistoryEventType::TaskTimedOut => {
                    if let Some(d) = event.task_timed_out_event_details() {
                        run.failures.push((
                            d.error().unwrap_or("States.Timeout").to_owned(),
                            d.cause().unwrap_or_default().to_owned(),
                            at,
                        ));
                    }
                }
                HistoryEventType::LambdaFunctionFailed => {
                    if let Some(d) = event.lambda_function_failed_event_details() {
                        run.failures.push((
                            d.error().unwrap_or("?").to_owned(),
                            d.cause().unwrap_or_default().to_owned(),
                            at,
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    runs
}

/// What happened to each state: a state that never left is running, or the
/// one the execution failed in when the execution has ended.
fn visits(runs: &[StateRun], status: &str) -> Visits {
    let mut out: Visits = BTreeMap::new();
    for run in runs {
        let visit = match run.exited_ms {
            Some(_) => Visit::Succeeded,
            None if status == "RUNNING" => Visit::Running,
            None => Visit::Failed,
        };
        let entry = out.entry(run.name.clone()).or_insert((visit, 0));
        entry.1 += run.failures.len();
        if visit != Visit::Succeeded {
            entry.0 = visit;
        }
    }
    // The execution failed in a Fail state, or in the last state entered.
    if status == "FAILED"
        && !out.values().any(|v| v.0 == Visit::Failed)
        && let Some(last) = runs.last()
    {
        out.insert(
            last.name.clone(),
            (Visit::Failed, out.get(&last.name).map_or(0, |v| v.1)),
        );
    }
    out
}

/// Every `{"bucket": .., "key": ..}` object in `value`.
fn objects(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if let (Some(bucket), Some(key)) = (
                map.get("bucket").and_then(Value::as_str),
                map.get("key").and_then(Value::as_str),
            ) {
                out.push((bucket.to_owned(), key.to_owned()));
            }
            map.values().for_each(|v| objects(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| objects(v, out)),
        _ => {}
    }
}

/// Every SQS message a task reported sending (`{"queue", "message_id"}`,
/// as the notify task outputs): (queue URL, kind, message id).
fn messages(value: &Value, out: &mut Vec<(String, String, String)>) {
    match value {
        Value::Object(map) => {
            if let (Some(queue), Some(id)) = (
                map.get("queue").and_then(Value::as_str),
                map.get("message_id").and_then(Value::as_str),
            ) {
                let kind = map.get("kind").and_then(Value::as_str).unwrap_or("message");
                out.push((queue.to_owned(), kind.to_owned(), id.to_owned()));
            }
            map.values().for_each(|v| messages(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| messages(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(name: &str, exited: bool, failures: usize) -> StateRun {
        StateRun {
            name: name.to_owned(),
            exited_ms: exited.then_some(1),
            failures: (0..failures)
                .map(|_| ("Task.Retryable".to_owned(), String::new(), 0))
                .collect(),
            ..StateRun::default()
        }
    }

    #[test]
    fn a_state_that_never_left_is_running_or_failed_by_the_executions_status() {
        let runs = [run("Price", true, 2), run("Render", false, 1)];
        let running = visits(&runs, "RUNNING");
        assert_eq!(running["Price"], (Visit::Succeeded, 2));
        assert_eq!(running["Render"], (Visit::Running, 1));
        assert_eq!(visits(&runs, "FAILED")["Render"], (Visit::Failed, 1));
        // Failed in a Fail state that left normally: the last state is marked.
        let caught = [run("Price", true, 1), run("Invoice failed", true, 0)];
        assert_eq!(visits(&caught, "FAILED")["Invoice failed"].0, Visit::Failed);
    }

    #[test]
    fn what_a_run_wrote_is_found_at_any_depth() {
        let mut found = Vec::new();
        objects(
            &json!({"invoice": {"bucket": "b", "key": "invoices/A-1.pdf"}, "parts": [{"bucket": "c", "key": "k"}]}),
            &mut found,
        );
        found.sort();
        assert_eq!(
            found,
            [
                ("b".to_owned(), "invoices/A-1.pdf".to_owned()),
                ("c".to_owned(), "k".to_owned())
            ]
        );
        assert_eq!(urlencode("a:b/c d"), "a%3Ab%2Fc%20d");
    }
}
