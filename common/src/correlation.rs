//! Correlation IDs: one ID that follows a piece of business work through every
//! execution, retry and rerun of a workflow, unlike the execution name.

use serde_json::Value;

/// Longest correlation ID accepted; longer ones are replaced.
pub const MAX_LEN: usize = 128;

/// The UUID v5 namespace of derived correlation IDs (fixed: changing it
/// changes every derived ID).
const REPLACEMENT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c3f_0a5e_9d41_4c8e_b2a7_5f10_c0de_0001);

/// A validated correlation ID: 1 to [`MAX_LEN`] characters from
/// `A-Z a-z 0-9 - _ . : = +`, so it is safe in log lines, S3 metadata,
/// SQS attributes and Sentry tags without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CorrelationId(String);

impl CorrelationId {
    /// Validates `raw`; the error names the rule broken, never the value.
    pub fn parse(raw: &str) -> Result<Self, Rejected> {
        if raw.is_empty() {
            return Err(Rejected::Empty);
        }
        if raw.len() > MAX_LEN {
            return Err(Rejected::TooLong);
        }
        if !raw.bytes().all(is_safe) {
            return Err(Rejected::UnsafeCharacter);
        }
        Ok(Self(raw.to_owned()))
    }

    /// A new, time-ordered UUID v7.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// The ID that replaces a refused candidate: a UUID v5 of the
    /// candidate's JSON text, so the same value gives the same ID in every
    /// task and every retry of a workflow (an execution name with an `@` in
    /// it, say), and FIFO deduplication keeps working. The value itself is
    /// never part of it.
    pub fn derive(refused: &Value) -> Self {
        Self(uuid::Uuid::new_v5(&REPLACEMENT_NAMESPACE, refused.to_string().as_bytes()).to_string())
    }

    /// The ID as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for CorrelationId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn is_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'=' | b'+')
}

/// Why a candidate correlation ID was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The candidate was an empty string.
    #[error("empty")]
    Empty,
    /// The candidate was longer than [`MAX_LEN`].
    #[error("longer than 128 characters")]
    TooLong,
    /// The candidate had a character outside the safe set.
    #[error("contains characters outside A-Z a-z 0-9 - _ . : = +")]
    UnsafeCharacter,
    /// The candidate was not a JSON string.
    #[error("not a string")]
    NotAString,
}

/// Where an invocation's correlation ID came from; logged on the start line as
/// `correlation_id_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The envelope's `correlation_id`.
    Envelope,
    /// An API Gateway-shaped event's `x-correlation-id` header.
    Header,
    /// An API Gateway-shaped event's `requestContext.requestId`.
    RequestId,
    /// An EventBridge event's `id`.
    EventBridge,
    /// None was found: a new UUID v7.
    Generated,
    /// The one found was refused: a UUID v5 derived from it.
    Replaced,
}

impl Source {
    /// The value logged as `correlation_id_source`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Envelope => "envelope",
            Self::Header => "header",
            Self::RequestId => "request_id",
            Self::EventBridge => "eventbridge",
            Self::Generated => "generated",
            Self::Replaced => "replaced",
        }
    }
}

/// The outcome of [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The ID the invocation uses.
    pub id: CorrelationId,
    /// Where it came from.
    pub source: Source,
    /// Set when a candidate was found but refused (and so replaced).
    pub rejected: Option<(Source, Rejected)>,
}

/// Resolves an invocation's correlation ID, first match wins: the envelope's
/// `correlation_id`; an `x-correlation-id` header (any case) of an API
/// Gateway-shaped event; its `requestContext.requestId`; an EventBridge
/// event's `id`; otherwise a new UUID v7. A candidate that fails validation
/// is replaced by one derived from it ([`CorrelationId::derive`]: the same
/// candidate always gets the same ID) and reported in `rejected`, never
/// echoed.
pub fn resolve(envelope_id: Option<&Value>, payload: &Value) -> Resolved {
    let candidate = envelope_id
        .map(|v| (Source::Envelope, v))
        .or_else(|| header(payload).map(|v| (Source::Header, v)))
        .or_else(|| request_id(payload).map(|v| (Source::RequestId, v)))
        .or_else(|| eventbridge_id(payload).map(|v| (Source::EventBridge, v)));

    let Some((source, value)) = candidate else {
        return generated();
    };
    let parsed = match value {
        Value::String(s) => CorrelationId::parse(s),
        _ => Err(Rejected::NotAString),
    };
    match parsed {
        Ok(id) => Resolved {
            id,
            source,
            rejected: None,
        },
        Err(why) => Resolved {
            id: CorrelationId::derive(value),
            source: Source::Replaced,
            rejected: Some((source, why)),
        },
    }
}

fn generated() -> Resolved {
    Resolved {
        id: CorrelationId::generate(),
        source: Source::Generated,
        rejected: None,
    }
}

