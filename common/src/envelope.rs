//! The payload a Step Functions task state sends to a task.
//!
//! ```json
//! {
//!   "correlation_id": "order-A-1001",          // from the execution input
//!   "execution_id":   "$$.Execution.Id",
//!   "state_name":     "$$.State.Name",
//!   "retry_count":    "$$.State.RetryCount",
//!   "task_token":     "$$.Task.Token",          // only with .waitForTaskToken
//!   "input":          { ... }                   // what the task's handler receives
//! }
//! ```
//!
//! A payload is an envelope when it is a JSON object that has an `input` key
//! and no key outside the six above. Anything else is a *bare* input (from
//! `aws lambda invoke`, `cargo lambda invoke`, API Gateway or EventBridge) and
//! is handed to the handler whole.

use serde_json::{Map, Value};

use crate::TaskError;
use crate::correlation::{self, Resolved};

/// The keys an envelope may carry.
pub const KEYS: [&str; 6] = [
    "correlation_id",
    "execution_id",
    "state_name",
    "retry_count",
    "task_token",
    "input",
];

/// Step Functions context passed through the envelope. All optional: a bare
/// input has none of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepContext {
    /// `$$.Execution.Id`: the execution's ARN.
    pub execution_id: Option<String>,
    /// `$$.State.Name`: the state that invoked the task.
    pub state_name: Option<String>,
    /// `$$.State.RetryCount`: 0 on the first attempt.
    pub retry_count: u32,
    /// `$$.Task.Token`, present for `.waitForTaskToken` states.
    pub task_token: Option<String>,
}

/// A payload split into its parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The envelope's `correlation_id`, unvalidated (see [`crate::correlation`]).
    pub correlation_id: Option<Value>,
    /// Step Functions context; empty for a bare input.
    pub step: StepContext,
    /// What the handler receives.
    pub input: Value,
    /// Whether the payload was an envelope.
    pub is_envelope: bool,
}

/// Splits a payload into envelope fields and the handler's input. Envelope
/// fields of the wrong type are `Task.InvalidInput` naming the field.
pub fn parse(payload: Value) -> Result<Parsed, TaskError> {
    let mut map = match payload {
        Value::Object(map) if is_envelope(&map) => map,
        bare => {
            return Ok(Parsed {
                correlation_id: None,
                step: StepContext::default(),
                input: bare,
                is_envelope: false,
            });
        }
    };
    let step = StepContext {
        execution_id: optional_string(&mut map, "execution_id")?,
        state_name: optional_string(&mut map, "state_name")?,
        retry_count: retry_count(map.remove("retry_count"))?,
        task_token: optional_string(&mut map, "task_token")?,
    };
    Ok(Parsed {
        correlation_id: map.remove("correlation_id").filter(|v| !v.is_null()),
        step,
        input: map.remove("input").unwrap_or(Value::Null),
        is_envelope: true,
    })
}

/// Resolves a raw payload's correlation ID (see [`correlation::resolve`]):
/// an envelope's `correlation_id` first, then the candidates inside its
/// `input`; for a bare payload, the candidates inside the payload itself.
/// Runs before [`parse`] so even a payload `parse` refuses is logged with a
/// correlation ID. Public so the fuzz targets exercise exactly what the
/// runtime does with a payload.
pub fn resolve_correlation(payload: &Value) -> Resolved {
    match payload.as_object() {
        Some(map) if is_envelope(map) => correlation::resolve(
            map.get("correlation_id").filter(|v| !v.is_null()),
            map.get("input").unwrap_or(&Value::Null),
        ),
        _ => correlation::resolve(None, payload),
    }
}

fn is_envelope(map: &Map<String, Value>) -> bool {
    map.contains_key("input") && map.keys().all(|k| KEYS.contains(&k.as_str()))
}

