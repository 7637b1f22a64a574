//! The task's input and its validation: which run, of what, from where.

use aws_sdk_s3::types::StorageClass;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use sfn_task::TaskError;

use crate::batch;
use crate::config::Config;
use crate::continuation::Continuation;
use crate::s3_copy::Listed;

/// The task's input. A run is identified by `name` and `run_id`, never by
/// the execution, so a retry, a continuation or a deliberate rerun with the
/// same `run_id` lands on the same keys, and distinct runs never share any.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// `[a-z0-9_-]`, 1–64 characters, e.g. `crm-nightly`.
    pub name: String,
    /// Which run of `name` this is: an RFC 3339 timestamp (the schedule's
    /// slot, `<aws.scheduler.scheduled-time>`, or the execution's start
    /// time, which the state machine passes by default), or 1–64 of
    /// `A-Z a-z 0-9 - _ .` not starting with `.`. Timestamps name the same
    /// run however they are written: `2026-12-01T12:00:00Z` and
    /// `2026-12-01T13:00:00+01:00` are both `20261201T120000Z`.
    pub run_id: Option<String>,
    /// What to back up.
    pub source: SourceInput,
    /// S3 storage class of the copies, e.g. `STANDARD_IA`.
    #[serde(default)]
    pub storage_class: Option<String>,
    /// From the previous invocation's output, when it was not done.
    #[serde(default)]
    pub continuation: Option<Continuation>,
    /// A Distributed Map batch: back up exactly these objects of the S3
    /// source (see [`crate::batch`]).
    #[serde(default)]
    pub items: Option<Vec<batch::Item>>,
    /// Finish a batched run: write its index (see [`crate::batch`]).
    #[serde(default)]
    pub finish: Option<batch::Finish>,
    /// Only check the request of a batched run (S3 sources), before its
    /// Distributed Map lists anything: a bad one fails here with
    /// `Task.InvalidInput` instead of in every batch.
    #[serde(default)]
    pub check: bool,
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

/// A validated request.
#[derive(Debug, Clone)]
pub struct Validated {
    /// Run name.
    pub name: String,
    /// The run id in its canonical form (see [`canonical_run_id`]).
    pub run_id: String,
    /// Source.
    pub source: SourceInput,
    /// Storage class.
    pub storage_class: Option<StorageClass>,
    /// Where to resume.
    pub continuation: Option<Continuation>,
    /// The whole source, one batch of it, or the end of a batched run.
    pub mode: Mode,
}

/// What this invocation does of the run.
#[derive(Debug, Clone)]
pub enum Mode {
    /// The whole source, listed as the run goes.
    Whole,
    /// These objects of an S3 source, in key order.
    Batch(Vec<Listed>),
    /// Write a batched run's index.
    Finish(batch::Finish),
    /// Check a batched run's request, nothing more.
    Check,
}

