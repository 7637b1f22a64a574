//! Reading an invocation's payload under stated limits.
//!
//! `common` takes every payload Lambda can deliver as raw JSON text
//! (`lambda_runtime` only checks that it is JSON) and parses it here, so a
//! payload the parser would refuse (nested past [`MAX_DEPTH`], larger than
//! [`MAX_BYTES`]) is still an invocation with a start line, an end line, the
//! envelope's correlation ID and a `Task.InvalidInput` a `Catch` can match,
//! instead of an error named after a Rust type that nothing logs.

use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::TaskError;
use crate::correlation::{self, Resolved};
use crate::envelope;

/// Most bytes a payload may have: Lambda's own limit for a synchronous
/// invocation (Step Functions sends at most 262,144).
pub const MAX_BYTES: usize = 6 * 1024 * 1024;

/// Deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 100;

/// A payload refused before it was parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// The envelope's correlation ID when one could still be read, else a
    /// generated one.
    pub correlation: Resolved,
    /// Why: `Task.InvalidInput` naming the limit.
    pub error: TaskError,
}

/// The payload as a JSON value, or why it is refused.
pub fn read(raw: &str) -> Result<Value, Box<Refused>> {
    let problem = if raw.len() > MAX_BYTES {
        Some(format!(
            "payload of {} bytes, at most {MAX_BYTES}",
            raw.len()
        ))
    } else if depth(raw) > MAX_DEPTH {
        Some(format!("payload nested deeper than {MAX_DEPTH} levels"))
    } else {
        None
    };
    let error = match problem {
        None => match serde_json::from_str(raw) {
            Ok(value) => return Ok(value),
            Err(e) => format!("payload is not JSON ({})", e.classify_name()),
        },
        Some(problem) => problem,
    };
    Err(Box::new(Refused {
        correlation: correlation_of_refused(raw),
        error: TaskError::invalid_input(error),
    }))
}

/// The correlation ID of a payload that was not parsed: an envelope's
/// top-level `correlation_id` can be read without the rest (its other
/// values stay unparsed text).
fn correlation_of_refused(raw: &str) -> Resolved {
    let candidate = serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(raw)
        .ok()
        .filter(|map| {
            map.contains_key("input") && map.keys().all(|k| envelope::KEYS.contains(&k.as_str()))
        })
        .and_then(|map| {
            let id = map.get("correlation_id")?.get();
            // A candidate is a short string; anything else need not parse.
            (id.len() <= 8 * correlation::MAX_LEN && depth(id) <= 1)
                .then(|| serde_json::from_str::<Value>(id).ok())
                .flatten()
        })
        .filter(|id| !id.is_null());
    correlation::resolve(candidate.as_ref(), &Value::Null)
}

/// How deep arrays and objects nest in JSON text (strings skipped).
fn depth(text: &str) -> usize {
    let mut deepest = 0;
    let mut current = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                current += 1;
                deepest = deepest.max(current);
            }
            b']' | b'}' => current = current.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A short name for a parse error, never the text that caused it.
trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "invalid data",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlation::Source;

    #[test]
    fn depth_counts_nesting_outside_strings() {
        assert_eq!(depth("1"), 0);
        assert_eq!(depth(r#"{"a": [1, {"b": []}]}"#), 4);
        assert_eq!(depth(r#"["[[[[", "\"{{"]"#), 1);
    }

    #[test]
    fn payloads_within_the_limits_parse() {
        let nested = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(read(&nested).is_ok());
        assert_eq!(read(r#"{"a": 1}"#).ok(), Some(serde_json::json!({"a": 1})));
    }

    #[test]
    fn too_deep_or_too_large_is_invalid_input_keeping_the_envelope_s_id() {
        let deep = format!(
            r#"{{"correlation_id": "deep-1", "input": {}{}}}"#,
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        let refused = read(&deep).err().unwrap_or_else(|| panic!("must refuse"));
        assert_eq!(refused.error.error_type(), "Task.InvalidInput");
        assert!(refused.error.to_string().contains("nested deeper than 100"));
        assert_eq!(refused.correlation.id.as_str(), "deep-1");
        assert_eq!(refused.correlation.source, Source::Envelope);

        let big = format!(r#"{{"input": "{}"}}"#, "x".repeat(MAX_BYTES));
        let refused = read(&big).err().unwrap_or_else(|| panic!("must refuse"));
        assert!(refused.error.to_string().contains("bytes, at most"));
        assert_eq!(refused.correlation.source, Source::Generated);

        // A refused correlation ID is replaced as usual, even here.
        let odd = format!(
            r#"{{"correlation_id": "a b", "input": {}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let refused = read(&odd).err().unwrap_or_else(|| panic!("must refuse"));
        assert_eq!(refused.correlation.source, Source::Replaced);
    }
}
