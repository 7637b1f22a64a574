//! One shared AWS configuration per cold start, and clients built from it.
//!
//! Endpoints come from the SDK's own variables (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_SQS`, ...); the SDK's standard
//! retry mode (3 attempts, jittered backoff, throttling and 5xx) is kept.

use std::sync::Arc;
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
        .http_client(crate::tls::sdk_http_client())
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

/// An AWS client built on its first [`LazyClient::get`], from the process's
/// shared configuration: made at init with [`crate::TaskRuntime::lazy_client`],
/// it costs nothing until an invocation needs it.
///
/// Measured (BENCHMARKS.md, first call): building the configuration and the
/// HTTPS client (which parses the system's root certificates) at init moves
/// that work into init without making init plus the first invocation any
/// shorter under Lambda's CPU shares; on first use, a cold start that never
/// calls AWS does not pay it at all.
pub struct LazyClient<C> {
    aws: Arc<LazyConfig>,
    build: Box<dyn Fn(&SdkConfig) -> C + Send + Sync>,
    cell: tokio::sync::OnceCell<C>,
}

impl<C> std::fmt::Debug for LazyClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient")
            .field("built", &self.cell.initialized())
            .finish()
    }
}

impl<C> LazyClient<C> {
    pub(crate) fn new(
        aws: Arc<LazyConfig>,
        build: impl Fn(&SdkConfig) -> C + Send + Sync + 'static,
    ) -> Self {
        Self {
            aws,
            build: Box::new(build),
            cell: tokio::sync::OnceCell::new(),
        }
    }

    /// The client, built (and the configuration loaded) on the first call.
    pub async fn get(&self) -> &C {
        self.cell
            .get_or_init(|| async { (self.build)(self.aws.get().await) })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_lazy_client_is_built_on_first_use_and_only_once() {
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        let built = Arc::new(AtomicUsize::new(0));
        let counter = built.clone();
        let lazy = LazyClient::new(Arc::new(LazyConfig::loaded(config)), move |_| {
            counter.fetch_add(1, Ordering::SeqCst)
        });
        assert_eq!(built.load(Ordering::SeqCst), 0, "built before first use");
        assert_eq!(*lazy.get().await, 0);
        assert_eq!(*lazy.get().await, 0);
        assert_eq!(built.load(Ordering::SeqCst), 1);
    }
}
