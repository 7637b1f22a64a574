//! The executions list: every execution of the template's state machines,
//! filtered by status and correlation ID; and the objects runs wrote.

use std::sync::Arc;

use anyhow::Context;
use aws_sdk_sfn::types::ExecutionListItem;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::future::join_all;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::{Console, Page, PageError, layout_refreshing};

/// The most executions listed per state machine.
const LIST_LIMIT: i32 = 100;

#[derive(Debug, Deserialize)]
pub(crate) struct ListFilter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    correlation: String,
}

struct Row {
    machine: String,
    arn: String,
    name: String,
    status: String,
    correlation: String,
    start_ms: i64,
    stop_ms: Option<i64>,
    transitions: usize,
}

pub(crate) async fn list(
    State(console): State<Arc<Console>>,
    Query(filter): Query<ListFilter>,
) -> Page {
    let sfn = console.sfn();
    let mut items: Vec<(String, ExecutionListItem)> = Vec::new();
    for machine in &console.spec.state_machines {
        let listed = sfn
            .list_executions()
            .state_machine_arn(&machine.arn)
            .max_results(LIST_LIMIT)
            .send()
            .await
            .with_context(|| format!("listing the executions of {}", machine.name))?;
        items.extend(
            listed
                .executions()
                .iter()
                .map(|e| (machine.name.clone(), e.clone())),
        );
    }
    let rows = join_all(items.into_iter().map(|(machine, item)| {
        let sfn = sfn.clone();
        async move {
            let arn = item.execution_arn().to_owned();
            let described = sfn
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                .ok();
            let input: Value = described
                .as_ref()
                .and_then(|d| d.input())
                .and_then(|i| serde_json::from_str(i).ok())
                .unwrap_or(Value::Null);
            let transitions = crate::workflow::history(&sfn, &arn)
                .await
                .map(|events| {
                    events
                        .iter()
                        .filter(|e| e.kind.ends_with("StateEntered"))
                        .count()
                })
                .unwrap_or(0);
            Row {
                machine,
                name: item.name().to_owned(),
                status: item.status().as_str().to_owned(),
                correlation: input["correlation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                start_ms: item.start_date().to_millis().unwrap_or(0),
                stop_ms: item.stop_date().and_then(|d| d.to_millis().ok()),
                transitions,
                arn,
            }
        }
    }))
    .await;
    let mut rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| filter.status.is_empty() || r.status == filter.status)
        .filter(|r| {
            filter.correlation.is_empty() || r.correlation.contains(filter.correlation.trim())
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.start_ms));
    let running = rows.iter().any(|r| r.status == "RUNNING");
    let statuses = ["", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];
    Ok(layout_refreshing(
        "Executions",
        "executions",
        if running { 2 } else { 0 },
        html! {
            h1 { "Executions" }
            div.card {
                form.filters method="get" action="/console/" {
                    label { "Status"
                        select name="status" id="status" {
                            @for s in statuses {
                                option value=(s) selected[filter.status == s] { (if s.is_empty() { "any" } else { s }) }
                            }
                        }
                    }
                    label { "Correlation ID" input name="correlation" id="correlation" value=(filter.correlation) placeholder="order-A-1001"; }
                    button.primary type="submit" { "Filter" }
                    span.muted { (rows.len()) " executions" }
                }
            }
            div.card {
                table #executions {
                    thead { tr { th { "Status" } th { "Execution" } th { "State machine" } th { "Correlation ID" } th { "Started" } th { "Duration" } th { "Transitions" } } }
                    tbody {
                        @for row in &rows {
                            tr {
                                td { span class=(format!("badge {}", row.status)) { (row.status) } }
                                td { a href=(format!("/console/execution?arn={}", urlencode(&row.arn))) { (row.name) } }
                                td { (row.machine) }
                                td.mono { (row.correlation) }
                                td.mono { (time_text(row.start_ms)) }
                                td { (row.stop_ms.map_or_else(|| "running…".to_owned(), |stop| duration_text(stop - row.start_ms))) }
                                td { (row.transitions) }
                            }
                        }
                        @if rows.is_empty() { tr { td colspan="7" .muted { "No executions yet: run one with make demo or aws stepfunctions start-execution." } } }
                    }
                }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ObjectQuery {
    bucket: String,
    key: String,
}

/// An object the run wrote, with its content type (a PDF opens in the browser).
pub(crate) async fn object(
    State(console): State<Arc<Console>>,
    Query(query): Query<ObjectQuery>,
) -> Result<Response, PageError> {
    let object = console
        .s3()
        .get_object()
        .bucket(&query.bucket)
        .key(&query.key)
        .send()
        .await
        .with_context(|| format!("reading s3://{}/{}", query.bucket, query.key))?;
    let kind = object
        .content_type()
        .unwrap_or("application/octet-stream")
        .to_owned();
    let bytes = object
        .body
        .collect()
        .await
        .context("reading the object")?
        .into_bytes();
    Ok(([(header::CONTENT_TYPE, kind)], bytes).into_response())
}

pub(crate) fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

pub(crate) fn duration_text(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

pub(crate) fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
