//! One invocation, from the raw payload to the response: correlation,
//! start line, typed input, the handler raced against the deadline guard,
//! panics caught, the output stamped and size-checked, the end line, the
//! Sentry report and its bounded flush.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use lambda_runtime::Diagnostic;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use tracing::Instrument;

use crate::context::TaskContext;
use crate::envelope;
use crate::error::TaskError;
use crate::guard;
use crate::logging::lifecycle;
use crate::reporting;
use crate::settings::Settings;

/// Kept free after the Sentry flush to post the response before the deadline.
const RESPONSE_RESERVE: Duration = Duration::from_millis(100);

static COLD_START: AtomicBool = AtomicBool::new(true);

/// What every invocation of one process shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub service: &'static str,
    pub settings: Settings,
    pub aws: Arc<crate::aws::LazyConfig>,
}

/// An invocation's payload: as the Runtime API delivered it, or already a
/// value (in-process invocations).
#[derive(Debug)]
pub(crate) enum Payload {
    /// JSON text, not parsed yet.
    Raw(Box<RawValue>),
    /// A JSON value.
    Parsed(Value),
}

/// Runs one invocation. Never panics and always writes one start and one
/// end line; the error side is the response body Lambda sends back.
pub(crate) async fn invoke<I, O, F, Fut>(
    shared: &Shared,
    handler: &F,
    payload: Payload,
    context: lambda_runtime::Context,
) -> Result<Box<RawValue>, Diagnostic>
where
    I: DeserializeOwned,
    O: Serialize,
    F: Fn(I, TaskContext) -> Fut,
    Fut: Future<Output = Result<O, TaskError>>,
{
    let started = Instant::now();
    let cold_start = COLD_START.swap(false, Ordering::Relaxed);
    let deadline = guard::deadline_instant(context.deadline);
    let guard_at = deadline
        .checked_sub(shared.settings.deadline_margin)
        .unwrap_or(started)
        .max(started);

    let payload = match payload {
        Payload::Raw(raw) => crate::payload::read(raw.get()),
        Payload::Parsed(value) => Ok(value),
    };
    let (resolved, parsed) = match payload {
        Ok(value) => (
            envelope::resolve_correlation(&value),
            envelope::parse(value),
        ),
        Err(refused) => (refused.correlation, Err(refused.error)),
    };
    let step = parsed.as_ref().map(|p| p.step.clone()).unwrap_or_default();

    let span = lifecycle::invocation_span(&resolved, &step, &context, cold_start);
    let scope = reporting::invocation_scope(&reporting::ScopeInfo {
        service: shared.service,
        correlation_id: resolved.id.as_str(),
        execution_id: step.execution_id.as_deref(),
        state_name: step.state_name.as_deref(),
        request_id: &context.request_id,
        retry_count: step.retry_count,
        lambda: &context,
        deadline,
    });

    let body = async {
        lifecycle::log_start(&resolved);

        let result = match parsed {
            Err(err) => Err(err),
            Ok(parsed) => {
                let ctx = TaskContext::new(
                    resolved.id.clone(),
                    step.clone(),
                    &context,
                    guard_at,
                    shared.aws.clone(),
                );
                run_handler(shared, handler, parsed.input, ctx)
                    .await
                    .and_then(|output| stamp_output(output, resolved.id.as_str()))
            }
        };

        lifecycle::log_end(&result, started.elapsed());
        if let Err(err) = &result {
            scope.report(err, &shared.settings);
        }
        // Only an invocation that gave Sentry something waits for it: a
        // success must not pay for an earlier failure's event stuck in a
        // hanging transport.
        if result.is_err() || scope.captured() {
            let budget = guard::flush_budget(
                shared.settings.sentry_flush_timeout,
                deadline,
                RESPONSE_RESERVE,
                Instant::now(),
            );
            scope.flush(budget).await;
        }
        result.map_err(Diagnostic::from)
    };
    scope.bind(body.instrument(span)).await
}

async fn run_handler<I, O, F, Fut>(
    shared: &Shared,
    handler: &F,
    input: Value,
    ctx: TaskContext,
) -> Result<O, TaskError>
where
    I: DeserializeOwned,
    F: Fn(I, TaskContext) -> Fut,
    Fut: Future<Output = Result<O, TaskError>>,
{
    let input: I = serde_path_to_error::deserialize(input).map_err(input_error)?;
    let deadline = ctx.guard_deadline();
    // Boxed: keeps the task's (possibly large, deeply nested) future out of
    // the runtime's own future type. `timeout_at` polls the handler before
    // the timer: a handler done at the deadline has won.
    let handled = AssertUnwindSafe(Box::pin(handler(input, ctx))).catch_unwind();
    // A location left by a panic the last invocation caught is not this one's.
    drop(crate::runtime::take_panic_location());
    match tokio::time::timeout_at(deadline.into(), handled).await {
        Ok(Err(panic)) => {
            let mut message = panic_message(panic.as_ref());
            if let Some(location) = crate::runtime::take_panic_location() {
                message = format!("{message} (at {location})");
            }
            Err(TaskError::Panic(message))
        }
        Ok(Ok(result)) => result,
        Err(_) => Err(TaskError::Timeout {
            margin_ms: u64::try_from(shared.settings.deadline_margin.as_millis())
                .unwrap_or(u64::MAX),
        }),
    }
}

