//! Every log line the suite's task processes write is kept (when
//! `SUITE_LOG_DIR` is set, as `make test` sets it) and scanned afterwards for
//! what must never be logged: e-mail addresses, tax ids, the Sentry DSN (or
//! any URL with credentials), and the known personal values of the sample
//! inputs in `events/`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The variable naming the folder the suite's log lines are kept in.
pub const SUITE_LOG_DIR: &str = "SUITE_LOG_DIR";

/// Keys in `events/*.json` whose values are personal or secret.
const SENSITIVE_KEYS: &[&str] = &["email", "recipient", "tax_id", "iban"];

/// Values the tests themselves use that must never be logged.
const SENSITIVE_VALUES: &[&str] = &["DE89 3704 0044 0532 0130 00"];

/// Writes `lines` into a new file of `SUITE_LOG_DIR`, if it is set; `label`
/// names where they came from.
pub fn archive<'a>(label: &str, lines: impl IntoIterator<Item = &'a str>) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let Some(dir) = std::env::var_os(SUITE_LOG_DIR).map(PathBuf::from) else {
        return;
    };
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let safe: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let path = dir.join(format!("{safe}-{}-{n}.log", std::process::id()));
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
        eprintln!("keeping log lines in {}: {e}", path.display());
    }
}

/// One line that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Which rule.
    pub rule: &'static str,
    /// The offending text, shortened so the report does not repeat it.
    pub hint: String,
}

/// What a scan looks for.
#[derive(Debug, Default, Clone)]
pub struct Rules {
    /// Exact values that must never appear.
    pub known: Vec<String>,
}

impl Rules {
    /// The built-in rules plus the sensitive values of every JSON file in
    /// `events` (a folder like the repository's `events/`).
    pub fn with_events(events: &Path) -> std::io::Result<Self> {
        let mut known: Vec<String> = SENSITIVE_VALUES.iter().map(|v| (*v).to_owned()).collect();
        for entry in std::fs::read_dir(events)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path)?;
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
                    collect_sensitive(&value, &mut known);
                }
            }
        }
        known.sort();
        known.dedup();
        Ok(Self { known })
    }

    /// Every rule `line` breaks.
    pub fn check(&self, line: &str) -> Vec<Finding> {
        let mut findings = Vec::new();
        for value in &self.known {
            if line.contains(value.as_str()) {
                findings.push(finding("known personal value", value));
            }
        }
        if let Some(url) = url_with_credentials(line) {
            findings.push(finding("URL with credentials (Sentry DSN)", url));
        }
        if let Some(email) = email_address(line) {
            findings.push(finding("e-mail address", email));
        }
        if let Some(tax_id) = tax_id(line) {
            findings.push(finding("tax id", tax_id));
        }
        findings
    }
}

fn finding(rule: &'static str, text: &str) -> Finding {
    let shown: String = text.chars().take(3).collect();
    Finding {
        rule,
        hint: format!("{shown}… ({} chars)", text.chars().count()),
    }
}

fn collect_sensitive(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match value {
                    serde_json::Value::String(s) if SENSITIVE_KEYS.contains(&key.as_str()) => {
                        out.push(s.clone());
                    }
                    _ => collect_sensitive(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_sensitive(v, out)),
        _ => {}
    }
}

/// `scheme://user@host...`: a DSN's public key, or any other credential.
fn url_with_credentials(line: &str) -> Option<&str> {
    let mut rest = line;
    while let Some(at) = rest.find("://") {
        let after = &rest[at + 3..];
        let authority_end = after
            .find(|c: char| c == '/' || c == '"' || c == '?' || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        if authority.contains('@') {
            return Some(authority);
        }
        rest = after;
    }
    None
}

fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn is_domain_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '-')
}

/// `local@domain.tld`, with a top-level domain of two or more letters (so
/// `invoice@0.1.0`, a Sentry release, is not one).
fn email_address(line: &str) -> Option<&str> {
    for (at, _) in line.match_indices('@') {
        // A masked address (`z***@example.com`) has no local part left.
        let Some(start) = line[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_local_char(*c))
            .last()
            .map(|(i, _)| i)
        else {
            continue;
        };
        let end = line[at + 1..]
            .char_indices()
            .find(|(_, c)| !is_domain_char(*c))
            .map_or(line.len(), |(i, _)| at + 1 + i);
        let domain = line[at + 1..end].trim_end_matches('.');
        let tld = domain.rsplit('.').next().unwrap_or_default();
        if domain.contains('.') && tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic)
        {
            return Some(&line[start..end]);
        }
    }
    None
}

