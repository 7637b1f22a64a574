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

/// The buyer is a person: in `events/*.json`, a `buyer`'s name and address
/// lines are personal too (the seller is a company, its name is printed on
/// every invoice and may be logged).
const PERSONAL_PARTY: &str = "buyer";

/// Address lines shorter than this (`Tokyo`, `Poland`) are too common to
/// mean anything on their own.
const MIN_ADDRESS_LINE: usize = 8;

/// Values the tests themselves use that must never be logged: the IBAN the
/// invoice notes carry, and the Sentry sink's DSN key as it appears in an
/// auth header.
const SENSITIVE_VALUES: &[&str] = &["DE89 3704 0044 0532 0130 00", "sentry_key=public"];

/// Country prefixes of VAT numbers (EU, with `EL` for Greece and `XI` for
/// Northern Ireland, plus GB, CH and NO), for tax ids whose body has
/// letters in it (`ATU12345678`, `NL123456789B01`, `CHE123456789`).
const VAT_PREFIXES: &[&str] = &[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "XI", "GB", "CH", "NO",
];

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
    /// Each of `known` without separators (see [`squeeze`]), where still
    /// long enough to be specific.
    squeezed: Vec<Option<String>>,
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
        let squeezed = known
            .iter()
            .map(|value| Some(squeeze(value)).filter(|bare| bare.chars().count() >= 8))
            .collect();
        Ok(Self { known, squeezed })
    }

    /// Every rule `line` breaks.
    pub fn check(&self, line: &str) -> Vec<Finding> {
        let mut findings = Vec::new();
        // Known values also match with their separators dropped or changed
        // (`DE 123 456 789`, `DE-123456789`, an IBAN without its spaces).
        let squeezed = squeeze(line);
        for (value, bare) in self.known.iter().zip(&self.squeezed) {
            if line.contains(value.as_str())
                || bare
                    .as_ref()
                    .is_some_and(|bare| squeezed.contains(bare.as_str()))
            {
                findings.push(finding("known personal value", value));
            }
        }
        if let Some(url) = url_with_credentials(line) {
            findings.push(finding("URL with credentials (Sentry DSN)", url));
        }
        // `%40` is `@` in a URL's query or path.
        let decoded = line.replace("%40", "@");
        if let Some(email) = email_address(&decoded) {
            findings.push(finding("e-mail address", email));
        }
        if let Some(tax_id) = tax_id(line) {
            findings.push(finding("tax id", tax_id));
        }
        findings
    }
}

/// `line` without the separators people write ids and numbers with.
fn squeeze(line: &str) -> String {
    line.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '/' | '_' | '\u{a0}'))
        .collect()
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
                    serde_json::Value::Object(party) if key == PERSONAL_PARTY => {
                        if let Some(name) = party.get("name").and_then(|n| n.as_str()) {
                            out.push(name.to_owned());
                        }
                        let lines = party.get("address").and_then(|a| a.as_array());
                        for line in lines.into_iter().flatten().filter_map(|l| l.as_str()) {
                            if line.chars().count() >= MIN_ADDRESS_LINE {
                                out.push(line.to_owned());
                            }
                        }
                        collect_sensitive(value, out);
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

/// Characters of an address's local part: RFC 5322's common ones, and any
/// letter (RFC 6531 allows `zoë@…`).
fn is_local_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-' | '\'')
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

/// A tax id: a token of one or two capital letters and 8 to 14 digits (EU
/// VAT numbers such as `DE123456789`, Japan's `T` + 13 digits), or a VAT
/// country prefix and 8 to 12 capitals and digits, at least 7 of them
/// digits (`ATU12345678`, `NL123456789B01`). Longer tokens (request ids,
/// S3's 16-character ones included) are not tax ids.
fn tax_id(line: &str) -> Option<&str> {
    line.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|token| {
            let letters = token.chars().take_while(char::is_ascii_uppercase).count();
            let digits = token.len() - letters;
            let plain = (1..=2).contains(&letters)
                && (8..=14).contains(&digits)
                && token[letters..].chars().all(|c| c.is_ascii_digit());
            let body = token.get(2..).unwrap_or_default();
            let vat = VAT_PREFIXES.iter().any(|p| token.starts_with(p))
                && (8..=12).contains(&body.len())
                && body
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                && body.chars().filter(char::is_ascii_digit).count() >= 7;
            plain || vat
        })
}

