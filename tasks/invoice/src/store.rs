//! Storing an invoice in S3 exactly once.
//!
//! Invoices are immutable documents: the upload is conditional
//! (`If-None-Match: *`). If the key already holds the same bytes (a retry or
//! a rerun), the task succeeds without writing; if it holds different bytes,
//! it fails with `Task.Failed` and never overwrites.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use sfn_task::TaskError;
use sha2::{Digest, Sha256};

/// The message of the conflict error, stable for alerting.
pub const CONFLICT: &str = "invoice already issued with different content";

/// Where and what was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Hex SHA-256 of the PDF.
    pub sha256: String,
    /// PDF size in bytes.
    pub size: u64,
    /// True when the same invoice was already there and nothing was written.
    pub already_existed: bool,
}

/// Identifies the upload in S3 metadata.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    /// The invocation's correlation ID.
    pub correlation_id: &'a str,
    /// The order the invoice is for.
    pub order_id: &'a str,
}

/// Uploads `pdf` to `bucket`/`key` unless an object is already there.
pub async fn put_once(
    s3: &Client,
    bucket: &str,
    key: &str,
    pdf: Vec<u8>,
    labels: Labels<'_>,
) -> Result<Stored, TaskError> {
    let digest = Sha256::digest(&pdf);
    let sha256 = hex::encode(digest);
    let size = pdf.len() as u64;
    let put = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/pdf")
        // S3 verifies the bytes it received against our own digest.
        .checksum_sha256(base64::engine::general_purpose::STANDARD.encode(digest))
        .if_none_match("*")
        .metadata("correlation-id", labels.correlation_id)
        .metadata("order-id", labels.order_id)
        .metadata("sha256", &sha256)
        .body(ByteStream::from(pdf))
        .send()
        .await;
    match put {
        Ok(_) => Ok(Stored {
            sha256,
            size,
            already_existed: false,
        }),
        Err(err) => match err.code() {
            Some("PreconditionFailed") => {
                let existing = existing_sha256(s3, bucket, key).await?;
                if existing.as_deref() == Some(sha256.as_str()) {
                    tracing::info!(key, "invoice already stored with the same content");
                    Ok(Stored {
                        sha256,
                        size,
                        already_existed: true,
                    })
                } else {
                    Err(TaskError::failed(format!(
                        "{CONFLICT}: s3://{bucket}/{key}"
                    )))
                }
            }
            // A concurrent writer of the same key: try again later.
            Some("ConditionalRequestConflict") => Err(TaskError::retryable(format!(
                "concurrent upload of s3://{bucket}/{key}"
            ))),
            _ => Err(TaskError::from(err).context("storing the invoice")),
        },
    }
}

/// The SHA-256 of what is stored, from the metadata this task writes. An
/// object without it was not written by this task and is never read (the
/// function may not decrypt the bucket's objects): it counts as different
/// content under the number.
async fn existing_sha256(
    s3: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<String>, TaskError> {
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| TaskError::from(e).context("reading the existing invoice"))?;
    Ok(head.metadata().and_then(|m| m.get("sha256")).cloned())
}
