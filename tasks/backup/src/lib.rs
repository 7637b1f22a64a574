//! The `backup` task: copies an S3 prefix (server-side) or streams an HTTP
//! export into `backups/{name}/{run date}/` of the backup bucket, then
//! verifies the run and writes `manifest.json` beside it.
//!
//! A run longer than one invocation returns `{"done": false, "continuation":
//! ...}` and the state machine calls the task again with the continuation
//! until `done` is true. Reruns are idempotent: the run key comes from the
//! run's name and date, and objects already copied (same ETag) are skipped.

pub mod address;
pub mod config;
pub mod http_export;
pub mod request;
pub mod s3_copy;

use std::fmt::Write as _;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use common::{TaskContext, TaskError};

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

pub use config::Config;
pub use request::{BackupRequest, Continuation, SourceInput};

/// Name of the manifest under the run key.
pub const MANIFEST: &str = "manifest.json";

/// The task's output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Output {
    /// `backups/{name}/{date}/`.
    pub run_key: String,
    /// The run's date.
    pub run_date: String,
    /// Objects in the backup (so far, while not done).
    pub object_count: u64,
    /// Bytes in the backup (when done).
    pub bytes: u64,
    /// Objects copied over the whole run.
    pub copied: u64,
    /// Objects found already copied over the whole run.
    pub skipped: u64,
    /// The manifest's key, once done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_key: Option<String>,
    /// Whether the run is complete.
    pub done: bool,
    /// Pass back as `continuation` while not done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation: Option<Continuation>,
}

/// S3's longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Where a source object goes: `{run key}data/{key without the prefix}`.
/// Data lives under `data/` so no source key can collide with the manifest.
///
/// Source keys are whatever the source bucket holds, not validated input:
/// empty, `.` and `..` segments, `%`, `\` and control characters are
/// percent-encoded, so no backup key climbs out of its run when a restore
/// tool maps keys to paths (`\` is a separator on Windows), and distinct
/// source keys stay distinct.
///
/// Escaping can make a key longer than S3 allows (a 1024-byte source key
/// already is, once under the run key): such a key keeps as much of its
/// escaped text as fits and ends in `%~` and a SHA-256 digest of the whole
/// source key. Escaping writes `%` only as `%XX`, so a shortened key never
/// equals an escaped one, and the digest keeps long keys apart; the
/// manifest records every `source_key` for the way back.
pub fn data_key(run_key: &str, prefix: &str, source_key: &str) -> String {
    let relative = source_key.strip_prefix(prefix).unwrap_or(source_key);
    // One buffer for the whole key: this runs for every listed object.
    let mut escaped = String::with_capacity(relative.len());
    for (i, segment) in relative.split('/').enumerate() {
        if i > 0 {
            escaped.push('/');
        }
        match segment {
            // `/` itself cannot be in a segment: it marks an empty one.
            "" => escaped.push_str("%2F"),
            "." => escaped.push_str("%2E"),
            ".." => escaped.push_str("%2E%2E"),
            _ => {
                for c in segment.chars() {
                    if c == '%' || c == '\\' || c.is_control() {
                        let mut utf8 = [0u8; 4];
                        for b in c.encode_utf8(&mut utf8).bytes() {
                            let _ = write!(escaped, "%{b:02X}");
                        }
                    } else {
                        escaped.push(c);
                    }
                }
            }
        }
    }
    let head = format!("{run_key}data/");
    if head.len() + escaped.len() <= MAX_KEY_BYTES {
        return format!("{head}{escaped}");
    }
    let digest = hex::encode(Sha256::digest(relative.as_bytes()));
    let tail = format!("%~{}", &digest[..32]);
    // Shorter than `escaped`: only keys that do not fit get here.
    let mut cut = MAX_KEY_BYTES.saturating_sub(head.len() + tail.len());
    while !escaped.is_char_boundary(cut) {
        cut -= 1;
    }
    // Never half an escape: every `%` in `escaped` starts a `%XX`.
    if let Some(percent) = escaped[..cut].rfind('%')
        && cut - percent < 3
    {
        cut = percent;
    }
    format!("{head}{}{tail}", &escaped[..cut])
}

/// Where an HTTP export goes: `{run key}data/{file name}`, `export` by
/// default. `file_name` is validated by [`BackupRequest::validate`] (1 to
/// 128 of `A-Z a-z 0-9 - _ .`, not starting with `.`), so it is one safe
/// segment.
pub fn export_key(run_key: &str, file_name: Option<&str>) -> String {
    format!("{run_key}data/{}", file_name.unwrap_or("export"))
}

