//! The manifest: what a run backed up, written in parts as the run goes and
//! finished by a small index. Its format is stable (`schema_version` 2):
//!
//! - `{run key}manifest/part-000001.jsonl`, `part-000002.jsonl`, ...: one
//!   [`Entry`] per line, at most one listing page (1,000 entries) a part,
//!   each object of the run in exactly one part (a batched run's parts are
//!   `{run key}manifest/batch-{tag}/part-000001.jsonl`, ..., per batch: see
//!   [`crate::batch`]);
//! - `{run key}manifest.json`: the [`Index`], written last; a run without
//!   it is not finished. Parts it does not list (left by an attempt that
//!   was retried) are not part of the run.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use sfn_task::TaskError;

use crate::continuation::Totals;

/// The index's name under the run key.
pub const INDEX: &str = "manifest.json";
/// The format version.
pub const SCHEMA_VERSION: u32 = 2;

/// What happened to one source object.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Copied (or streamed) by this run.
    Copied,
    /// Already in the backup with the same source ETag (a rerun).
    AlreadyCopied,
    /// Listed, then deleted from the source before it could be copied.
    Vanished,
}

/// One line of a manifest part.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// What happened.
    pub outcome: Outcome,
    /// The source key (S3) or URL path (HTTP).
    pub source_key: String,
    /// The backup's key; absent when vanished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The source version copied (its ETag, quotes removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_etag: Option<String>,
    /// The backup's own ETag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The copied version's last-modified time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// The source changed between the listing and the copy; the version
    /// copied is the one described here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed_during_run: bool,
    /// SHA-256 of the bytes streamed (HTTP exports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl Entry {
    /// Adds this entry to `totals`.
    pub fn count(&self, totals: &mut Totals) {
        match self.outcome {
            Outcome::Copied => totals.copied += 1,
            Outcome::AlreadyCopied => totals.already_copied += 1,
            Outcome::Vanished => {
                totals.vanished += 1;
                return;
            }
        }
        totals.objects += 1;
        totals.bytes += self.size.unwrap_or(0);
        if self.changed_during_run {
            totals.changed += 1;
        }
    }
}

/// The source, as the index records it (an export's URL without its query,
/// which may carry a token).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Source {
    /// An S3 prefix.
    S3 {
        /// Bucket.
        bucket: String,
        /// Prefix.
        prefix: String,
    },
    /// An HTTP export.
    Http {
        /// Host (and port).
        host: String,
        /// Path.
        path: String,
    },
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Index {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The run's name.
    pub name: String,
    /// The run's canonical id.
    pub run_id: String,
    /// `backups/{name}/{run id}/`.
    pub run_key: String,
    /// Of the invocation that finished the run.
    pub correlation_id: String,
    /// What was backed up.
    pub source: Source,
    /// The run's first invocation (RFC 3339).
    pub started_at: String,
    /// When the index was written.
    pub finished_at: String,
    /// Invocations the run took.
    pub invocations: u32,
    /// Counts over every part.
    pub totals: Totals,
    /// The parts' keys, in order.
    pub parts: Vec<String>,
}

/// Where a run's parts go.
pub fn parts_dir(run_key: &str) -> String {
    format!("{run_key}manifest/")
}

/// The key of part `number` (from 1) in `dir`.
pub fn part_key(dir: &str, number: u32) -> String {
    format!("{dir}part-{number:06}.jsonl")
}

/// Entries waiting to be written, and the number the next part gets.
#[derive(Debug)]
pub struct PartWriter {
    dir: String,
    correlation_id: String,
    next: u32,
    pending: Vec<Entry>,
    /// Entries a part holds.
    pub capacity: usize,
}

