//! HTTP export → backup bucket, streamed into a multipart upload with a few
//! parts uploading while the next fills: memory stays near
//! `(BACKUP_UPLOAD_CONCURRENCY + 1) × part size` whatever the export's size.
//!
//! An export longer than one invocation continues in the next with a
//! `Range` request from the first byte not yet uploaded, validated with
//! `If-Range` (the export's strong `ETag` or its `Last-Modified`): an export
//! that changed in between is sent whole again and starts over, never
//! spliced. A server without ranges cannot continue, and says so once.

use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT_RANGES, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use sfn_task::{TaskContext, TaskError};

use crate::address::Vetted;
use crate::config::Config;
use crate::continuation::HttpPosition;
use crate::manifest::{Entry, Outcome};
use crate::part_buffers::PartBuffers;
use crate::sha256::Resumable;
use crate::uploads;

/// Where the export goes and what it is.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// The S3 client.
    pub s3: &'a Client,
    /// Settings.
    pub config: &'a Config,
    /// The vetted export URL.
    pub source: &'a Vetted,
    /// Its key in the backup bucket.
    pub dest: &'a str,
    /// Storage class.
    pub storage_class: Option<&'a StorageClass>,
    /// Recorded in the object's metadata.
    pub correlation_id: &'a str,
}

/// How an invocation's share of an export ended.
#[derive(Debug)]
pub enum Step {
    /// The export is stored; its manifest entry.
    Done(Entry),
    /// It continues next invocation from here.
    Paused(HttpPosition),
}

/// Time kept after the last upload to abort before the deadline guard.
const ABORT_RESERVE: Duration = Duration::from_millis(700);

/// Streams the export (the rest of it, with `position`) into the upload.
pub async fn run(
    job: Job<'_>,
    ctx: &TaskContext,
    position: Option<HttpPosition>,
) -> Result<Step, TaskError> {
    let client = client(job)?;
    let stop_starting = ctx
        .guard_deadline()
        .checked_sub(job.config.stop_before)
        .unwrap_or_else(Instant::now);
    let hard = ctx
        .guard_deadline()
        .checked_sub(ABORT_RESERVE)
        .unwrap_or_else(|| ctx.guard_deadline());
    let (response, stream) = open(job, &client, position).await?;
    let upload_id = stream.upload_id.clone();
    let handed_on = stream.handed_on;
    let result = tokio::time::timeout_at(hard.into(), pump(job, response, stream, stop_starting))
        .await
        .unwrap_or_else(|_| {
            Err(TaskError::retryable(
                "the export's uploads did not finish before the deadline; raise the function timeout",
            ))
        });
    if let Err(err) = &result {
        // An upload handed on by an earlier invocation is resumed by the
        // retry; one started here, or any after a permanent error, goes.
        if !handed_on || !matches!(err, TaskError::Retryable(_)) {
            uploads::abort(job.s3, &job.config.bucket, job.dest, &upload_id).await;
        }
    }
    result
}

fn client(job: Job<'_>) -> Result<reqwest::Client, TaskError> {
    sfn_task::tls::install_crypto_provider();
    reqwest::Client::builder()
        // Redirects could lead anywhere, 169.254.169.254 included.
        .redirect(reqwest::redirect::Policy::none())
        .resolve(job.source.host(), job.source.addr())
        // A proxy would do its own name resolution, past the address check.
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(job.config.export_timeout)
        .build()
        .map_err(|e| TaskError::failed(format!("building the HTTP client: {e}")))
}

/// The upload being filled and how far it is.
struct Stream {
    upload_id: String,
    /// The upload came from the continuation.
    handed_on: bool,
    part_size: u64,
    parts: u32,
    bytes: u64,
    hash: Resumable,
    /// `If-Range` for the next invocation; `None` if it cannot resume.
    validator: Option<String>,
}

async fn get(
    client: &reqwest::Client,
    job: Job<'_>,
    from: Option<(u64, &str)>,
) -> Result<reqwest::Response, TaskError> {
    let mut request = client.get(job.source.url().clone());
    if let Some((offset, validator)) = from {
        request = request
            .header(RANGE, format!("bytes={offset}-"))
            .header(IF_RANGE, validator);
    }
    let response = request
        .send()
        .await
        .map_err(|e| TaskError::retryable(format!("export request failed: {}", plain(&e))))?;
    let status = response.status();
    if status.is_redirection() {
        return Err(TaskError::failed(format!(
            "export answered HTTP {status} (a redirect); redirects are not followed"
        )));
    }
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(TaskError::retryable(format!(
            "export answered HTTP {status}"
        )));
    }
    if !status.is_success() && status != StatusCode::RANGE_NOT_SATISFIABLE {
        return Err(TaskError::failed(format!("export answered HTTP {status}")));
    }
    Ok(response)
}

