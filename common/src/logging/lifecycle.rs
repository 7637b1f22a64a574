//! The log schema's one owner: the invocation span whose fields every line
//! of an invocation carries, the `task started` and `task finished` lines,
//! the end line's metrics, and [`LOG_FIELDS`], the list saved Logs Insights
//! queries are checked against. A test below writes each line and compares
//! its keys with [`LOG_FIELDS`] both ways, so the list cannot drift from
//! what is written.

use std::time::Duration;

use tracing::field::Empty;

use crate::correlation::Resolved;
use crate::envelope::StepContext;
use crate::error::TaskError;

/// Target of the invocation span and the start and end lines. They are
/// written at every log level (`ERROR` included): they carry the metrics
/// alarms are built on.
pub const LIFECYCLE_TARGET: &str = "task_lifecycle";

/// Every key `common` itself writes on a JSON log line (task code adds its
/// own). Saved Logs Insights queries may use these, and only these, plus
/// CloudWatch's `@` fields.
pub const LOG_FIELDS: &[&str] = &[
    // Every line (the JSON layer).
    "timestamp",
    "level",
    "message",
    "service",
    "function_name",
    "function_memory_size",
    // Every line of an invocation (its span).
    "correlation_id",
    "cold_start",
    "function_arn",
    "function_request_id",
    "xray_trace_id",
    "execution_id",
    "state_name",
    "retry_count",
    // The start line.
    "correlation_id_source",
    // The end line.
    "outcome",
    "duration_ms",
    "error_type",
    "error_message",
    "success_count",
    "error_count",
    "timeout_count",
];

/// The end line's numbers that become CloudWatch metrics (EMF), with their
/// units.
pub(crate) const METRICS: &[(&str, &str)] = &[
    ("duration_ms", "Milliseconds"),
    ("success_count", "Count"),
    ("error_count", "Count"),
    ("timeout_count", "Count"),
];

/// The field only the end line has: the JSON layer adds the EMF metadata
/// to the line that carries it.
pub(crate) const END_MARKER: &str = "duration_ms";

/// The span every line of the invocation inherits its context fields from.
pub(crate) fn invocation_span(
    resolved: &Resolved,
    step: &StepContext,
    context: &lambda_runtime::Context,
    cold_start: bool,
) -> tracing::Span {
    let span = tracing::info_span!(
        target: LIFECYCLE_TARGET,
        "invocation",
        correlation_id = resolved.id.as_str(),
        cold_start,
        function_arn = context.invoked_function_arn.as_str(),
        function_request_id = context.request_id.as_str(),
        xray_trace_id = Empty,
        execution_id = Empty,
        state_name = Empty,
        retry_count = step.retry_count,
    );
    if let Some(trace) = &context.xray_trace_id {
        span.record("xray_trace_id", trace.as_str());
    }
    if let Some(execution) = &step.execution_id {
        span.record("execution_id", execution.as_str());
    }
    if let Some(state) = &step.state_name {
        span.record("state_name", state.as_str());
    }
    span
}

/// `task started`, and a warning when the correlation ID was refused
/// (naming the rule broken, never the value).
pub(crate) fn log_start(resolved: &Resolved) {
    tracing::info!(
        target: LIFECYCLE_TARGET,
        correlation_id_source = resolved.source.as_str(),
        "task started"
    );
    if let Some((source, why)) = &resolved.rejected {
        tracing::warn!(
            rejected_source = source.as_str(),
            reason = %why,
            "correlation id refused; one derived from it is used"
        );
    }
}

/// `task finished`: the outcome, the duration and the metrics; a caller's
/// mistake is a warning, everything else an error, so `filter level =
/// "ERROR"` finds what operators must look at.
pub(crate) fn log_end<T>(result: &Result<T, TaskError>, elapsed: Duration) {
    // Milliseconds with microsecond precision, as Logs Insights percentiles want a number.
    let duration_ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    let Err(err) = result else {
        tracing::info!(
            target: LIFECYCLE_TARGET,
            outcome = "success",
            duration_ms,
            success_count = 1u64,
            error_count = 0u64,
            timeout_count = 0u64,
            "task finished"
        );
        return;
    };
    let timeout = matches!(err, TaskError::Timeout { .. });
    let outcome = if timeout { "timeout" } else { "error" };
    macro_rules! end_line {
        ($level:expr) => {
            tracing::event!(
                target: LIFECYCLE_TARGET,
                $level,
                outcome,
                duration_ms,
                success_count = 0u64,
                error_count = 1u64,
                timeout_count = u64::from(timeout),
                error_type = err.error_type(),
                error_message = %err,
                "task finished"
            )
        };
    }
    if matches!(err, TaskError::InvalidInput(_)) {
        end_line!(tracing::Level::WARN);
    } else {
        end_line!(tracing::Level::ERROR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::json::tests::capture;
    use std::collections::BTreeSet;

    #[test]
    fn the_lines_write_exactly_the_documented_fields() {
        // A refused ID: the warning line is one of the lines too.
        let resolved =
            crate::correlation::resolve(Some(&serde_json::json!("a@b")), &serde_json::json!({}));
        let step = StepContext {
            execution_id: Some("arn:aws:states:...:execution:m:e".to_owned()),
            state_name: Some("Render".to_owned()),
            retry_count: 1,
            task_token: None,
        };
        let mut context = lambda_runtime::Context::default();
        context.xray_trace_id = Some("Root=1-0-0".to_owned());
        let lines = capture(|| {
            let span = invocation_span(&resolved, &step, &context, true);
            let _entered = span.enter();
            log_start(&resolved);
            log_end::<()>(&Ok(()), Duration::from_millis(3));
            log_end::<()>(
                &Err(TaskError::Timeout { margin_ms: 5 }),
                Duration::from_millis(3),
            );
        });
        assert_eq!(lines.len(), 4);
        // The warning's own fields are task-level detail, not schema.
        let lifecycle = [&lines[0], &lines[2], &lines[3]];
        let written: BTreeSet<&str> = lifecycle
            .iter()
            .flat_map(|l| l.as_object().into_iter().flat_map(|o| o.keys()))
            .map(String::as_str)
            .filter(|k| *k != "_aws")
            .collect();
        // The layer writes function_name/function_memory_size only inside a
        // Lambda (from its environment).
        let documented: BTreeSet<&str> = LOG_FIELDS
            .iter()
            .copied()
            .filter(|k| !k.starts_with("function_name") && !k.starts_with("function_memory"))
            .collect();
        assert_eq!(written, documented);
        assert_eq!(lines[1]["level"], "WARN");
        for (metric, _) in METRICS {
            assert!(lines[2][metric].is_number(), "{metric} on the end line");
        }
        assert!(lines[2][END_MARKER].is_number());
        assert!(lines[0].get("_aws").is_none());
        assert!(lines[2]["_aws"].is_object() && lines[3]["_aws"].is_object());
    }
}