/// Names the field that failed and what was expected, never the value:
/// serde's messages quote input data (strings, numbers, unknown names), so
/// only the kind of problem and the expectation are kept.
fn input_error(err: serde_path_to_error::Error<serde_json::Error>) -> TaskError {
    let path = err.path().to_string();
    let reason = describe(&err.into_inner().to_string());
    if path == "." {
        TaskError::invalid_input(format!("invalid input: {reason}"))
    } else {
        TaskError::invalid_input(format!("invalid input at `{path}`: {reason}"))
    }
}

fn describe(message: &str) -> String {
    // "missing field `name`" names one of our fields, "unknown field `name`"
    // a key the caller sent: structure, not data, and what the caller needs.
    if message.starts_with("missing field") || message.starts_with("unknown field") {
        return message
            .split(" at line ")
            .next()
            .unwrap_or(message)
            .to_owned();
    }
    let kind = message
        .split([':', '`', '"'])
        .next()
        .unwrap_or("invalid value")
        .trim()
        .trim_end_matches(',');
    match message.rfind(", expected") {
        Some(i) => {
            let expected = message[i + 2..].split(" at line ").next().unwrap_or("");
            format!("{kind}, {expected}")
        }
        None => kind.to_owned(),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Adds `correlation_id` to the output so the next state receives it (a
/// non-object output is wrapped as `{"correlation_id", "result"}`), then
/// applies the payload-size guard. Serialises once.
fn stamp_output<O: Serialize>(output: O, correlation_id: &str) -> Result<Box<RawValue>, TaskError> {
    let value = serde_json::to_value(output)
        .map_err(|e| TaskError::failed(format!("task output could not be serialised: {e}")))?;
    let stamped = match value {
        Value::Object(mut map) => {
            map.insert("correlation_id".to_owned(), correlation_id.into());
            Value::Object(map)
        }
        other => serde_json::json!({"correlation_id": correlation_id, "result": other}),
    };
    let text = stamped.to_string();
    guard::check_output_size(text.len())?;
    RawValue::from_string(text)
        .map_err(|e| TaskError::failed(format!("task output could not be serialised: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_gets_the_correlation_id() {
        let raw =
            stamp_output(serde_json::json!({"key": "a"}), "c-1").unwrap_or_else(|e| panic!("{e}"));
        let v: Value = serde_json::from_str(raw.get()).unwrap_or_default();
        assert_eq!(v, serde_json::json!({"key": "a", "correlation_id": "c-1"}));

        let raw = stamp_output(7, "c-1").unwrap_or_else(|e| panic!("{e}"));
        let v: Value = serde_json::from_str(raw.get()).unwrap_or_default();
        assert_eq!(v, serde_json::json!({"correlation_id": "c-1", "result": 7}));
    }

    #[test]
    fn oversized_output_is_task_failed() {
        let big = "x".repeat(guard::STEP_FUNCTIONS_PAYLOAD_LIMIT);
        let err = stamp_output(serde_json::json!({ "blob": big }), "c")
            .err()
            .unwrap_or_else(|| panic!("must fail"));
        assert_eq!(err.error_type(), "Task.Failed");
    }

    #[test]
    fn input_errors_name_the_field_and_hide_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Order {
            lines: Vec<Line>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Line {
            quantity: u32,
        }
        let value =
            serde_json::json!({"lines": [{"quantity": 1}, {"quantity": "jane@example.com"}]});
        let err = serde_path_to_error::deserialize::<_, Order>(value)
            .map_err(input_error)
            .err()
            .unwrap_or_else(|| panic!("must fail"));
        let message = err.to_string();
        assert_eq!(err.error_type(), "Task.InvalidInput");
        assert!(message.contains("lines[1].quantity"), "{message}");
        assert!(!message.contains("jane@example.com"), "{message}");
    }

    #[test]
    fn messages_keep_the_problem_and_drop_the_value() {
        for (message, expected) in [
            (
                "unknown variant `jane@example.com`, expected `a` or `b`",
                "unknown variant, expected `a` or `b`",
            ),
            (
                "invalid type: string \"Jane \"JJ\" Doe\", expected u32",
                "invalid type, expected u32",
            ),
            (
                "invalid value: integer `4111111111111111`, expected u8",
                "invalid value, expected u8",
            ),
            (
                "unknown field `colour`, expected one of `a`",
                "unknown field `colour`, expected one of `a`",
            ),
            ("missing field `order_id`", "missing field `order_id`"),
        ] {
            assert_eq!(describe(message), expected);
        }
    }
}