impl Validated {
    /// `backups/{name}/{run id}/`.
    pub fn run_key(&self) -> String {
        format!("backups/{}/{}/", self.name, self.run_id)
    }
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> TaskError {
    TaskError::invalid_input(format!("{field}: {reason}"))
}

/// The key segment of a run id: a timestamp in UTC as
/// `YYYYMMDDTHHMMSS[.fraction]Z` (sorting as time does, one spelling per
/// instant), anything else as given if it is 1–64 of `A-Z a-z 0-9 - _ .`
/// not starting with `.`.
pub fn canonical_run_id(raw: &str) -> Result<String, TaskError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        let at = at.with_timezone(&Utc);
        let text = at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        // 2026-12-01T12:00:00.5Z -> 20261201T120000.5Z
        return Ok(text.replace(['-', ':'], ""));
    }
    let ok = (1..=64).contains(&raw.len())
        && !raw.starts_with('.')
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(invalid(
            "run_id",
            "an RFC 3339 timestamp, or 1 to 64 characters from A-Z a-z 0-9 - _ . not starting with '.'",
        ))
    }
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
        let raw_run_id = self.run_id.as_deref().ok_or_else(|| {
            invalid(
                "run_id",
                "required (the state machine passes the execution's start time)",
            )
        })?;
        let run_id = canonical_run_id(raw_run_id)?;
        if let Some(continuation) = &self.continuation {
            continuation.check(&run_id, &self.source)?;
        }
        match &self.source {
            SourceInput::S3 { bucket, prefix } => {
                if !config.source_buckets.contains(&bucket.to_ascii_lowercase()) {
                    return Err(invalid("source.bucket", "not in BACKUP_SOURCE_BUCKETS"));
                }
                if prefix.len() > crate::keys::MAX_KEY_BYTES || prefix.chars().any(char::is_control)
                {
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
        let mode = match (self.items, self.finish, &self.source) {
            (None, None, _) if !self.check => Mode::Whole,
            (None, None, SourceInput::S3 { .. }) if self.continuation.is_none() => Mode::Check,
            (_, _, _) if self.check => {
                return Err(invalid(
                    "check",
                    "alone, for an S3 source (the start of a batched run)",
                ));
            }
            (Some(items), None, SourceInput::S3 { prefix, .. }) => {
                Mode::Batch(batch::listed(items, prefix)?)
            }
            (None, Some(finish), SourceInput::S3 { .. }) if self.continuation.is_none() => {
                Mode::Finish(finish)
            }
            (Some(_), Some(_), _) => return Err(invalid("items", "not with finish")),
            _ => {
                return Err(invalid(
                    "items",
                    "items and finish are for S3 sources (finish without a continuation)",
                ));
            }
        };
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
        let run = Validated {
            name: self.name,
            run_id,
            source: self.source,
            storage_class,
            continuation: self.continuation,
            mode,
        };
        if let Mode::Finish(finish) = &run.mode {
            finish.check(&run.run_key())?;
        }
        Ok(run)
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

    fn s3(name: &str, run_id: &str) -> Value {
        json!({"name": name, "run_id": run_id,
               "source": {"type": "s3", "bucket": "crm-exports", "prefix": "daily/"}})
    }

    fn http(file_name: &str) -> Value {
        json!({"name": "crm", "run_id": "2026-11-24T00:00:00Z",
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
    fn hostile_run_ids_are_refused() {
        let long = "x".repeat(65);
        for run_id in HOSTILE.iter().copied().chain([
            long.as_str(),
            ".hidden",
            "2026-11-24/..",
            "2026-11-24\n",
            "2026-02-30T00:00:00Z",
            "２０２６-11-24",
            "a/b",
        ]) {
            refused(validate(s3("crm", run_id)), "run_id", run_id);
        }
        let mut missing = s3("crm", "x");
        missing["run_id"] = Value::Null;
        refused(validate(missing), "run_id", "null");
        // The old input shape is refused, not silently keyed by date.
        let mut old = s3("crm", "x");
        old["run_date"] = json!("2026-11-24");
        assert!(serde_json::from_value::<BackupRequest>(old).is_err());
    }

    #[test]
    fn one_instant_is_one_run_id() {
        for (raw, canonical) in [
            ("2026-12-01T12:00:00Z", "20261201T120000Z"),
            ("2026-12-01T13:00:00+01:00", "20261201T120000Z"),
            ("2026-12-01t12:00:00z", "20261201T120000Z"),
            ("2026-12-01T12:00:00.000Z", "20261201T120000Z"),
            ("2026-12-01T12:00:00.5Z", "20261201T120000.500Z"),
            ("2026-12-01T12:00:00.123456Z", "20261201T120000.123456Z"),
            ("20261201T120000Z", "20261201T120000Z"),
            ("nightly-7", "nightly-7"),
        ] {
            assert_eq!(
                canonical_run_id(raw).ok().as_deref(),
                Some(canonical),
                "{raw}"
            );
        }
        // Runs twelve hours apart never share a key.
        let morning = validate(s3("crm", "2026-12-01T00:00:00Z")).map(|r| r.run_key());
        let evening = validate(s3("crm", "2026-12-01T12:00:00Z")).map(|r| r.run_key());
        assert_ne!(morning.ok(), evening.ok());
    }

    #[test]
    fn a_continuation_of_another_run_is_refused() {
        let mut input = s3("crm", "2026-12-01T12:00:00Z");
        input["continuation"] = json!({"run_id": "20261201T000000Z", "started_at": "2026-12-01T00:00:00Z",
            "invocations": 1, "manifest_parts": 0,
            "totals": {"objects": 0, "bytes": 0, "copied": 0, "already_copied": 0, "changed": 0, "vanished": 0}});
        refused(validate(input), "continuation", "another run");
    }

    #[test]
    fn check_is_the_start_of_a_batched_s3_run_only() {
        let mut check = s3("crm", "2026-12-01T12:00:00Z");
        check["check"] = json!(true);
        assert!(matches!(
            validate(check.clone()).map(|r| r.mode),
            Ok(Mode::Check)
        ));
        let mut http_check = http("x.ndjson");
        http_check["check"] = json!(true);
        refused(validate(http_check), "check", "an http source");
        let mut with_items = check.clone();
        with_items["items"] = json!([{"Key": "daily/a"}]);
        refused(validate(with_items), "check", "with items");
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
        let longest_id = format!("2{}", "9".repeat(63));
        for (name, run_id, file) in [
            ("crm", "20261124T000000Z", None),
            ("crm-nightly_2", "20000101T000000Z", Some("export.ndjson")),
            (
                longest.as_str(),
                longest_id.as_str(),
                Some(long_file.as_str()),
            ),
            ("0", "a..b", Some("a..b")),
            ("_", "x.", Some("x.")),
        ] {
            let run = validate(s3(name, run_id)).unwrap_or_else(|e| panic!("{name}: {e}"));
            let run_key = run.run_key();
            assert_eq!(run_key, format!("backups/{name}/{run_id}/"));
            crate::keys::tests::assert_safe_key(&run_key, "backups/");
            let export = crate::keys::export_key(&run_key, file);
            if let Some(file) = file {
                validate(http(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            }
            crate::keys::tests::assert_safe_key(&export, &format!("{run_key}data/"));
            assert_eq!(export.matches('/').count(), 4, "{export}");
            let data = crate::keys::data_key(&run_key, "daily/", "daily/a/../../b");
            crate::keys::tests::assert_safe_key(&data, &format!("{run_key}data/"));
        }
    }
}
