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

/// Property tests: whatever the amounts, rates and currency, the printed
/// numbers add up, every amount has exactly the currency's minor units, and
/// no input the validator accepts can overflow `Decimal`.
#[cfg(test)]
mod props {
    use super::*;
    use crate::order::{LineInput, Order, OrderInput, PartyInput};
    use proptest::prelude::*;
    use std::str::FromStr;

    /// Active currencies per exponent: every minor unit ISO 4217 uses for a
    /// currency the validator accepts (0, 2, 3; UYW's 4 is refused as a
    /// special code, so 4 and beyond are covered by overriding the exponent).
    const CURRENCIES: [(&str, u32); 12] = [
        ("JPY", 0),
        ("KRW", 0),
        ("ISK", 0),
        ("CLP", 0),
        ("EUR", 2),
        ("USD", 2),
        ("GBP", 2),
        ("KWD", 3),
        ("BHD", 3),
        ("TND", 3),
        ("OMR", 3),
        ("JOD", 3),
    ];

    /// A decimal in `0..=max` with `0..=max_scale` decimal places, written
    /// the way clients send it (`"12.50"`, never an exponent).
    fn amount(max: u64, max_scale: u32) -> impl Strategy<Value = String> {
        (0..=max_scale).prop_flat_map(move |scale| {
            (0..=max * 10u64.pow(scale)).prop_map(move |m| {
                Decimal::new(i64::try_from(m).unwrap_or(i64::MAX), scale).to_string()
            })
        })
    }

    fn quantity() -> impl Strategy<Value = String> {
        // Mostly small quantities (the common case), sometimes the limit.
        prop_oneof![3 => amount(100, 3), 1 => amount(1_000_000, 6)]
            .prop_filter("quantity > 0", |q| {
                Decimal::from_str(q).is_ok_and(|d| !d.is_zero())
            })
    }

    fn price() -> impl Strategy<Value = String> {
        prop_oneof![3 => amount(10_000, 6), 1 => amount(1_000_000_000, 6)]
    }

    fn party() -> PartyInput {
        PartyInput {
            name: "Zoë".into(),
            address: vec![],
            email: "a@b.example".into(),
            tax_id: None,
        }
    }

    /// An order through the real validator, so the property covers exactly
    /// the inputs the task accepts.
    fn order() -> impl Strategy<Value = Order> {
        let rates = proptest::collection::vec(amount(100, 4), 1..4);
        (0..CURRENCIES.len(), rates).prop_flat_map(|(currency, rates)| {
            let line = (quantity(), price(), 0..rates.len());
            proptest::collection::vec(line, 1..40).prop_map(move |lines| {
                let input = OrderInput {
                    order_id: "P-1".into(),
                    issue_date: "2026-01-01".into(),
                    due_date: None,
                    currency: CURRENCIES[currency].0.into(),
                    seller: party(),
                    buyer: party(),
                    lines: lines
                        .into_iter()
                        .map(|(quantity, unit_price, rate)| LineInput {
                            description: "x".into(),
                            quantity,
                            unit_price,
                            tax_rate: rates[rate].clone(),
                        })
                        .collect(),
                    notes: None,
                    payment_terms: None,
                };
                match input.validate() {
                    Ok(order) => order,
                    Err(e) => panic!("generated a valid order, validator says {e}"),
                }
            })
        })
    }

    /// What the PDF shows, read back as a number.
    fn printed(value: Decimal, exponent: u32) -> Decimal {
        let text = format_amount(value, exponent);
        let fraction = text.split_once('.').map_or(0, |(_, f)| f.len());
        assert_eq!(
            fraction, exponent as usize,
            "{text} has the wrong minor units"
        );
        Decimal::from_str(&text.replace(',', ""))
            .unwrap_or_else(|e| panic!("{text} does not read back: {e}"))
    }

