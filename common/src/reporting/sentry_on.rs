//! Sentry, built in (feature `sentry`): on only when `SENTRY_DSN` is set,
//! sent over rustls, with a fresh scope per invocation and a bounded flush
//! that never outlives the deadline. Nothing here can change a task's
//! result: every failure is swallowed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sentry::protocol::{Event, Exception, Level, Map, Value};
use sentry::{ClientInitGuard, Hub};

use super::ScopeInfo;
use crate::error::TaskError;
use crate::settings::Settings;

/// How long a single Sentry HTTP request may take. The per-invocation flush is
/// bounded separately; this only stops one hanging request from holding the
/// transport's queue for the rest of the process's life.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The process's Sentry client, if one was started. The guard must live as
/// long as the process (it is never dropped in Lambda: the process is frozen).
pub(crate) struct Reporter(Option<ClientInitGuard>);

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Reporter").field(&self.0.is_some()).finish()
    }
}

/// Starts the Sentry client if a DSN is configured.
pub(crate) fn init(service: &str, settings: &Settings) -> Reporter {
    Reporter(start(service, settings))
}

fn start(service: &str, settings: &Settings) -> Option<ClientInitGuard> {
    let dsn = settings.sentry_dsn.as_deref()?;
    if let Err(err) = dsn.parse::<sentry::types::Dsn>() {
        tracing::warn!(error = %err, "SENTRY_DSN is not a valid DSN; Sentry is off");
        return None;
    }
    let release = settings
        .sentry_release
        .clone()
        .unwrap_or_else(|| format!("{service}@{}", env!("CARGO_PKG_VERSION")));
    let options = sentry::ClientOptions::new()
        .dsn(dsn)
        .environment(settings.sentry_environment.clone())
        .release(release)
        .transport(BoundedReqwest);
    let guard = sentry::init(options);
    guard.is_enabled().then_some(guard)
}

/// The reqwest (rustls) transport with request timeouts.
struct BoundedReqwest;

impl sentry::TransportFactory for BoundedReqwest {
    fn create_transport_with_options(
        &self,
        options: sentry::TransportOptions,
    ) -> Arc<dyn sentry::Transport> {
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default();
        Arc::new(
            sentry::transports::ReqwestHttpTransportOptions::from(options)
                .with_client(client)
                .build(),
        )
    }
}

/// A hub with a fresh scope for one invocation, so nothing from the previous
/// invocation (tags, breadcrumbs) leaks into this one; the main hub, as it
/// is, when Sentry is off.
pub(crate) fn invocation_scope(info: &ScopeInfo<'_>) -> Scope {
    Scope(invocation_hub(info))
}

/// One invocation's Sentry scope.
#[derive(Debug)]
pub(crate) struct Scope(Arc<Hub>);

impl Scope {
    /// Runs `future` with this scope's hub current.
    pub(crate) fn bind<F: std::future::Future>(
        &self,
        future: F,
    ) -> impl std::future::Future<Output = F::Output> {
        sentry::SentryFutureExt::bind_hub(future, self.0.clone())
    }

    /// See [`report`].
    pub(crate) fn report(&self, err: &TaskError, settings: &Settings) {
        report(&self.0, err, settings);
    }

    /// Whether something was captured in this scope (a panic, an error).
    pub(crate) fn captured(&self) -> bool {
        self.0.last_event_id().is_some()
    }

    /// See [`flush`].
    pub(crate) async fn flush(&self, budget: Duration) {
        flush(&self.0, budget).await;
    }
}

fn invocation_hub(info: &ScopeInfo<'_>) -> Arc<Hub> {
    // Sentry off: nothing would read the scope, so none is built.
    if Hub::main().client().is_none() {
        return Hub::main();
    }
    let hub = Arc::new(Hub::new_from_top(Hub::main()));
    hub.configure_scope(|scope| {
        scope.clear_breadcrumbs();
        scope.set_tag("task", info.service);
        scope.set_tag("correlation_id", info.correlation_id);
        scope.set_tag("execution_id", info.execution_id.unwrap_or("-"));
        scope.set_tag("state_name", info.state_name.unwrap_or("-"));
        scope.set_tag("function_request_id", info.request_id);
        scope.set_tag("retry_count", info.retry_count);
        let env = &info.lambda.env_config;
        let remaining = info.deadline.saturating_duration_since(Instant::now());
        let mut lambda = Map::new();
        lambda.insert("function_name".into(), env.function_name.clone().into());
        lambda.insert(
            "function_arn".into(),
            info.lambda.invoked_function_arn.clone().into(),
        );
        lambda.insert("function_version".into(), env.version.clone().into());
        lambda.insert("request_id".into(), info.request_id.into());
        lambda.insert(
            "remaining_time_ms".into(),
            Value::from(u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX)),
        );
        lambda.insert("log_group".into(), env.log_group.clone().into());
        lambda.insert("log_stream".into(), env.log_stream.clone().into());
        scope.set_context("lambda", sentry::protocol::Context::Other(lambda));
    });
    hub
}

/// Reports a task error, unless it is an unreported `Task.InvalidInput`. A
/// panic is reported here too, with its message and location: Sentry's own
/// panic integration would add a backtrace, which a stripped release binary
/// cannot symbolise, at the cost of linking a symboliser.
fn report(hub: &Hub, err: &TaskError, settings: &Settings) {
    let skip = match err {
        TaskError::InvalidInput(_) => !settings.sentry_report_invalid_input,
        _ => false,
    };
    if skip || hub.client().is_none() {
        return;
    }
    hub.capture_event(Event {
        level: Level::Error,
        exception: vec![Exception {
            ty: err.error_type().to_owned(),
            value: Some(err.to_string()),
            ..Default::default()
        }]
        .into(),
        ..Default::default()
    });
}

/// Waits for queued events to be sent, for at most `budget`. Runs on a
/// blocking thread: the client's flush blocks.
async fn flush(hub: &Hub, budget: Duration) {
    let Some(client) = hub.client() else { return };
    if budget.is_zero() {
        return;
    }
    let flushed = tokio::task::spawn_blocking(move || client.flush(Some(budget))).await;
    if !matches!(flushed, Ok(true)) {
        tracing::debug!(
            budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
            "Sentry flush did not finish in time; events may be dropped"
        );
    }
}
