//! The one error type every task returns, and the stable `errorType` names
//! Step Functions `Retry` and `Catch` rules match on.
//!
//! | `errorType`          | variant                   | meaning                                            | retry? |
//! |----------------------|---------------------------|----------------------------------------------------|--------|
//! | `Task.InvalidInput`  | [`TaskError::InvalidInput`] | the input is wrong; a rerun fails the same way   | never  |
//! | `Task.Retryable`     | [`TaskError::Retryable`]  | throttling, 5xx, connection or dependency timeouts | yes    |
//! | `Task.Failed`        | [`TaskError::Failed`]     | permanent failure (access denied, missing bucket)  | no     |
//! | `Task.Timeout`       | [`TaskError::Timeout`]    | the deadline guard stopped the task                | maybe  |
//! | `Task.Panic`         | [`TaskError::Panic`]      | the task code panicked (a bug)                     | no     |

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lambda_runtime::Diagnostic;

/// The `errorType` of [`TaskError::InvalidInput`].
pub const INVALID_INPUT: &str = "Task.InvalidInput";
/// The `errorType` of [`TaskError::Retryable`].
pub const RETRYABLE: &str = "Task.Retryable";
/// The `errorType` of [`TaskError::Failed`].
pub const FAILED: &str = "Task.Failed";
/// The `errorType` of [`TaskError::Timeout`].
pub const TIMEOUT: &str = "Task.Timeout";
/// The `errorType` of [`TaskError::Panic`].
pub const PANIC: &str = "Task.Panic";

/// Why a task invocation failed. Each variant has one stable `errorType`
/// (see [`TaskError::error_type`]); the message becomes `errorMessage`, which
/// Step Functions shows as the `Cause`. Messages must not contain personal data.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TaskError {
    /// The input is invalid; retrying cannot help. `Task.InvalidInput`.
    #[error("{0}")]
    InvalidInput(String),
    /// A transient failure (throttling, 5xx, connection or timeout). `Task.Retryable`.
    #[error("{0}")]
    Retryable(String),
    /// A permanent failure that is not the input's fault. `Task.Failed`.
    #[error("{0}")]
    Failed(String),
    /// The deadline guard fired before the task finished. `Task.Timeout`.
    #[error("task stopped by the deadline guard {margin_ms} ms before the Lambda deadline")]
    Timeout {
        /// How long before the Lambda deadline the guard fired.
        margin_ms: u64,
    },
    /// The task code panicked; the message is the panic's. `Task.Panic`.
    #[error("task panicked: {0}")]
    Panic(String),
}

impl TaskError {
    /// Shorthand for [`TaskError::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// Shorthand for [`TaskError::Retryable`].
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable(message.into())
    }

    /// Shorthand for [`TaskError::Failed`].
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// The stable `errorType` name Step Functions sees.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => INVALID_INPUT,
            Self::Retryable(_) => RETRYABLE,
            Self::Failed(_) => FAILED,
            Self::Timeout { .. } => TIMEOUT,
            Self::Panic(_) => PANIC,
        }
    }

    /// Prefixes the message with what was being done, keeping the variant:
    /// `err.context("uploading the invoice")`.
    #[must_use]
    pub fn context(self, what: &str) -> Self {
        match self {
            Self::InvalidInput(m) => Self::InvalidInput(format!("{what}: {m}")),
            Self::Retryable(m) => Self::Retryable(format!("{what}: {m}")),
            Self::Failed(m) => Self::Failed(format!("{what}: {m}")),
            other => other,
        }
    }
}

impl From<TaskError> for Diagnostic {
    fn from(err: TaskError) -> Self {
        Diagnostic {
            error_type: err.error_type().to_owned(),
            error_message: err.to_string(),
        }
    }
}

/// Error codes AWS services use for throttling or transient server trouble.
/// The SDK retries these itself first; reaching a task means retries ran out.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "PriorRequestNotComplete",
    "KMS.ThrottlingException",
    "KmsThrottled",
    "OperationAborted",
    "ConditionalRequestConflict",
];

/// Classifies an AWS SDK error once, for every service: throttling, 5xx,
/// timeouts and connection failures become [`TaskError::Retryable`]; everything
/// else (access denied, missing bucket or queue, other 4xx, a request the SDK
/// could not build) becomes [`TaskError::Failed`]. Tasks that know a specific
/// code means bad input map it themselves before using `?`.
impl<E> From<SdkError<E, HttpResponse>> for TaskError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        match &err {
            SdkError::TimeoutError(_) => Self::Retryable("AWS request timed out".to_owned()),
            SdkError::DispatchFailure(failure) => {
                if failure.is_user() {
                    Self::Failed(format!("AWS request could not be sent: {}", chain(&err)))
                } else {
                    Self::Retryable(format!("AWS connection failed: {}", chain(&err)))
                }
            }
            SdkError::ResponseError(_) => {
                Self::Retryable(format!("AWS response unreadable: {}", chain(&err)))
            }
            SdkError::ConstructionFailure(_) => {
                Self::Failed(format!("AWS request invalid: {}", chain(&err)))
            }
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let code = service.err().code().unwrap_or("Unknown");
                let text = service.err().message().unwrap_or("");
                let message = if text.is_empty() {
                    format!("AWS error {code} (HTTP {status})")
                } else {
                    format!("AWS error {code} (HTTP {status}): {text}")
                };
                if status >= 500 || status == 429 || RETRYABLE_CODES.contains(&code) {
                    Self::Retryable(message)
                } else {
                    Self::Failed(message)
                }
            }
            _ => Self::Failed(format!("AWS error: {}", chain(&err))),
        }
    }
}

