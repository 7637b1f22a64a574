//! The order an invoice is rendered from, and its validation.
//!
//! Limits (each breach is `Task.InvalidInput` naming the field):
//!
//! | field | rule |
//! |---|---|
//! | `order_id` | 1–64 characters from `A-Z a-z 0-9 - _ .`, not starting with `.` and without `..` (it becomes an S3 key component) |
//! | `issue_date`, `due_date` | `YYYY-MM-DD`, years 2000–2999; `due_date` (optional) not before `issue_date` |
//! | `currency` | an active ISO 4217 code (`EUR`, `JPY`, `KWD`, ...); funds and special codes (`XAU`, `XTS`) are refused |
//! | `seller`, `buyer` | `name` 1–200 characters; `address` up to 6 lines of up to 200; `email` as [`sfn_task::fields::email`] (at most 254 bytes, the rule the notify task applies too); `tax_id` (optional) up to 50 |
//! | `lines` | 1–1000 lines |
//! | `lines[i].description` | 1–500 characters |
//! | `lines[i].quantity` | decimal string, greater than 0, at most 1,000,000, up to 6 decimals |
//! | `lines[i].unit_price` | decimal string, 0 to 1,000,000,000, up to 6 decimals |
//! | `lines[i].tax_rate` | percent as a decimal string, 0 to 100, up to 4 decimals (`"20"`, `"5.5"`) |
//! | `notes` | up to 2000 characters; line breaks allowed |
//! | `payment_terms` | up to 500 characters |
//!
//! Text fields refuse control characters (line breaks only in `notes`) and
//! bidirectional overrides, which could make a PDF show something other than
//! what its text layer says.

use chrono::{Datelike, NaiveDate};
use iso_currency::Currency;
use rust_decimal::Decimal;
use serde::Deserialize;

use sfn_task::TaskError;
use sfn_task::fields::{email, text};

/// Most lines on one invoice.
pub const MAX_LINES: usize = 1000;
const MAX_ORDER_ID: usize = 64;
const MAX_NAME: usize = 200;
const MAX_ADDRESS_LINES: usize = 6;
const MAX_ADDRESS_LINE: usize = 200;
const MAX_TAX_ID: usize = 50;
const MAX_DESCRIPTION: usize = 500;
const MAX_NOTES: usize = 2000;
const MAX_PAYMENT_TERMS: usize = 500;
const MAX_DECIMALS: u32 = 6;
const MAX_RATE_DECIMALS: u32 = 4;

/// The task's input, as JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// Becomes the invoice number and the S3 key's file name.
    pub order_id: String,
    /// `YYYY-MM-DD`; also the PDF's creation date.
    pub issue_date: String,
    /// `YYYY-MM-DD`, optional.
    #[serde(default)]
    pub due_date: Option<String>,
    /// ISO 4217 code.
    pub currency: String,
    /// Who issues the invoice.
    pub seller: PartyInput,
    /// Who pays it.
    pub buyer: PartyInput,
    /// What was sold.
    pub lines: Vec<LineInput>,
    /// Free text printed under the totals.
    #[serde(default)]
    pub notes: Option<String>,
    /// E.g. "Net 30".
    #[serde(default)]
    pub payment_terms: Option<String>,
}

/// A seller or buyer as JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyInput {
    /// Person or company name.
    pub name: String,
    /// Postal address, one entry per line.
    #[serde(default)]
    pub address: Vec<String>,
    /// Contact e-mail.
    pub email: String,
    /// VAT or other tax number.
    #[serde(default)]
    pub tax_id: Option<String>,
}

/// An order line as JSON; numbers are decimal strings (floats would round).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineInput {
    /// What was sold.
    pub description: String,
    /// How many, e.g. `"2"` or `"1.5"`.
    pub quantity: String,
    /// Price of one, e.g. `"19.99"`.
    pub unit_price: String,
    /// Tax percent, e.g. `"20"`.
    pub tax_rate: String,
}

