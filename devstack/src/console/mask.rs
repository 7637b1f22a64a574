//! Personal data masked before the console shows a state's input or output:
//! the keys the log scan (`tests/src/log_scan.rs`) treats as sensitive, and
//! postal addresses. An e-mail keeps its first letter and domain, enough to
//! tell two apart; everything else under such a key becomes `***`.

use serde_json::Value;

/// Keys whose values never appear unmasked.
const SENSITIVE_KEYS: &[&str] = &["email", "recipient", "tax_id", "iban", "address", "phone"];

/// `value` with every sensitive key's value masked, at any depth.
pub(crate) fn masked(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| {
                    let shown = if SENSITIVE_KEYS.contains(&key.to_ascii_lowercase().as_str()) {
                        mask_value(item)
                    } else {
                        masked(item)
                    };
                    (key.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            // Step Functions passes payloads as JSON text in places (a Lambda's
            // Payload, an error's cause): mask inside those too.
            Ok(inner @ (Value::Object(_) | Value::Array(_))) => {
                Value::String(masked(&inner).to_string())
            }
            _ => value.clone(),
        },
        other => other.clone(),
    }
}

fn mask_value(value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(match text.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".to_owned(),
        }),
        Value::Array(items) => Value::Array(items.iter().map(mask_value).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), mask_value(v)))
                .collect(),
        ),
        Value::Null => Value::Null,
        _ => Value::String("***".to_owned()),
    }
}

/// Pretty JSON text of `text` masked; `text` as is when it is not JSON.
pub(crate) fn masked_text(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => serde_json::to_string_pretty(&masked(&value)).unwrap_or_default(),
        Err(_) => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn personal_data_is_masked_at_any_depth_and_inside_json_text() {
        let value = json!({
            "order": {"buyer": {"name": "Zoë", "email": "zoe.mueller@example.com",
                                 "address": ["ul. Piotrkowska 12", "90-001 Łódź"]},
                      "seller": {"tax_id": "DE123456789"}},
            "Payload": "{\"recipient\":\"ann@example.org\",\"total\":\"10.00\"}",
            "total": "10.00"
        });
        let text = masked(&value).to_string();
        for secret in [
            "zoe.mueller",
            "Piotrkowska",
            "DE123456789",
            "ann@example.org",
        ] {
            assert!(!text.contains(secret), "{secret} shown: {text}");
        }
        assert!(text.contains("z***@example.com"), "{text}");
        assert!(text.contains("10.00"), "{text}");
        assert_eq!(masked_text("not json"), "not json");
    }
}
