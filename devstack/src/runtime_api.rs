//! The Lambda Runtime API one function process talks to: `GET .../next`
//! hands out invocations, `POST .../{id}/response` and `.../{id}/error`
//! answer them, `POST .../init/error` reports a failed start-up.
//!
//! One implementation for the local Lambda service, the test harness and
//! the benchmarks: each process gets its own on 127.0.0.1, and every
//! `/next` is noted, because Lambda's platform lines are timed by them (the
//! first ends the init phase, the one after an answer ends the invocation).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot, watch};

/// One invocation for the process.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// The event.
    pub payload: Bytes,
    /// `Lambda-Runtime-Deadline-Ms`: milliseconds since the epoch.
    pub deadline_ms: u64,
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    pub function_arn: String,
    /// `Lambda-Runtime-Trace-Id`.
    pub trace_id: String,
    /// `Lambda-Runtime-Client-Context`, when the caller sent one.
    pub client_context: Option<String>,
}

/// How the process answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `POST .../response` with this body.
    Response(Bytes),
    /// `POST .../error`: `{errorType, errorMessage}` as the Invoke API
    /// returns it.
    Error(Bytes),
}

/// An answered invocation.
#[derive(Debug, Clone)]
pub struct Answer {
    /// What the process posted.
    pub reply: Reply,
    /// When the process took the invocation (its `/next` returned).
    pub handed_out: Instant,
    /// When the answer arrived.
    pub answered: Instant,
}

/// The process's `/next` calls so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Polls {
    /// How many.
    pub count: u64,
    /// When the first arrived: the end of the process's init phase.
    pub first: Option<Instant>,
    /// When the last arrived.
    pub last: Option<Instant>,
}

struct Queued {
    invocation: Invocation,
    reply: oneshot::Sender<Answer>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    waiting: Mutex<HashMap<String, (Instant, oneshot::Sender<Answer>)>>,
    init_errors: Mutex<Vec<Bytes>>,
    polls: watch::Sender<Polls>,
}

/// A Runtime API on 127.0.0.1, serving until dropped.
#[derive(Debug)]
pub struct RuntimeApi {
    address: SocketAddr,
    queue: mpsc::UnboundedSender<Queued>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Binds a free port on 127.0.0.1 and serves.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (queue, queued) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(queued),
            waiting: Mutex::new(HashMap::new()),
            init_errors: Mutex::new(Vec::new()),
            polls: watch::Sender::new(Polls::default()),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            queue,
            shared,
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Queues `invocation`; the receiver gets the answer. Invocations are
    /// handed out in order, one per `/next`.
    pub fn submit(&self, invocation: Invocation) -> oneshot::Receiver<Answer> {
        let (reply, answer) = oneshot::channel();
        // A closed queue drops `reply`: the receiver then reports it.
        let _ = self.queue.send(Queued { invocation, reply });
        answer
    }

    /// The process's `/next` calls, to wait on.
    pub fn polls(&self) -> watch::Receiver<Polls> {
        self.shared.polls.subscribe()
    }

    /// Bodies posted to `/init/error`, normalised as [`Reply::Error`] is.
    pub fn init_errors(&self) -> Vec<Bytes> {
        lock(&self.shared.init_errors).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let arrived = Instant::now();
    shared.polls.send_modify(|polls| {
        polls.count += 1;
        polls.first.get_or_insert(arrived);
        polls.last = Some(arrived);
    });
    let queued = shared.queue.lock().await.recv().await;
    let Some(Queued { invocation, reply }) = queued else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put("lambda-runtime-aws-request-id", &invocation.request_id);
    put(
        "lambda-runtime-deadline-ms",
        &invocation.deadline_ms.to_string(),
    );
    put(
        "lambda-runtime-invoked-function-arn",
        &invocation.function_arn,
    );
    put("lambda-runtime-trace-id", &invocation.trace_id);
    put("content-type", "application/json");
    if let Some(context) = &invocation.client_context {
        put("lambda-runtime-client-context", context);
    }
    lock(&shared.waiting).insert(invocation.request_id, (Instant::now(), reply));
    (headers, invocation.payload).into_response()
}

fn finish(shared: &Shared, id: &str, reply: Reply) -> Response {
    match lock(&shared.waiting).remove(id) {
        Some((handed_out, sender)) => {
            let _ = sender.send(Answer {
                reply,
                handed_out,
                answered: Instant::now(),
            });
            (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            r#"{"errorType":"InvalidRequestID","errorMessage":"Invalid request ID"}"#,
        )
            .into_response(),
    }
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    finish(&shared, &id, Reply::Response(body))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    finish(&shared, &id, Reply::Error(normalise_error(&headers, body)))
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    lock(&shared.init_errors).push(normalise_error(&headers, body));
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

/// A Lambda-style error payload.
pub fn error_body(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string())
}

/// An error body as the Invoke API returns it: the runtime's JSON if it has
/// an `errorType`, else one built from `Lambda-Runtime-Function-Error-Type`.
fn normalise_error(headers: &HeaderMap, body: Bytes) -> Bytes {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    if parsed
        .as_ref()
        .is_some_and(|v| v.get("errorType").is_some_and(serde_json::Value::is_string))
    {
        return body;
    }
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Unhandled");
    error_body(error_type, &String::from_utf8_lossy(&body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_errors_keep_their_type_or_get_the_header_s() {
        let headers = HeaderMap::new();
        let body = Bytes::from(r#"{"errorType":"Task.InvalidInput","errorMessage":"x"}"#);
        assert_eq!(normalise_error(&headers, body.clone()), body);

        let mut headers = HeaderMap::new();
        headers.insert(
            "lambda-runtime-function-error-type",
            HeaderValue::from_static("Runtime.Unknown"),
        );
        let out: serde_json::Value =
            serde_json::from_slice(&normalise_error(&headers, Bytes::from("boom")))
                .unwrap_or_default();
        assert_eq!(out["errorType"], "Runtime.Unknown");
        assert_eq!(out["errorMessage"], "boom");
    }
}
