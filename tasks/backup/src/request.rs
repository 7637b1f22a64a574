//! The task's input, its validation, and the continuation a long run carries
//! from one invocation to the next.

use aws_sdk_s3::types::StorageClass;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use common::TaskError;

use crate::config::Config;

/// The task's input. A run is identified by `name` and `run_date`, never by
/// the execution, so reruns and retries land on the same keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// `[a-z0-9_-]`, 1–64 characters, e.g. `crm-nightly`.
    pub name: String,
    /// `YYYY-MM-DD`; defaults to today (UTC) on the first invocation.
    #[serde(default)]
    pub run_date: Option<String>,
    /// What to back up.
    pub source: SourceInput,
    /// S3 storage class of the copies, e.g. `STANDARD_IA`.
    #[serde(default)]
    pub storage_class: Option<String>,
    /// From the previous invocation's output, when it was not done.
    #[serde(default)]
    pub continuation: Option<Continuation>,
}

/// Where the data comes from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceInput {
    /// Every object under `prefix` in `bucket`.
    S3 {
        /// An allowed source bucket.
        bucket: String,
        /// Key prefix; empty for the whole bucket.
        #[serde(default)]
        prefix: String,
    },
    /// A system's export endpoint.
    Http {
        /// `http(s)://` on an allowed host.
        url: String,
        /// Object name under the run key; default `export`.
        #[serde(default)]
        file_name: Option<String>,
    },
}

/// Progress carried between invocations of one run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Continuation {
    /// The run's date, fixed by its first invocation.
    pub run_date: String,
    /// The last source key done; listing resumes after it.
    pub after_key: String,
    /// When the run's first invocation started (RFC 3339).
    pub started_at: String,
    /// Objects copied so far.
    pub copied: u64,
    /// Objects found already copied so far.
    pub skipped: u64,
    /// Invocations so far.
    pub invocations: u32,
}

/// A validated request.
#[derive(Debug, Clone)]
pub struct Validated {
    /// Run name.
    pub name: String,
    /// Run date.
    pub run_date: NaiveDate,
    /// Source.
    pub source: SourceInput,
    /// Storage class.
    pub storage_class: Option<StorageClass>,
    /// Where to resume.
    pub continuation: Option<Continuation>,
}

