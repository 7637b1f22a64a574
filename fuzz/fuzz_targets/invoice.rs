//! An invoice order from arbitrary input, along the task's own path: JSON
//! into a `Value`, the envelope split, the typed `OrderInput`, validation,
//! and for accepted orders the full render (totals, layout, PDF) that
//! `render-invoice` and the Lambda handler run. Bytes that are not JSON
//! become a generated, order-shaped value (see `fuzz::order`). Nothing may
//! panic, and an accepted order must render within libFuzzer's time and
//! memory limits.

#![no_main]

use common::envelope;
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let payload = match serde_json::from_slice::<Value>(data) {
        Ok(payload) => payload,
        Err(_) => match fuzz::order(&mut Unstructured::new(data)) {
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
            assert_eq!(err.error_type(), common::error::INVALID_INPUT, "{err}");
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
});
