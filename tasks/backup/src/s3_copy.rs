//! S3 prefix → backup bucket by server-side copy: no object bytes pass
//! through the Lambda. `CopyObject` up to the multipart threshold,
//! `UploadPartCopy` above it; bounded parallelism; resumable after any key.

use std::collections::HashMap;

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{CompletedPart, MetadataDirective, StorageClass};
use common::{TaskContext, TaskError};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;

use crate::config::Config;

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Full key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag, quotes removed.
    pub etag: String,
    /// Last modified, seconds since the epoch.
    pub last_modified: i64,
}

/// Lists every object under `prefix`, after `start_after` if given, page by page.
pub async fn list(
    s3: &Client,
    bucket: &str,
    prefix: &str,
    start_after: Option<&str>,
) -> Result<Vec<Listed>, TaskError> {
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .set_start_after(start_after.map(str::to_owned))
        .into_paginator()
        .send();
    let mut all = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(|e| TaskError::from(e).context(&format!("listing s3://{bucket}/{prefix}")))?;
        for object in page.contents() {
            if let Some(key) = object.key() {
                all.push(Listed {
                    key: key.to_owned(),
                    size: u64::try_from(object.size().unwrap_or(0)).unwrap_or(0),
                    etag: object
                        .e_tag()
                        .unwrap_or_default()
                        .trim_matches('"')
                        .to_owned(),
                    last_modified: object.last_modified().map_or(0, |t| t.secs()),
                });
            }
        }
    }
    Ok(all)
}

/// Where a copy run got to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Last source key done (in listing order), if any.
    pub last_key: Option<String>,
    /// Objects copied by this invocation.
    pub copied: u64,
    /// Objects found already copied.
    pub skipped: u64,
    /// Whether the listing was exhausted.
    pub done: bool,
}

/// A copy job's fixed parts.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// Source bucket.
    pub source_bucket: &'a str,
    /// Source prefix.
    pub prefix: &'a str,
    /// `backups/{name}/{date}/`.
    pub run_key: &'a str,
    /// Storage class of the copies.
    pub storage_class: Option<&'a StorageClass>,
    /// Recorded in the copies' metadata where it is replaced.
    pub correlation_id: &'a str,
}

enum Outcome {
    Copied,
    Skipped,
    /// Not finished before the time limit; aborted, to be done next time.
    OutOfTime,
}

/// Kept after the copy time limit to abort what is in flight before the
/// deadline guard drops everything.
const ABORT_RESERVE: std::time::Duration = std::time::Duration::from_secs(3);

/// Copies what is left after `after_key`, stopping before new copies once
/// less than `stop_before` remains before the deadline guard.
pub async fn copy_prefix(
    s3: &Client,
    config: &Config,
    job: Job<'_>,
    after_key: Option<&str>,
    ctx: &TaskContext,
) -> Result<Progress, TaskError> {
    let sources = list(s3, job.source_bucket, job.prefix, after_key).await?;
    let existing: HashMap<String, Listed> = list(s3, &config.bucket, job.run_key, None)
        .await?
        .into_iter()
        .map(|o| (o.key.clone(), o))
        .collect();

    let mut progress = Progress::default();
    let mut in_flight = FuturesOrdered::new();
    let mut pending = sources.into_iter();
    let mut failure: Option<TaskError> = None;
    let mut stopped_early = false;
    // Copies only start with `stop_before` left, so each has at least half
    // of it before this limit, and half is kept to abort.
    let reserve = ABORT_RESERVE.min(config.stop_before / 2);
    let limit = ctx
        .guard_deadline()
        .checked_sub(reserve)
        .unwrap_or_else(|| ctx.guard_deadline());
    loop {
        while failure.is_none() && in_flight.len() < config.copy_concurrency {
            if ctx.remaining() < config.stop_before {
                stopped_early = true;
                break;
            }
            let Some(object) = pending.next() else { break };
            let dest = crate::data_key(job.run_key, job.prefix, &object.key);
            let already = existing.get(&dest).cloned();
            let key = object.key.clone();
            in_flight.push_back(async move {
                let result = copy_one(s3, config, job, &object, &dest, already, limit).await;
                (key, result)
            });
        }
        // Results come back in listing order, so `last_key` only moves past
        // keys that are all done.
        let Some((key, result)) = in_flight.next().await else {
            break;
        };
        match result {
            Ok(Outcome::Copied) if failure.is_none() => {
                progress.copied += 1;
                progress.last_key = Some(key);
            }
            Ok(Outcome::Skipped) if failure.is_none() => {
                progress.skipped += 1;
                progress.last_key = Some(key);
            }
            Ok(Outcome::OutOfTime) => {
                // `last_key` stays before this object; later ones that did
                // finish are skipped next time.
                stopped_early = true;
                failure.get_or_insert(TaskError::Timeout { margin_ms: 0 });
            }
            Ok(_) => {}
            Err(err) => {
                // Let the other copies in flight finish (each cleans up its
                // own multipart upload), then report the first failure.
                failure.get_or_insert(err);
            }
        }
    }
    match failure {
        // Out of time is not a failure: the run continues next invocation.
        Some(TaskError::Timeout { .. }) => {}
        Some(err) => return Err(err),
        None => {}
    }
    progress.done = !stopped_early && pending.next().is_none();
    Ok(progress)
}

