//! The properties the fuzz targets check, as plain functions: `fuzz/`
//! runs them under libFuzzer with sanitizers (`make fuzz`), and this
//! crate's own test replays the committed corpus and a few thousand
//! generated inputs through them in the normal build (`make test`).

use arbitrary::Unstructured;
use serde_json::Value;
use sfn_task::correlation::{CorrelationId, MAX_LEN, Source};
use sfn_task::envelope;

pub mod generate;

/// Everything the runtime does with a raw payload before the handler runs,
/// on arbitrary input: JSON parsing, correlation-ID resolution
/// (`envelope::resolve_correlation`) and envelope splitting
/// (`envelope::parse`), in the order `common`'s invocation runs them. Bytes
/// that are not JSON become a generated value (see [`generate::value`]), and the
/// raw text also goes straight into correlation-ID validation. Nothing may
/// panic, and the guarantees logs and S3 metadata rely on must hold.
pub fn check_envelope(data: &[u8]) {
    if let Ok(raw) = std::str::from_utf8(data) {
        check_candidate(raw);
    }
    let payload = match serde_json::from_slice::<Value>(data) {
        Ok(payload) => payload,
        Err(_) => match generate::value(&mut Unstructured::new(data)) {
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
            assert_eq!(err.error_type(), sfn_task::error::INVALID_INPUT);
            let _ = err.to_string();
        }
    }
}

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

/// An invoice order from arbitrary input, along the task's own path: JSON
/// into a `Value`, the envelope split, the typed `OrderInput`, validation,
/// and for accepted orders the full render (totals, layout, PDF) that
/// `render-invoice` and the Lambda handler run. Bytes that are not JSON
/// become a generated, order-shaped value (see [`generate::order`]). Nothing may
/// panic, and an accepted order must render within libFuzzer's time and
/// memory limits.
pub fn check_invoice(data: &[u8]) {
    let payload = match serde_json::from_slice::<Value>(data) {
        Ok(payload) => payload,
        Err(_) => match generate::order(&mut Unstructured::new(data)) {
            Ok(payload) => payload,
            Err(_) => return,
        },
    };
    let Ok(parsed) = envelope::parse(payload) else {
        return;
    };
    let Ok(input) = serde_json::from_value::<invoice::OrderInput>(parsed.input) else {
        return;
    };
    let rendered = match invoice::render(input) {
        Ok(rendered) => rendered,
        Err(err) => {
            // Refusals are the caller's mistake; anything else (a font or
            // PDF failure) on an order validation accepted is a bug.
            assert_eq!(err.error_type(), sfn_task::error::INVALID_INPUT, "{err}");
            return;
        }
    };

    assert!(rendered.pdf.bytes.starts_with(b"%PDF-"));
    assert!(rendered.pdf.pages >= 1);
    let totals = &rendered.totals;
    let exponent = rendered.order.exponent;
    assert_eq!(totals.line_totals.len(), rendered.order.lines.len());
    assert_eq!(totals.grand_total, totals.subtotal + totals.tax_total);
    assert_eq!(totals.grand_total.scale(), exponent);
    let key = invoice::key_for(&rendered.order);
    assert!(key.starts_with("invoices/") && key.ends_with(".pdf"));
    // By segment: `x..pdf` (an id ending in `.`) is a valid file name.
    assert!(!key.contains("//"), "{key}");
    assert!(
        key.split('/').all(|s| !matches!(s, "" | "." | "..")),
        "{key}"
    );
}
