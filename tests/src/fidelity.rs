//! Local-fidelity cases: a small state machine and its input, run through
//! the AWS SDK on the local stack, which must do what AWS does, and on moto
//! as released, which must still do what `docs/local-fidelity.md` says it
//! does (so a row whose difference moto fixes one day shows up in a test,
//! not in production).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_sfn::Client;
use serde_json::{Value, json};

use crate::local_stack::{Builder, LocalStack};

/// What a case must give on one engine.
#[derive(Debug, Clone)]
pub enum Expect {
    /// `SUCCEEDED` with exactly this output.
    Output(Value),
    /// `SUCCEEDED`, and the output passes the check (described for the
    /// report).
    OutputWhere(&'static str, fn(&Value) -> bool),
    /// `SUCCEEDED`, with an output that is not JSON.
    UnreadableOutput,
    /// `FAILED` with this error, the cause containing the text.
    Failed(&'static str, &'static str),
    /// `CreateStateMachine` answers `InvalidDefinition` containing the text.
    Refused(&'static str),
    /// `CreateStateMachine` fails, whatever the error code (moto as
    /// released answers its parser's errors as `UnknownError`), with this
    /// text in the message.
    NotCreated(&'static str),
}

#[derive(Debug)]
pub struct Case {
    /// Named in the report.
    pub name: &'static str,
    /// The state machine.
    pub definition: Value,
    /// The execution input.
    pub input: Value,
    /// On the local stack: what AWS does.
    pub aws: Expect,
    /// On moto as released.
    pub moto: Expect,
}

/// A JSONata state machine.
pub fn jsonata(states: Value, start: &str) -> Value {
    json!({"QueryLanguage": "JSONata", "StartAt": start, "States": states})
}

/// A JSONPath state machine.
pub fn jsonpath(states: Value, start: &str) -> Value {
    json!({"StartAt": start, "States": states})
}

/// The fixture function as a JSONata Lambda task.
pub fn fixture_task(function: &str, input: Value) -> Value {
    json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Arguments": {"FunctionName": function, "Payload": {"input": input}},
    })
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Creates `definition` on `stack` and runs it on `input`: the outcome, or
/// the creation error.
pub async fn run(stack: &LocalStack, definition: &Value, input: &Value) -> Result<Outcome, String> {
    let sfn: Client = stack.sfn();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let created = sfn
        .create_state_machine()
        .name(format!("fidelity-{n}"))
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/fidelity")
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(service) => format!(
                "{}: {}",
                service.meta().code().unwrap_or("(no error code)"),
                service.meta().message().unwrap_or_default()
            ),
            None => format!("{e:?}"),
        })?;
    let execution = devstack::workflow::start(
        &sfn,
        created.state_machine_arn(),
        &format!("run-{n}"),
        input,
    )
    .await
    .map_err(|e| format!("{e:#}"))?;
    let finished = devstack::workflow::follow(&sfn, &execution, Duration::from_secs(60), |_| {})
        .await
        .map_err(|e| format!("{e:#}"))?;
    Ok(Outcome {
        status: finished.status,
        output: finished.output,
        error: finished.error,
        cause: finished.cause,
    })
}

#[derive(Debug)]
pub struct Outcome {
    /// `SUCCEEDED`, `FAILED`, ...
    pub status: String,
    /// The output, if JSON.
    pub output: Option<Value>,
    /// The error name of a failed execution.
    pub error: Option<String>,
    /// Its cause.
    pub cause: Option<String>,
}

/// Why `got` is not what `expect` says, if it is not.
pub fn mismatch(expect: &Expect, got: &Result<Outcome, String>) -> Option<String> {
    let fine = match (expect, got) {
        (Expect::Output(want), Ok(o)) => o.status == "SUCCEEDED" && o.output.as_ref() == Some(want),
        (Expect::OutputWhere(_, check), Ok(o)) => {
            o.status == "SUCCEEDED" && o.output.as_ref().is_some_and(check)
        }
        (Expect::Failed(error, cause), Ok(o)) => {
            o.status == "FAILED"
                && o.error.as_deref() == Some(error)
                && o.cause.as_deref().unwrap_or_default().contains(cause)
        }
        (Expect::UnreadableOutput, Ok(o)) => o.status == "SUCCEEDED" && o.output.is_none(),
        (Expect::Refused(text), Err(created)) => {
            created.starts_with("InvalidDefinition") && created.contains(text)
        }
        (Expect::NotCreated(text), Err(created)) => created.contains(text),
        _ => false,
    };
    (!fine).then(|| match expect {
        Expect::OutputWhere(what, _) => format!("expected an output with {what}, got {got:?}"),
        _ => format!("expected {expect:?}, got {got:?}"),
    })
}

/// Runs every case on the local stack and on moto as released; panics with
/// every row that does not hold.
pub async fn check(cases: Vec<Case>) {
    let ours = Builder::fixture().start().await;
    let plain = Builder::fixture().plain_moto().start().await;
    let mut failures = Vec::new();
    for case in &cases {
        let (on_ours, on_plain) = tokio::join!(
            run(&ours, &case.definition, &case.input),
            run(&plain, &case.definition, &case.input),
        );
        if let Some(why) = mismatch(&case.aws, &on_ours) {
            failures.push(format!("{}: the local stack: {why}", case.name));
        }
        if let Some(why) = mismatch(&case.moto, &on_plain) {
            failures.push(format!("{}: moto as released: {why}", case.name));
        }
    }
    ours.finish().await;
    plain.finish().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
