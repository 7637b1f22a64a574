//! The `invoice` task: renders a PDF invoice for an order and stores it in
//! S3 at `invoices/{order_id}.pdf`, exactly once: the key holds the invoice
//! number alone, so no rerun (whatever its date) can issue a number twice.
//!
//! The flow is validate ([`order`]) → compute ([`money`]) → lay out
//! ([`layout`]) → draw ([`pdf`], which explains the choice of krilla) →
//! store ([`store`]). Bad input fails before anything is written. With
//! `INVOICE_MODE=price` the same binary only validates and prices
//! ([`pricing`]), for the workflow's approval decision.

pub mod fonts;
pub mod layout;
pub mod money;
pub mod order;
pub mod pdf;
pub mod pricing;
pub mod store;

use aws_sdk_s3::Client;
use serde::Serialize;
use sfn_task::{TaskContext, TaskError};

pub use order::OrderInput;

/// Settings read at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `INVOICE_BUCKET`: where invoices are stored.
    pub bucket: String,
}

impl Config {
    /// Reads `INVOICE_BUCKET`.
    pub fn from_env() -> Result<Self, TaskError> {
        match std::env::var("INVOICE_BUCKET") {
            Ok(bucket) if !bucket.trim().is_empty() => Ok(Self { bucket }),
            _ => Err(TaskError::failed("INVOICE_BUCKET is not set")),
        }
    }
}

/// The task's output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Output {
    /// Bucket holding the invoice.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// Hex SHA-256 of the PDF.
    pub sha256: String,
    /// PDF size in bytes.
    pub size: u64,
    /// Number of pages.
    pub page_count: usize,
    /// Grand total, as a decimal string with the currency's minor units.
    pub total: String,
    /// ISO 4217 code.
    pub currency: String,
    /// True when the identical invoice was already stored (a retry or rerun).
    pub already_existed: bool,
}

/// A rendered invoice and its numbers, before storage.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The validated order.
    pub order: order::Order,
    /// Its totals.
    pub totals: money::Totals,
    /// The PDF.
    pub pdf: pdf::Pdf,
}

/// Validates and renders, without touching S3.
pub fn render(input: OrderInput) -> Result<Rendered, TaskError> {
    let order = input.validate()?;
    let fonts = Fonts::get().ok_or_else(|| TaskError::failed("embedded fonts are unreadable"))?;
    let totals = money::totals(&order);
    let pages = layout::layout(&order, &totals, fonts);
    let pdf = pdf::draw(&order, &pages, fonts)?;
    Ok(Rendered { order, totals, pdf })
}

use fonts::Fonts;

/// The S3 key of an order's invoice: the invoice number alone, so the
/// conditional write that stores it once also issues the number once.
pub fn key_for(order: &order::Order) -> String {
    format!("invoices/{}.pdf", order.order_id)
}

