//! Running a state machine execution to its end and reading what it did:
//! live progress from the execution history, the path of states with their
//! durations, and the state transitions Standard workflows are billed by.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};
use serde_json::Value;

/// One history event, reduced to what progress and paths need.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event id (1-based, in order).
    pub id: i64,
    /// Milliseconds since the epoch.
    pub time_ms: i64,
    /// `StateEntered`, `TaskFailed`, ...
    pub kind: String,
    /// The state's name for state events.
    pub state: Option<String>,
    /// Error name for failure events.
    pub error: Option<String>,
    /// Cause for failure events.
    pub cause: Option<String>,
}

/// A finished execution.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The execution ARN.
    pub arn: String,
    /// `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `ABORTED`.
    pub status: String,
    /// The output, when it succeeded.
    pub output: Option<Value>,
    /// The error name, when it failed.
    pub error: Option<String>,
    /// The cause, when it failed.
    pub cause: Option<String>,
    /// Its whole history.
    pub events: Vec<Event>,
}

/// A state on an execution's path.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// State name.
    pub name: String,
    /// Time from entering to leaving it (`None` if it never left).
    pub duration: Option<Duration>,
    /// Failures inside the state (`TaskFailed` errors), in order: retries.
    pub failures: Vec<String>,
}

impl Finished {
    /// The states entered, in order, with durations and the failures inside
    /// each (a retried task shows each attempt's error).
    pub fn path(&self) -> Vec<Step> {
        let mut steps: Vec<(Step, i64)> = Vec::new();
        for event in &self.events {
            match event.kind.as_str() {
                k if k.ends_with("StateEntered") => {
                    if let Some(name) = &event.state {
                        steps.push((
                            Step {
                                name: name.clone(),
                                duration: None,
                                failures: Vec::new(),
                            },
                            event.time_ms,
                        ));
                    }
                }
                k if k.ends_with("StateExited") => {
                    if let Some((step, entered)) = steps
                        .iter_mut()
                        .rev()
                        .find(|(s, _)| Some(&s.name) == event.state.as_ref())
                    {
                        let ms = u64::try_from(event.time_ms - *entered).unwrap_or(0);
                        step.duration = Some(Duration::from_millis(ms));
                    }
                }
                "TaskFailed" | "LambdaFunctionFailed" => {
                    if let Some((step, _)) = steps.last_mut() {
                        step.failures
                            .push(event.error.clone().unwrap_or_else(|| "?".to_owned()));
                    }
                }
                _ => {}
            }
        }
        steps.into_iter().map(|(s, _)| s).collect()
    }

    /// State transitions: the states entered (what a Standard workflow is
    /// billed by).
    pub fn transitions(&self) -> usize {
        self.events
            .iter()
            .filter(|e| e.kind.ends_with("StateEntered"))
            .count()
    }

    /// The output's JSON, or an error saying why there is none.
    pub fn output(&self) -> Result<&Value> {
        self.output.as_ref().with_context(|| {
            format!(
                "{} ended {} ({}: {})",
                self.arn,
                self.status,
                self.error.as_deref().unwrap_or("-"),
                self.cause.as_deref().unwrap_or("-")
            )
        })
    }
}

/// Starts an execution of `state_machine` named `name` with `input`.
pub async fn start(sfn: &Client, state_machine: &str, name: &str, input: &Value) -> Result<String> {
    let started = sfn
        .start_execution()
        .state_machine_arn(state_machine)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .with_context(|| format!("starting {name} on {state_machine}"))?;
    Ok(started.execution_arn().to_owned())
}