impl Validated {
    /// `backups/{name}/{run date}/`.
    pub fn run_key(&self) -> String {
        format!(
            "backups/{}/{}/",
            self.name,
            self.run_date.format("%Y-%m-%d")
        )
    }
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> TaskError {
    TaskError::invalid_input(format!("{field}: {reason}"))
}

impl BackupRequest {
    /// Checks the request against the rules and the allowlists.
    pub fn validate(self, config: &Config) -> Result<Validated, TaskError> {
        let name_ok = (1..=64).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(invalid("name", "1 to 64 characters from a-z 0-9 - _"));
        }
        let run_date = self
            .run_date
            .clone()
            .or_else(|| self.continuation.as_ref().map(|c| c.run_date.clone()));
        let run_date = match &run_date {
            Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .ok()
                .filter(|_| d.len() == 10)
                .ok_or_else(|| invalid("run_date", "expected YYYY-MM-DD"))?,
            None => chrono::Utc::now().date_naive(),
        };
        match &self.source {
            SourceInput::S3 { bucket, prefix } => {
                if !config.source_buckets.contains(&bucket.to_ascii_lowercase()) {
                    return Err(invalid("source.bucket", "not in BACKUP_SOURCE_BUCKETS"));
                }
                if prefix.len() > crate::MAX_KEY_BYTES || prefix.chars().any(char::is_control) {
                    return Err(invalid(
                        "source.prefix",
                        "at most 1024 characters, no control characters",
                    ));
                }
            }
            SourceInput::Http { file_name, .. } => {
                if let Some(file) = file_name {
                    let ok = (1..=128).contains(&file.len())
                        && !file.starts_with('.')
                        && file
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                    if !ok {
                        return Err(invalid(
                            "source.file_name",
                            "1 to 128 characters from A-Z a-z 0-9 - _ . not starting with '.'",
                        ));
                    }
                }
                // The URL and its addresses are checked by `address::vet`.
            }
        }
        let storage_class = self
            .storage_class
            .as_deref()
            .map(|s| {
                if StorageClass::values().contains(&s) {
                    Ok(StorageClass::from(s))
                } else {
                    Err(invalid("storage_class", "not an S3 storage class"))
                }
            })
            .transpose()?;
        Ok(Validated {
            name: self.name,
            run_date,
            source: self.source,
            storage_class,
            continuation: self.continuation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn config() -> Config {
        Config::from_lookup(|k| match k {
            "BACKUP_BUCKET" => Some("backups".into()),
            "BACKUP_SOURCE_BUCKETS" => Some("crm-exports".into()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn validate(input: Value) -> Result<Validated, TaskError> {
        serde_json::from_value::<BackupRequest>(input)
            .map_err(|e| TaskError::invalid_input(e.to_string()))?
            .validate(&config())
    }

    fn s3(name: &str, run_date: &str) -> Value {
        json!({"name": name, "run_date": run_date,
               "source": {"type": "s3", "bucket": "crm-exports", "prefix": "daily/"}})
    }

    fn http(file_name: &str) -> Value {
        json!({"name": "crm", "run_date": "2026-11-24",
               "source": {"type": "http", "url": "https://exports.example.com/x",
                          "file_name": file_name}})
    }

    /// Inputs that try to steer a key: traversal, absolute paths, encoded
    /// dots, control characters, NUL, look-alikes, overlong and empty.
    const HOSTILE: &[&str] = &[
        "",
        ".",
        "..",
        "../x",
        "x/../..",
        "/x",
        "x/",
        "a/b",
        "%2e%2e",
        "%2F",
        "..%2f",
        "a\u{0}b",
        "a\nb",
        "a\rb",
        "a\tb",
        "a\u{7f}",
        "a\u{85}",
        "a\\b",
        "．．",
        "∕x",
        "ｃｒｍ",
        "crm\u{200B}",
        "crm\u{202E}",
        "сrm", // Cyrillic с
        " crm",
        "crm ",
        "a?b",
        "a#b",
        "a*b",
        "a:b",
    ];

    fn refused(result: Result<Validated, TaskError>, field: &str, input: &str) {
        match result {
            Err(TaskError::InvalidInput(m)) => assert!(m.starts_with(field), "{input:?}: {m}"),
            other => panic!("{input:?}: expected InvalidInput for {field}, got {other:?}"),
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        let long = "x".repeat(65);
        for name in HOSTILE.iter().copied().chain([long.as_str(), "CRM", "a.b"]) {
            refused(validate(s3(name, "2026-11-24")), "name", name);
        }
    }

    #[test]
    fn hostile_run_dates_are_refused() {
        for date in HOSTILE.iter().copied().chain([
            "2026-11-24/..",
            "2026-11-24\n",
            "2026-1-24",
            "+2026-11-24",
            "2026-11-24/",
            "../2026-11-2",
            "2026-02-30",
            "２０２６-11-24",
        ]) {
            refused(validate(s3("crm", date)), "run_date", date);
        }
        let mut continued = s3("crm", "2026-11-24");
        continued["run_date"] = Value::Null;
        continued["continuation"] = json!({"run_date": "../../x", "after_key": "a",
            "started_at": "2026-11-24T00:00:00Z", "copied": 0, "skipped": 0, "invocations": 1});
        refused(validate(continued), "run_date", "continuation.run_date");
    }

    #[test]
    fn hostile_file_names_are_refused() {
        let long = "x".repeat(129);
        for file in HOSTILE
            .iter()
            .copied()
            .chain([long.as_str(), ".hidden", "..x"])
        {
            refused(validate(http(file)), "source.file_name", file);
        }
    }

    #[test]
    fn hostile_prefixes_are_refused() {
        let long = "x".repeat(1025);
        for prefix in ["a\u{0}", "a\n", "a\u{7f}", "a\u{85}", long.as_str()] {
            let mut input = s3("crm", "2026-11-24");
            input["source"]["prefix"] = json!(prefix);
            refused(validate(input), "source.prefix", prefix);
        }
    }

    #[test]
    fn accepted_inputs_give_safe_keys() {
        let longest = "z".repeat(64);
        let long_file = format!("a{}", ".".repeat(127));
        for (name, date, file) in [
            ("crm", "2026-11-24", None),
            ("crm-nightly_2", "2000-01-01", Some("export.ndjson")),
            (longest.as_str(), "2999-12-31", Some(long_file.as_str())),
            ("0", "2026-11-24", Some("a..b")),
            ("_", "2026-11-24", Some("x.")),
        ] {
            let run = validate(s3(name, date)).unwrap_or_else(|e| panic!("{name}: {e}"));
            let run_key = run.run_key();
            assert_eq!(run_key, format!("backups/{name}/{date}/"));
            crate::tests::assert_safe_key(&run_key, "backups/");
            let export = crate::export_key(&run_key, file);
            if let Some(file) = file {
                validate(http(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            }
            crate::tests::assert_safe_key(&export, &format!("{run_key}data/"));
            assert_eq!(export.matches('/').count(), 4, "{export}");
            let data = crate::data_key(&run_key, "daily/", "daily/a/../../b");
            crate::tests::assert_safe_key(&data, &format!("{run_key}data/"));
        }
    }
}
