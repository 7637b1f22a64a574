//! Logs Insights queries against the local stack, as an operator runs them:
//! `StartQuery`, then `GetQueryResults` until the query has ended.
//!
//! The local endpoint evaluates the query language itself
//! (`devstack/moto/devstack_moto/insights/`); this module is its client, for
//! the console, the saved-query tests and anyone scripting against the stack.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::types::QueryStatus;
use serde_json::{Value, json};

/// How long a query may run before [`run`] gives up on it.
pub const QUERY_LIMIT: Duration = Duration::from_secs(60);

/// One row: field name to value, as `GetQueryResults` returns them (text).
pub type Row = BTreeMap<String, String>;

/// What a finished query returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The query's id.
    pub query_id: String,
    /// Its rows, without `@ptr`.
    pub rows: Vec<Row>,
    /// Events that matched, as `statistics.recordsMatched` says.
    pub records_matched: f64,
    /// Events scanned.
    pub records_scanned: f64,
}

/// Runs `query` over `groups` for events between `start` and `end`
/// (seconds since the epoch), waiting until it has ended.
pub async fn run(
    logs: &Client,
    groups: &[String],
    query: &str,
    start: i64,
    end: i64,
) -> Result<Answer> {
    let started = logs
        .start_query()
        .set_log_group_names(Some(groups.to_vec()))
        .query_string(query)
        .start_time(start)
        .end_time(end)
        .send()
        .await
        .map_err(aws_sdk_cloudwatchlogs::Error::from)
        .context("StartQuery")?;
    let query_id = started.query_id().unwrap_or_default().to_owned();
    let deadline = tokio::time::Instant::now() + QUERY_LIMIT;
    loop {
        let results = logs
            .get_query_results()
            .query_id(&query_id)
            .send()
            .await
            .map_err(aws_sdk_cloudwatchlogs::Error::from)
            .context("GetQueryResults")?;
        match results.status() {
            Some(QueryStatus::Complete) => {
                let rows = results
                    .results()
                    .iter()
                    .map(|fields| {
                        fields
                            .iter()
                            .filter(|f| f.field() != Some("@ptr"))
                            .filter_map(|f| Some((f.field()?.to_owned(), f.value()?.to_owned())))
                            .collect()
                    })
                    .collect();
                let stats = results.statistics();
                return Ok(Answer {
                    query_id,
                    rows,
                    records_matched: stats.map_or(0.0, |s| s.records_matched()),
                    records_scanned: stats.map_or(0.0, |s| s.records_scanned()),
                });
            }
            Some(QueryStatus::Running | QueryStatus::Scheduled) | None => {}
            Some(other) => bail!("query {query_id} ended {other:?}"),
        }
        if tokio::time::Instant::now() > deadline {
            bail!("query {query_id} still running after {QUERY_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The fields `query_id` reads that no event it scanned has: the local
/// endpoint's addition to `GetQueryResults` (AWS shows such a field as an
/// empty column, which is how a misspelt field name goes unnoticed).
pub async fn unknown_fields(
    http: &reqwest::Client,
    endpoint: &str,
    region: &str,
    query_id: &str,
) -> Result<Vec<String>> {
    let answer: Value = http
        .post(endpoint)
        .header("X-Amz-Target", "Logs_20140328.GetQueryResults")
        .header("Content-Type", "application/x-amz-json-1.1")
        // moto reads the region from the credential scope; it checks no signature.
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=local/20260101/{region}/logs/aws4_request, SignedHeaders=host, Signature=0"
            ),
        )
        .body(json!({ "queryId": query_id }).to_string())
        .send()
        .await
        .context("GetQueryResults")?
        .error_for_status()
        .context("GetQueryResults")?
        .json()
        .await
        .context("GetQueryResults answer")?;
    Ok(answer["devstackUnknownFields"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}
