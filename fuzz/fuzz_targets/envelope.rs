//! Everything the runtime does with a raw payload before the handler runs,
//! on arbitrary input: JSON parsing, correlation-ID resolution
//! (`envelope::resolve_correlation`) and envelope splitting
//! (`envelope::parse`), in the order `common`'s invocation runs them. Bytes
//! that are not JSON become a generated value (see `fuzz::value`), and the
//! raw text also goes straight into correlation-ID validation. Nothing may
//! panic, and the guarantees logs and S3 metadata rely on must hold.

#![no_main]

use common::correlation::{CorrelationId, MAX_LEN, Source};
use common::envelope;
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = std::str::from_utf8(data) {
        check_candidate(raw);
    }
    let payload = match serde_json::from_slice::<Value>(data) {
        Ok(payload) => payload,
        Err(_) => match fuzz::value(&mut Unstructured::new(data)) {
            Ok(payload) => payload,
            Err(_) => return,
        },
    };
    if let Value::String(s) = &payload {
        check_candidate(s);
    }

    let resolved = envelope::resolve_correlation(&payload);
    // Whatever came in, the ID that goes out is valid: a refused candidate
    // is replaced by one derived from it (the same every time), never
    // echoed.
    assert!(CorrelationId::parse(resolved.id.as_str()).is_ok());
    if let Some((source, why)) = resolved.rejected {
        assert_eq!(resolved.source, Source::Replaced);
        assert_ne!(source, Source::Replaced);
        assert_eq!(envelope::resolve_correlation(&payload).id, resolved.id);
        let _ = why.to_string();
    }
    let _ = resolved.source.as_str();

    let original = payload.clone();
    match envelope::parse(payload) {
        Ok(parsed) if parsed.is_envelope => {
            assert!(original.get("input").is_some());
            if resolved.source == Source::Envelope {
                assert_eq!(
                    parsed.correlation_id.as_ref().and_then(Value::as_str),
                    Some(resolved.id.as_str())
                );
            }
        }
        Ok(parsed) => {
            // A bare payload reaches the handler whole.
            assert_eq!(parsed.input, original);
            assert_eq!(parsed.correlation_id, None);
            assert_ne!(resolved.source, Source::Envelope);
        }
        Err(err) => {
            assert_eq!(err.error_type(), common::error::INVALID_INPUT);
            let _ = err.to_string();
        }
    }
});

fn check_candidate(raw: &str) {
    match CorrelationId::parse(raw) {
        Ok(id) => {
            assert_eq!(id.as_str(), raw);
            assert!(!raw.is_empty() && raw.len() <= MAX_LEN);
            // Safe in log lines, S3 metadata, SQS attributes and Sentry tags
            // without escaping.
            assert!(raw.bytes().all(|b| b.is_ascii_graphic()));
            assert!(!raw.contains(['"', '\\', '/', '%', '<', '>']));
        }
        Err(why) => {
            let _ = why.to_string();
        }
    }
}