impl PartWriter {
    /// Writes parts into `dir` ([`parts_dir`], or a batch's), after
    /// `written` parts.
    pub fn new(dir: String, correlation_id: &str, written: u32, capacity: usize) -> Self {
        Self {
            dir,
            correlation_id: correlation_id.to_owned(),
            next: written + 1,
            pending: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    /// Parts written, this invocation's included.
    pub fn written(&self) -> u32 {
        self.next - 1
    }

    /// The keys of every part written, in order.
    pub fn keys(&self) -> Vec<String> {
        (1..self.next).map(|n| part_key(&self.dir, n)).collect()
    }

    /// Queues an entry, writing a part once `capacity` are waiting.
    pub async fn push(&mut self, s3: &Client, bucket: &str, entry: Entry) -> Result<(), TaskError> {
        self.pending.push(entry);
        if self.pending.len() >= self.capacity {
            self.flush(s3, bucket).await?;
        }
        Ok(())
    }

    /// Writes what is waiting as the next part (nothing if nothing waits).
    /// A retried invocation starts from the same number, so it overwrites
    /// its failed attempt's parts instead of adding to them.
    pub async fn flush(&mut self, s3: &Client, bucket: &str) -> Result<(), TaskError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut body = Vec::new();
        for entry in self.pending.drain(..) {
            serde_json::to_writer(&mut body, &entry)
                .map_err(|e| TaskError::failed(format!("serialising the manifest: {e}")))?;
            body.push(b'\n');
        }
        let key = part_key(&self.dir, self.next);
        put_json(
            s3,
            bucket,
            &key,
            body,
            "application/x-ndjson",
            &self.correlation_id,
        )
        .await
        .map_err(|e| e.context("writing a manifest part"))?;
        self.next += 1;
        Ok(())
    }
}

/// Writes the index; its key.
pub async fn write_index(s3: &Client, bucket: &str, index: &Index) -> Result<String, TaskError> {
    let key = format!("{}{INDEX}", index.run_key);
    let body = serde_json::to_vec_pretty(index)
        .map_err(|e| TaskError::failed(format!("serialising the manifest: {e}")))?;
    put_json(
        s3,
        bucket,
        &key,
        body,
        "application/json",
        &index.correlation_id,
    )
    .await
    .map_err(|e| e.context("writing the manifest"))?;
    Ok(key)
}

async fn put_json(
    s3: &Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    content_type: &str,
    correlation_id: &str,
) -> Result<(), TaskError> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .metadata("correlation-id", correlation_id)
        .body(ByteStream::from(body))
        .send()
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_count_into_totals() {
        let mut totals = Totals::default();
        let copied = Entry {
            outcome: Outcome::Copied,
            source_key: "a".into(),
            key: Some("k".into()),
            size: Some(10),
            source_etag: Some("e".into()),
            etag: Some("e".into()),
            last_modified: None,
            changed_during_run: true,
            sha256: None,
        };
        copied.count(&mut totals);
        Entry {
            outcome: Outcome::Vanished,
            key: None,
            size: None,
            changed_during_run: false,
            ..copied.clone()
        }
        .count(&mut totals);
        assert_eq!(
            totals,
            Totals {
                objects: 1,
                bytes: 10,
                copied: 1,
                already_copied: 0,
                changed: 1,
                vanished: 1
            }
        );
    }

    #[test]
    fn the_line_format_is_stable() {
        let entry = Entry {
            outcome: Outcome::AlreadyCopied,
            source_key: "daily/a.json".into(),
            key: Some("backups/crm/20261201T120000Z/data/a.json".into()),
            size: Some(3),
            source_etag: Some("abc".into()),
            etag: Some("abc".into()),
            last_modified: Some("2026-12-01T11:00:00Z".into()),
            changed_during_run: false,
            sha256: None,
        };
        assert_eq!(
            serde_json::to_string(&entry).unwrap_or_default(),
            r#"{"outcome":"already_copied","source_key":"daily/a.json","key":"backups/crm/20261201T120000Z/data/a.json","size":3,"source_etag":"abc","etag":"abc","last_modified":"2026-12-01T11:00:00Z"}"#
        );
        assert_eq!(
            part_key(&parts_dir("backups/crm/x/"), 12),
            "backups/crm/x/manifest/part-000012.jsonl"
        );
    }
}