/// What an AWS service answered: its error code and HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceAnswer<'a> {
    /// The error code (`NoSuchKey`, `PreconditionFailed`, ...), when the
    /// service sent one (a `HEAD` answers with the status alone).
    pub code: Option<&'a str>,
    /// The HTTP status.
    pub status: u16,
}

impl ServiceAnswer<'_> {
    /// Whether the service answered with one of `codes`, or with `status`.
    pub fn is(&self, codes: &[&str], status: u16) -> bool {
        self.status == status || self.code.is_some_and(|c| codes.contains(&c))
    }
}

/// The code and status of an error the service itself answered with (not a
/// timeout or a connection failure), for a task that must tell one such
/// answer from another before classifying the rest with `?`: by code and
/// status, never by message text.
pub fn service_answer<E>(err: &SdkError<E, HttpResponse>) -> Option<ServiceAnswer<'_>>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) => Some(ServiceAnswer {
            code: service.err().code(),
            status: service.raw().status().as_u16(),
        }),
        _ => None,
    }
}

fn chain(err: &dyn std::error::Error) -> String {
    aws_smithy_types::error::display::DisplayErrorContext(err).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_table_names_exactly_these_errors() {
        let readme = include_str!("../../README.md");
        let mut listed: Vec<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `Task."))
            .filter_map(|rest| rest.split('`').next())
            .collect();
        listed.sort_unstable();
        let mut ours: Vec<&str> = [INVALID_INPUT, RETRYABLE, FAILED, TIMEOUT, PANIC]
            .iter()
            .filter_map(|n| n.strip_prefix("Task."))
            .collect();
        ours.sort_unstable();
        assert_eq!(listed, ours);
    }
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn sdk_error(status: u16, code: &str) -> SdkError<GetObjectError, HttpResponse> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("details")
            .build();
        let raw = HttpResponse::new(
            StatusCode::try_from(status).unwrap_or_else(|_| panic!("bad status {status}")),
            SdkBody::empty(),
        );
        SdkError::service_error(GetObjectError::generic(meta), raw)
    }

    fn service_error(status: u16, code: &str) -> TaskError {
        sdk_error(status, code).into()
    }

    #[test]
    fn service_answers_are_told_apart_by_code_and_status() {
        let missing = sdk_error(404, "NoSuchKey");
        let answer = service_answer(&missing).unwrap_or_else(|| panic!("a service answer"));
        assert_eq!(answer.code, Some("NoSuchKey"));
        assert!(answer.is(&["NoSuchKey", "NotFound"], 404));
        assert!(sdk_error(404, "").code().is_some_and(str::is_empty));
        assert!(
            service_answer(&sdk_error(404, "NotFound")).is_some_and(|a| a.is(&["NoSuchKey"], 404)),
            "a HEAD's 404 NotFound counts by status"
        );
        assert!(
            !service_answer(&sdk_error(412, "PreconditionFailed"))
                .is_some_and(|a| a.is(&["NoSuchKey", "NotFound"], 404))
        );
        let timeout: SdkError<GetObjectError, HttpResponse> = SdkError::timeout_error("slow");
        assert_eq!(service_answer(&timeout), None);
    }

    #[test]
    fn names_are_stable() {
        assert_eq!(
            TaskError::invalid_input("x").error_type(),
            "Task.InvalidInput"
        );
        assert_eq!(TaskError::retryable("x").error_type(), "Task.Retryable");
        assert_eq!(TaskError::failed("x").error_type(), "Task.Failed");
        assert_eq!(
            TaskError::Timeout { margin_ms: 1 }.error_type(),
            "Task.Timeout"
        );
        assert_eq!(TaskError::Panic("x".into()).error_type(), "Task.Panic");
    }

    #[test]
    fn diagnostic_carries_type_and_message() {
        let d: Diagnostic = TaskError::invalid_input("order_id: must not contain '/'").into();
        assert_eq!(d.error_type, "Task.InvalidInput");
        assert_eq!(d.error_message, "order_id: must not contain '/'");
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        for (status, code) in [
            (503, "SlowDown"),
            (500, "InternalError"),
            (502, "Whatever"),
            (400, "ThrottlingException"),
            (429, "TooManyRequests"),
            (400, "RequestTimeout"),
            (400, "KmsThrottled"),
            (409, "OperationAborted"),
        ] {
            let err = service_error(status, code);
            assert_eq!(err.error_type(), RETRYABLE, "{status} {code}: {err}");
            assert!(err.to_string().contains(code));
        }
    }

    #[test]
    fn permanent_service_errors_fail() {
        for (status, code) in [
            (403, "AccessDenied"),
            (404, "NoSuchBucket"),
            (400, "AWS.SimpleQueueService.NonExistentQueue"),
            (412, "PreconditionFailed"),
        ] {
            let err = service_error(status, code);
            assert_eq!(err.error_type(), FAILED, "{status} {code}: {err}");
        }
    }

    #[test]
    fn timeouts_and_dispatch_failures_are_retryable() {
        let timeout: SdkError<GetObjectError, HttpResponse> =
            SdkError::timeout_error("operation timed out");
        assert_eq!(TaskError::from(timeout).error_type(), RETRYABLE);

        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let dispatch: SdkError<GetObjectError, HttpResponse> = SdkError::dispatch_failure(
            aws_smithy_runtime_api::client::result::ConnectorError::io(Box::new(io)),
        );
        assert_eq!(TaskError::from(dispatch).error_type(), RETRYABLE);

        let construction: SdkError<GetObjectError, HttpResponse> =
            SdkError::construction_failure("missing bucket name");
        assert_eq!(TaskError::from(construction).error_type(), FAILED);
    }

    #[test]
    fn context_keeps_the_variant() {
        let err = TaskError::retryable("SlowDown").context("uploading invoice");
        assert_eq!(err, TaskError::retryable("uploading invoice: SlowDown"));
    }
}
