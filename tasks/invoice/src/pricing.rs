//! Pricing without issuing: the order validated and its totals computed
//! exactly as the invoice will charge them, nothing rendered or written.
//!
//! The invoice workflow prices an order first and decides on its approval
//! from these numbers (per currency, in minor units), so an order cannot be
//! let through by a total the caller made up; only after the decision is the
//! invoice rendered and stored. The pricing function is the same binary with
//! `INVOICE_MODE=price` and no access to S3 at all.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use sfn_task::TaskError;

use crate::{OrderInput, money};

/// The largest integer JSONata (JavaScript numbers) compares exactly:
/// larger totals are reported as this, still above any approval threshold.
pub const MAX_SAFE_MINOR: i64 = (1 << 53) - 1;

/// What the invoice will charge.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Priced {
    /// The invoice number.
    pub order_id: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Grand total, a decimal string with the currency's minor units.
    pub total: String,
    /// Grand total in minor units (cents), for threshold comparisons;
    /// capped at [`MAX_SAFE_MINOR`].
    pub total_minor: i64,
    /// Subtotal before tax, a decimal string.
    pub subtotal: String,
    /// Tax, a decimal string.
    pub tax_total: String,
    /// How many lines.
    pub line_count: usize,
    /// Who pays, for the approver (the name only).
    pub buyer_name: String,
}

/// Validates and prices `input` (the handler of `INVOICE_MODE=price`).
pub fn price(input: OrderInput) -> Result<Priced, TaskError> {
    let order = input.validate()?;
    let totals = money::totals(&order);
    Ok(Priced {
        total_minor: minor_units(totals.grand_total, order.exponent),
        order_id: order.order_id,
        currency: order.currency.code().to_owned(),
        total: totals.grand_total.to_string(),
        subtotal: totals.subtotal.to_string(),
        tax_total: totals.tax_total.to_string(),
        line_count: order.lines.len(),
        buyer_name: order.buyer.name,
    })
}

/// `amount` (already at the currency's `exponent`) in minor units.
fn minor_units(amount: Decimal, exponent: u32) -> i64 {
    let scaled = amount * Decimal::from(10i64.pow(exponent));
    scaled
        .trunc()
        .to_i64()
        .map_or(MAX_SAFE_MINOR, |minor| minor.min(MAX_SAFE_MINOR))
}

/// Which job the binary does, from `INVOICE_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Render and store the invoice (the default).
    Issue,
    /// Validate and price only.
    Price,
}

impl Mode {
    /// `INVOICE_MODE`: `issue` (default) or `price`.
    pub fn from_env() -> Result<Self, TaskError> {
        match std::env::var("INVOICE_MODE").ok().as_deref() {
            None | Some("" | "issue") => Ok(Self::Issue),
            Some("price") => Ok(Self::Price),
            Some(_) => Err(TaskError::failed("INVOICE_MODE must be `issue` or `price`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order(currency: &str, price: &str, quantity: &str) -> OrderInput {
        let mut value = crate::order::tests::sample();
        value["currency"] = json!(currency);
        value["lines"] = json!([{"description": "x", "quantity": quantity, "unit_price": price, "tax_rate": "20"}]);
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_price_is_what_the_invoice_charges_in_minor_units() {
        let eur = price(order("EUR", "10.00", "2")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((eur.total.as_str(), eur.total_minor), ("24.00", 2400));
        assert_eq!(eur.currency, "EUR");
        let jpy = price(order("JPY", "1000", "3")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((jpy.total.as_str(), jpy.total_minor), ("3600", 3600));
        let kwd = price(order("KWD", "1.2345", "1")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((kwd.total.as_str(), kwd.total_minor), ("1.482", 1482));
        // The rendered invoice charges the same.
        let rendered = crate::render(order("EUR", "10.00", "2")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rendered.totals.grand_total.to_string(), eur.total);
    }

    #[test]
    fn a_huge_total_is_capped_above_any_threshold() {
        let huge = price(order("KWD", "1000000000", "1000000")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(huge.total_minor, MAX_SAFE_MINOR);
    }

    #[test]
    fn bad_orders_are_refused_as_when_issuing() {
        let mut value = crate::order::tests::sample();
        value["currency"] = json!("XXX");
        let input: OrderInput = serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            price(input).err().map(|e| e.error_type()),
            Some("Task.InvalidInput")
        );
    }
}
