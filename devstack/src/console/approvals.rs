//! The approvals page, as the approval portal of the brief works: pending
//! requests are taken off the notification queue (the portal owns them),
//! shown with the computed total and the order summary, and answered to the
//! waiting workflow with `SendTaskSuccess` (approve) or `SendTaskFailure`
//! (reject), using the request's task token.

use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Json;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Console, Page, PageError, layout, text};
use crate::queue::Received;

/// The error name a rejection fails the task with (what `Catch` rules see).
pub(crate) const REJECTED: &str = "Approval.Rejected";

impl Console {
    /// Takes every approval request waiting on the template's queues into
    /// `pending`. Dead-letter queues are left alone.
    async fn collect(&self) -> Result<()> {
        let sqs = self.sqs();
        let dead_letter: Vec<String> = self
            .spec
            .queues
            .iter()
            .filter_map(|q| q.attributes.get("RedrivePolicy"))
            .filter_map(|p| serde_json::from_str::<Value>(p).ok())
            .filter_map(|p| p["deadLetterTargetArn"].as_str().map(str::to_owned))
            .filter_map(|arn| arn.rsplit(':').next().map(str::to_owned))
            .collect();
        for queue in self
            .spec
            .queues
            .iter()
            .filter(|q| !dead_letter.contains(&q.name))
        {
            while let Some(message) =
                crate::queue::take(&sqs, &queue.url, |m| m.body["kind"] == "approval_requested")
                    .await?
            {
                self.pending.lock().await.push(message);
            }
        }
        Ok(())
    }
}

pub(crate) async fn page(State(console): State<Arc<Console>>) -> Page {
    console
        .collect()
        .await
        .context("reading approval requests")?;
    let pending = console.pending.lock().await.clone();
    Ok(layout(
        "Approvals",
        "approvals",
        html! {
            h1 { "Approvals " span.muted { "(" (pending.len()) " pending)" } }
            @if pending.is_empty() {
                div.card.muted #none { "No approval request is waiting. A workflow asks here when an invoice is above its currency's threshold." }
            }
            @for request in &pending {
                @let body = &request.body;
                @let details = &body["details"];
                div.card.approval data-correlation=(text(&body["correlation_id"])) {
                    h2 { (text(&body["subject"])) }
                    div.kv {
                        div { "Correlation ID" } div.mono { (text(&body["correlation_id"])) }
                        div { "Order" } div { (text(&details["order_id"])) }
                        div { "Buyer" } div { (text(&details["buyer"])) }
                        div { "Lines" } div { (text(&details["lines"])) }
                        div { "Subtotal" } div { (text(&details["currency"])) " " (text(&details["subtotal"])) }
                        div { "Tax" } div { (text(&details["currency"])) " " (text(&details["tax_total"])) }
                        div { "Total" } div { strong.total { (text(&details["currency"])) " " (text(&details["total"])) } }
                    }
                    form method="post" action="/console/approvals/answer" style="margin-top:12px; display:flex; gap:8px" {
                        input type="hidden" name="token" value=(text(&body["task_token"]));
                        input type="hidden" name="approver" value="local console";
                        button.approve type="submit" name="decision" value="approve" { "Approve" }
                        button.reject type="submit" name="decision" value="reject" { "Reject" }
                    }
                }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct Answer {
    token: String,
    decision: String,
    #[serde(default)]
    approver: String,
}

pub(crate) async fn answer(
    State(console): State<Arc<Console>>,
    Form(answer): Form<Answer>,
) -> Result<Response, PageError> {
    let sfn = console.sfn();
    let approver = if answer.approver.is_empty() {
        "local console"
    } else {
        answer.approver.as_str()
    };
    match answer.decision.as_str() {
        "approve" => {
            sfn.send_task_success()
                .task_token(&answer.token)
                .output(json!({"approved": true, "approver": approver}).to_string())
                .send()
                .await
                .context("answering with SendTaskSuccess")?;
        }
        "reject" => {
            sfn.send_task_failure()
                .task_token(&answer.token)
                .error(REJECTED)
                .cause(format!("rejected by {approver}"))
                .send()
                .await
                .context("answering with SendTaskFailure")?;
        }
        other => {
            return Err(anyhow::anyhow!("unknown decision {other:?}: approve or reject").into());
        }
    }
    console
        .pending
        .lock()
        .await
        .retain(|m: &Received| m.body["task_token"].as_str() != Some(answer.token.as_str()));
    Ok(Redirect::to("/console/approvals").into_response())
}

/// The pending requests as JSON (`correlation_id`, `subject`, `details`,
/// `task_token`): what a script, or the demo, answers through the console.
pub(crate) async fn pending_json(
    State(console): State<Arc<Console>>,
) -> Result<Json<Value>, PageError> {
    console
        .collect()
        .await
        .context("reading approval requests")?;
    let pending = console.pending.lock().await;
    Ok(Json(Value::Array(
        pending
            .iter()
            .map(|m| {
                json!({
                    "correlation_id": m.body["correlation_id"],
                    "subject": m.body["subject"],
                    "details": m.body["details"],
                    "task_token": m.body["task_token"],
                })
            })
            .collect(),
    )))
}