/// A token of one or two capital letters and 8 to 14 digits: the shape of
/// EU VAT numbers (`DE123456789`) and many national tax ids.
fn tax_id(line: &str) -> Option<&str> {
    line.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|token| {
            let letters = token.chars().take_while(char::is_ascii_uppercase).count();
            let digits = token.len() - letters;
            (1..=2).contains(&letters)
                && (8..=14).contains(&digits)
                && token[letters..].chars().all(|c| c.is_ascii_digit())
        })
}

/// Totals of a scan.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Files read.
    pub files: usize,
    /// Lines read.
    pub lines: usize,
    /// `file:line: rule (hint)` for every finding.
    pub findings: Vec<String>,
}

/// Scans every file under `dir`.
pub fn scan_dir(dir: &Path, rules: &Rules) -> std::io::Result<Scanned> {
    let mut scanned = Scanned::default();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            scanned.files += 1;
            let text = String::from_utf8_lossy(&std::fs::read(&path)?).into_owned();
            for (n, line) in text.lines().enumerate() {
                scanned.lines += 1;
                for f in rules.check(line) {
                    scanned.findings.push(format!(
                        "{}:{}: {} ({})",
                        path.display(),
                        n + 1,
                        f.rule,
                        f.hint
                    ));
                }
            }
        }
    }
    Ok(scanned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules::with_events(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../events")))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn rules_broken(line: &str) -> Vec<&'static str> {
        rules().check(line).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn the_sample_inputs_give_known_values() {
        let known = rules().known;
        for value in [
            "DE123456789",
            "zoe.mueller@example.com",
            "billing@acme.example",
        ] {
            assert!(known.iter().any(|k| k == value), "{value}: {known:?}");
        }
    }

    #[test]
    fn each_rule_catches_its_kind() {
        for (line, rule) in [
            (
                r#"{"message":"sent to someone@example.org"}"#,
                "e-mail address",
            ),
            (
                r#"{"to":"Jane.Doe+bills@mail.example.co.uk"}"#,
                "e-mail address",
            ),
            (r#"{"vat":"FR12345678901"}"#, "tax id"),
            (
                r#"{"dsn":"https://0123456789abcdef@o1.ingest.sentry.io/42"}"#,
                "URL with credentials (Sentry DSN)",
            ),
            (
                "using http://public@127.0.0.1:41234/1",
                "URL with credentials (Sentry DSN)",
            ),
            ("iban DE89 3704 0044 0532 0130 00", "known personal value"),
            ("tax T1234567890123", "known personal value"),
        ] {
            let broken = rules_broken(line);
            assert!(broken.contains(&rule), "{line}: {broken:?}");
        }
    }

    #[test]
    fn ordinary_log_lines_pass() {
        for line in [
            r#"{"timestamp":"2026-11-25T05:07:40.123Z","level":"INFO","message":"task finished","correlation_id":"order-A-1001","function_request_id":"0b0f7c2e-2f5a-4c3e-9d9e-1a2b3c4d5e6f"}"#,
            r#"{"execution_id":"arn:aws:states:eu-west-1:123456789012:execution:Invoice:run-1","state_name":"Render and store invoice"}"#,
            r#"{"release":"invoice@0.1.0","xray_trace_id":"Root=1-6745a1b2-0123456789abcdef01234567;Parent=89abcdef01234567;Sampled=1"}"#,
            r#"{"s3_request_id":"WDQ8MNSPUYYGWKG3XBMRM0VFTU2SZ5NPHC0P6W2PXBVFBSLHEJFS","key":"invoices/2026/A-1001.pdf","bytes":12582912}"#,
            r#"{"url":"http://127.0.0.1:8080/export/1024","recipient":"z***@example.com"}"#,
        ] {
            assert_eq!(rules().check(line), [], "{line}");
        }
    }

    #[test]
    fn findings_do_not_repeat_the_secret() {
        let found = rules().check("mail zoe.mueller@example.com");
        assert!(!found.is_empty());
        for f in found {
            assert!(!f.hint.contains("mueller"), "{f:?}");
        }
    }
}
