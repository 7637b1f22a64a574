//! The local console: executions drawn as graphs, approvals answered as a
//! portal would, Logs Insights queries run over the local log groups.
//!
//! Served by the local endpoint under `/console/` (127.0.0.1 only, like the
//! endpoint itself), from the process's own memory: no file, script or font
//! is fetched at run time, so it works offline. It reads everything through
//! the same AWS APIs a user's tools would (Step Functions, S3, SQS, Logs),
//! plus the local copy of the function log streams for correlation trails.
//! Nothing of it is part of what `sam deploy` ships.

mod approvals;
mod execution;
mod executions;
mod graph;
mod mask;
mod queries;

use std::path::PathBuf;
use std::sync::Arc;

use aws_config::SdkConfig;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use tokio::sync::Mutex;

use crate::queue::Received;
use crate::template::StackSpec;

/// What the console's pages share.
#[derive(Debug)]
pub struct Console {
    spec: StackSpec,
    aws: SdkConfig,
    log_dir: PathBuf,
    /// Approval requests taken off the notification queue, not yet answered.
    pending: Mutex<Vec<Received>>,
}

impl Console {
    /// A console over the stack described by `spec`, reaching it with `aws`.
    pub fn new(spec: StackSpec, aws: SdkConfig, log_dir: PathBuf) -> Self {
        Self {
            spec,
            aws,
            log_dir,
            pending: Mutex::new(Vec::new()),
        }
    }

    fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(&self.aws)
    }

    fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.aws)
    }

    fn s3(&self) -> aws_sdk_s3::Client {
        crate::clients::s3(&self.aws)
    }

    fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.aws)
    }
}

/// The console's routes, all under `/console/`.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/console", get(executions::list))
        .route("/console/", get(executions::list))
        .route("/console/execution", get(execution::page))
        .route("/console/object", get(executions::object))
        .route("/console/approvals", get(approvals::page))
        .route("/console/approvals/answer", post(approvals::answer))
        .route("/console/api/approvals", get(approvals::pending_json))
        .route("/console/insights", get(queries::page))
        .with_state(console)
}

/// A JSON value as a table cell shows it: text as is, nothing for null.
pub(crate) fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An error page: the console shows what failed instead of a blank page.
pub(crate) struct PageError(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for PageError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = layout(
            "Error",
            "",
            html! { div.card.failed { h2 { "Something failed" } pre { (format!("{:#}", self.0)) } } },
        );
        (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
    }
}

pub(crate) type Page = Result<Markup, PageError>;

/// The page frame: navigation, styles, and `refresh` seconds (0: none).
pub(crate) fn layout(title: &str, active: &str, body: Markup) -> Markup {
    layout_refreshing(title, active, 0, body)
}

pub(crate) fn layout_refreshing(title: &str, active: &str, refresh: u32, body: Markup) -> Markup {
    let tab = |href: &str, name: &str, label: &str| {
        html! { a.tab.active[active == name] href=(href) { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh > 0 { meta http-equiv="refresh" content=(refresh); }
                title { (title) " · devstack console" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    span.brand { "devstack" }
                    nav {
                        (tab("/console/", "executions", "Executions"))
                        (tab("/console/approvals", "approvals", "Approvals"))
                        (tab("/console/insights", "insights", "Logs Insights"))
                    }
                    span.local { "local only · 127.0.0.1" }
                }
                main { (body) }
            }
        }
    }
}

const STYLE: &str = r#"
:root { --bg:#f6f7f9; --card:#fff; --ink:#1d2330; --muted:#667085; --line:#e3e6eb;
  --ok:#13795b; --okbg:#e3f6ee; --bad:#b42318; --badbg:#fdecea; --run:#175cd3; --runbg:#e8f0fe; --warn:#b54708; --warnbg:#fff4e5; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; background:var(--bg); color:var(--ink); }
header { display:flex; align-items:center; gap:24px; padding:10px 24px; background:#101828; color:#fff; }
.brand { font-weight:700; letter-spacing:.5px; }
nav { display:flex; gap:4px; flex:1; }
.tab { color:#d0d5dd; text-decoration:none; padding:6px 12px; border-radius:6px; }
.tab:hover { background:#1d2939; color:#fff; }
.tab.active { background:#344054; color:#fff; }
.local { color:#98a2b3; font-size:12px; }
main { padding:20px 24px; max-width:1400px; margin:0 auto; }
h1 { font-size:20px; margin:0 0 12px; } h2 { font-size:16px; margin:0 0 10px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:16px; margin-bottom:16px; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; text-transform:uppercase; letter-spacing:.4px; color:var(--muted); font-weight:600; }
tr:hover td { background:#fafbfc; }
a { color:var(--run); }
.badge { display:inline-block; padding:2px 8px; border-radius:999px; font-size:12px; font-weight:600; }
.SUCCEEDED { color:var(--ok); background:var(--okbg); } .FAILED, .TIMED_OUT, .ABORTED { color:var(--bad); background:var(--badbg); }
.RUNNING { color:var(--run); background:var(--runbg); } .PENDING { color:var(--warn); background:var(--warnbg); }
form.filters { display:flex; gap:10px; align-items:end; flex-wrap:wrap; }
label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); gap:4px; }
input, select, textarea { font:inherit; padding:6px 8px; border:1px solid #d0d5dd; border-radius:6px; background:#fff; }
textarea { width:100%; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size:13px; }
button { font:inherit; padding:7px 14px; border-radius:6px; border:1px solid #d0d5dd; background:#fff; cursor:pointer; }
button.primary { background:var(--run); border-color:var(--run); color:#fff; }
button.approve { background:var(--ok); border-color:var(--ok); color:#fff; }
button.reject { background:#fff; border-color:var(--bad); color:var(--bad); }
pre { background:#f2f4f7; padding:10px; border-radius:6px; overflow:auto; max-height:360px; font-size:12px; margin:6px 0; }
.muted { color:var(--muted); } .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size:12px; }
.grid { display:grid; grid-template-columns: minmax(380px, 1fr) minmax(420px, 1.2fr); gap:16px; align-items:start; }
.graph { overflow:auto; } .graph svg { max-width:100%; min-width:900px; height:auto; }
.legend span { margin-right:14px; font-size:12px; }
.swatch { display:inline-block; width:12px; height:12px; border-radius:3px; vertical-align:-2px; margin-right:4px; border:1px solid #98a2b3; }
details { border-bottom:1px solid var(--line); padding:6px 0; } summary { cursor:pointer; }
.state-failed summary { color:var(--bad); font-weight:600; }
.warning { color:var(--warn); background:var(--warnbg); padding:8px 10px; border-radius:6px; margin:8px 0; }
.errorbox { color:var(--bad); background:var(--badbg); padding:8px 10px; border-radius:6px; margin:8px 0; }
.kv { display:grid; grid-template-columns: 160px 1fr; gap:4px 12px; }
.kv div:nth-child(odd) { color:var(--muted); }
"#;
