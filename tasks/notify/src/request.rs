//! The task's input and its validation.
//!
//! | field | rule |
//! |---|---|
//! | `kind` | one of the built-in kinds or of `NOTIFY_EXTRA_KINDS`; `[a-z][a-z0-9_]*`, at most 64 characters |
//! | `subject` | 1–200 characters, no control characters |
//! | `details` | any JSON (default `{}`), at most 16 levels deep; the whole message (body and attributes) at most 262,144 bytes |
//! | `recipient` | optional e-mail address, as [`sfn_task::fields::email`] (the invoice task's rule too); never logged |
//! | `sensitive` | optional list of top-level `details` keys that hold personal data; masked wherever the task logs |

use serde::Deserialize;
use serde_json::Value;

use sfn_task::TaskError;

/// Kinds every deployment knows; more come from `NOTIFY_EXTRA_KINDS`.
pub const BUILT_IN_KINDS: [&str; 5] = [
    "invoice_ready",
    "invoice_failed",
    "backup_succeeded",
    "backup_failed",
    APPROVAL_REQUESTED,
];

/// The kind that carries a Step Functions task token to a human.
pub const APPROVAL_REQUESTED: &str = "approval_requested";

const MAX_KIND: usize = 64;
const MAX_SUBJECT: usize = 200;
/// Largest `details`, serialised; the whole message must also fit SQS's
/// 256 KiB, which is checked when it is built.
pub const MAX_DETAILS_BYTES: usize = 256 * 1024;
const MAX_DEPTH: usize = 16;

/// The task's input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyRequest {
    /// What happened, e.g. `invoice_ready`.
    pub kind: String,
    /// One line for humans.
    pub subject: String,
    /// Anything the consumer needs.
    #[serde(default = "empty_object")]
    pub details: Value,
    /// Who should hear about it.
    #[serde(default)]
    pub recipient: Option<String>,
    /// Top-level `details` keys holding personal data.
    #[serde(default)]
    pub sensitive: Vec<String>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> TaskError {
    TaskError::invalid_input(format!("{field}: {reason}"))
}

impl NotifyRequest {
    /// Checks every field against the rules above.
    pub fn validate(&self, extra_kinds: &[String]) -> Result<(), TaskError> {
        let kind_ok = self.kind.len() <= MAX_KIND
            && self.kind.starts_with(|c: char| c.is_ascii_lowercase())
            && self
                .kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !kind_ok {
            return Err(invalid(
                "kind",
                "expected [a-z][a-z0-9_]*, at most 64 characters",
            ));
        }
        if !BUILT_IN_KINDS.contains(&self.kind.as_str()) && !extra_kinds.contains(&self.kind) {
            return Err(invalid(
                "kind",
                "unknown kind; add it to NOTIFY_EXTRA_KINDS to allow it",
            ));
        }
        sfn_task::fields::text("subject", self.subject.clone(), 1, MAX_SUBJECT, false)?;
        if depth(&self.details) > MAX_DEPTH {
            return Err(invalid(
                "details",
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        let details_len = self.details.to_string().len();
        if details_len > MAX_DETAILS_BYTES {
            return Err(invalid(
                "details",
                format!("{details_len} bytes serialised, at most {MAX_DETAILS_BYTES}"),
            ));
        }
        if let Some(recipient) = &self.recipient {
            // The rule the invoice task applies to the addresses it is given.
            sfn_task::fields::email("recipient", recipient.clone())?;
        }
        for key in &self.sensitive {
            if self.details.get(key).is_none() {
                return Err(invalid("sensitive", "names a key that is not in details"));
            }
        }
        Ok(())
    }

    /// `details` with every sensitive key replaced by `"***"`, for logs.
    pub fn masked_details(&self) -> Value {
        let mut details = self.details.clone();
        if let Value::Object(map) = &mut details {
            for key in &self.sensitive {
                if let Some(slot) = map.get_mut(key) {
                    *slot = Value::String("***".to_owned());
                }
            }
        }
        details
    }
}

/// `zoe.mueller@example.com` → `z***@***.com`: enough to tell two apart in
/// a log, not enough to contact anyone.
pub fn mask_email(address: &str) -> String {
    let first = address.chars().next().unwrap_or('*');
    let tld = address
        .rsplit('.')
        .next()
        .filter(|t| t.len() <= 6)
        .unwrap_or("");
    format!("{first}***@***.{tld}")
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(value: Value) -> Result<NotifyRequest, TaskError> {
        serde_json::from_value(value).map_err(|e| TaskError::invalid_input(e.to_string()))
    }

    fn check(value: Value) -> Result<(), TaskError> {
        request(value)?.validate(&["welcome_sent".to_owned()])
    }

    #[test]
    fn valid_requests() {
        assert!(check(json!({"kind": "invoice_ready", "subject": "Invoice A-1 is ready"})).is_ok());
        assert!(
            check(json!({"kind": "welcome_sent", "subject": "x", "recipient": "a@b.co"})).is_ok()
        );
        assert!(
            check(json!({"kind": "backup_failed", "subject": "x", "details": {"iban": "DE00"}, "sensitive": ["iban"]}))
                .is_ok()
        );
    }

    #[test]
    fn invalid_requests_name_the_field() {
        let deep = (0..20).fold(json!(1), |acc, _| json!([acc]));
        for (value, field) in [
            (json!({"kind": "Invoice-Ready", "subject": "x"}), "kind"),
            (json!({"kind": "party_started", "subject": "x"}), "kind"),
            (json!({"kind": "invoice_ready", "subject": ""}), "subject"),
            (
                json!({"kind": "invoice_ready", "subject": "a\nb"}),
                "subject",
            ),
            (
                json!({"kind": "invoice_ready", "subject": "x".repeat(201)}),
                "subject",
            ),
            (
                json!({"kind": "invoice_ready", "subject": "x", "details": deep}),
                "details",
            ),
            (
                json!({"kind": "invoice_ready", "subject": "x", "details": {"blob": "x".repeat(270_000)}}),
                "details",
            ),
            (
                json!({"kind": "invoice_ready", "subject": "x", "recipient": "jane doe@example.com"}),
                "recipient",
            ),
            // The invoice task refuses it too (one rule, sfn_task::fields).
            (
                json!({"kind": "invoice_ready", "subject": "x", "recipient": format!("{}@example.com", "ü".repeat(40))}),
                "recipient",
            ),
            (
                json!({"kind": "invoice_ready", "subject": "x", "sensitive": ["missing"]}),
                "sensitive",
            ),
        ] {
            match check(value.clone()) {
                Err(TaskError::InvalidInput(m)) => assert!(m.starts_with(field), "{m}"),
                other => panic!("{value}: {other:?}"),
            }
        }
        let bad = check(
            json!({"kind": "invoice_ready", "subject": "x", "recipient": "jane doe@example.com"}),
        );
        assert!(
            !format!("{bad:?}").contains("jane"),
            "the address is not echoed"
        );
    }

    #[test]
    fn masking() {
        assert_eq!(mask_email("zoe.mueller@example.com"), "z***@***.com");
        let r = request(json!({"kind": "invoice_ready", "subject": "x",
            "details": {"iban": "DE00 1234", "order": "A-1"}, "sensitive": ["iban"]}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.masked_details(), json!({"iban": "***", "order": "A-1"}));
    }
}
