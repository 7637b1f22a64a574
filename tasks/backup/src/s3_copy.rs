//! One source object into the backup bucket by server-side copy (no bytes
//! pass through the Lambda): `CopyObject` up to the multipart threshold,
//! `UploadPartCopy` above it, in parts copied concurrently that the next
//! invocation continues from where this one stopped.
//!
//! Every copy carries the version it copied in its metadata
//! (`source-etag`), so a rerun recognises it whatever its own ETag (a
//! multipart copy's, or one under SSE-KMS, differs from the source's).

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{MetadataDirective, StorageClass};
use sfn_task::TaskError;
use sfn_task::error::{ServiceAnswer, service_answer};
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::continuation::OpenCopy;
use crate::manifest::{Entry, Outcome};
use crate::uploads;

mod multipart;
use multipart::multipart_copy;

/// Metadata key of the source version a copy holds.
pub const SOURCE_ETAG: &str = "source-etag";

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Full key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag, quotes removed.
    pub etag: String,
}

/// A copy job's fixed parts.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// The S3 client.
    pub s3: &'a Client,
    /// Settings.
    pub config: &'a Config,
    /// Source bucket.
    pub source_bucket: &'a str,
    /// Source prefix.
    pub prefix: &'a str,
    /// `backups/{name}/{run id}/`.
    pub run_key: &'a str,
    /// Storage class of the copies.
    pub storage_class: Option<&'a StorageClass>,
    /// Recorded in the copies' metadata.
    pub correlation_id: &'a str,
    /// One multipart copy at a time, so at most one is left open for the
    /// next invocation.
    pub multipart_gate: &'a Semaphore,
    /// A Distributed Map batch's objects, in key order: listed from here
    /// instead of the bucket.
    pub batch: Option<&'a [Listed]>,
}

/// When work stops: no new copy or part starts after `stop_starting`;
/// whatever is in flight at `hard` is dropped.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Last moment to start a request.
    pub stop_starting: Instant,
    /// Last moment for anything.
    pub hard: Instant,
}

/// What became of one object in this invocation.
#[derive(Debug)]
pub enum Step {
    /// Copied, found already copied, or found deleted.
    Done(Entry),
    /// A multipart copy continues next invocation.
    Paused {
        /// The upload to continue.
        open: OpenCopy,
        /// Whether any part was copied in this invocation.
        progressed: bool,
    },
    /// Not started: it was out of time by the time its turn came.
    NotStarted,
}

/// The source object as it is now.
struct Head {
    etag: String,
    size: u64,
    last_modified: Option<String>,
    metadata: HashMap<String, String>,
    content_type: Option<String>,
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
    content_language: Option<String>,
}

/// How one copy attempt of one source version ended.
enum Attempt {
    /// Copied; the copy's ETag.
    Copied(String),
    /// The source was deleted.
    Gone,
    /// The source changed between our `HeadObject` and the copy.
    SourceChanged,
    /// A multipart copy continues next invocation.
    Paused { open: OpenCopy, progressed: bool },
    /// Out of time before it started.
    NotStarted,
}

/// How often a source that keeps changing under the copy is read again.
const CHANGE_ATTEMPTS: usize = 3;

/// Backs up `listed`. `look_for_copy`: a copy may already exist (a rerun,
/// a retry, a copy cut off at a deadline) and is checked first. `open`: the
/// multipart copy of this object an earlier invocation left open.
pub async fn back_up(
    job: Job<'_>,
    listed: &Listed,
    look_for_copy: bool,
    mut open: Option<OpenCopy>,
    limits: Limits,
) -> Result<Step, TaskError> {
    let dest = crate::keys::data_key(job.run_key, job.prefix, &listed.key);
    for _ in 0..CHANGE_ATTEMPTS {
        let Some(head) = head_source(job, &listed.key).await? else {
            if let Some(open) = open.take() {
                uploads::abort(job.s3, &job.config.bucket, &dest, &open.upload_id).await;
            }
            return Ok(Step::Done(vanished(listed)));
        };
        let entry = |outcome, etag: String| Entry {
            outcome,
            source_key: listed.key.clone(),
            key: Some(dest.clone()),
            size: Some(head.size),
            source_etag: Some(head.etag.clone()),
            etag: Some(etag),
            last_modified: head.last_modified.clone(),
            changed_during_run: head.etag != listed.etag,
            sha256: None,
        };
        if (look_for_copy || open.is_some())
            && let Some(etag) = existing_copy(job, &dest, &head).await?
        {
            if let Some(open) = open.take() {
                uploads::abort(job.s3, &job.config.bucket, &dest, &open.upload_id).await;
            }
            return Ok(Step::Done(entry(Outcome::AlreadyCopied, etag)));
        }
        let attempt = if head.size > job.config.multipart_copy_threshold {
            multipart_copy(job, &listed.key, &head, &dest, open.take(), limits).await?
        } else {
            single_copy(job, &listed.key, &head, &dest).await?
        };
        match attempt {
            Attempt::Copied(etag) => return Ok(Step::Done(entry(Outcome::Copied, etag))),
            Attempt::Gone => return Ok(Step::Done(vanished(listed))),
            Attempt::Paused { open, progressed } => return Ok(Step::Paused { open, progressed }),
            Attempt::NotStarted => return Ok(Step::NotStarted),
            Attempt::SourceChanged => continue,
        }
    }
    Err(TaskError::retryable(
        "a source object kept changing while it was copied",
    ))
}