/// The first byte a `206` answer carries (`Content-Range: bytes 10-99/100`).
fn range_start(response: &reqwest::Response) -> Option<u64> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

/// What `If-Range` can use: a strong `ETag`, else `Last-Modified`.
fn validator(response: &reqwest::Response) -> Option<String> {
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    header(ETAG)
        .filter(|etag| !etag.starts_with("W/"))
        .or_else(|| header(LAST_MODIFIED))
}

/// Opens the export where the run stands: the rest of it if the upload
/// and the export are both as they were, else all of it in a new upload.
async fn open(
    job: Job<'_>,
    client: &reqwest::Client,
    position: Option<HttpPosition>,
) -> Result<(reqwest::Response, Stream), TaskError> {
    let bucket = job.config.bucket.as_str();
    if let Some(position) = position {
        let uploaded = uploads::finished_parts(job.s3, bucket, job.dest, &position.upload_id)
            .await?
            .is_some_and(|parts| parts.len() as u64 >= u64::from(position.parts));
        let hash = Resumable::from_state(&position.sha256_state, position.bytes);
        if let (true, Some(hash)) = (uploaded, hash) {
            let response = get(client, job, Some((position.bytes, &position.validator))).await?;
            if response.status() == StatusCode::PARTIAL_CONTENT
                && range_start(&response) == Some(position.bytes)
            {
                let stream = Stream {
                    upload_id: position.upload_id,
                    handed_on: true,
                    part_size: position.part_size,
                    parts: position.parts,
                    bytes: position.bytes,
                    hash,
                    validator: Some(position.validator),
                };
                return Ok((response, stream));
            }
            tracing::warn!(
                status = response.status().as_u16(),
                "the export changed since the last invocation; starting it over"
            );
        }
        uploads::abort(job.s3, bucket, job.dest, &position.upload_id).await;
    }
    let response = get(client, job, None).await?;
    if response.status() != StatusCode::OK {
        return Err(TaskError::failed(format!(
            "export answered HTTP {} to a plain GET",
            response.status()
        )));
    }
    let ranges = response
        .headers()
        .get(ACCEPT_RANGES)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|unit| unit.trim() == "bytes"));
    let validator = validator(&response).filter(|_| ranges);
    let announced = response.content_length().unwrap_or(0);
    let upload = job
        .s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(job.dest)
        .content_type("application/octet-stream")
        .metadata("correlation-id", job.correlation_id)
        .set_storage_class(job.storage_class.cloned())
        // The SDK sends each part's CRC32 anyway; declared here, S3 keeps a
        // checksum of the object that GetObject can verify (`aws s3 cp`
        // declares it too).
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
        .send()
        .await
        .map_err(|e| TaskError::from(e).context("starting the export upload"))?;
    let upload_id = uploads::upload_id(&upload)?;
    let stream = Stream {
        upload_id,
        handed_on: false,
        part_size: uploads::part_size(job.config.upload_part_size, announced),
        parts: 0,
        bytes: 0,
        hash: Resumable::default(),
        validator,
    };
    Ok((response, stream))
}

