//! The shared runtime of Step Functions task Lambdas.
//!
//! A task names itself and hands over a plain `async fn(Input, TaskContext)
//! -> Result<Output, TaskError>`; `common` does the rest for every invocation:
//!
//! - reads the raw payload under stated limits ([`payload`]), the Step
//!   Functions [envelope](envelope) (or a bare input), and resolves the
//!   [correlation ID](correlation);
//! - writes exactly one `task started` and one `task finished` JSON line
//!   (the latter an EMF metrics record), with the invocation's context on
//!   every line logged in between;
//! - maps every failure to a stable `errorType` ([`TaskError`]), panics
//!   included, and stops the handler before the Lambda deadline
//!   ([`TaskError::Timeout`]);
//! - refuses outputs over Step Functions' payload limit ([`guard`]);
//! - adds `correlation_id` to the output;
//! - reports errors to Sentry when `SENTRY_DSN` is set, without ever changing
//!   the result or the time bound.
//!
//! Settings are environment variables, listed in [`settings`].

pub mod aws;
mod context;
pub mod correlation;
pub mod envelope;
pub mod error;
pub mod fields;
pub mod guard;
mod invocation;
pub mod logging;
pub mod payload;
mod reporting;
mod runtime;
pub mod settings;
pub mod tls;

pub use aws::LazyClient;
pub use context::TaskContext;
pub use correlation::CorrelationId;
pub use error::TaskError;
pub use runtime::{TaskRuntime, run};
