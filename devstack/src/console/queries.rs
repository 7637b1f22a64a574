//! The Logs Insights page: a query box preloaded with the template's saved
//! queries (`AWS::Logs::QueryDefinition`), run over the local log groups
//! with `StartQuery`/`GetQueryResults`, results as a table.

use std::sync::Arc;

use axum::extract::{Query, State};
use maud::html;
use serde::Deserialize;

use super::executions::urlencode;
use super::{Console, Page, layout};

#[derive(Debug, Deserialize)]
pub(crate) struct QueryForm {
    /// A saved query's logical ID, to load it.
    #[serde(default)]
    saved: String,
    #[serde(default)]
    query: String,
    /// Log group names, comma-separated.
    #[serde(default)]
    groups: String,
    /// How far back, in minutes.
    #[serde(default = "default_minutes")]
    minutes: i64,
}

fn default_minutes() -> i64 {
    60
}

pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Query(form): Query<QueryForm>,
) -> Page {
    let saved = console.spec.saved_query(&form.saved).cloned();
    let (query, groups) = match &saved {
        Some(s) => (s.query.clone(), s.log_groups.join(", ")),
        None => (form.query.clone(), form.groups.clone()),
    };
    let groups = if groups.trim().is_empty() {
        console.spec.log_groups.join(", ")
    } else {
        groups
    };
    let group_list: Vec<String> = groups
        .split(',')
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect();
    let now = chrono::Utc::now().timestamp();
    let start = now - form.minutes.max(1) * 60;
    let mut columns: Vec<String> = Vec::new();
    let mut answer = None;
    let mut error = None;
    let mut unknown = Vec::new();
    if !query.trim().is_empty() && saved.is_none() {
        match crate::insights::run(&console.logs(), &group_list, &query, start, now + 60).await {
            Ok(found) => {
                for row in &found.rows {
                    for field in row.keys() {
                        if !columns.contains(field) {
                            columns.push(field.clone());
                        }
                    }
                }
                // The query's own order of fields, as far as it names them.
                columns.sort_by_key(|c| query.find(c.as_str()).unwrap_or(usize::MAX));
                let placement = &console.spec.placement;
                unknown = crate::insights::unknown_fields(
                    &crate::clients::http(),
                    &placement.endpoint,
                    &placement.region,
                    &found.query_id,
                )
                .await
                .unwrap_or_default();
                answer = Some(found);
            }
            Err(e) => error = Some(format!("{e:#}")),
        }
    }
    let windows = [
        (15, "15 minutes"),
        (60, "1 hour"),
        (1440, "1 day"),
        (10080, "1 week"),
    ];
    Ok(layout(
        "Logs Insights",
        "insights",
        html! {
            h1 { "Logs Insights" }
            div.card {
                h2 { "Saved queries " span.muted { "(from template.yaml)" } }
                ul #saved { @for s in &console.spec.saved_queries {
                    li { a href=(format!("/console/insights?saved={}", urlencode(&s.logical_id))) { (s.name) } span.muted { " · " (s.logical_id) } }
                } }
            }
            div.card {
                form method="get" action="/console/insights" {
                    label { "Query" textarea name="query" id="query" rows="6" { (query) } }
                    div.filters style="margin-top:10px" {
                        label style="flex:1" { "Log groups (comma-separated)" input name="groups" id="groups" value=(groups) style="width:100%"; }
                        label { "Window" select name="minutes" { @for (m, text) in windows { option value=(m) selected[form.minutes == m] { (text) } } } }
                        button.primary type="submit" id="run" { "Run query" }
                    }
                }
                @if saved.is_some() { p.muted { "Loaded; press Run query (replace placeholders such as REPLACE-WITH-CORRELATION-ID first)." } }
            }
            @if let Some(e) = &error { div.errorbox #query-error { (e) } }
            @if !unknown.is_empty() {
                div.warning #unknown-fields { "No log line in these groups has the field(s) " strong { (unknown.join(", ")) } ": on AWS they would show as empty columns." }
            }
            @if let Some(found) = &answer {
                div.card {
                    h2 { (found.rows.len()) " rows " span.muted { "· " (found.records_matched) " events matched of " (found.records_scanned) " scanned" } }
                    table #results {
                        thead { tr { @for c in &columns { th { (c) } } } }
                        tbody { @for row in &found.rows {
                            tr { @for c in &columns { td.mono { (row.get(c).cloned().unwrap_or_default()) } } }
                        } }
                    }
                }
            }
        },
    ))
}