    /// Checks every "adds up" rule of the module docs on one order.
    fn adds_up(order: &Order) -> Result<(), TestCaseError> {
        let exp = order.exponent;
        let t = totals(order);

        let half_unit = Decimal::new(5, exp + 1);

        // Each line is its exact product rounded to the minor unit.
        for (line, total) in order.lines.iter().zip(&t.line_totals) {
            prop_assert_eq!(total.scale(), exp);
            prop_assert!((*total - line.quantity * line.unit_price).abs() <= half_unit);
        }
        // Subtotal is the sum of the printed line totals.
        let lines: Decimal = t.line_totals.iter().map(|l| printed(*l, exp)).sum();
        prop_assert_eq!(printed(t.subtotal, exp), lines);

        // Per rate: the base is that rate's printed lines, the tax is the
        // base times the rate rounded once.
        let mut taxes = Decimal::ZERO;
        for (rate, (base, tax)) in &t.tax_by_rate {
            let of_rate: Decimal = order
                .lines
                .iter()
                .zip(&t.line_totals)
                .filter(|(l, _)| l.tax_rate.normalize() == *rate)
                .map(|(_, total)| printed(*total, exp))
                .sum();
            prop_assert_eq!(printed(*base, exp), of_rate);
            prop_assert_eq!(tax.scale(), exp);
            prop_assert!((*tax - *base * *rate / Decimal::ONE_HUNDRED).abs() <= half_unit);
            taxes += printed(*tax, exp);
        }
        let bases: Decimal = t.tax_by_rate.values().map(|(b, _)| *b).sum();
        prop_assert_eq!(bases, t.subtotal);
        prop_assert_eq!(printed(t.tax_total, exp), taxes);

        // Grand total is printed subtotal plus printed tax, and the
        // task's `total` output has the currency's minor units.
        prop_assert_eq!(
            printed(t.grand_total, exp),
            printed(t.subtotal, exp) + printed(t.tax_total, exp)
        );
        let output = t.grand_total.to_string();
        prop_assert_eq!(
            output.split_once('.').map_or(0, |(_, f)| f.len()),
            exp as usize
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn printed_totals_add_up(order in order()) {
            let expected = CURRENCIES.iter().find(|c| c.0 == order.currency.code()).map(|c| c.1);
            prop_assert_eq!(Some(order.exponent), expected);
            adds_up(&order)?;
        }

        /// The arithmetic must not depend on the exponents ISO uses today.
        #[test]
        fn totals_add_up_for_any_exponent(mut order in order(), exp in 0u32..=8) {
            order.exponent = exp;
            adds_up(&order)?;
        }

        /// Rounding is exact to the exponent and half away from zero, for
        /// every exponent a `Decimal` line total could need.
        #[test]
        fn round_keeps_exactly_the_minor_units(
            mantissa in -1_000_000_000_000_000_000i128..1_000_000_000_000_000_000i128,
            scale in 0u32..=12,
            exp in 0u32..=6,
        ) {
            let value = Decimal::from_i128_with_scale(mantissa, scale);
            let r = round(value, exp);
            prop_assert_eq!(r.scale(), exp);
            prop_assert!((r - value).abs() <= Decimal::new(5, exp + 1));
            prop_assert_eq!(round(r, exp), r);
            prop_assert_eq!(round(-value, exp), -r, "half away from zero is symmetric");
            // A value exactly half-way between two minor units goes away
            // from zero (half-to-even and half-toward-zero would not, for
            // half of them).
            let mid = Decimal::from_i128_with_scale(mantissa % 1_000_000_000_000 * 10 + 5, exp + 1);
            prop_assert!(round(mid, exp).abs() > mid.abs(), "{mid} → {}", round(mid, exp));
        }

        /// Oversized, malformed or exotic numbers are refused with an error
        /// (never a panic), and whatever passes stays within the limits.
        #[test]
        fn huge_or_malformed_numbers_are_refused(
            quantity in prop_oneof![
                "[0-9]{1,40}(\\.[0-9]{0,30})?",
                "-?[0-9]{0,5}[.eE+-]?[0-9]{0,5}",
                Just("1e308".to_owned()),
                Just("99999999999999999999999".to_owned()),
                Just("79228162514264337593543950336".to_owned()),
                any::<String>(),
            ],
            price in "[0-9]{1,30}(\\.[0-9]{0,10})?",
        ) {
            let input = OrderInput {
                order_id: "P-1".into(),
                issue_date: "2026-01-01".into(),
                due_date: None,
                currency: "KWD".into(),
                seller: party(),
                buyer: party(),
                lines: vec![LineInput {
                    description: "x".into(),
                    quantity: quantity.clone(),
                    unit_price: price.clone(),
                    tax_rate: "100".into(),
                }],
                notes: None,
                payment_terms: None,
            };
            if let Ok(order) = input.validate() {
                let line = &order.lines[0];
                prop_assert!(line.quantity > Decimal::ZERO && line.quantity <= Decimal::from(1_000_000));
                prop_assert!(line.unit_price <= Decimal::from(1_000_000_000));
                let t = totals(&order);
                prop_assert_eq!(t.grand_total, t.subtotal + t.tax_total);
            }
        }
    }

    /// The worst order validation allows: `MAX_LINES` lines at the largest
    /// quantity, price, precision and rate. It must compute without
    /// overflow (`Decimal` would panic) and still add up.
    #[test]
    fn largest_valid_order_does_not_overflow() {
        for (code, exp) in CURRENCIES {
            let input = OrderInput {
                order_id: "P-1".into(),
                issue_date: "2026-01-01".into(),
                due_date: None,
                currency: code.into(),
                seller: party(),
                buyer: party(),
                lines: (0..crate::order::MAX_LINES)
                    .map(|i| LineInput {
                        description: "x".into(),
                        quantity: if i % 2 == 0 {
                            "1000000"
                        } else {
                            "999999.999999"
                        }
                        .into(),
                        unit_price: if i % 2 == 0 {
                            "1000000000"
                        } else {
                            "999999999.999999"
                        }
                        .into(),
                        tax_rate: if i % 3 == 0 { "100" } else { "99.9999" }.into(),
                    })
                    .collect(),
                notes: None,
                payment_terms: None,
            };
            let order = input
                .validate()
                .unwrap_or_else(|e| panic!("{code}: limits must be accepted: {e}"));
            let t = totals(&order);
            assert_eq!(t.grand_total, t.subtotal + t.tax_total, "{code}");
            assert_eq!(t.grand_total.scale(), exp, "{code}");
            assert!(t.grand_total > Decimal::from(10u64.pow(18)), "{code}");
        }
    }
}