/// A validated order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Safe as an S3 key component.
    pub order_id: String,
    /// Date of issue.
    pub issue_date: NaiveDate,
    /// Payment due date.
    pub due_date: Option<NaiveDate>,
    /// The currency.
    pub currency: Currency,
    /// Its minor units (JPY 0, EUR 2, KWD 3).
    pub exponent: u32,
    /// Issuer.
    pub seller: Party,
    /// Payer.
    pub buyer: Party,
    /// At least one line.
    pub lines: Vec<Line>,
    /// Notes.
    pub notes: Option<String>,
    /// Payment terms.
    pub payment_terms: Option<String>,
}

/// A validated party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// Name.
    pub name: String,
    /// Address lines.
    pub address: Vec<String>,
    /// E-mail.
    pub email: String,
    /// Tax id.
    pub tax_id: Option<String>,
}

/// A validated line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Description.
    pub description: String,
    /// Quantity, > 0.
    pub quantity: Decimal,
    /// Unit price, ≥ 0.
    pub unit_price: Decimal,
    /// Tax percent, 0–100.
    pub tax_rate: Decimal,
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> TaskError {
    TaskError::invalid_input(format!("{field}: {reason}"))
}

impl OrderInput {
    /// Checks every field; the first problem found is returned.
    pub fn validate(self) -> Result<Order, TaskError> {
        let order_id = order_id(&self.order_id)?;
        let issue_date = date("issue_date", &self.issue_date)?;
        let due_date = self
            .due_date
            .as_deref()
            .map(|d| date("due_date", d))
            .transpose()?;
        if due_date.is_some_and(|due| due < issue_date) {
            return Err(invalid("due_date", "must not be before issue_date"));
        }
        let currency = Currency::from_code(&self.currency)
            .filter(|c| c.flags().is_empty())
            .ok_or_else(|| invalid("currency", "not an active ISO 4217 currency code"))?;
        let exponent = currency
            .exponent()
            .map(u32::from)
            .ok_or_else(|| invalid("currency", "has no minor unit"))?;
        let seller = self.seller.validate("seller")?;
        let buyer = self.buyer.validate("buyer")?;
        if self.lines.is_empty() {
            return Err(invalid("lines", "at least one line is required"));
        }
        if self.lines.len() > MAX_LINES {
            return Err(invalid(
                "lines",
                format!("{} lines, at most {MAX_LINES} allowed", self.lines.len()),
            ));
        }
        let lines = self
            .lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| line.validate(&format!("lines[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let notes = self
            .notes
            .map(|n| text("notes", n, 0, MAX_NOTES, true))
            .transpose()?;
        let payment_terms = self
            .payment_terms
            .map(|t| text("payment_terms", t, 0, MAX_PAYMENT_TERMS, false))
            .transpose()?;
        Ok(Order {
            order_id,
            issue_date,
            due_date,
            currency,
            exponent,
            seller,
            buyer,
            lines,
            notes,
            payment_terms,
        })
    }
}

impl PartyInput {
    fn validate(self, field: &str) -> Result<Party, TaskError> {
        let name = text(&format!("{field}.name"), self.name, 1, MAX_NAME, false)?;
        if self.address.len() > MAX_ADDRESS_LINES {
            return Err(invalid(
                &format!("{field}.address"),
                format!("at most {MAX_ADDRESS_LINES} lines"),
            ));
        }
        let address = self
            .address
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                text(
                    &format!("{field}.address[{i}]"),
                    l,
                    1,
                    MAX_ADDRESS_LINE,
                    false,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let email = email(&format!("{field}.email"), self.email)?;
        let tax_id = self
            .tax_id
            .map(|t| text(&format!("{field}.tax_id"), t, 1, MAX_TAX_ID, false))
            .transpose()?;
        Ok(Party {
            name,
            address,
            email,
            tax_id,
        })
    }
}

impl LineInput {
    fn validate(self, field: &str) -> Result<Line, TaskError> {
        let description = text(
            &format!("{field}.description"),
            self.description,
            1,
            MAX_DESCRIPTION,
            false,
        )?;
        let quantity = decimal(&format!("{field}.quantity"), &self.quantity, MAX_DECIMALS)?;
        if quantity.is_zero() {
            return Err(invalid(
                &format!("{field}.quantity"),
                "must be greater than 0",
            ));
        }
        if quantity > Decimal::from(1_000_000) {
            return Err(invalid(&format!("{field}.quantity"), "at most 1,000,000"));
        }
        let unit_price = decimal(
            &format!("{field}.unit_price"),
            &self.unit_price,
            MAX_DECIMALS,
        )?;
        if unit_price > Decimal::from(1_000_000_000) {
            return Err(invalid(
                &format!("{field}.unit_price"),
                "at most 1,000,000,000",
            ));
        }
        let tax_rate = decimal(
            &format!("{field}.tax_rate"),
            &self.tax_rate,
            MAX_RATE_DECIMALS,
        )?;
        if tax_rate > Decimal::from(100) {
            return Err(invalid(
                &format!("{field}.tax_rate"),
                "a percent from 0 to 100",
            ));
        }
        Ok(Line {
            description,
            quantity,
            unit_price,
            tax_rate,
        })
    }
}

fn order_id(raw: &str) -> Result<String, TaskError> {
    let field = "order_id";
    if raw.is_empty() || raw.chars().count() > MAX_ORDER_ID {
        return Err(invalid(field, format!("1 to {MAX_ORDER_ID} characters")));
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(invalid(
            field,
            "only A-Z, a-z, 0-9, '-', '_' and '.' (it is part of the S3 key)",
        ));
    }
    if raw.starts_with('.') || raw.contains("..") {
        return Err(invalid(field, "must not start with '.' or contain '..'"));
    }
    Ok(raw.to_owned())
}

fn date(field: &str, raw: &str) -> Result<NaiveDate, TaskError> {
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .filter(|d| raw.len() == 10 && (2000..3000).contains(&d.year()))
        .ok_or_else(|| invalid(field, "expected a date YYYY-MM-DD between 2000 and 2999"))?;
    Ok(date)
}

/// A decimal string: digits, optionally `.` and up to `max_decimals` digits.
/// No sign, exponent, spaces or thousands separators.
fn decimal(field: &str, raw: &str, max_decimals: u32) -> Result<Decimal, TaskError> {
    if raw.starts_with('-') {
        return Err(invalid(field, "must not be negative"));
    }
    let (int, frac) = raw.split_once('.').unwrap_or((raw, ""));
    let well_formed = !int.is_empty()
        && int.len() <= 13
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(raw.contains('.') && frac.is_empty());
    if !well_formed {
        return Err(invalid(
            field,
            "expected a decimal string such as \"12.50\" (no sign, exponent or separators)",
        ));
    }
    if frac.len() > max_decimals as usize {
        return Err(invalid(
            field,
            format!("at most {max_decimals} decimal places"),
        ));
    }
    Decimal::from_str_exact(raw).map_err(|_| invalid(field, "out of range"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{Value, json};

    pub(crate) fn sample() -> Value {
        json!({
            "order_id": "A-1001",
            "issue_date": "2026-11-24",
            "due_date": "2026-12-24",
            "currency": "EUR",
            "seller": {"name": "Acme GmbH", "address": ["Hauptstraße 1", "10115 Berlin"],
                       "email": "billing@acme.example", "tax_id": "DE123456789"},
            "buyer": {"name": "Zoë Müller", "address": ["ul. Piotrkowska 1", "90-001 Łódź"],
                      "email": "zoe@example.com"},
            "lines": [{"description": "Widget", "quantity": "2", "unit_price": "10.00", "tax_rate": "20"}],
            "payment_terms": "Net 30"
        })
    }

    fn validate(value: Value) -> Result<Order, TaskError> {
        serde_json::from_value::<OrderInput>(value)
            .map_err(|e| TaskError::invalid_input(e.to_string()))?
            .validate()
    }

    fn expect_invalid(mut value: Value, pointer: &str, bad: Value, field: &str) {
        if let Some(slot) = value.pointer_mut(pointer) {
            *slot = bad.clone();
        } else {
            panic!("no {pointer}");
        }
        match validate(value) {
            Err(TaskError::InvalidInput(m)) => {
                assert!(m.starts_with(field), "{pointer}={bad}: {m}")
            }
            other => panic!("{pointer}={bad}: expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn sample_is_valid() {
        let order = validate(sample()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(order.exponent, 2);
        assert_eq!(order.lines[0].quantity, Decimal::from(2));
    }

    #[test]
    fn currencies_and_minor_units() {
        for (code, exp) in [("JPY", 0), ("EUR", 2), ("KWD", 3), ("USD", 2)] {
            let mut v = sample();
            v["currency"] = json!(code);
            assert_eq!(validate(v).map(|o| o.exponent).ok(), Some(exp), "{code}");
        }
        for bad in ["EURO", "eur", "XXX", "XAU", "ABC", ""] {
            expect_invalid(sample(), "/currency", json!(bad), "currency");
        }
    }

    #[test]
    fn bad_order_ids() {
        for bad in [
            "",
            "a/b",
            "..",
            "a..b",
            ".hidden",
            "a b",
            " a",
            "a\u{00a0}b",
            "ä",
            &"x".repeat(65),
        ] {
            expect_invalid(sample(), "/order_id", json!(bad), "order_id");
        }
    }

    #[test]
    fn bad_numbers() {
        for (pointer, bad, field) in [
            ("/lines/0/quantity", "-1", "lines[0].quantity"),
            ("/lines/0/quantity", "0", "lines[0].quantity"),
            ("/lines/0/quantity", "1e3", "lines[0].quantity"),
            ("/lines/0/quantity", "1,000", "lines[0].quantity"),
            ("/lines/0/quantity", "1000001", "lines[0].quantity"),
            ("/lines/0/quantity", "1.", "lines[0].quantity"),
            ("/lines/0/quantity", " 1", "lines[0].quantity"),
            ("/lines/0/unit_price", "-0.01", "lines[0].unit_price"),
            (
                "/lines/0/unit_price",
                "99999999999999999999",
                "lines[0].unit_price",
            ),
            ("/lines/0/unit_price", "1.1234567", "lines[0].unit_price"),
            ("/lines/0/tax_rate", "101", "lines[0].tax_rate"),
            ("/lines/0/tax_rate", "NaN", "lines[0].tax_rate"),
        ] {
            expect_invalid(sample(), pointer, json!(bad), field);
        }
    }

    #[test]
    fn bad_text_and_dates() {
        for (pointer, bad, field) in [
            ("/buyer/name", json!(""), "buyer.name"),
            ("/buyer/name", json!("   "), "buyer.name"),
            ("/buyer/name", json!("a\u{0007}b"), "buyer.name"),
            ("/buyer/name", json!("evil\u{202E}fdp.exe"), "buyer.name"),
            ("/buyer/name", json!("x".repeat(201)), "buyer.name"),
            ("/seller/email", json!("not-an-email"), "seller.email"),
            ("/seller/email", json!("a@b@c.d"), "seller.email"),
            // Counted in bytes, as the notify task counts them: 80 bytes of
            // local part (40 characters) is past RFC 5321's 64.
            (
                "/buyer/email",
                json!(format!("{}@example.com", "ü".repeat(40))),
                "buyer.email",
            ),
            (
                "/seller/address",
                json!(["1", "2", "3", "4", "5", "6", "7"]),
                "seller.address",
            ),
            (
                "/lines/0/description",
                json!("line\nbreak"),
                "lines[0].description",
            ),
            ("/issue_date", json!("24.11.2026"), "issue_date"),
            ("/issue_date", json!("2026-02-30"), "issue_date"),
            ("/due_date", json!("2026-11-01"), "due_date"),
            ("/lines", json!([]), "lines"),
            ("/payment_terms", json!("x".repeat(501)), "payment_terms"),
        ] {
            expect_invalid(sample(), pointer, bad, field);
        }
        let mut v = sample();
        v["notes"] = json!("Thank you!\nBank: DE00 1234");
        assert!(validate(v).is_ok(), "notes may have line breaks");
    }

    #[test]
    fn too_many_lines() {
        let mut v = sample();
        let line = v["lines"][0].clone();
        v["lines"] = Value::Array(vec![line; MAX_LINES + 1]);
        expect_invalid(v.clone(), "/currency", json!("EUR"), "lines");
    }
}