fn header(payload: &Value) -> Option<&Value> {
    payload.get("requestContext")?;
    payload
        .get("headers")?
        .as_object()?
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("x-correlation-id"))
        .map(|(_, value)| value)
}

fn request_id(payload: &Value) -> Option<&Value> {
    payload.get("requestContext")?.get("requestId")
}

fn eventbridge_id(payload: &Value) -> Option<&Value> {
    let obj = payload.as_object()?;
    if obj.contains_key("detail-type") && obj.contains_key("source") {
        obj.get("id")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn validation_accepts_the_safe_set_and_refuses_the_rest() {
        assert!(CorrelationId::parse("order-42_run.1:a=b+c").is_ok());
        assert!(CorrelationId::parse(&"a".repeat(128)).is_ok());
        assert_eq!(CorrelationId::parse(""), Err(Rejected::Empty));
        assert_eq!(
            CorrelationId::parse(&"a".repeat(129)),
            Err(Rejected::TooLong)
        );
        for bad in ["a b", "a/b", "a\nb", "é", "a\"b", "<script>", "a\u{0}b"] {
            assert_eq!(
                CorrelationId::parse(bad),
                Err(Rejected::UnsafeCharacter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn generated_ids_are_uuid_v7() {
        let id = CorrelationId::generate();
        let uuid = uuid::Uuid::parse_str(id.as_str()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(uuid.get_version_num(), 7);
        assert_ne!(id, CorrelationId::generate());
    }

    #[test]
    fn envelope_wins_over_everything() {
        let payload = fixture("apigw_with_header.json");
        let r = resolve(Some(&json!("from-envelope")), &payload);
        assert_eq!(
            (r.id.as_str(), r.source),
            ("from-envelope", Source::Envelope)
        );
    }

    #[test]
    fn api_gateway_header_any_case_then_request_id() {
        let payload = fixture("apigw_with_header.json");
        let r = resolve(None, &payload);
        assert_eq!((r.id.as_str(), r.source), ("web-7f3a9c", Source::Header));

        let mut no_header = payload.clone();
        no_header["headers"] = json!({"content-type": "application/json"});
        let r = resolve(None, &no_header);
        assert_eq!(r.source, Source::RequestId);
        assert_eq!(r.id.as_str(), "c6af9ac6-7b61-11e6-9a41-93e8deadbeef");
    }

    #[test]
    fn eventbridge_id() {
        let r = resolve(None, &fixture("eventbridge_scheduled.json"));
        assert_eq!(r.source, Source::EventBridge);
        assert_eq!(r.id.as_str(), "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa");
    }

    #[test]
    fn a_bare_object_gets_a_generated_id() {
        let r = resolve(None, &json!({"id": "not-eventbridge", "order_id": "A-1"}));
        assert_eq!(r.source, Source::Generated);
        assert_eq!(r.rejected, None);
    }

    #[test]
    fn a_refused_candidate_is_replaced_by_the_same_id_every_time() {
        // Execution names AWS accepts that the safe set refuses: every task
        // and every retry of one execution must log the same ID.
        for refused in [
            "order@acme",
            "rerun(2)",
            "o'brien-42",
            "Zoë-Müller",
            "山田太郎",
            &"n".repeat(129),
        ] {
            let first = resolve(Some(&json!(refused)), &json!({}));
            let again = resolve(Some(&json!(refused)), &json!({"other": "input"}));
            assert_eq!(first.id, again.id, "{refused:?}");
            assert_eq!(first.source, Source::Replaced, "{refused:?}");
            assert!(!first.id.as_str().contains(refused), "never echoed");
            assert!(CorrelationId::parse(first.id.as_str()).is_ok());
        }
        let a = resolve(Some(&json!("order@acme")), &json!({}));
        let b = resolve(Some(&json!("order@acme2")), &json!({}));
        assert_ne!(a.id, b.id, "distinct values, distinct IDs");
        let number = resolve(Some(&json!(42)), &json!({}));
        assert_eq!(number.id, resolve(Some(&json!(42)), &json!({})).id);
        assert_ne!(number.id, resolve(Some(&json!("42")), &json!({})).id);
    }

    #[test]
    fn invalid_candidates_are_replaced_not_echoed() {
        let hostile = "x\n{\"level\":\"ERROR\"}";
        let r = resolve(Some(&json!(hostile)), &json!({}));
        assert_eq!(r.source, Source::Replaced);
        assert_eq!(
            r.rejected,
            Some((Source::Envelope, Rejected::UnsafeCharacter))
        );
        assert_ne!(r.id.as_str(), hostile);

        let r = resolve(Some(&json!(42)), &json!({}));
        assert_eq!(r.rejected, Some((Source::Envelope, Rejected::NotAString)));

        let mut payload = fixture("apigw_with_header.json");
        payload["headers"]["X-Correlation-Id"] = json!("a".repeat(500));
        let r = resolve(None, &payload);
        assert_eq!(r.rejected, Some((Source::Header, Rejected::TooLong)));
    }
}
