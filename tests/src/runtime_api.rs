//! A fake Lambda Runtime API for driving one task process from a test.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// ARN every fake invocation carries.
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

/// Invocations waiting for their answer: request ID → (deadline, reply).
type Waiting = Arc<Mutex<HashMap<String, (u64, oneshot::Sender<Completed>)>>>;

struct Queued {
    request_id: String,
    payload: Value,
    deadline_ms: u64,
}

#[derive(Clone)]
struct Shared {
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>>,
    waiting: Waiting,
    init_errors: Arc<Mutex<Vec<Value>>>,
}

/// The fake API, serving on 127.0.0.1 until dropped.
#[derive(Debug)]
pub struct FakeRuntimeApi {
    addr: SocketAddr,
    sender: mpsc::UnboundedSender<Queued>,
    waiting: Waiting,
    init_errors: Arc<Mutex<Vec<Value>>>,
    next_id: AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

impl FakeRuntimeApi {
    /// Binds a free port on 127.0.0.1 and starts serving.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Shared {
            queue: Arc::new(tokio::sync::Mutex::new(receiver)),
            waiting: Arc::default(),
            init_errors: Arc::default(),
        };
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
            addr,
            sender,
            waiting: shared.waiting,
            init_errors: shared.init_errors,
            next_id: AtomicU64::new(1),
            server,
        })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Queues one invocation with `budget` until its deadline and waits (at
    /// most `budget` plus 10 s) for the process to answer.
    pub async fn invoke(&self, payload: Value, budget: Duration) -> Completed {
        let request_id = format!(
            "00000000-0000-4000-8000-{:012}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let deadline_ms = now_ms() + u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(request_id.clone(), (deadline_ms, tx));
        let queued = Queued {
            request_id: request_id.clone(),
            payload,
            deadline_ms,
        };
        if self.sender.send(queued).is_err() {
            panic!("fake runtime API stopped");
        }
        match tokio::time::timeout(budget + Duration::from_secs(10), rx).await {
            Ok(Ok(done)) => done,
            _ => panic!("invocation {request_id} got no answer"),
        }
    }

    /// Bodies posted to `/init/error`.
    pub fn init_errors(&self) -> Vec<Value> {
        self.init_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for FakeRuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

async fn next(State(shared): State<Shared>) -> Response {
    let Some(queued) = shared.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put("lambda-runtime-aws-request-id", &queued.request_id);
    put(
        "lambda-runtime-deadline-ms",
        &queued.deadline_ms.to_string(),
    );
    put("lambda-runtime-invoked-function-arn", FUNCTION_ARN);
    put(
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    );
    put("content-type", "application/json");
    (headers, queued.payload.to_string()).into_response()
}

fn complete(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    let waiter = shared
        .waiting
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(id);
    match waiter {
        Some((deadline_ms, tx)) => {
            let _ = tx.send(Completed {
                request_id: id.to_owned(),
                outcome,
                deadline_ms,
                received_ms: now_ms(),
            });
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn parse(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    complete(&shared, &id, Outcome::Response(parse(&body)))
}

async fn error(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    complete(&shared, &id, Outcome::Error(parse(&body)))
}

async fn init_error(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    shared
        .init_errors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(parse(&body));
    StatusCode::ACCEPTED
}
