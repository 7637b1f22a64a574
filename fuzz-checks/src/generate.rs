//! Structured inputs for the checks.
//!
//! Most mutations of a JSON seed are no longer JSON, so a target that only
//! parses its bytes spends most runs in `serde_json`'s error path. The
//! targets therefore read bytes that are not JSON as a recipe for a JSON
//! value instead: deep nesting, huge and tiny numbers and hostile Unicode
//! then reach the code under test without the fuzzer having to spell them.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Number, Value, json};

/// Deeper than `serde_json`'s parse limit (128), which a `Value` built in
/// memory does not have; shallow enough that dropping it cannot overflow the
/// stack.
pub const MAX_DEPTH: usize = 512;

/// Longest generated string, in characters: past every field limit (the
/// longest is 2000 for invoice notes) without making every run slow.
const MAX_TEXT: usize = 2100;

/// Object keys worth hitting besides the envelope's own
/// ([`sfn_task::envelope::KEYS`]): those an API Gateway or EventBridge event,
/// or an order, may have.
const OTHER_KEYS: &[&str] = &[
    "requestContext",
    "requestId",
    "headers",
    "x-correlation-id",
    "X-Correlation-Id",
    "detail-type",
    "source",
    "id",
    "order_id",
    "issue_date",
    "due_date",
    "currency",
    "seller",
    "buyer",
    "name",
    "address",
    "email",
    "tax_id",
    "lines",
    "description",
    "quantity",
    "unit_price",
    "tax_rate",
    "notes",
    "payment_terms",
];

/// Any JSON value, nested up to [`MAX_DEPTH`].
pub fn value(u: &mut Unstructured<'_>) -> Result<Value> {
    value_at(u, 0)
}

fn value_at(u: &mut Unstructured<'_>, depth: usize) -> Result<Value> {
    if depth >= MAX_DEPTH {
        return Ok(Value::Null);
    }
    Ok(match u.int_in_range(0..=9u8)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => number(u)?,
        3 | 4 => Value::String(text(u)?),
        5 => {
            let len = u.int_in_range(0..=6usize)?;
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                items.push(value_at(u, depth + 1)?);
            }
            Value::Array(items)
        }
        6 | 7 => {
            let len = u.int_in_range(0..=6usize)?;
            let mut map = Map::new();
            for _ in 0..len {
                map.insert(key(u)?, value_at(u, depth + 1)?);
            }
            Value::Object(map)
        }
        // Deep nesting from a few bytes: a value under many levels of
        // arrays or single-key objects.
        _ => {
            let levels = u.int_in_range(1..=MAX_DEPTH - depth)?;
            let key = key(u)?;
            let as_array: bool = u.arbitrary()?;
            let mut nested = value_at(u, MAX_DEPTH - 1)?;
            for _ in 0..levels {
                nested = if as_array {
                    Value::Array(vec![nested])
                } else {
                    Value::Object(Map::from_iter([(key.clone(), nested)]))
                };
            }
            nested
        }
    })
}

/// A known key most of the time, otherwise any text.
pub fn key(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(3u8, 4u8)? {
        let envelope = &sfn_task::envelope::KEYS;
        let i = u.choose_index(envelope.len() + OTHER_KEYS.len())?;
        let mut known = envelope.iter().chain(OTHER_KEYS);
        Ok(known.nth(i).copied().unwrap_or_default().to_owned())
    } else {
        text(u)
    }
}

/// A JSON number, with the extremes `serde_json` can hold: `u64::MAX`,
/// `i64::MIN`, `1e308`, the smallest subnormal, `-0.0`, and
/// `99999999999999999999` (more than a `u64`, so it parses to an `f64`).
pub fn number(u: &mut Unstructured<'_>) -> Result<Value> {
    const SPECIAL: &[f64] = &[
        1e308,
        -1e308,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        -0.0,
        99_999_999_999_999_999_999.0,
        4_294_967_296.0,
        1.5,
    ];
    Ok(match u.int_in_range(0..=4u8)? {
        0 => json!(u.int_in_range(0..=10u8)?),
        1 => json!(u.arbitrary::<u64>()?),
        2 => json!(u.arbitrary::<i64>()?),
        3 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        _ => Number::from_f64(*u.choose(SPECIAL)?).map_or(Value::Null, Value::Number),
    })
}

