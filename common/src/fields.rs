//! The rules for fields that pass from one task to another: one rule per
//! kind of field, so what one task accepts the next one does not refuse (an
//! invoice stored for a buyer whose address the notification then refused
//! would reach nobody).
//!
//! Every refusal is `Task.InvalidInput` naming the field and the rule,
//! never the value.

use crate::TaskError;

/// Longest e-mail address, in bytes (RFC 5321's limit on a path, in octets).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest local part of an e-mail address, in bytes (RFC 5321).
pub const MAX_EMAIL_LOCAL_BYTES: usize = 64;

fn invalid(field: &str, rule: impl std::fmt::Display) -> TaskError {
    TaskError::invalid_input(format!("{field}: {rule}"))
}

/// Whether `c` may not appear in text: control characters (a line break
/// only where `multiline`), bidirectional overrides and isolates, and line
/// or paragraph separators, which could make a document or a log line show
/// something other than what it holds.
pub fn forbidden_char(c: char, multiline: bool) -> bool {
    if multiline && c == '\n' {
        return false;
    }
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
        || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Text of `min` to `max` characters (not only whitespace when `min > 0`),
/// without [`forbidden_char`]s.
pub fn text(
    field: &str,
    value: String,
    min: usize,
    max: usize,
    multiline: bool,
) -> Result<String, TaskError> {
    let count = value.chars().count();
    if count < min || (min > 0 && value.trim().is_empty()) {
        return Err(invalid(field, "must not be empty"));
    }
    if count > max {
        return Err(invalid(field, format!("{count} characters, at most {max}")));
    }
    if let Some(c) = value.chars().find(|c| forbidden_char(*c, multiline)) {
        return Err(invalid(
            field,
            format!("contains the control character U+{:04X}", u32::from(c)),
        ));
    }
    Ok(value)
}

/// An e-mail address: at most [`MAX_EMAIL_BYTES`] bytes, one `@`, a local
/// part of 1 to [`MAX_EMAIL_LOCAL_BYTES`] bytes, a domain with a dot and no
/// empty label, no whitespace and no [`forbidden_char`].
pub fn email(field: &str, value: String) -> Result<String, TaskError> {
    let well_formed = value.len() <= MAX_EMAIL_BYTES
        && !value
            .chars()
            .any(|c| c.is_whitespace() || forbidden_char(c, false))
        && match value.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= MAX_EMAIL_LOCAL_BYTES
                    && !domain.contains('@')
                    && domain.contains('.')
                    && domain.split('.').all(|label| !label.is_empty())
            }
            None => false,
        };
    if well_formed {
        Ok(value)
    } else {
        // The value is personal data: never in the message.
        Err(invalid(field, "not an e-mail address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_counted_in_bytes() {
        assert!(email("e", "zoe@example.com".to_owned()).is_ok());
        assert!(email("e", "zoë.müller@example.de".to_owned()).is_ok());
        // 63 two-byte characters: 126 bytes, past the local part's 64.
        let wide_local = format!("{}@example.com", "ü".repeat(63));
        assert!(email("e", wide_local).is_err());
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(186));
        assert_eq!(long.len(), 255);
        assert!(email("e", long).is_err());
        let fits = format!("{}@{}.com", "a".repeat(64), "b".repeat(185));
        assert!(email("e", fits).is_ok());
    }

    #[test]
    fn malformed_addresses_are_refused_without_echoing_them() {
        for bad in [
            "",
            "no-at.example.com",
            "a@b@c.d",
            "@example.com",
            "a@example",
            "a@.example.com",
            "a@example.com.",
            "a@example..com",
            "jane doe@example.com",
            "a\u{202E}b@example.com",
            "a\n@example.com",
        ] {
            let err = email("buyer.email", bad.to_owned()).err();
            let message = err.map(|e| e.to_string()).unwrap_or_default();
            assert_eq!(message, "buyer.email: not an e-mail address", "{bad:?}");
        }
    }

    #[test]
    fn text_counts_characters_and_refuses_controls() {
        assert!(text("t", "Zoë".to_owned(), 1, 3, false).is_ok());
        assert!(text("t", "Zoës".to_owned(), 1, 3, false).is_err());
        assert!(text("t", "  ".to_owned(), 1, 3, false).is_err());
        assert!(text("t", String::new(), 0, 3, false).is_ok());
        assert!(text("t", "a\nb".to_owned(), 1, 9, false).is_err());
        assert!(text("t", "a\nb".to_owned(), 1, 9, true).is_ok());
        assert!(text("t", "a\u{2066}b".to_owned(), 1, 9, true).is_err());
    }
}
