//! Test support: the fakes and helpers end-to-end tests start on 127.0.0.1.
//!
//! - [`aws_cli`]: the real AWS CLI against a local stack.
//! - [`backup_run`]: whole backup runs, invocation after invocation.
//! - [`fidelity`]: local-fidelity cases run on the local stack and on moto
//!   as released.
//!
//! - [`runtime_api::LocalRuntimeApi`]: the local stack's Runtime API, driving
//!   one task process invocation by invocation.
//! - [`sentry_sink::SentrySink`]: an HTTP endpoint that receives Sentry
//!   envelopes over the real transport, and can answer 429/500 or hang.
//! - [`moto::MotoServer`]: the moto server (S3, SQS, Step Functions, Logs)
//!   from the project venv.
//! - [`local_stack::LocalStack`]: the local stack (`devstack`) on the
//!   project's or a fixture template, its log lines checked when it stops.
//! - [`process::TaskProcess`]: a task binary run as a child process, its
//!   stdout captured line by line.
//! - [`tls_proxy`]: a TLS endpoint with a test CA in front of a local one.
//! - [`log_scan`]: keeps every line the suite's tasks log and scans them for
//!   personal data and secrets (`make test` runs the `scan-logs` binary).

pub mod aws_cli;
pub mod backup_run;
pub mod binaries;
pub mod browser;
pub mod export_server;
pub mod fidelity;
pub mod fixture;
pub mod local_stack;
pub mod log_scan;
pub mod moto;
pub mod process;
pub mod runtime_api;
pub mod sentry_sink;
pub mod tls_proxy;
