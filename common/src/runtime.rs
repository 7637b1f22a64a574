//! Cold-start setup and the Lambda runtime loop.

use std::future::Future;
use std::sync::Arc;

use aws_config::SdkConfig;

use crate::aws::{LazyClient, LazyConfig};
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::context::TaskContext;
use crate::error::TaskError;
use crate::invocation::{self, Shared};
use crate::settings::{Settings, SettingsError};
use crate::{logging, reporting};

/// A task process: set up once per cold start with [`TaskRuntime::init`],
/// then [`TaskRuntime::run`] serves invocations until the process is frozen
/// or stopped.
///
/// ```no_run
/// # #[derive(serde::Deserialize)] struct Order;
/// # #[derive(serde::Serialize)] struct Receipt;
/// async fn handle(order: Order, ctx: sfn_task::TaskContext) -> Result<Receipt, sfn_task::TaskError> {
///     Ok(Receipt)
/// }
///
/// // One invocation at a time on at most one vCPU: a second worker thread
/// // would only add cross-thread wake-ups to each invocation.
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> Result<(), lambda_runtime::Error> {
///     sfn_task::TaskRuntime::init("invoice").await?.run(handle).await
/// }
/// ```
pub struct TaskRuntime {
    shared: Shared,
    // Dropping it would close Sentry; it lives as long as the process.
    reporter: reporting::Reporter,
}

impl std::fmt::Debug for TaskRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRuntime")
            .field("shared", &self.shared)
            .field("reporter", &self.reporter)
            .finish()
    }
}

impl TaskRuntime {
    /// Reads the settings, installs the log subscriber, the panic hook and
    /// the Sentry client. The shared AWS configuration is loaded by the
    /// first [`TaskRuntime::aws`] or [`TaskRuntime::s3_client`] call, so a
    /// task without AWS calls starts as fast as a bare `lambda_runtime` one.
    /// `service` names the task in every log line, metric and Sentry event.
    pub async fn init(service: &'static str) -> Result<Self, SettingsError> {
        let settings = Settings::from_env()?;
        logging::init(service, &settings, settings.sentry_dsn.is_some());
        install_panic_hook();
        // After the panic hook: Sentry's hook reports, then calls ours.
        let sentry = reporting::init(service, &settings);
        let aws = Arc::new(LazyConfig::new(settings.aws_attempt_timeout));
        Ok(Self {
            shared: Shared {
                service,
                settings,
                aws,
            },
            reporter: sentry,
        })
    }

    /// The AWS configuration shared by every client of the process, loaded
    /// on the first call. Build clients with it before [`TaskRuntime::run`].
    pub async fn aws(&self) -> &SdkConfig {
        self.shared.aws.get().await
    }

    /// A client `build` makes from the shared configuration on its first
    /// use, not now: init stays as small as a bare function's
    /// (`runtime.lazy_client(aws_sdk_sqs::Client::new)`).
    pub fn lazy_client<C>(
        &self,
        build: impl Fn(&SdkConfig) -> C + Send + Sync + 'static,
    ) -> LazyClient<C> {
        LazyClient::new(self.shared.aws.clone(), build)
    }

    /// [`TaskRuntime::s3_client`], built on first use (see
    /// [`TaskRuntime::lazy_client`]).
    #[cfg(feature = "s3")]
    pub fn lazy_s3_client(&self) -> LazyClient<aws_sdk_s3::Client> {
        let force_path_style = self.shared.settings.s3_force_path_style;
        self.lazy_client(move |config| crate::aws::s3_client(config, force_path_style))
    }

    /// The settings read at cold start.
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// An S3 client, path-style when `S3_FORCE_PATH_STYLE=true`. Build it
    /// once, before [`TaskRuntime::run`].
    #[cfg(feature = "s3")]
    pub async fn s3_client(&self) -> aws_sdk_s3::Client {
        crate::aws::s3_client(
            self.shared.aws.get().await,
            self.shared.settings.s3_force_path_style,
        )
    }

    /// Runs one invocation through the whole pipeline in-process, without a
    /// Runtime API: envelope, correlation, start and end lines, the guards,
    /// the Sentry scope. For testing a handler with the real pipeline around
    /// it, and for measuring what the pipeline itself costs.
    pub async fn invoke_once<I, O, F, Fut>(
        &self,
        handler: &F,
        payload: Value,
        context: lambda_runtime::Context,
    ) -> Result<Box<serde_json::value::RawValue>, lambda_runtime::Diagnostic>
    where
        I: DeserializeOwned,
        O: Serialize,
        F: Fn(I, TaskContext) -> Fut,
        Fut: Future<Output = Result<O, TaskError>>,
    {
        invocation::invoke(
            &self.shared,
            handler,
            invocation::Payload::Parsed(payload),
            context,
        )
        .await
    }

    /// Serves invocations with `handler` until the runtime stops.
    pub async fn run<I, O, F, Fut>(self, handler: F) -> Result<(), lambda_runtime::Error>
    where
        I: DeserializeOwned,
        O: Serialize,
        F: Fn(I, TaskContext) -> Fut,
        Fut: Future<Output = Result<O, TaskError>>,
    {
        let shared = &self.shared;
        let handler = &handler;
        // Raw JSON text: lambda_runtime only checks that it is JSON, and
        // `common` parses it under its own limits (see `payload`), so every
        // payload Lambda delivers gets start and end lines and a stable error.
        lambda_runtime::run(service_fn(
            move |event: LambdaEvent<Box<serde_json::value::RawValue>>| {
                invocation::invoke(
                    shared,
                    handler,
                    invocation::Payload::Raw(event.payload),
                    event.context,
                )
            },
        ))
        .await
    }
}

/// [`TaskRuntime::init`] then [`TaskRuntime::run`], for tasks that need
/// nothing built at cold start beyond what [`TaskContext`] gives.
pub async fn run<I, O, F, Fut>(
    service: &'static str,
    handler: F,
) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned,
    O: Serialize,
    F: Fn(I, TaskContext) -> Fut,
    Fut: Future<Output = Result<O, TaskError>>,
{
    TaskRuntime::init(service).await?.run(handler).await
}

/// Where the last panic happened (`file:line`), for the `Task.Panic` error
/// the invocation answers with: the panic's payload carries only its message.
/// One invocation runs at a time, so the last panic is this invocation's.
static LAST_PANIC_LOCATION: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// The location of the panic since the last call, if any.
pub(crate) fn take_panic_location() -> Option<String> {
    LAST_PANIC_LOCATION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// Replaces the default hook (plain text on stderr) with a structured ERROR
/// line that carries the invocation's context fields.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("non-string panic payload");
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(
            panic_message = message,
            panic_location = location,
            "task panicked"
        );
        *LAST_PANIC_LOCATION
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(location);
    }));
}