/// Aborts a multipart upload, best effort: the bucket's lifecycle rule
/// removes what a killed process leaves behind.
pub async fn abort_upload(s3: &Client, bucket: &str, key: &str, upload_id: &str) {
    if let Err(err) = s3
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
    {
        tracing::warn!(key, error = %TaskError::from(err), "could not abort a multipart upload");
    }
}

/// Completes a multipart upload from its parts.
pub async fn complete_upload(
    s3: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: Vec<aws_sdk_s3::types::CompletedPart>,
) -> Result<
    aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput,
    TaskError,
> {
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(|e| TaskError::from(e).context(&format!("completing the upload of {key}")))
}

/// The handler.
pub async fn handle(
    s3: &Client,
    config: &Config,
    request: BackupRequest,
    ctx: TaskContext,
) -> Result<Output, TaskError> {
    let run = request.validate(config)?;
    let run_key = run.run_key();
    let run_date = run.run_date.format("%Y-%m-%d").to_string();
    let previous = run.continuation.clone();
    let started_at = previous
        .as_ref()
        .map(|c| c.started_at.clone())
        .unwrap_or_else(now);
    let invocations = previous.as_ref().map_or(0, |c| c.invocations) + 1;

    match &run.source {
        SourceInput::S3 { bucket, prefix } => {
            let job = s3_copy::Job {
                source_bucket: bucket,
                prefix,
                run_key: &run_key,
                storage_class: run.storage_class.as_ref(),
                correlation_id: ctx.correlation_id(),
            };
            let after = previous.as_ref().map(|c| c.after_key.as_str());
            let progress = s3_copy::copy_prefix(s3, config, job, after, &ctx).await?;
            let copied = previous.as_ref().map_or(0, |c| c.copied) + progress.copied;
            let skipped = previous.as_ref().map_or(0, |c| c.skipped) + progress.skipped;
            tracing::info!(
                copied = progress.copied,
                skipped = progress.skipped,
                done = progress.done,
                "copy pass finished"
            );
            if !progress.done {
                let Some(after_key) = progress.last_key.or_else(|| after.map(str::to_owned)) else {
                    return Err(TaskError::failed(
                        "no object could be copied before the deadline; raise the function timeout \
                         or lower BACKUP_STOP_BEFORE_MS",
                    ));
                };
                if progress.copied + progress.skipped == 0 {
                    // Possibly a slow moment; Retry backs off and tries again.
                    return Err(TaskError::retryable(
                        "no progress in this invocation; raise the function timeout or lower BACKUP_STOP_BEFORE_MS",
                    ));
                }
                return Ok(Output {
                    run_key,
                    run_date: run_date.clone(),
                    object_count: copied + skipped,
                    bytes: 0,
                    copied,
                    skipped,
                    manifest_key: None,
                    done: false,
                    continuation: Some(Continuation {
                        run_date,
                        after_key,
                        started_at,
                        copied,
                        skipped,
                        invocations,
                    }),
                });
            }
            let verified = verify_s3_run_since(s3, config, job, &started_at).await?;
            let manifest = json!({
                "schema_version": 1,
                "run_key": run_key,
                "run_date": run_date,
                "correlation_id": ctx.correlation_id(),
                "source": run.source,
                "started_at": started_at,
                "finished_at": now(),
                "invocations": invocations,
                "objects": verified.objects,
                "totals": {"objects": verified.count, "bytes": verified.bytes},
            });
            let manifest_key =
                write_manifest(s3, config, &run_key, &manifest, ctx.correlation_id()).await?;
            Ok(Output {
                run_key,
                run_date,
                object_count: verified.count,
                bytes: verified.bytes,
                copied,
                skipped,
                manifest_key: Some(manifest_key),
                done: true,
                continuation: None,
            })
        }
        SourceInput::Http { url, file_name } => {
            let vetted = address::vet(url, config).await?;
            let dest = export_key(&run_key, file_name.as_deref());
            let uploaded = http_export::stream_to_s3(
                s3,
                config,
                &vetted,
                &dest,
                run.storage_class.as_ref(),
                &ctx,
            )
            .await?;
            let head = s3
                .head_object()
                .bucket(&config.bucket)
                .key(&dest)
                .send()
                .await
                .map_err(|e| TaskError::from(e).context("verifying the export"))?;
            let stored = u64::try_from(head.content_length().unwrap_or(-1)).unwrap_or(u64::MAX);
            if stored != uploaded.size {
                return Err(TaskError::retryable(format!(
                    "verification failed: streamed {} bytes, stored {stored}",
                    uploaded.size
                )));
            }
            tracing::info!(
                bytes = uploaded.size,
                parts = uploaded.parts,
                "export stored"
            );
            let manifest = json!({
                "schema_version": 1,
                "run_key": run_key,
                "run_date": run_date,
                "correlation_id": ctx.correlation_id(),
                "source": {"type": "http", "host": vetted.host(), "path": vetted.url().path()},
                "started_at": started_at,
                "finished_at": now(),
                "invocations": invocations,
                "objects": [{"key": dest, "size": uploaded.size, "etag": uploaded.etag, "sha256": uploaded.sha256}],
                "totals": {"objects": 1, "bytes": uploaded.size},
            });
            let manifest_key =
                write_manifest(s3, config, &run_key, &manifest, ctx.correlation_id()).await?;
            Ok(Output {
                run_key,
                run_date,
                object_count: 1,
                bytes: uploaded.size,
                copied: 1,
                skipped: 0,
                manifest_key: Some(manifest_key),
                done: true,
                continuation: None,
            })
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

struct Verified {
    objects: Vec<serde_json::Value>,
    count: u64,
    bytes: u64,
}

/// Every source object that existed when the run started must be in the
/// backup with its size; the counts and bytes of both sides must agree.
/// Objects written to the source during the run belong to the next run.
async fn verify_s3_run_since(
    s3: &Client,
    config: &Config,
    job: s3_copy::Job<'_>,
    started_at: &str,
) -> Result<Verified, TaskError> {
    let started = chrono::DateTime::parse_from_rfc3339(started_at)
        .map(|t| t.timestamp())
        .unwrap_or(i64::MAX);
    let sources: Vec<s3_copy::Listed> = s3_copy::list(s3, job.source_bucket, job.prefix, None)
        .await?
        .into_iter()
        .filter(|o| o.last_modified <= started)
        .collect();
    let manifest_key = format!("{}{MANIFEST}", job.run_key);
    let copies: std::collections::HashMap<String, s3_copy::Listed> =
        s3_copy::list(s3, &config.bucket, job.run_key, None)
            .await?
            .into_iter()
            .filter(|o| o.key != manifest_key)
            .map(|o| (o.key.clone(), o))
            .collect();
    let mut objects = Vec::with_capacity(sources.len());
    let (mut count, mut bytes) = (0u64, 0u64);
    for source in &sources {
        let dest = data_key(job.run_key, job.prefix, &source.key);
        let copy = copies
            .get(&dest)
            .filter(|c| c.size == source.size)
            .ok_or_else(|| {
                TaskError::retryable(format!(
                    "verification failed: {dest} is missing or has the wrong size"
                ))
            })?;
        count += 1;
        bytes += copy.size;
        objects.push(
            json!({"key": dest, "source_key": source.key, "size": copy.size, "etag": copy.etag, "source_etag": source.etag}),
        );
    }
    let source_bytes: u64 = sources.iter().map(|s| s.size).sum();
    if count != sources.len() as u64 || bytes != source_bytes {
        return Err(TaskError::retryable(format!(
            "verification failed: {count} objects / {bytes} bytes copied, source has {} / {source_bytes}",
            sources.len()
        )));
    }
    Ok(Verified {
        objects,
        count,
        bytes,
    })
}

async fn write_manifest(
    s3: &Client,
    config: &Config,
    run_key: &str,
    manifest: &serde_json::Value,
    correlation_id: &str,
) -> Result<String, TaskError> {
    let key = format!("{run_key}{MANIFEST}");
    let body = serde_json::to_vec_pretty(manifest)
        .map_err(|e| TaskError::failed(format!("serialising the manifest: {e}")))?;
    s3.put_object()
        .bucket(&config.bucket)
        .key(&key)
        .content_type("application/json")
        .metadata("correlation-id", correlation_id)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| TaskError::from(e).context("writing the manifest"))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "backups/crm/2026-11-24/";

    #[test]
    fn data_keys_stay_inside_their_run() {
        for (source, expected) in [
            ("daily/a.json", "data/a.json"),
            ("daily/sub/b.json", "data/sub/b.json"),
            (
                "daily/../../manifest.json",
                "data/%2E%2E/%2E%2E/manifest.json",
            ),
            ("daily/./x", "data/%2E/x"),
            ("daily//x", "data/%2F/x"),
            ("daily/", "data/%2F"),
            ("daily/a\u{0}b\nc", "data/a%00b%0Ac"),
            ("daily/100%.csv", "data/100%25.csv"),
            ("daily/Łódź.csv", "data/Łódź.csv"),
            ("daily/..hidden", "data/..hidden"),
            ("daily/..\\..\\win.ini", "data/..%5C..%5Cwin.ini"),
        ] {
            assert_eq!(
                data_key(RUN, "daily/", source),
                format!("{RUN}{expected}"),
                "{source:?}"
            );
        }
    }

    #[test]
    fn hostile_source_keys_never_escape_or_collide() {
        let hostile = [
            "..",
            ".",
            "",
            "/",
            "//",
            "../x",
            "x/..",
            "./x",
            "a/../../b",
            "%2E%2E",
            "%00",
            "\u{0}",
            "\u{7f}",
            "a\rb",
            "/leading",
            "trailing/",
            "a//b",
            "manifest.json",
            "..\\..\\x",
            "%5C",
        ];
        let mut seen = std::collections::BTreeMap::new();
        for source in hostile {
            let key = data_key(RUN, "", source);
            assert_safe_key(&key, &format!("{RUN}data/"));
            // A trailing empty segment, which `assert_safe_key` allows.
            assert!(!key.ends_with('/'), "{source:?} → {key}");
            if let Some(other) = seen.insert(key.clone(), source) {
                panic!("{other:?} and {source:?} both map to {key}");
            }
        }
    }

    /// What every backup key must be, whatever the source key was.
    pub(crate) fn assert_safe_key(key: &str, run_key: &str) {
        assert!(
            key.len() <= MAX_KEY_BYTES,
            "{} bytes: {key:.80}…",
            key.len()
        );
        assert!(key.starts_with(run_key), "{key:.80}… is outside {run_key}");
        assert!(!key.starts_with('/'), "{key:.80}");
        assert!(!key.contains("//"), "{key:.80}");
        assert!(!key.contains('\\'), "{key:.80}");
        assert!(!key.chars().any(char::is_control), "{key:?}");
        for segment in key.split('/').skip(1) {
            assert!(
                !matches!(segment, "." | ".."),
                "{key:.80}: segment {segment:?}"
            );
        }
    }

    #[test]
    fn long_source_keys_are_shortened_distinctly() {
        let long = |c: &str, n: usize| format!("daily/{}", c.repeat(n));
        let sources = [
            long("a", 1018),                    // 1024 bytes with the prefix
            long("a", 1017) + "b",              // differs only at the end
            long("\u{1}", 1018),                // triples when escaped
            long("ä", 509),                     // two bytes a character
            long("%", 400),                     // %25 each
            long("a/", 509),                    // many segments
            long("../", 339),                   // many `..`
            long("ab", 100) + &long("😀", 200), // four-byte characters
        ];
        let mut seen = std::collections::BTreeMap::new();
        for source in &sources {
            let key = data_key(RUN, "daily/", source);
            assert_safe_key(&key, &format!("{RUN}data/"));
            assert!(key.contains("%~"), "{key:.80}");
            assert_eq!(key, data_key(RUN, "daily/", source), "deterministic");
            if let Some(other) = seen.insert(key.clone(), source) {
                panic!("{other:.40} and {source:.40} both map to {key:.80}");
            }
        }
        // A short key that spells the marker is escaped, so it cannot be
        // mistaken for (or collide with) a shortened one.
        let spelled = data_key(RUN, "", "%~0123456789abcdef0123456789abcdef");
        assert!(spelled.ends_with("data/%25~0123456789abcdef0123456789abcdef"));
        // A key that fits is left whole.
        let fits = "x".repeat(MAX_KEY_BYTES - RUN.len() - "data/".len());
        assert_eq!(data_key(RUN, "", &fits), format!("{RUN}data/{fits}"));
        let over = format!("{fits}y");
        assert!(data_key(RUN, "", &over).contains("%~"));
    }

    #[test]
    fn generated_hostile_source_keys_give_safe_keys() {
        // Every combination of up to four hostile pieces: plain tables
        // rather than a property test, so each case is reproducible as is.
        const PIECES: &[&str] = &[
            "..", ".", "/", "%", "%2e%2e", "\\", "\u{0}", "\n", "\u{7f}", "\u{85}", "ä",
            "\u{202E}", "．．", "∕", "a", "",
        ];
        let mut seen = std::collections::HashMap::new();
        let n = PIECES.len();
        for i in 0..n.pow(4) {
            let source: String = (0..4).map(|d| PIECES[(i / n.pow(d)) % n]).collect();
            let key = data_key(RUN, "", &source);
            assert_safe_key(&key, &format!("{RUN}data/"));
            if let Some(other) = seen.insert(key.clone(), source.clone()) {
                assert_eq!(other, source, "two sources map to {key}");
            }
        }
    }

    #[test]
    fn export_keys() {
        assert_eq!(export_key(RUN, None), format!("{RUN}data/export"));
        assert_eq!(
            export_key(RUN, Some("crm.ndjson")),
            format!("{RUN}data/crm.ndjson")
        );
    }
}
