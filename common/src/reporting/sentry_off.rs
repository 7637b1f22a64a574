//! Built without the `sentry` feature: nothing is reported, and a
//! `SENTRY_DSN` gets one warning at cold start instead of silence.

use std::future::Future;
use std::time::Duration;

use super::ScopeInfo;
use crate::error::TaskError;
use crate::settings::Settings;

/// No client.
#[derive(Debug)]
pub(crate) struct Reporter;

/// Says, once, that a configured DSN is ignored.
pub(crate) fn init(_service: &str, settings: &Settings) -> Reporter {
    if settings.sentry_dsn.is_some() {
        tracing::warn!(
            "SENTRY_DSN is set but this binary was built without the `sentry` feature of sfn-task; nothing is reported"
        );
    }
    Reporter
}

/// An invocation's scope: nothing to keep.
pub(crate) fn invocation_scope(_info: &ScopeInfo<'_>) -> Scope {
    Scope
}

/// Nothing is captured, so there is never anything to flush.
#[derive(Debug)]
pub(crate) struct Scope;

impl Scope {
    pub(crate) fn bind<F: Future>(&self, future: F) -> F {
        future
    }

    pub(crate) fn report(&self, _err: &TaskError, _settings: &Settings) {}

    pub(crate) fn captured(&self) -> bool {
        false
    }

    pub(crate) async fn flush(&self, _budget: Duration) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::json::tests::capture;

    #[test]
    fn a_configured_dsn_is_named_as_ignored_once_and_no_dsn_is_silent() {
        let settings = Settings::from_lookup(|k| {
            (k == "SENTRY_DSN").then(|| "https://key@sentry.example/1".to_owned())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let lines = capture(|| {
            init("demo", &settings);
        });
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["level"], "WARN");
        let message = lines[0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("without the `sentry` feature"),
            "{message}"
        );
        let quiet = capture(|| {
            init(
                "demo",
                &Settings::from_lookup(|_| None).unwrap_or_else(|e| panic!("{e}")),
            );
        });
        assert!(quiet.is_empty());
    }
}