/// Text that tends to break things: controls, combining marks, zero-width
/// and bidirectional format characters, CJK, right-to-left scripts, emoji,
/// noncharacters, and long repeats past every length limit.
pub fn text(u: &mut Unstructured<'_>) -> Result<String> {
    let mut out = String::new();
    let pieces = u.int_in_range(0..=8u8)?;
    for _ in 0..pieces {
        if out.chars().count() >= MAX_TEXT {
            break;
        }
        if u.ratio(1u8, 6u8)? {
            // A short pattern repeated, e.g. 501 'x' or 300 "a\u{301}".
            let pattern: String = (0..u.int_in_range(1..=3u8)?)
                .map(|_| odd_char(u))
                .collect::<Result<_>>()?;
            let times = u.int_in_range(1..=MAX_TEXT)?;
            let budget = MAX_TEXT - out.chars().count();
            out.extend(pattern.chars().cycle().take(times.min(budget)));
        } else {
            out.push(odd_char(u)?);
        }
    }
    Ok(out)
}

fn odd_char(u: &mut Unstructured<'_>) -> Result<char> {
    const FORMAT: &[char] = &[
        '\u{00AD}',
        '\u{034F}',
        '\u{061C}',
        '\u{200B}',
        '\u{200C}',
        '\u{200D}',
        '\u{200E}',
        '\u{200F}',
        '\u{2028}',
        '\u{2029}',
        '\u{202A}',
        '\u{202B}',
        '\u{202C}',
        '\u{202D}',
        '\u{202E}',
        '\u{2060}',
        '\u{2066}',
        '\u{2067}',
        '\u{2068}',
        '\u{2069}',
        '\u{FEFF}',
        '\u{FFFC}',
        '\u{FFFD}',
        '\u{FFFE}',
        '\u{FFFF}',
        '\u{10FFFF}',
        '\u{E000}',
        ' ',
        '\u{A0}',
        '\u{3000}',
        '@',
        '.',
        '-',
        '\n',
        '\t',
        '\0',
        '\u{7F}',
        '\u{85}',
    ];
    let range = match u.int_in_range(0..=10u8)? {
        0 | 1 => 0x20..=0x7E,   // ASCII
        2 => 0x00..=0x1F,       // C0 controls
        3 => 0xA0..=0x24F,      // Latin-1 and Latin Extended
        4 => 0x300..=0x36F,     // combining marks
        5 => 0x370..=0x52F,     // Greek, Cyrillic
        6 => 0x590..=0x6FF,     // Hebrew, Arabic
        7 => 0x3400..=0x9FFF,   // CJK (only the fallback font has these)
        8 => 0xFF00..=0xFFEF,   // half- and full-width forms
        9 => 0x1F300..=0x1FAFF, // emoji
        _ => return Ok(*u.choose(FORMAT)?),
    };
    let code = u.int_in_range(range)?;
    Ok(char::from_u32(code).unwrap_or('\u{FFFD}'))
}

/// A decimal amount as an order sends it, or something close to one:
/// too many digits or decimals, signs, exponents, separators, non-ASCII
/// digits, the limits and one past them.
pub fn decimal_text(u: &mut Unstructured<'_>) -> Result<String> {
    const SPECIAL: &[&str] = &[
        "0",
        "0.000001",
        "0.0000001",
        "1000000",
        "1000000.000001",
        "999999.999999",
        "1000000000",
        "1000000000.000001",
        "999999999.999999",
        "100",
        "100.0001",
        "99.9999",
        "9999999999999",
        "99999999999999",
        "99999999999999999999",
        "79228162514264337593543950335",
        "79228162514264337593543950336",
        "1e308",
        "1E3",
        "-0",
        "-1",
        "+1",
        ".5",
        "5.",
        "1,000",
        "1_000",
        "0x10",
        "NaN",
        "inf",
        " 1",
        "1 ",
        "\u{FF11}",
        "\u{0663}",
        "",
    ];
    Ok(match u.int_in_range(0..=3u8)? {
        0 => (*u.choose(SPECIAL)?).to_owned(),
        1 => text(u)?,
        _ => {
            let int = digits(u, 16)?;
            if u.arbitrary()? {
                format!("{int}.{}", digits(u, 8)?)
            } else {
                int
            }
        }
    })
}