async fn copy_one(
    s3: &Client,
    config: &Config,
    job: Job<'_>,
    object: &Listed,
    dest: &str,
    already: Option<Listed>,
    limit: std::time::Instant,
) -> Result<Outcome, TaskError> {
    if let Some(existing) = already
        && existing.size == object.size
    {
        // With SSE-KMS a copy's ETag is not the source's, so a copy made
        // after the source's last change also counts as done.
        if existing.etag == object.etag || existing.last_modified >= object.last_modified {
            return Ok(Outcome::Skipped);
        }
        // Multipart copies (and copies of multipart sources) get a new ETag;
        // the source's is kept in the copy's metadata.
        let head = s3
            .head_object()
            .bucket(&config.bucket)
            .key(dest)
            .send()
            .await
            .map_err(|e| TaskError::from(e).context("checking an existing copy"))?;
        if head.metadata().and_then(|m| m.get("source-etag")) == Some(&object.etag) {
            return Ok(Outcome::Skipped);
        }
    }
    let source = copy_source(job.source_bucket, &object.key);
    let copied = if object.size > config.multipart_copy_threshold {
        multipart_copy(s3, config, job, object, &source, dest, limit).await
    } else {
        tokio::time::timeout_at(
            limit.into(),
            single_copy(s3, config, job, object, &source, dest),
        )
        .await
        .unwrap_or(Ok(Outcome::OutOfTime))
    };
    match copied {
        // Deleted from the source since it was listed: nothing to back up.
        Err(TaskError::Failed(m)) if m.contains("NoSuchKey") => Ok(Outcome::Skipped),
        // Changed since it was listed (the ETag precondition failed): the
        // next invocation or retry copies the new version.
        Err(TaskError::Failed(m)) if m.contains("PreconditionFailed") => {
            Err(TaskError::retryable(m))
        }
        other => other,
    }
}

async fn single_copy(
    s3: &Client,
    config: &Config,
    job: Job<'_>,
    object: &Listed,
    source: &str,
    dest: &str,
) -> Result<Outcome, TaskError> {
    let mut copy = s3
        .copy_object()
        .bucket(&config.bucket)
        .key(dest)
        .copy_source(source)
        .copy_source_if_match(&object.etag)
        .set_storage_class(job.storage_class.cloned());
    if object.etag.contains('-') {
        // The copy's ETag will differ from a multipart source's: record the
        // source's, keeping its content type and metadata.
        let (metadata, content_type) = copy_metadata(s3, job, object).await?;
        copy = copy
            .metadata_directive(MetadataDirective::Replace)
            .set_metadata(Some(metadata))
            .set_content_type(content_type);
    }
    copy.customize()
        .config_override(long_copy())
        .send()
        .await
        .map_err(|e| TaskError::from(e).context(&format!("copying {}", object.key)))?;
    Ok(Outcome::Copied)
}

/// The source's metadata and content type, plus `source-etag` (so a rerun
/// recognises the copy whatever its own ETag) and `correlation-id`.
async fn copy_metadata(
    s3: &Client,
    job: Job<'_>,
    object: &Listed,
) -> Result<(HashMap<String, String>, Option<String>), TaskError> {
    let head = s3
        .head_object()
        .bucket(job.source_bucket)
        .key(&object.key)
        .send()
        .await
        .map_err(|e| TaskError::from(e).context(&format!("reading {}", object.key)))?;
    let mut metadata = head.metadata().cloned().unwrap_or_default();
    metadata.insert("source-etag".to_owned(), object.etag.clone());
    metadata.insert("correlation-id".to_owned(), job.correlation_id.to_owned());
    Ok((metadata, head.content_type().map(str::to_owned)))
}

async fn multipart_copy(
    s3: &Client,
    config: &Config,
    job: Job<'_>,
    object: &Listed,
    source: &str,
    dest: &str,
    limit: std::time::Instant,
) -> Result<Outcome, TaskError> {
    let (metadata, content_type) = copy_metadata(s3, job, object).await?;
    let upload = s3
        .create_multipart_upload()
        .bucket(&config.bucket)
        .key(dest)
        .set_metadata(Some(metadata))
        .set_content_type(content_type)
        .set_storage_class(job.storage_class.cloned())
        .send()
        .await
        .map_err(|e| TaskError::from(e).context(&format!("starting the copy of {}", object.key)))?;
    let upload_id = upload
        .upload_id()
        .ok_or_else(|| TaskError::retryable("S3 returned no upload id"))?
        .to_owned();
    let parts = async {
        let mut parts = Vec::new();
        let mut offset = 0u64;
        let mut number = 1i32;
        while offset < object.size {
            let end = (offset + config.copy_part_size).min(object.size) - 1;
            let part = s3
                .upload_part_copy()
                .bucket(&config.bucket)
                .key(dest)
                .upload_id(&upload_id)
                .part_number(number)
                .copy_source(source)
                .copy_source_if_match(&object.etag)
                .copy_source_range(format!("bytes={offset}-{end}"))
                .customize()
                .config_override(long_copy())
                .send()
                .await
                .map_err(|e| {
                    TaskError::from(e).context(&format!("copying part {number} of {}", object.key))
                })?;
            let etag = part
                .copy_part_result()
                .and_then(|r| r.e_tag())
                .ok_or_else(|| TaskError::retryable("S3 returned no part ETag"))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .e_tag(etag)
                    .build(),
            );
            offset = end + 1;
            number += 1;
        }
        crate::complete_upload(s3, &config.bucket, dest, &upload_id, parts).await?;
        Ok(())
    };
    // Parts stop at the time limit; the upload is then aborted, so nothing
    // is left open when the deadline guard fires.
    let result = match tokio::time::timeout_at(limit.into(), parts).await {
        Ok(Ok(())) => Ok(Outcome::Copied),
        Ok(Err(err)) => Err(err),
        Err(_) => Ok(Outcome::OutOfTime),
    };
    if !matches!(result, Ok(Outcome::Copied)) {
        crate::abort_upload(s3, &config.bucket, dest, &upload_id).await;
    }
    result
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