/// Follows `execution` until it ends (at most `limit`), calling `progress`
/// once for each new history event, in order.
pub async fn follow(
    sfn: &Client,
    execution: &str,
    limit: Duration,
    mut progress: impl FnMut(&Event),
) -> Result<Finished> {
    let started = Instant::now();
    let mut seen = 0;
    let mut pause = Duration::from_millis(25);
    loop {
        // Status first: history read afterwards is then complete if it ended.
        let described = sfn
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
            .with_context(|| format!("describing {execution}"))?;
        let events = history(sfn, execution).await?;
        for event in events.iter().skip(seen) {
            progress(event);
        }
        seen = events.len();
        if *described.status() != ExecutionStatus::Running
            && *described.status() != ExecutionStatus::PendingRedrive
        {
            return Ok(Finished {
                arn: execution.to_owned(),
                status: described.status().as_str().to_owned(),
                output: described
                    .output()
                    .and_then(|o| serde_json::from_str(o).ok()),
                error: described.error().map(str::to_owned),
                cause: described.cause().map(str::to_owned),
                events,
            });
        }
        if started.elapsed() > limit {
            bail!("{execution} did not finish within {limit:?}");
        }
        // Polling the service's own status, as a client of the real one would.
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// The whole history of `execution`, oldest first.
pub async fn history(sfn: &Client, execution: &str) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    let mut pages = sfn
        .get_execution_history()
        .execution_arn(execution)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("reading the history of {execution}"))?;
        events.extend(page.events().iter().map(reduce));
    }
    events.sort_by_key(|e| e.id);
    Ok(events)
}

fn reduce(event: &HistoryEvent) -> Event {
    let state = event
        .state_entered_event_details()
        .map(|d| d.name().to_owned())
        .or_else(|| {
            event
                .state_exited_event_details()
                .map(|d| d.name().to_owned())
        });
    let (error, cause) = match event.r#type() {
        HistoryEventType::TaskFailed => event
            .task_failed_event_details()
            .map(|d| (d.error().map(str::to_owned), d.cause().map(str::to_owned)))
            .unwrap_or_default(),
        HistoryEventType::ExecutionFailed => event
            .execution_failed_event_details()
            .map(|d| (d.error().map(str::to_owned), d.cause().map(str::to_owned)))
            .unwrap_or_default(),
        _ => (None, None),
    };
    Event {
        id: event.id(),
        time_ms: event.timestamp().to_millis().unwrap_or(0),
        kind: event.r#type().as_str().to_owned(),
        state,
        error,
        cause,
    }
}

/// One progress line for a history event worth showing, or `None`.
pub fn describe(event: &Event) -> Option<String> {
    let state = event.state.as_deref().unwrap_or("");
    match event.kind.as_str() {
        k if k.ends_with("StateEntered") => Some(format!("→ {state}")),
        k if k.ends_with("StateExited") => Some(format!("← {state}")),
        "TaskFailed" | "LambdaFunctionFailed" => Some(format!(
            "  ✗ {}",
            event.error.as_deref().unwrap_or("failed")
        )),
        "ExecutionSucceeded" => Some("✓ execution succeeded".to_owned()),
        "ExecutionFailed" => Some(format!(
            "✗ execution failed: {}",
            event.error.as_deref().unwrap_or("?")
        )),
        "ExecutionTimedOut" | "ExecutionAborted" => Some(format!("✗ {}", event.kind)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, time_ms: i64, kind: &str, state: Option<&str>) -> Event {
        Event {
            id,
            time_ms,
            kind: kind.to_owned(),
            state: state.map(str::to_owned),
            error: (kind == "TaskFailed").then(|| "Task.Retryable".to_owned()),
            cause: None,
        }
    }

    #[test]
    fn path_has_durations_failures_and_transitions() {
        let finished = Finished {
            arn: "x".to_owned(),
            status: "SUCCEEDED".to_owned(),
            output: None,
            error: None,
            cause: None,
            events: vec![
                event(1, 0, "ExecutionStarted", None),
                event(2, 10, "PassStateEntered", Some("Defaults")),
                event(3, 12, "PassStateExited", Some("Defaults")),
                event(4, 12, "TaskStateEntered", Some("Render")),
                event(5, 20, "TaskFailed", None),
                event(6, 40, "TaskStateExited", Some("Render")),
            ],
        };
        let path = finished.path();
        assert_eq!(path.len(), 2);
        assert_eq!(path[0].duration, Some(Duration::from_millis(2)));
        assert_eq!(path[1].name, "Render");
        assert_eq!(path[1].duration, Some(Duration::from_millis(28)));
        assert_eq!(path[1].failures, ["Task.Retryable"]);
        assert_eq!(finished.transitions(), 2);
        assert!(finished.output().is_err());
        assert_eq!(describe(&finished.events[1]).as_deref(), Some("→ Defaults"));
        assert_eq!(describe(&finished.events[0]), None);
    }
}