/// Totals of a scan.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Files read.
    pub files: usize,
    /// Lines read.
    pub lines: usize,
    /// Lines read per source (see [`source_of`]).
    pub sources: std::collections::BTreeMap<String, usize>,
    /// `file:line: rule (hint)` for every finding.
    pub findings: Vec<String>,
}

/// Where a kept file's lines came from: its name without the
/// `-{process id}-{n}.log` that [`archive`] adds (`invoice`, `local-stack`).
pub fn source_of(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts: Vec<&str> = stem.split('-').collect();
    for _ in 0..2 {
        if parts.len() > 1
            && parts
                .last()
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
        {
            parts.pop();
        }
    }
    parts.join("-")
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
            let source = scanned.sources.entry(source_of(&path)).or_default();
            for (n, line) in text.lines().enumerate() {
                scanned.lines += 1;
                *source += 1;
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

    /// The rules for the committed sample inputs, read once per test binary.
    fn rules() -> &'static Rules {
        static RULES: std::sync::LazyLock<Rules> = std::sync::LazyLock::new(|| {
            Rules::with_events(&crate::local_stack::repo_root().join("events"))
                .unwrap_or_else(|e| panic!("{e}"))
        });
        &RULES
    }

    fn rules_broken(line: &str) -> Vec<&'static str> {
        rules().check(line).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn the_sample_inputs_give_known_values() {
        let known = &rules().known;
        for value in [
            "DE123456789",
            "T1234567890123",
            "zoe.mueller@example.com",
            "taro.yamada@example.jp",
            "billing@acme.example",
            "Zoë Müller",
            "山田太郎",
            "ul. Piotrkowska 12",
            "90-001 Łódź",
            "sentry_key=public",
        ] {
            assert!(known.iter().any(|k| k == value), "{value}: {known:?}");
        }
        // The seller is a company; short address lines are too common.
        for value in ["Acme Werkzeuge GmbH", "Tokyo", "Poland"] {
            assert!(!known.iter().any(|k| k == value), "{value}");
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
            (r#"{"to":"zoë@example.com"}"#, "e-mail address"),
            (r#"{"to":"o'brien@example.ie"}"#, "e-mail address"),
            ("GET /export?contact=jane%40example.com", "e-mail address"),
            ("mailto:doe@example.com.", "e-mail address"),
            (r#"{"vat":"FR12345678901"}"#, "tax id"),
            (r#"{"vat":"ATU12345678"}"#, "tax id"),
            (r#"{"vat":"NL123456789B01"}"#, "tax id"),
            (r#"{"uid":"CHE123456789"}"#, "tax id"),
            ("seller GB123456789 buyer", "tax id"),
            (
                r#"{"dsn":"https://0123456789abcdef@o1.ingest.sentry.io/42"}"#,
                "URL with credentials (Sentry DSN)",
            ),
            (
                "using http://public@127.0.0.1:41234/1",
                "URL with credentials (Sentry DSN)",
            ),
            (
                "proxy https://user:secret@proxy.example:3128",
                "URL with credentials (Sentry DSN)",
            ),
            (
                "X-Sentry-Auth: Sentry sentry_version=7, sentry_key=public",
                "known personal value",
            ),
            ("iban DE89 3704 0044 0532 0130 00", "known personal value"),
            ("iban DE89370400440532013000", "known personal value"),
            ("tax T1234567890123", "known personal value"),
            ("tax id DE 123 456 789", "known personal value"),
            ("tax id DE-123.456.789", "known personal value"),
            (r#"{"buyer":"Zoë Müller"}"#, "known personal value"),
            (r#"{"buyer":"山田太郎"}"#, "known personal value"),
            ("ship to ul. Piotrkowska 12", "known personal value"),
            (
                r#"{"to":"zoe.mueller@example.com"}"#,
                "known personal value",
            ),
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
            r#"{"request_id":"DE8F2A91B7C04D35","extended_request_id":"s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234="}"#,
            r#"{"function_arn":"arn:aws:lambda:eu-west-1:123456789012:function:sfn-tasks-invoice:$LATEST","key_arn":"arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}"#,
            r#"{"message":"invalid input","error":"buyer.email: not an e-mail address","error_type":"Task.InvalidInput"}"#,
            r#"{"message":"seller.tax_id: 51 characters, at most 50"}"#,
            r#"{"key":"backups/crm-nightly/2026-11-24/data/part-01049.json","etag":"d41d8cd98f00b204e9800998ecf8427e","checksum_crc32":"AAAAAA=="}"#,
            r#"{"message_id":"5fea7756-0ea4-451a-a703-a558b933e274","sequence_number":"18849496460467696128","cold_start":true,"duration_ms":12.5}"#,
            r#"{"user_agent":"aws-sdk-rust/1.3.9 os/linux lang/rust#1.95.0","sdk":"lambda_runtime@1.5.0"}"#,
            r#"{"stream":"2026/11/25/[$LATEST]0190f3b2c4d5e6f708192a3b4c5d6e7f","group":"/aws/lambda/sfn-tasks-invoice"}"#,
            "START RequestId: 0b0f7c2e-2f5a-4c3e-9d9e-1a2b3c4d5e6f Version: $LATEST",
            "REPORT RequestId: 0b0f7c2e-2f5a-4c3e-9d9e-1a2b3c4d5e6f Duration: 12.34 ms Billed Duration: 13 ms Memory Size: 128 MB Max Memory Used: 20 MB",
            r#"{"order_id":"A-1001","total":"1190.00","currency":"EUR","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}"#,
            r#"{"dsn_host":"o1.ingest.sentry.io","sentry":"on","event_id":"fc6d8c0c43fc4630ad850ee518f1b9d0"}"#,
        ] {
            assert_eq!(rules().check(line), [], "{line}");
        }
    }

    #[test]
    fn findings_do_not_repeat_the_secret() {
        for line in [
            "mail zoe.mueller@example.com",
            "vat DE123456789",
            "dsn https://0123456789abcdef@o1.ingest.sentry.io/42",
        ] {
            let found = rules().check(line);
            assert!(!found.is_empty(), "{line}");
            for f in found {
                assert!(f.hint.chars().count() < 20, "{f:?}");
                for secret in ["mueller", "456789"] {
                    assert!(!f.hint.contains(secret), "{f:?}");
                }
            }
        }
    }

    #[test]
    fn a_scan_counts_and_locates() {
        let dir = std::env::temp_dir().join(format!("log-scan-test-{}", std::process::id()));
        let nested = dir.join("local-stack");
        std::fs::create_dir_all(&nested).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("invoice-1-0.log"), "clean\nmail doe@example.com\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(nested.join("x.log"), "clean\n\n").unwrap_or_else(|e| panic!("{e}"));
        let scanned = scan_dir(&dir, rules()).unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!((scanned.files, scanned.lines), (2, 4));
        assert_eq!(scanned.sources.get("invoice"), Some(&2));
        assert_eq!(scanned.sources.get("x"), Some(&2));
        assert_eq!(
            source_of(Path::new("a/local-stack-123-7.log")),
            "local-stack"
        );
        assert_eq!(source_of(Path::new("fixture-task-9-0.log")), "fixture-task");
        assert_eq!(scanned.findings.len(), 1, "{:?}", scanned.findings);
        assert!(
            scanned.findings[0].ends_with("invoice-1-0.log:2: e-mail address (doe… (15 chars))"),
            "{:?}",
            scanned.findings
        );
        assert!(!scanned.findings[0].contains("example"));
    }
}