fn digits(u: &mut Unstructured<'_>, max: usize) -> Result<String> {
    let len = u.int_in_range(1..=max)?;
    (0..len)
        .map(|_| Ok(char::from(b'0' + u.int_in_range(0..=9u8)?)))
        .collect()
}

/// An order-shaped value: the fields of an invoice order with plausible or
/// hostile values, sometimes a field of the wrong type, missing or extra,
/// sometimes inside a Step Functions envelope.
pub fn order(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut order = Map::new();
    let id = if u.arbitrary()? {
        let len = u.int_in_range(1..=70usize)?;
        (0..len)
            .map(|_| {
                Ok(*u.choose(&[
                    'A', 'z', '0', '9', '-', '_', '.', '/', ' ', 'ä', '%', '\\', '\0',
                ])?)
            })
            .collect::<Result<String>>()?
    } else {
        text(u)?
    };
    order.insert("order_id".into(), id.into());
    order.insert("issue_date".into(), date(u)?.into());
    if u.arbitrary()? {
        order.insert("due_date".into(), date(u)?.into());
    }
    let currency = if u.ratio(7u8, 8u8)? {
        (*u.choose(&[
            "EUR", "USD", "JPY", "KWD", "BHD", "CLP", "ISK", "CLF", "UYW", "XAU", "XTS", "XXX",
            "eur", "EURO", "",
        ])?)
        .to_owned()
    } else {
        text(u)?
    };
    order.insert("currency".into(), currency.into());
    order.insert("seller".into(), party(u)?);
    order.insert("buyer".into(), party(u)?);
    // 1001 is one past the limit; rendering up to 40 lines keeps each run
    // well inside the time limit.
    let count = match u.int_in_range(0..=15u8)? {
        0 => 0,
        1 => 1001,
        _ => u.int_in_range(1..=40usize)?,
    };
    let template = line(u)?;
    let mut lines = Vec::with_capacity(count);
    for _ in 0..count {
        // Only a few distinct lines: a mutation of the remaining bytes
        // should not shift every line after it.
        lines.push(if u.ratio(1u8, 4u8)? {
            line(u)?
        } else {
            template.clone()
        });
    }
    order.insert("lines".into(), Value::Array(lines));
    if u.arbitrary()? {
        order.insert("notes".into(), text(u)?.into());
    }
    if u.arbitrary()? {
        order.insert("payment_terms".into(), text(u)?.into());
    }
    // Wrong types, missing and unknown fields.
    for _ in 0..u.int_in_range(0..=2u8)? {
        let key = key(u)?;
        match u.int_in_range(0..=2u8)? {
            0 => {
                order.remove(&key);
            }
            _ => {
                order.insert(key, value(u)?);
            }
        }
    }
    let order = Value::Object(order);
    Ok(if u.ratio(1u8, 4u8)? {
        json!({"correlation_id": text(u)?, "retry_count": number(u)?, "input": order})
    } else {
        order
    })
}

fn date(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => text(u)?,
        1 => (*u.choose(&[
            "2000-01-01",
            "1999-12-31",
            "2999-12-31",
            "3000-01-01",
            "2024-02-29",
            "2026-02-29",
            "2026-1-1",
            "+2026-01-01",
            "2026-01-01T00:00:00Z",
            "20260101",
        ])?)
        .to_owned(),
        _ => format!(
            "{:04}-{:02}-{:02}",
            u.int_in_range(1990..=3010u32)?,
            u.int_in_range(0..=13u32)?,
            u.int_in_range(0..=32u32)?
        ),
    })
}

fn party(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut party = Map::new();
    party.insert("name".into(), text(u)?.into());
    let address: Vec<Value> = (0..u.int_in_range(0..=7u8)?)
        .map(|_| text(u).map(Value::from))
        .collect::<Result<_>>()?;
    party.insert("address".into(), address.into());
    let email = if u.arbitrary()? {
        format!("{}@{}.{}", text(u)?, text(u)?, text(u)?)
    } else {
        text(u)?
    };
    party.insert("email".into(), email.into());
    if u.arbitrary()? {
        party.insert("tax_id".into(), text(u)?.into());
    }
    Ok(Value::Object(party))
}

fn line(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(json!({
        "description": text(u)?,
        "quantity": decimal_text(u)?,
        "unit_price": decimal_text(u)?,
        "tax_rate": decimal_text(u)?,
    }))
}
