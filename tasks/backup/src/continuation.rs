//! What a run carries from one invocation to the next: where its listing,
//! its open multipart upload or its export stopped, and its totals so far.
//!
//! A continuation comes back in the task's input, so it is input like any
//! other: it must belong to the request's run and source, and nothing in it
//! names a key to write (keys are always derived from the request).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use sfn_task::TaskError;

use crate::config::MIN_PART_SIZE;
use crate::request::SourceInput;

/// S3's largest part.
pub const MAX_PART_SIZE: u64 = 5 << 30;

/// Progress carried between invocations of one run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Continuation {
    /// The run's canonical id; must match the request's.
    pub run_id: String,
    /// When the run's first invocation started (RFC 3339).
    pub started_at: String,
    /// Invocations so far.
    pub invocations: u32,
    /// Manifest parts written so far (`manifest/part-000001.jsonl` on).
    pub manifest_parts: u32,
    /// What the run has done so far.
    pub totals: Totals,
    /// Where an S3 run stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Position>,
    /// Where an HTTP export stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpPosition>,
}

/// Counts over the whole run.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Objects in the backup (copied or found already copied).
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Objects copied by this run.
    pub copied: u64,
    /// Objects found already copied (same source ETag), e.g. by a rerun.
    pub already_copied: u64,
    /// Objects whose source changed between listing and copying: the
    /// version copied is in the manifest.
    pub changed: u64,
    /// Objects listed but deleted from the source before they were copied.
    pub vanished: u64,
}

impl Totals {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &Totals) {
        self.objects += other.objects;
        self.bytes += other.bytes;
        self.copied += other.copied;
        self.already_copied += other.already_copied;
        self.changed += other.changed;
        self.vanished += other.vanished;
    }
}

/// Where an S3 run's listing stands.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct S3Position {
    /// Every source key up to this one is done; listing resumes after it.
    #[serde(default)]
    pub after_key: Option<String>,
    /// Keys after `after_key` already done ([`key_tag`]s): listed again,
    /// they are not copied again.
    #[serde(default)]
    pub done_beyond: Vec<String>,
    /// Keys whose copy was cut off at the deadline ([`key_tag`]s): it may
    /// have landed, so the next invocation checks before copying.
    #[serde(default)]
    pub uncertain: Vec<String>,
    /// A multipart copy under way.
    #[serde(default)]
    pub open_copy: Option<OpenCopy>,
    /// The run's destination was empty when it started: no copy can exist
    /// yet that this run did not record, so none is looked for.
    pub fresh: bool,
    /// The listing is exhausted.
    pub listing_done: bool,
}

/// A multipart copy that continues in the next invocation; its finished
/// parts are read back with `ListParts`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OpenCopy {
    /// The source object.
    pub source_key: String,
    /// The version being copied; a changed source starts over.
    pub source_etag: String,
    /// The upload.
    pub upload_id: String,
    /// Bytes per part (the last may be smaller).
    pub part_size: u64,
}

/// Where an HTTP export stands: the bytes before `bytes` are in `parts`
/// full parts of the open upload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpPosition {
    /// The upload.
    pub upload_id: String,
    /// Bytes per part.
    pub part_size: u64,
    /// Parts uploaded.
    pub parts: u32,
    /// Bytes uploaded: `parts × part_size`.
    pub bytes: u64,
    /// The SHA-256 state after those bytes (see [`crate::sha256::Resumable`]).
    pub sha256_state: String,
    /// The export's `ETag` (strong) or `Last-Modified`, for `If-Range`: a
    /// changed export starts over instead of being spliced.
    pub validator: String,
}

