//! Logging: the subscriber a task binary installs once at cold start
//! (here), the JSON lines layer ([`json`]), and the log schema, the
//! lifecycle lines and their fields in one place ([`lifecycle`]).

pub(crate) mod json;
pub(crate) mod lifecycle;

pub use lifecycle::{LIFECYCLE_TARGET, LOG_FIELDS};

use tracing::Level;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::settings::Settings;
use json::JsonLayer;

/// Installs the global subscriber: JSON lines on stdout when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`, readable text otherwise, filtered at
/// `AWS_LAMBDA_LOG_LEVEL`, plus Sentry breadcrumbs when Sentry is on.
/// Does nothing if a subscriber is already installed.
pub(crate) fn init(service: &str, settings: &Settings, sentry_on: bool) {
    let output = if settings.json_logs {
        JsonLayer::new(service, &settings.metrics_namespace, std::io::stdout).boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            .with_ansi(false)
            .boxed()
    };
    // The runtime reports the task's error itself, once; lines at INFO and
    // above only give that report its history, as breadcrumbs.
    #[cfg(feature = "sentry")]
    let breadcrumbs =
        sentry_on.then(|| sentry_tracing::BreadcrumbLayer::new().with_filter(filter(Level::INFO)));
    #[cfg(not(feature = "sentry"))]
    let breadcrumbs = {
        let _ = sentry_on;
        None::<tracing_subscriber::layer::Identity>
    };
    let _ = Registry::default()
        .with(output.with_filter(filter(settings.log_level)))
        .with(breadcrumbs)
        .try_init();
}

/// Our level everywhere (lifecycle lines always), except that HTTP and TLS internals stay at `WARN`
/// unless `TRACE` is asked for (their `DEBUG` output drowns a task's own).
fn filter(level: Level) -> Targets {
    let quiet = if level == Level::TRACE {
        Level::TRACE
    } else {
        Level::WARN.min(level)
    };
    Targets::new()
        .with_default(level)
        .with_target(LIFECYCLE_TARGET, Level::INFO)
        // lambda_runtime logs every handler error again, without the
        // invocation's context; the end line already says it all.
        .with_target("lambda_runtime::layers::panic", LevelFilter::OFF)
        .with_target("hyper", quiet)
        .with_target("hyper_util", quiet)
        .with_target("h2", quiet)
        .with_target("rustls", quiet)
        .with_target("aws_smithy_runtime", quiet)
        .with_target("aws_smithy_http_client", quiet)
        .with_target("aws_config", quiet)
        .with_target("reqwest", quiet)
}
