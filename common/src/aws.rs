//! One shared AWS configuration per cold start, and clients built from it.
//!
//! Endpoints come from the SDK's own variables (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_SQS`, ...); the SDK's standard
//! retry mode (3 attempts, jittered backoff, throttling and 5xx) is kept.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Loads the SDK configuration from the environment, with timeouts set.
/// `attempt_timeout` bounds each request attempt: the SDK only sets a
/// connect timeout by default, so a stalled connection would otherwise wait
/// for the deadline guard instead of being retried.
pub async fn load_config(attempt_timeout: Duration) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .load()
        .await
}

/// The shared configuration, loaded by the first caller that needs it: a
/// task that never calls AWS never pays for it (reading the environment and
/// profile files, and building the HTTPS client, which loads the system's
/// root certificates: most of `common`'s cold start when it ran at init).
#[derive(Debug)]
pub(crate) struct LazyConfig {
    attempt_timeout: Duration,
    cell: tokio::sync::OnceCell<SdkConfig>,
}

impl LazyConfig {
    /// Nothing loaded yet.
    pub(crate) fn new(attempt_timeout: Duration) -> Self {
        Self {
            attempt_timeout,
            cell: tokio::sync::OnceCell::new(),
        }
    }

    /// Already loaded, from `config`.
    pub(crate) fn loaded(config: SdkConfig) -> Self {
        Self {
            attempt_timeout: Duration::ZERO,
            cell: tokio::sync::OnceCell::new_with(Some(config)),
        }
    }

    /// The configuration, loaded on the first call.
    pub(crate) async fn get(&self) -> &SdkConfig {
        self.cell
            .get_or_init(|| load_config(self.attempt_timeout))
            .await
    }
}

/// An S3 client from `config` (feature `s3`), with path-style addressing when
/// `S3_FORCE_PATH_STYLE=true` (local emulators serve buckets by path).
#[cfg(feature = "s3")]
pub fn s3_client(config: &SdkConfig, force_path_style: bool) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(force_path_style)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}