async fn pump(
    job: Job<'_>,
    mut response: reqwest::Response,
    mut stream: Stream,
    stop_starting: Instant,
) -> Result<Step, TaskError> {
    let part_size = usize::try_from(stream.part_size).unwrap_or(8 << 20);
    let mut buffers = PartBuffers::new(part_size);
    let mut buffer = buffers.take();
    let mut uploading = FuturesOrdered::new();
    let mut ended = false;
    while !ended {
        let chunk = match tokio::time::timeout_at(stop_starting.into(), response.chunk()).await {
            Err(_out_of_time) => break,
            Ok(chunk) => chunk
                .map_err(|e| TaskError::retryable(format!("export stream broke: {}", plain(&e))))?,
        };
        let mut rest: &[u8] = match &chunk {
            Some(bytes) => bytes,
            None => {
                ended = true;
                &[]
            }
        };
        // Fill the part exactly, so the buffer never grows beyond it.
        while !rest.is_empty() {
            let take = (part_size - buffer.len()).min(rest.len());
            buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if buffer.len() == part_size {
                while uploading.len() >= job.config.upload_concurrency {
                    finish_one(&mut uploading).await?;
                }
                // A part done gave its buffer back: the next part fills it.
                let full = std::mem::replace(&mut buffer, buffers.take());
                uploading.push_back(seal(job, &mut stream, buffers.lend(full))?);
            }
        }
    }
    if !ended {
        // Out of time: the unsealed tail is read again next time.
        drop(buffer);
        while !uploading.is_empty() {
            finish_one(&mut uploading).await?;
        }
        let Some(validator) = stream.validator.clone() else {
            return Err(TaskError::failed(format!(
                "the export did not finish within one invocation ({} MiB streamed) and its server \
                 does not support Range requests with a strong ETag or Last-Modified, so it cannot \
                 continue in the next; raise the function timeout (at most 900 s) or make the \
                 export smaller",
                stream.bytes >> 20
            )));
        };
        let sha256_state = stream
            .hash
            .state()
            .ok_or_else(|| TaskError::failed("the export's hash stopped between blocks"))?;
        return Ok(Step::Paused(HttpPosition {
            upload_id: stream.upload_id,
            part_size: stream.part_size,
            parts: stream.parts,
            bytes: stream.bytes,
            sha256_state,
            validator,
        }));
    }
    // The last part may be small; an empty export is one empty part.
    if !buffer.is_empty() || stream.parts == 0 {
        uploading.push_back(seal(job, &mut stream, buffers.lend(buffer))?);
    }
    while !uploading.is_empty() {
        finish_one(&mut uploading).await?;
    }
    tracing::debug!(buffers = buffers.made(), "part buffers used");
    let bucket = job.config.bucket.as_str();
    let parts = uploads::finished_parts(job.s3, bucket, job.dest, &stream.upload_id)
        .await?
        .ok_or_else(|| TaskError::retryable("the export's upload disappeared"))?;
    if parts.len() as u64 != u64::from(stream.parts) {
        return Err(TaskError::retryable(format!(
            "the export's upload has {} parts, {} were uploaded",
            parts.len(),
            stream.parts
        )));
    }
    let etag = uploads::complete(job.s3, bucket, job.dest, &stream.upload_id, parts).await?;
    let stored = job
        .s3
        .head_object()
        .bucket(bucket)
        .key(job.dest)
        .send()
        .await
        .map_err(|e| TaskError::from(e).context("verifying the export"))?;
    let stored = u64::try_from(stored.content_length().unwrap_or(-1)).unwrap_or(u64::MAX);
    if stored != stream.bytes {
        return Err(TaskError::retryable(format!(
            "verification failed: streamed {} bytes, stored {stored}",
            stream.bytes
        )));
    }
    Ok(Step::Done(Entry {
        outcome: Outcome::Copied,
        source_key: job.source.url().path().to_owned(),
        key: Some(job.dest.to_owned()),
        size: Some(stream.bytes),
        source_etag: None,
        etag: Some(etag),
        last_modified: None,
        changed_during_run: false,
        sha256: Some(stream.hash.finish()),
    }))
}

type Upload = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), TaskError>> + Send>>;

/// Hashes a part, counts it, and starts its upload.
fn seal(job: Job<'_>, stream: &mut Stream, bytes: bytes::Bytes) -> Result<Upload, TaskError> {
    let number = uploads::next_part_number(stream.parts, stream.part_size)?;
    stream.hash.update(&bytes);
    stream.bytes += bytes.len() as u64;
    stream.parts += 1;
    let request = job
        .s3
        .upload_part()
        .bucket(&job.config.bucket)
        .key(job.dest)
        .upload_id(&stream.upload_id)
        .part_number(number)
        .body(ByteStream::from(bytes));
    Ok(Box::pin(async move {
        request
            .send()
            .await
            .map_err(|e| TaskError::from(e).context("uploading a part"))?;
        Ok(())
    }))
}

async fn finish_one(uploading: &mut FuturesOrdered<Upload>) -> Result<(), TaskError> {
    match uploading.next().await {
        Some(result) => result,
        None => Ok(()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An HTTP server on 127.0.0.1 that answers every request with `ok`.
    async fn local_server() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 1024];
                let _ = socket.read(&mut request).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn the_connection_goes_to_the_vetted_address() {
        // `.invalid` never resolves (RFC 6761): only the address the checks
        // cleared, pinned into the client, can reach the server.
        let addr = local_server().await;
        let host = format!("export.invalid:{}", addr.port());
        let config = Config::from_lookup(|k| match k {
            "BACKUP_BUCKET" => Some("backups".into()),
            "BACKUP_EXPORT_HOSTS" => Some(host.clone()),
            "BACKUP_ALLOWED_ADDRESSES" => Some("127.0.0.1".into()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let url = format!("http://{host}/export");
        let vetted = crate::address::vet_with(&url, &config, |_, port| async move {
            Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))])
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let s3 = Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version_latest()
                .region(aws_sdk_s3::config::Region::new("eu-west-1"))
                .build(),
        );
        let job = Job {
            s3: &s3,
            config: &config,
            source: &vetted,
            dest: "backups/x/y/data/export",
            storage_class: None,
            correlation_id: "c",
        };
        let http = client(job).unwrap_or_else(|e| panic!("{e}"));
        let response = get(&http, job, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text().await.unwrap_or_default(), "ok");
    }
}
