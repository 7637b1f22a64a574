//! HTTP export → backup bucket, streamed into a multipart upload: one part
//! is buffered at a time, so memory stays near twice the part size whatever
//! the export's size. A SHA-256 over the whole stream goes into the manifest.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedPart, StorageClass};
use common::{TaskContext, TaskError};
use sha2::{Digest, Sha256};

use crate::address::Vetted;
use crate::config::Config;

/// What was uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// Bytes streamed.
    pub size: u64,
    /// Hex SHA-256 of the stream.
    pub sha256: String,
    /// The object's ETag.
    pub etag: String,
    /// Parts uploaded.
    pub parts: usize,
}

/// Time kept after giving up on an export to abort its upload before the
/// deadline guard drops everything.
const ABORT_RESERVE: Duration = Duration::from_millis(700);

/// Streams the export at `source` into `dest`.
pub async fn stream_to_s3(
    s3: &Client,
    config: &Config,
    source: &Vetted,
    dest: &str,
    storage_class: Option<&StorageClass>,
    ctx: &TaskContext,
) -> Result<Uploaded, TaskError> {
    let client = reqwest::Client::builder()
        // Redirects could lead anywhere, 169.254.169.254 included.
        .redirect(reqwest::redirect::Policy::none())
        .resolve(source.host(), source.addr())
        // A proxy would do its own name resolution, past the address check.
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(config.export_timeout)
        .build()
        .map_err(|e| TaskError::failed(format!("building the HTTP client: {e}")))?;
    let mut response = client
        .get(source.url().clone())
        .send()
        .await
        .map_err(|e| TaskError::retryable(format!("export request failed: {}", plain(&e))))?;
    let status = response.status();
    if status.is_redirection() {
        return Err(TaskError::failed(format!(
            "export answered HTTP {status} (a redirect); redirects are not followed"
        )));
    }
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(TaskError::retryable(format!(
            "export answered HTTP {status}"
        )));
    }
    if !status.is_success() {
        return Err(TaskError::failed(format!("export answered HTTP {status}")));
    }

    let upload = s3
        .create_multipart_upload()
        .bucket(&config.bucket)
        .key(dest)
        .content_type("application/octet-stream")
        .metadata("correlation-id", ctx.correlation_id())
        .set_storage_class(storage_class.cloned())
        .send()
        .await
        .map_err(|e| TaskError::from(e).context("starting the export upload"))?;
    let upload_id = upload
        .upload_id()
        .ok_or_else(|| TaskError::retryable("S3 returned no upload id"))?
        .to_owned();

    let limit = ctx
        .guard_deadline()
        .checked_sub(ABORT_RESERVE)
        .unwrap_or_else(|| ctx.guard_deadline());
    let streamed = tokio::time::timeout_at(
        limit.into(),
        pump(s3, config, &mut response, dest, &upload_id),
    )
    .await
    .unwrap_or_else(|_| {
        Err(TaskError::retryable(
            "the export did not finish before the deadline; raise the function timeout",
        ))
    });
    match streamed {
        Ok(uploaded) => Ok(uploaded),
        Err(err) => {
            crate::abort_upload(s3, &config.bucket, dest, &upload_id).await;
            Err(err)
        }
    }
}

async fn pump(
    s3: &Client,
    config: &Config,
    response: &mut reqwest::Response,
    dest: &str,
    upload_id: &str,
) -> Result<Uploaded, TaskError> {
    // S3 allows 10,000 parts: a large announced size raises the part size.
    let announced = response.content_length().unwrap_or(0);
    let part_size =
        usize::try_from(config.upload_part_size.max(announced.div_ceil(9_999))).unwrap_or(8 << 20);
    let mut hasher = Sha256::new();
    let mut buffer: Vec<u8> = Vec::with_capacity(part_size);
    let mut parts = Vec::new();
    let mut size = 0u64;
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| TaskError::retryable(format!("export stream broke: {}", plain(&e))))?;
        let Some(chunk) = chunk else { break };
        hasher.update(&chunk);
        size += chunk.len() as u64;
        // Fill the part exactly, so the buffer never reallocates beyond it.
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            let take = (part_size - buffer.len()).min(rest.len());
            buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if buffer.len() == part_size {
                let full = std::mem::replace(&mut buffer, Vec::with_capacity(part_size));
                parts.push(upload_part(s3, config, dest, upload_id, parts.len() + 1, full).await?);
            }
        }
    }
    // The last part may be small; an empty export is one empty part.
    if !buffer.is_empty() || parts.is_empty() {
        parts.push(upload_part(s3, config, dest, upload_id, parts.len() + 1, buffer).await?);
    }
    let count = parts.len();
    let done = crate::complete_upload(s3, &config.bucket, dest, upload_id, parts).await?;
    Ok(Uploaded {
        size,
        sha256: hex::encode(hasher.finalize()),
        etag: done
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned(),
        parts: count,
    })
}

async fn upload_part(
    s3: &Client,
    config: &Config,
    dest: &str,
    upload_id: &str,
    number: usize,
    bytes: Vec<u8>,
) -> Result<CompletedPart, TaskError> {
    let number = i32::try_from(number).map_err(|_| TaskError::failed("too many parts"))?;
    let part = s3
        .upload_part()
        .bucket(&config.bucket)
        .key(dest)
        .upload_id(upload_id)
        .part_number(number)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .map_err(|e| TaskError::from(e).context(&format!("uploading part {number}")))?;
    Ok(CompletedPart::builder()
        .part_number(number)
        .set_e_tag(part.e_tag().map(str::to_owned))
        .build())
}

/// A reqwest error without the URL (it may carry tokens in its query).
fn plain(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "body interrupted"
    } else {
        "request error"
    };
    kind.to_owned()
}