/// A short, fixed-size tag for a source key (which may be 1 KiB): 64 bits
/// of its SHA-256, plenty to tell apart the keys of one listing page.
pub fn key_tag(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

impl Continuation {
    /// A new run's first continuation.
    pub fn start(run_id: &str, started_at: String) -> Self {
        Self {
            run_id: run_id.to_owned(),
            started_at,
            invocations: 0,
            manifest_parts: 0,
            totals: Totals::default(),
            s3: None,
            http: None,
        }
    }

    /// Refuses a continuation of another run or another kind of source, or
    /// one no invocation of this task could have written.
    pub fn check(&self, run_id: &str, source: &SourceInput) -> Result<(), TaskError> {
        let refuse = |why: &str| Err(TaskError::invalid_input(format!("continuation: {why}")));
        if self.run_id != run_id {
            return refuse("belongs to another run_id");
        }
        if chrono::DateTime::parse_from_rfc3339(&self.started_at).is_err() {
            return refuse("started_at is not an RFC 3339 time");
        }
        match (source, &self.s3, &self.http) {
            (SourceInput::S3 { prefix, .. }, Some(position), None) => {
                let tags_ok = position
                    .done_beyond
                    .iter()
                    .chain(&position.uncertain)
                    .all(|t| t.len() == 16 && t.bytes().all(|b| b.is_ascii_hexdigit()));
                if !tags_ok {
                    return refuse("key tags are 16 hex digits");
                }
                if let Some(open) = &position.open_copy {
                    if !open.source_key.starts_with(prefix.as_str()) {
                        return refuse("the open copy is outside the source prefix");
                    }
                    check_part_size(open.part_size)?;
                }
                Ok(())
            }
            (SourceInput::S3 { .. }, None, None) | (SourceInput::Http { .. }, None, None) => Ok(()),
            (SourceInput::Http { .. }, None, Some(position)) => {
                check_part_size(position.part_size)?;
                if !position.part_size.is_multiple_of(64)
                    || Some(position.bytes)
                        != u64::from(position.parts).checked_mul(position.part_size)
                {
                    return refuse("bytes must be parts × part_size, a multiple of 64");
                }
                if crate::sha256::Resumable::from_state(&position.sha256_state, position.bytes)
                    .is_none()
                {
                    return refuse("sha256_state is not a SHA-256 state");
                }
                Ok(())
            }
            _ => refuse("does not match the source type"),
        }
    }
}

fn check_part_size(size: u64) -> Result<(), TaskError> {
    if (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(TaskError::invalid_input(
            "continuation: part_size must be between 5 MiB and 5 GiB",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3() -> SourceInput {
        SourceInput::S3 {
            bucket: "b".into(),
            prefix: "daily/".into(),
        }
    }

    #[test]
    fn a_continuation_must_belong_to_the_run() {
        let mut c = Continuation::start("20261201T120000Z", "2026-12-01T12:00:00Z".into());
        c.s3 = Some(S3Position::default());
        assert!(c.check("20261201T120000Z", &s3()).is_ok());
        assert!(c.check("20261201T000000Z", &s3()).is_err());
        let http = SourceInput::Http {
            url: "https://x".into(),
            file_name: None,
        };
        assert!(c.check("20261201T120000Z", &http).is_err());
        let mut outside = c.clone();
        if let Some(p) = outside.s3.as_mut() {
            p.open_copy = Some(OpenCopy {
                source_key: "other/big".into(),
                source_etag: "e".into(),
                upload_id: "u".into(),
                part_size: MIN_PART_SIZE,
            });
        }
        assert!(outside.check("20261201T120000Z", &s3()).is_err());
        let mut bad_tag = c.clone();
        if let Some(p) = bad_tag.s3.as_mut() {
            p.done_beyond.push("../../x".into());
        }
        assert!(bad_tag.check("20261201T120000Z", &s3()).is_err());
    }

    #[test]
    fn key_tags_are_short_and_distinct() {
        assert_eq!(key_tag("a").len(), 16);
        assert_ne!(key_tag("a"), key_tag("b"));
        assert_eq!(key_tag(&"x".repeat(1024)).len(), 16);
    }
}
