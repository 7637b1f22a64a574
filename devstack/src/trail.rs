//! Every log line of one correlation ID across all tasks, in time order: what
//! the saved "everything for one correlation ID" Logs Insights query shows.
//!
//! Lines come from the emulated CloudWatch Logs while a stack runs, or from
//! the local copies of the log streams after it stopped (when no endpoint
//! is left to run the saved query on; a running stack answers the query
//! itself, see [`crate::insights`]), filtered here on the same field.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// One log line with where and when it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct TrailLine {
    /// Milliseconds since the epoch.
    pub time_ms: i64,
    /// The line's JSON.
    pub line: Value,
}

/// All lines of every log stream file under `log_dir` (`<function>/<stream>.log`).
pub fn read_local_lines(log_dir: &Path) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    let Ok(functions) = std::fs::read_dir(log_dir) else {
        return Ok(lines);
    };
    for function in functions {
        let function = function?.path();
        if function.is_dir() {
            lines.extend(read_stream_lines(&function)?);
        }
    }
    Ok(lines)
}

/// All lines of the log streams of one function (`<function>/<stream>.log`).
pub fn read_stream_lines(function_dir: &Path) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    let Ok(streams) = std::fs::read_dir(function_dir) else {
        return Ok(lines);
    };
    for stream in streams {
        let stream = stream?.path();
        let text = std::fs::read_to_string(&stream)
            .with_context(|| format!("reading {}", stream.display()))?;
        lines.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned),
        );
    }
    Ok(lines)
}

/// The lines whose `correlation_id` is `id`, oldest first.
pub fn select<'a>(lines: impl IntoIterator<Item = &'a str>, id: &str) -> Vec<TrailLine> {
    let mut trail: Vec<TrailLine> = lines
        .into_iter()
        .filter_map(|text| serde_json::from_str::<Value>(text).ok())
        .filter(|line| line.get("correlation_id").and_then(Value::as_str) == Some(id))
        .map(|line| TrailLine {
            time_ms: crate::logs::line_time_ms(&line.to_string(), 0),
            line,
        })
        .collect();
    trail.sort_by_key(|t| t.time_ms);
    trail
}

/// The lines of `id` in the emulated CloudWatch Logs, from every log group
/// whose name starts with `group_prefix` (`/aws/lambda/`).
pub async fn from_cloudwatch(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group_prefix: &str,
    id: &str,
) -> Result<Vec<TrailLine>> {
    let mut groups = Vec::new();
    let mut pages = logs
        .describe_log_groups()
        .log_group_name_prefix(group_prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.context("listing log groups")?;
        groups.extend(
            page.log_groups()
                .iter()
                .filter_map(|g| g.log_group_name().map(str::to_owned)),
        );
    }
    let mut messages = Vec::new();
    for group in groups {
        let mut pages = logs
            .filter_log_events()
            .log_group_name(&group)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.with_context(|| format!("reading {group}"))?;
            messages.extend(
                page.events()
                    .iter()
                    .filter_map(|e| e.message().map(str::to_owned)),
            );
        }
    }
    Ok(select(messages.iter().map(String::as_str), id))
}

/// One line for a terminal: time, task, level, message and the fields that
/// say where in the workflow it was.
pub fn format_line(line: &TrailLine) -> String {
    let v = &line.line;
    let text = |key: &str| v.get(key).and_then(Value::as_str).unwrap_or("");
    let time = chrono::DateTime::from_timestamp_millis(line.time_ms)
        .map(|t| t.format("%H:%M:%S%.3f").to_string())
        .unwrap_or_default();
    let mut out = format!(
        "{time} {:<8} {:<5} {}",
        text("service"),
        text("level"),
        text("message")
    );
    for key in [
        "state_name",
        "retry_count",
        "outcome",
        "error_type",
        "duration_ms",
    ] {
        match v.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => out.push_str(&format!(" {key}={s:?}")),
            Some(other) => out.push_str(&format!(" {key}={other}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_one_id_in_time_order_and_skips_other_lines() {
        let lines = [
            r#"{"timestamp":"2026-11-24T10:00:02Z","correlation_id":"a","message":"second"}"#,
            r#"{"timestamp":"2026-11-24T10:00:01Z","correlation_id":"a","message":"first"}"#,
            r#"{"timestamp":"2026-11-24T10:00:00Z","correlation_id":"b","message":"other"}"#,
            "not json",
        ];
        let trail = select(lines, "a");
        let messages: Vec<&str> = trail
            .iter()
            .map(|t| t.line["message"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(messages, ["first", "second"]);
        assert!(format_line(&trail[0]).ends_with("first"));
    }

    #[test]
    fn formatting_shows_workflow_fields() {
        let trail = select(
            [
                r#"{"timestamp":"2026-11-24T10:00:00Z","correlation_id":"a","service":"invoice","level":"INFO","message":"task finished","state_name":"Render","retry_count":1,"outcome":"success"}"#,
            ],
            "a",
        );
        let shown = format_line(&trail[0]);
        assert!(shown.contains("invoice"), "{shown}");
        assert!(shown.contains("state_name=\"Render\""), "{shown}");
        assert!(shown.contains("retry_count=1"), "{shown}");
    }
}
