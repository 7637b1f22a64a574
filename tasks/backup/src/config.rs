//! Settings read once at cold start.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `BACKUP_BUCKET` | required | destination bucket |
//! | `BACKUP_SOURCE_BUCKETS` | empty | comma-separated buckets S3 sources may name |
//! | `BACKUP_EXPORT_HOSTS` | empty | comma-separated `host` or `host:port` HTTP sources may name (IPv6 in brackets: `[2001:db8::1]:8443`) |
//! | `BACKUP_ALLOWED_ADDRESSES` | empty | IPs an export host may resolve to although they are loopback, private or link-local (tests: `127.0.0.1`) |
//! | `BACKUP_COPY_CONCURRENCY` | `8` | objects copied at once |
//! | `BACKUP_LIST_PAGE_SIZE` | `1000` | objects listed (and held) at a time; also the entries of a manifest part |
//! | `BACKUP_MULTIPART_COPY_THRESHOLD` | `5368709120` (5 GiB) | objects larger than this (bytes) are copied with `UploadPartCopy` |
//! | `BACKUP_COPY_PART_SIZE` | `536870912` (512 MiB) | part size of a multipart copy (bytes, ≥ 5 MiB) |
//! | `BACKUP_PART_CONCURRENCY` | `8` | parts of one multipart copy copied at once |
//! | `BACKUP_UPLOAD_PART_SIZE` | `6291456` (6 MiB) | part size of an HTTP export upload (bytes, ≥ 5 MiB; raised to fit 10,000 parts when the export announces its length, else the export's limit is 10,000 of these) |
//! | `BACKUP_UPLOAD_CONCURRENCY` | `2` | export parts uploading while the next fills; peak memory is about (this + 1) × the part size, plus 16 MiB |
//! | `BACKUP_STOP_BEFORE_MS` | `20000` | stop starting new copies this long before the deadline guard |
//! | `BACKUP_EXPORT_TIMEOUT_MS` | `30000` | an export that sends nothing for this long is `Task.Retryable` |

use std::net::IpAddr;
use std::time::Duration;

use sfn_task::TaskError;

/// S3's minimum part size (except the last part).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// The backup task's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Destination bucket.
    pub bucket: String,
    /// Buckets that may be backed up.
    pub source_buckets: Vec<String>,
    /// Export hosts (`host` or `host:port`) that may be backed up.
    pub export_hosts: Vec<String>,
    /// Addresses allowed despite being loopback, private or link-local.
    pub allowed_addresses: Vec<IpAddr>,
    /// Objects copied at once.
    pub copy_concurrency: usize,
    /// Objects listed at a time.
    pub list_page_size: i32,
    /// Parts of one multipart copy copied at once.
    pub part_concurrency: usize,
    /// Export parts uploading at once.
    pub upload_concurrency: usize,
    /// Size above which a copy is multipart.
    pub multipart_copy_threshold: u64,
    /// Part size of a multipart copy.
    pub copy_part_size: u64,
    /// Part size of an export upload.
    pub upload_part_size: u64,
    /// How long before the guard no new copy starts.
    pub stop_before: Duration,
    /// Idle timeout of an export.
    pub export_timeout: Duration,
}

impl Config {
    /// Entries in one manifest part: one listing page.
    pub fn manifest_part_entries(&self) -> usize {
        usize::try_from(self.list_page_size).unwrap_or(1000)
    }

    /// Reads the environment.
    pub fn from_env() -> Result<Self, TaskError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, TaskError> {
        let list = |name: &str| -> Vec<String> {
            get(name)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_ascii_lowercase)
                .collect()
        };
        let number = |name: &'static str, default: u64| -> Result<u64, TaskError> {
            match get(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| TaskError::failed(format!("{name}: expected a whole number"))),
            }
        };
        let bucket = get("BACKUP_BUCKET")
            .filter(|b| !b.trim().is_empty())
            .ok_or_else(|| TaskError::failed("BACKUP_BUCKET is not set"))?;
        let allowed_addresses = list("BACKUP_ALLOWED_ADDRESSES")
            .iter()
            .map(|a| {
                a.parse().map_err(|_| {
                    TaskError::failed(format!("BACKUP_ALLOWED_ADDRESSES: `{a}` is not an IP"))
                })
            })
            .collect::<Result<_, _>>()?;
        let config = Self {
            bucket,
            source_buckets: list("BACKUP_SOURCE_BUCKETS"),
            export_hosts: list("BACKUP_EXPORT_HOSTS"),
            allowed_addresses,
            copy_concurrency: usize::try_from(number("BACKUP_COPY_CONCURRENCY", 8)?.clamp(1, 64))
                .unwrap_or(8),
            list_page_size: i32::try_from(number("BACKUP_LIST_PAGE_SIZE", 1000)?.clamp(1, 1000))
                .unwrap_or(1000),
            part_concurrency: usize::try_from(number("BACKUP_PART_CONCURRENCY", 8)?.clamp(1, 64))
                .unwrap_or(8),
            upload_concurrency: usize::try_from(
                number("BACKUP_UPLOAD_CONCURRENCY", 2)?.clamp(1, 16),
            )
            .unwrap_or(2),
            multipart_copy_threshold: number("BACKUP_MULTIPART_COPY_THRESHOLD", 5 << 30)?,
            copy_part_size: number("BACKUP_COPY_PART_SIZE", 512 << 20)?,
            upload_part_size: number("BACKUP_UPLOAD_PART_SIZE", 6 << 20)?,
            stop_before: Duration::from_millis(number("BACKUP_STOP_BEFORE_MS", 20_000)?),
            export_timeout: Duration::from_millis(number("BACKUP_EXPORT_TIMEOUT_MS", 30_000)?),
        };
        for (name, size) in [
            ("BACKUP_COPY_PART_SIZE", config.copy_part_size),
            ("BACKUP_UPLOAD_PART_SIZE", config.upload_part_size),
        ] {
            if size < MIN_PART_SIZE {
                return Err(TaskError::failed(format!(
                    "{name}: at least 5 MiB (S3's minimum part size)"
                )));
            }
        }
        Ok(config)
    }
}
