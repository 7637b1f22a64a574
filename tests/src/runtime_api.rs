//! Driving one task process from a test through the local stack's own
//! Runtime API (`devstack::runtime_api`, the one the local Lambda service
//! gives every function process).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use devstack::runtime_api::{Invocation, Reply, RuntimeApi};
use serde_json::Value;

/// ARN every invocation from a test carries.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:fixture-task";

/// How an invocation ended, as the Runtime API saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST .../response` with this body.
    Response(Value),
    /// `POST .../error` with this body (`errorType`, `errorMessage`).
    Error(Value),
}

/// One finished invocation.
#[derive(Debug, Clone)]
pub struct Completed {
    /// The request ID the process was given.
    pub request_id: String,
    /// What the process posted.
    pub outcome: Outcome,
    /// The deadline the process was given, in ms since the epoch.
    pub deadline_ms: u64,
    /// When the result arrived, in ms since the epoch.
    pub received_ms: u64,
}

impl Completed {
    /// The error body, or a panic naming what came instead.
    pub fn error(&self) -> &Value {
        match &self.outcome {
            Outcome::Error(body) => body,
            Outcome::Response(body) => panic!("expected an error, got response {body}"),
        }
    }

    /// The response body, or a panic naming what came instead.
    pub fn response(&self) -> &Value {
        match &self.outcome {
            Outcome::Response(body) => body,
            Outcome::Error(body) => panic!("expected a response, got error {body}"),
        }
    }
}

/// A Runtime API for one task process, on 127.0.0.1 until dropped.
#[derive(Debug)]
pub struct LocalRuntimeApi {
    api: RuntimeApi,
    next_id: AtomicU64,
}

impl LocalRuntimeApi {
    /// Binds a free port on 127.0.0.1 and starts serving.
    pub async fn start() -> std::io::Result<Self> {
        Ok(Self {
            api: RuntimeApi::start().await?,
            next_id: AtomicU64::new(1),
        })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn host_port(&self) -> String {
        self.api.address()
    }

    /// Queues one invocation with `budget` until its deadline and waits (at
    /// most `budget` plus 10 s) for the process to answer.
    pub async fn invoke(&self, payload: Value, budget: Duration) -> Completed {
        self.invoke_raw(payload.to_string(), budget).await
    }

    /// [`LocalRuntimeApi::invoke`] with the payload's bytes as given: for
    /// payloads a `Value` cannot hold (nested past serde_json's limit).
    pub async fn invoke_raw(&self, payload: String, budget: Duration) -> Completed {
        let request_id = format!(
            "00000000-0000-4000-8000-{:012}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let deadline_ms = now_ms() + u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
        let answer = self.api.submit(Invocation {
            request_id: request_id.clone(),
            payload: Bytes::from(payload),
            deadline_ms,
            function_arn: FUNCTION_ARN.to_owned(),
            trace_id: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
                .to_owned(),
            client_context: None,
        });
        let answer = match tokio::time::timeout(budget + Duration::from_secs(10), answer).await {
            Ok(Ok(answer)) => answer,
            _ => panic!("invocation {request_id} got no answer"),
        };
        let outcome = match answer.reply {
            Reply::Response(body) => Outcome::Response(parse(&body)),
            Reply::Error(body) => Outcome::Error(parse(&body)),
        };
        Completed {
            request_id,
            outcome,
            deadline_ms,
            received_ms: now_ms(),
        }
    }

    /// Bodies posted to `/init/error`.
    pub fn init_errors(&self) -> Vec<Value> {
        self.api.init_errors().iter().map(|b| parse(b)).collect()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}
