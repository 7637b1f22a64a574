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
                if prefix.len() > 1024 || prefix.chars().any(char::is_control) {
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