/// The handler: render, then store once.
pub async fn handle(
    s3: &Client,
    config: &Config,
    input: OrderInput,
    ctx: TaskContext,
) -> Result<Output, TaskError> {
    // Rendering is CPU work: off the async threads, so the deadline guard
    // can still fire while a large invoice renders.
    let Rendered { order, totals, pdf } = tokio::task::spawn_blocking(move || render(input))
        .await
        .map_err(|e| TaskError::Panic(format!("rendering the invoice: {e}")))??;
    let key = key_for(&order);
    let pages = pdf.pages;
    let stored = store::put_once(
        s3,
        &config.bucket,
        &key,
        pdf.bytes,
        store::Labels {
            correlation_id: ctx.correlation_id(),
            order_id: &order.order_id,
        },
    )
    .await?;
    tracing::info!(
        key,
        pages,
        bytes = stored.size,
        already_existed = stored.already_existed,
        "invoice stored"
    );
    Ok(Output {
        bucket: config.bucket.clone(),
        key,
        sha256: stored.sha256,
        size: stored.size,
        page_count: pages,
        total: totals.grand_total.to_string(),
        currency: order.currency.code().to_owned(),
        already_existed: stored.already_existed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn order(order_id: &str, issue_date: &str) -> Result<order::Order, TaskError> {
        let input: Value = json!({
            "order_id": order_id,
            "issue_date": issue_date,
            "currency": "EUR",
            "seller": {"name": "Acme GmbH", "email": "billing@acme.example"},
            "buyer": {"name": "Zoë Müller", "email": "zoe@example.com"},
            "lines": [{"description": "Widget", "quantity": "1", "unit_price": "1.00", "tax_rate": "0"}]
        });
        serde_json::from_value::<OrderInput>(input)
            .map_err(|e| TaskError::invalid_input(e.to_string()))?
            .validate()
    }

    /// What every invoice key must be.
    fn assert_safe_key(key: &str) {
        assert!(key.len() <= 1024, "{} bytes", key.len());
        assert!(key.starts_with("invoices/"), "{key}");
        assert!(key.ends_with(".pdf"), "{key}");
        assert_eq!(key.matches('/').count(), 1, "{key}");
        assert!(!key.contains("//"), "{key}");
        assert!(!key.chars().any(char::is_control), "{key:?}");
        for segment in key.split('/') {
            assert!(!matches!(segment, "" | "." | ".."), "{key}: {segment:?}");
        }
        let file = key.rsplit('/').next().unwrap_or_default();
        assert!(!file.starts_with('.'), "{key}");
        assert!(
            file.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')),
            "{key}"
        );
    }

    #[test]
    fn hostile_order_ids_are_refused_at_validation() {
        let long = "A".repeat(65);
        let huge = "A".repeat(2000);
        for id in [
            "",
            ".",
            "..",
            "../x",
            "x/../../y",
            "/A-1001",
            "A-1001/",
            "a/b",
            "%2e%2e",
            "%2e%2e%2fx",
            "..%2f",
            "A\u{0}1001",
            "A\n1001",
            "A\r1001",
            "A\t1001",
            "A\u{7f}",
            "A\u{85}",
            "A\\1001",
            "．．",
            "∕x",
            "Ａ-1001",
            "А-1001", // Cyrillic А
            "A-1001\u{200B}",
            "A-1001\u{202E}",
            " A-1001",
            "A-1001 ",
            "A?1001",
            "A#1001",
            "A:1001",
            ".hidden",
            "a..b",
            long.as_str(),
            huge.as_str(),
        ] {
            match order(id, "2026-11-24") {
                Err(TaskError::InvalidInput(m)) => {
                    assert!(m.starts_with("order_id"), "{id:?}: {m}")
                }
                other => panic!("{id:?}: expected InvalidInput, got {other:?}"),
            }
        }
        for date in [
            "../2026",
            "2026-11-24/..",
            "1999-12-31",
            "3000-01-01",
            "+2026-11-24",
        ] {
            assert!(
                matches!(order("A-1001", date), Err(TaskError::InvalidInput(m)) if m.starts_with("issue_date")),
                "{date}"
            );
        }
    }

    #[test]
    fn accepted_order_ids_give_safe_keys() {
        let longest = format!("A{}", "-_.9".repeat(15) + "zzz");
        for (id, date, key) in [
            ("A-1001", "2026-11-24", "invoices/A-1001.pdf"),
            ("a_b.c", "2000-01-01", "invoices/a_b.c.pdf"),
            ("x.", "2999-12-31", "invoices/x..pdf"),
            ("0", "2026-02-28", "invoices/0.pdf"),
        ] {
            let accepted = order(id, date).unwrap_or_else(|e| panic!("{id}: {e}"));
            let built = key_for(&accepted);
            assert_eq!(built, key);
            assert_safe_key(&built);
        }
        assert_eq!(longest.len(), 64);
        let longest = order(&longest, "2026-11-24").unwrap_or_else(|e| panic!("{e}"));
        assert_safe_key(&key_for(&longest));
        // Every ASCII character the validation lets into an id, too: letters,
        // digits and `-_.`.
        let mut accepted_chars = 0;
        for c in (0u8..=127).map(char::from) {
            let id = format!("A{c}1");
            if let Ok(accepted) = order(&id, "2026-11-24") {
                assert_safe_key(&key_for(&accepted));
                accepted_chars += 1;
            }
        }
        assert_eq!(accepted_chars, 26 + 26 + 10 + 3);
    }
}
