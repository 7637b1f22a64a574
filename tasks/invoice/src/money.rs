//! Invoice arithmetic in decimals, rounded to the currency's minor units.
//!
//! Each line total is rounded (half away from zero, as commercial invoices
//! do); tax is computed per rate on the sum of that rate's rounded line
//! totals and rounded once; the grand total is subtotal plus tax. So the
//! printed numbers always add up.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::order::Order;

/// The computed amounts of an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Per line, rounded.
    pub line_totals: Vec<Decimal>,
    /// Per tax rate (percent): the taxable base and the rounded tax.
    pub tax_by_rate: BTreeMap<Decimal, (Decimal, Decimal)>,
    /// Sum of line totals.
    pub subtotal: Decimal,
    /// Sum of taxes.
    pub tax_total: Decimal,
    /// Subtotal plus tax.
    pub grand_total: Decimal,
}

/// Rounds to `exponent` decimal places, half away from zero, and keeps
/// exactly that many places (so `10` in EUR prints as `10.00`).
pub fn round(value: Decimal, exponent: u32) -> Decimal {
    let mut rounded =
        value.round_dp_with_strategy(exponent, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(exponent);
    rounded
}

/// Computes every amount of `order`. Validation limits keep every value far
/// inside `Decimal`'s range, so nothing here can overflow.
pub fn totals(order: &Order) -> Totals {
    let exp = order.exponent;
    let line_totals: Vec<Decimal> = order
        .lines
        .iter()
        .map(|l| round(l.quantity * l.unit_price, exp))
        .collect();
    let mut bases: BTreeMap<Decimal, Decimal> = BTreeMap::new();
    for (line, total) in order.lines.iter().zip(&line_totals) {
        *bases.entry(line.tax_rate.normalize()).or_default() += *total;
    }
    let tax_by_rate: BTreeMap<Decimal, (Decimal, Decimal)> = bases
        .into_iter()
        .map(|(rate, base)| {
            (
                rate,
                (
                    round(base, exp),
                    round(base * rate / Decimal::ONE_HUNDRED, exp),
                ),
            )
        })
        .collect();
    let subtotal = round(line_totals.iter().copied().sum(), exp);
    let tax_total = round(tax_by_rate.values().map(|(_, tax)| *tax).sum(), exp);
    Totals {
        line_totals,
        tax_by_rate,
        subtotal,
        tax_total,
        grand_total: round(subtotal + tax_total, exp),
    }
}

/// `1234567.5` with exponent 2 → `1,234,567.50`.
pub fn format_amount(value: Decimal, exponent: u32) -> String {
    let text = round(value, exponent).to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::with_capacity(text.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// A decimal without trailing zeros: `2.500` → `2.5`, `20.00` → `20`.
pub fn format_plain(value: Decimal) -> String {
    value.normalize().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{Line, Order, Party};
    use iso_currency::Currency;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn order(currency: Currency, lines: &[(&str, &str, &str)]) -> Order {
        let party = Party {
            name: "n".into(),
            address: vec![],
            email: "a@b.c".into(),
            tax_id: None,
        };
        Order {
            order_id: "A".into(),
            issue_date: chrono::NaiveDate::default(),
            due_date: None,
            currency,
            exponent: u32::from(currency.exponent().unwrap_or(2)),
            seller: party.clone(),
            buyer: party,
            lines: lines
                .iter()
                .map(|(q, p, r)| Line {
                    description: "x".into(),
                    quantity: d(q),
                    unit_price: d(p),
                    tax_rate: d(r),
                })
                .collect(),
            notes: None,
            payment_terms: None,
        }
    }

    #[test]
    fn euro_invoice_adds_up() {
        let t = totals(&order(
            Currency::EUR,
            &[
                ("2", "10.00", "20"),
                ("3", "0.333", "20"),
                ("1", "9.99", "7"),
            ],
        ));
        assert_eq!(t.line_totals, vec![d("20.00"), d("1.00"), d("9.99")]);
        assert_eq!(t.subtotal.to_string(), "30.99");
        assert_eq!(t.tax_by_rate[&d("20")], (d("21.00"), d("4.20")));
        assert_eq!(t.tax_by_rate[&d("7")], (d("9.99"), d("0.70")));
        assert_eq!(t.tax_total.to_string(), "4.90");
        assert_eq!(t.grand_total.to_string(), "35.89");
    }

    #[test]
    fn minor_units_per_currency() {
        let jpy = totals(&order(Currency::JPY, &[("3", "333.5", "10")]));
        assert_eq!(jpy.subtotal.to_string(), "1001");
        assert_eq!(jpy.tax_total.to_string(), "100");
        assert_eq!(jpy.grand_total.to_string(), "1101");

        let kwd = totals(&order(Currency::KWD, &[("1", "1.2345", "5")]));
        assert_eq!(kwd.subtotal.to_string(), "1.235", "half away from zero");
        assert_eq!(kwd.tax_total.to_string(), "0.062");
        assert_eq!(kwd.grand_total.to_string(), "1.297");
    }

    #[test]
    fn rates_written_differently_are_one_rate() {
        let t = totals(&order(
            Currency::EUR,
            &[("1", "1", "20"), ("1", "1", "20.00")],
        ));
        assert_eq!(t.tax_by_rate.len(), 1);
    }

    #[test]
    fn amounts_print_grouped_with_minor_units() {
        assert_eq!(format_amount(d("1234567.5"), 2), "1,234,567.50");
        assert_eq!(format_amount(d("999"), 0), "999");
        assert_eq!(format_amount(d("1000"), 3), "1,000.000");
        assert_eq!(format_amount(d("0.125"), 2), "0.13");
        assert_eq!(format_plain(d("20.00")), "20");
        assert_eq!(format_plain(d("5.50")), "5.5");
    }
}
