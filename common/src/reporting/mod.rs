//! Error reporting: Sentry when the `sentry` feature is built in (the
//! default), nothing otherwise. Both sides have the same shape, so the
//! invocation pipeline does not know which one it runs with; a task built
//! without the feature does not link Sentry, its HTTP client or TLS stack.

#[cfg(not(feature = "sentry"))]
mod sentry_off;
#[cfg(feature = "sentry")]
mod sentry_on;

#[cfg(not(feature = "sentry"))]
pub(crate) use sentry_off::{Reporter, init, invocation_scope};
#[cfg(feature = "sentry")]
pub(crate) use sentry_on::{Reporter, init, invocation_scope};

use std::time::Instant;

/// What Sentry gets to know about one invocation.
#[derive(Debug)]
#[cfg_attr(not(feature = "sentry"), allow(dead_code))]
pub(crate) struct ScopeInfo<'a> {
    pub service: &'a str,
    pub correlation_id: &'a str,
    pub execution_id: Option<&'a str>,
    pub state_name: Option<&'a str>,
    pub request_id: &'a str,
    pub retry_count: u32,
    pub lambda: &'a lambda_runtime::Context,
    pub deadline: Instant,
}