fn optional_string(map: &mut Map<String, Value>, key: &str) -> Result<Option<String>, TaskError> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TaskError::invalid_input(format!(
            "envelope field `{key}` must be a string"
        ))),
    }
}

fn retry_count(value: Option<Value>) -> Result<u32, TaskError> {
    let invalid =
        || TaskError::invalid_input("envelope field `retry_count` must be a non-negative integer");
    match value {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(invalid),
        // `States.Format` and hand-written payloads sometimes stringify it.
        Some(Value::String(s)) => s.parse().map_err(|_| invalid()),
        Some(_) => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_fixture() {
        let text = include_str!("../../events/envelope.json");
        let parsed = parse(serde_json::from_str(text).unwrap_or_default()).unwrap_or_else(|e| {
            panic!("{e}");
        });
        assert!(parsed.is_envelope);
        assert_eq!(parsed.correlation_id, Some(json!("order-A-1001")));
        assert_eq!(
            parsed.step.execution_id.as_deref(),
            Some("arn:aws:states:eu-west-1:123456789012:execution:Invoice:run-1")
        );
        assert_eq!(parsed.step.state_name.as_deref(), Some("Render invoice"));
        assert_eq!(parsed.step.retry_count, 0);
        assert_eq!(parsed.step.task_token, None);
        assert_eq!(parsed.input, json!({"echo": "hello"}));
    }

    #[test]
    fn task_token_and_string_retry_count() {
        let parsed = parse(json!({"task_token": "AQCE", "retry_count": "3", "input": []}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.step.task_token.as_deref(), Some("AQCE"));
        assert_eq!(parsed.step.retry_count, 3);
        assert_eq!(parsed.input, json!([]));
    }

    #[test]
    fn bare_inputs_pass_through_whole() {
        for bare in [
            json!({"echo": "hello"}),
            json!({"input": "x", "order_id": "A-1"}),
            json!([1, 2]),
            json!("text"),
            Value::Null,
        ] {
            let parsed = parse(bare.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert!(!parsed.is_envelope);
            assert_eq!(parsed.input, bare);
            assert_eq!(parsed.step, StepContext::default());
        }
    }

    #[test]
    fn correlation_comes_from_the_envelope_then_its_input() {
        use crate::correlation::Source;
        let apigw = json!({"requestContext": {"requestId": "req-1"},
                           "headers": {"X-Correlation-Id": "web-1"}});
        for (payload, id, source) in [
            (
                json!({"correlation_id": "env-1", "input": apigw.clone()}),
                Some("env-1"),
                Source::Envelope,
            ),
            (
                json!({"correlation_id": null, "input": apigw.clone()}),
                Some("web-1"),
                Source::Header,
            ),
            (apigw.clone(), Some("web-1"), Source::Header),
            // Not an envelope (an unknown key): its `correlation_id` is
            // handler data, not an ID to trust.
            (
                json!({"correlation_id": "env-1", "input": {}, "x": 1}),
                None,
                Source::Generated,
            ),
        ] {
            let r = resolve_correlation(&payload);
            assert_eq!(r.source, source, "{payload}");
            if let Some(id) = id {
                assert_eq!(r.id.as_str(), id);
            }
        }
    }

    #[test]
    fn mistyped_envelope_fields_name_the_field() {
        for (payload, field) in [
            (json!({"input": {}, "retry_count": -1}), "retry_count"),
            (json!({"input": {}, "retry_count": 1.5}), "retry_count"),
            (json!({"input": {}, "retry_count": "many"}), "retry_count"),
            (json!({"input": {}, "execution_id": 7}), "execution_id"),
            (json!({"input": {}, "state_name": {}}), "state_name"),
            (json!({"input": {}, "task_token": true}), "task_token"),
        ] {
            match parse(payload) {
                Err(TaskError::InvalidInput(m)) => assert!(m.contains(field), "{m}"),
                other => panic!("expected InvalidInput for {field}, got {other:?}"),
            }
        }
    }
}