fn vanished(listed: &Listed) -> Entry {
    Entry {
        outcome: Outcome::Vanished,
        source_key: listed.key.clone(),
        key: None,
        size: None,
        source_etag: Some(listed.etag.clone()),
        etag: None,
        last_modified: None,
        changed_during_run: false,
        sha256: None,
    }
}

/// `HeadObject` answers a missing key with a bare 404 (`NotFound`), a copy
/// with `NoSuchKey`.
fn is_missing(answer: Option<ServiceAnswer<'_>>) -> bool {
    answer.is_some_and(|a| a.is(&["NoSuchKey", "NotFound"], 404))
}

/// The `If-Match` precondition failed: the source changed.
fn is_changed(answer: Option<ServiceAnswer<'_>>) -> bool {
    answer.is_some_and(|a| a.is(&["PreconditionFailed"], 412))
}

async fn head_source(job: Job<'_>, key: &str) -> Result<Option<Head>, TaskError> {
    let head = match job
        .s3
        .head_object()
        .bucket(job.source_bucket)
        .key(key)
        .send()
        .await
    {
        Ok(head) => head,
        Err(err) if is_missing(service_answer(&err)) => return Ok(None),
        Err(err) => return Err(TaskError::from(err).context("reading a source object")),
    };
    Ok(Some(Head {
        etag: head
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned(),
        size: u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0),
        last_modified: head
            .last_modified()
            .and_then(|t| t.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime).ok()),
        metadata: head.metadata().cloned().unwrap_or_default(),
        content_type: head.content_type().map(str::to_owned),
        cache_control: head.cache_control().map(str::to_owned),
        content_disposition: head.content_disposition().map(str::to_owned),
        content_encoding: head.content_encoding().map(str::to_owned),
        content_language: head.content_language().map(str::to_owned),
    }))
}

/// The ETag of a copy of exactly this source version already at `dest`.
async fn existing_copy(job: Job<'_>, dest: &str, head: &Head) -> Result<Option<String>, TaskError> {
    let copy = match job
        .s3
        .head_object()
        .bucket(&job.config.bucket)
        .key(dest)
        .send()
        .await
    {
        Ok(copy) => copy,
        Err(err) if is_missing(service_answer(&err)) => return Ok(None),
        Err(err) => return Err(TaskError::from(err).context("checking an existing copy")),
    };
    let same_version = copy.metadata().and_then(|m| m.get(SOURCE_ETAG)) == Some(&head.etag)
        && u64::try_from(copy.content_length().unwrap_or(-1)).ok() == Some(head.size);
    Ok(same_version.then(|| {
        copy.e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned()
    }))
}

/// The source's metadata plus `source-etag` and `correlation-id`.
fn copy_metadata(job: Job<'_>, head: &Head) -> HashMap<String, String> {
    let mut metadata = head.metadata.clone();
    metadata.insert(SOURCE_ETAG.to_owned(), head.etag.clone());
    metadata.insert("correlation-id".to_owned(), job.correlation_id.to_owned());
    metadata
}

async fn single_copy(
    job: Job<'_>,
    key: &str,
    head: &Head,
    dest: &str,
) -> Result<Attempt, TaskError> {
    let copied_now = job
        .s3
        .copy_object()
        .bucket(&job.config.bucket)
        .key(dest)
        .copy_source(copy_source(job.source_bucket, key))
        .copy_source_if_match(&head.etag)
        .metadata_directive(MetadataDirective::Replace)
        .set_metadata(Some(copy_metadata(job, head)))
        .set_content_type(head.content_type.clone())
        .set_cache_control(head.cache_control.clone())
        .set_content_disposition(head.content_disposition.clone())
        .set_content_encoding(head.content_encoding.clone())
        .set_content_language(head.content_language.clone())
        .set_storage_class(job.storage_class.cloned())
        .customize()
        .config_override(long_copy())
        .send()
        .await;
    match copied_now {
        Ok(out) => Ok(Attempt::Copied(
            out.copy_object_result()
                .and_then(|r| r.e_tag())
                .unwrap_or_default()
                .trim_matches('"')
                .to_owned(),
        )),
        Err(err) if is_missing(service_answer(&err)) => Ok(Attempt::Gone),
        Err(err) if is_changed(service_answer(&err)) => Ok(Attempt::SourceChanged),
        Err(err) => Err(TaskError::from(err).context("copying an object")),
    }
}

/// A server-side copy of gigabytes takes minutes, far beyond the shared
/// configuration's 30 s per attempt; the deadline guard still bounds it.
fn long_copy() -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::default().timeout_config(
        aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(std::time::Duration::from_secs(15 * 60))
            .build(),
    )
}

/// `CopySource` is `bucket/key` with the key URL-encoded.
fn copy_source(bucket: &str, key: &str) -> String {
    let mut out = format!("{bucket}/");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_encodes_keys() {
        assert_eq!(
            copy_source("b", "a/b c/ä+?.txt"),
            "b/a/b%20c/%C3%A4%2B%3F.txt"
        );
    }
}
