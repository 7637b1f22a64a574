//! The local Lambda service's execution side: one pool of processes per
//! function, each process with its own Runtime API endpoint.
//!
//! Like Lambda, a process handles one invocation at a time; an idle (warm)
//! process is reused, otherwise a new one starts (cold). A process that runs
//! past the function's `Timeout` is killed and the caller gets the error
//! Lambda gives for a timed-out invocation.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot, watch};

use crate::logs::{LogStream, Shipper, tail};
use crate::template::FunctionSpec;

/// Lambda's limit on a synchronous invocation's request and response.
pub const PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;
/// How much log `X-Amz-Log-Type: Tail` returns.
const TAIL_LIMIT: usize = 4 * 1024;

/// How an invocation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The function's response payload.
    Success(Bytes),
    /// A function error: `{errorType, errorMessage}` as Lambda returns it.
    FunctionError(Bytes),
}

/// A finished invocation.
#[derive(Debug, Clone)]
pub struct Invoked {
    /// Lambda's request ID.
    pub request_id: String,
    /// What happened.
    pub outcome: Outcome,
    /// The last 4 KB of the log lines written during it.
    pub log_tail: String,
}

/// Everything every function process gets besides its template settings.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Where the task binaries are (`target/debug`).
    pub bin_dir: PathBuf,
    /// Where log stream files go.
    pub log_dir: PathBuf,
    /// Region the functions run in.
    pub region: String,
    /// Extra environment for every function (endpoint, local credentials).
    pub environment: BTreeMap<String, String>,
    /// Per-function overrides, by logical ID or name (test switches).
    pub overrides: HashMap<String, BTreeMap<String, String>>,
}

/// All functions of the stack.
#[derive(Debug)]
pub struct Functions {
    pools: HashMap<String, Arc<Pool>>,
}

impl Functions {
    /// One (empty) pool per function.
    pub fn new(specs: &[FunctionSpec], launch: Launch, shipper: Shipper) -> Self {
        let launch = Arc::new(launch);
        let pools = specs
            .iter()
            .map(|spec| {
                let pool = Pool {
                    spec: spec.clone(),
                    launch: launch.clone(),
                    shipper: shipper.clone(),
                    idle: Mutex::new(Vec::new()),
                    all: Mutex::new(Vec::new()),
                };
                (spec.name.clone(), Arc::new(pool))
            })
            .collect();
        Self { pools }
    }

    /// The pool of the function with this name.
    pub fn get(&self, name: &str) -> Option<Arc<Pool>> {
        self.pools.get(name).cloned()
    }

    /// Kills every process and ships what is left of their logs.
    pub async fn shutdown(&self) {
        for pool in self.pools.values() {
            pool.shutdown().await;
        }
    }
}

/// The processes of one function.
#[derive(Debug)]
pub struct Pool {
    spec: FunctionSpec,
    launch: Arc<Launch>,
    shipper: Shipper,
    idle: Mutex<Vec<Arc<Worker>>>,
    all: Mutex<Vec<Arc<Worker>>>,
}

impl Pool {
    /// The function's ARN.
    pub fn arn(&self) -> &str {
        &self.spec.arn
    }

    /// Runs one invocation to its end on a warm process, or a new one.
    pub async fn invoke(&self, payload: Bytes, client_context: Option<String>) -> Result<Invoked> {
        let worker = match self.take_idle() {
            Some(worker) => worker,
            None => self.start_worker().await?,
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let deadline = SystemTime::now() + self.spec.timeout;
        let deadline_ms = deadline
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            request_id: request_id.clone(),
            payload,
            deadline_ms,
            trace_id: trace_header(),
            client_context,
            reply,
        };
        worker
            .next
            .send(pending)
            .await
            .map_err(|_| anyhow::anyhow!("the function process is gone"))?;
        let mut exited = worker.exited.clone();
        let outcome = tokio::select! {
            answer = answer => match answer {
                Ok(Reply::Response(body)) if body.len() > PAYLOAD_LIMIT => Outcome::FunctionError(error_body(
                    "Function.ResponseSizeTooLarge",
                    &format!("Response payload size ({} bytes) exceeded maximum allowed payload size ({PAYLOAD_LIMIT} bytes).", body.len()),
                )),
                Ok(Reply::Response(body)) => Outcome::Success(body),
                Ok(Reply::Error(body)) => Outcome::FunctionError(body),
                Err(_) => worker.exit_error(&request_id, None),
            },
            status = exited.wait_for(Option::is_some) => {
                let status = status.ok().and_then(|s| *s);
                worker.exit_error(&request_id, status)
            },
            () = tokio::time::sleep(self.spec.timeout) => {
                worker.kill();
                Outcome::FunctionError(error_body(
                    "Sandbox.Timedout",
                    &format!(
                        "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                        self.spec.timeout.as_secs_f64()
                    ),
                ))
            },
        };
        let lines = worker.collect_logs(&self.shipper).await;
        if worker.alive() {
            self.release(worker);
        }
        Ok(Invoked {
            request_id,
            outcome,
            log_tail: tail(&lines, TAIL_LIMIT),
        })
    }

    fn take_idle(&self) -> Option<Arc<Worker>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(worker) = idle.pop() {
            if worker.alive() {
                return Some(worker);
            }
        }
        None
    }

    fn release(&self, worker: Arc<Worker>) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(worker);
    }

    async fn start_worker(&self) -> Result<Arc<Worker>> {
        let worker = Worker::start(&self.spec, &self.launch, &self.shipper).await?;
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(worker.clone());
        Ok(worker)
    }

    async fn shutdown(&self) {
        let workers = std::mem::take(&mut *self.all.lock().unwrap_or_else(|e| e.into_inner()));
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
        for worker in workers {
            worker.kill();
            let mut exited = worker.exited.clone();
            let _ = tokio::time::timeout(Duration::from_secs(5), exited.wait_for(Option::is_some))
                .await;
            worker.collect_logs(&self.shipper).await;
        }
    }
}

/// An invocation handed to a process.
#[derive(Debug)]
struct Pending {
    request_id: String,
    payload: Bytes,
    deadline_ms: u128,
    trace_id: String,
    client_context: Option<String>,
    reply: oneshot::Sender<Reply>,
}

#[derive(Debug)]
enum Reply {
    Response(Bytes),
    Error(Bytes),
}

/// What the process's Runtime API endpoint shares with its pool.
#[derive(Debug)]
struct RuntimeState {
    function_arn: String,
    next: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    current: Mutex<Option<(String, oneshot::Sender<Reply>)>>,
    init_error: Mutex<Option<Bytes>>,
}

/// One function process.
#[derive(Debug)]
struct Worker {
    next: mpsc::Sender<Pending>,
    state: Arc<RuntimeState>,
    exited: watch::Receiver<Option<ExitStatus>>,
    kill: Mutex<Option<oneshot::Sender<()>>>,
    killed: AtomicBool,
    log: tokio::sync::Mutex<LogStream>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Worker {
    async fn start(spec: &FunctionSpec, launch: &Launch, shipper: &Shipper) -> Result<Arc<Self>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api = listener.local_addr()?;
        let (next, receiver) = mpsc::channel(1);
        let state = Arc::new(RuntimeState {
            function_arn: spec.arn.clone(),
            next: tokio::sync::Mutex::new(receiver),
            current: Mutex::new(None),
            init_error: Mutex::new(None),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let (log, file) = LogStream::create(&launch.log_dir, &spec.name, &spec.log_group)?;
        if let Err(e) = shipper.open(&log).await {
            eprintln!("devstack: {e:#}");
        }
        let binary = launch.bin_dir.join(&spec.binary);
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .envs(lambda_environment(
                spec,
                launch,
                &log.group,
                &log.stream,
                &api.to_string(),
            ))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true);
        let mut child = command.spawn().with_context(|| {
            format!(
                "starting {} for {} (build the task binaries first: cargo build --bins)",
                binary.display(),
                spec.name
            )
        })?;
        let (exit_tx, exited) = watch::channel(None);
        let (kill, kill_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status.ok(),
                _ = kill_rx => {
                    let _ = child.kill().await;
                    child.wait().await.ok()
                }
            };
            let _ = exit_tx.send(status);
        });
        Ok(Arc::new(Self {
            next,
            state,
            exited,
            kill: Mutex::new(Some(kill)),
            killed: AtomicBool::new(false),
            log: tokio::sync::Mutex::new(log),
            server,
        }))
    }

    fn alive(&self) -> bool {
        !self.killed.load(Ordering::SeqCst) && self.exited.borrow().is_none()
    }

    fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        if let Some(kill) = self.kill.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = kill.send(());
        }
    }

    /// The error an invocation gets when its process ended without
    /// answering: the init error it posted, else Lambda's exit error.
    fn exit_error(&self, request_id: &str, status: Option<ExitStatus>) -> Outcome {
        self.kill();
        if let Some(body) = self
            .state
            .init_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Outcome::FunctionError(body);
        }
        let how = status.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
        Outcome::FunctionError(error_body(
            "Runtime.ExitError",
            &format!("RequestId: {request_id} Error: Runtime exited with error: {how}"),
        ))
    }

    /// Reads the lines written since the last call and ships them.
    async fn collect_logs(&self, shipper: &Shipper) -> Vec<String> {
        let mut log = self.log.lock().await;
        let lines = if self.alive() {
            log.read_new_lines()
        } else {
            log.read_rest()
        };
        let lines = lines.unwrap_or_else(|e| {
            eprintln!("devstack: reading {}: {e}", log.path.display());
            Vec::new()
        });
        if let Err(e) = shipper.put(&log, &lines).await {
            eprintln!("devstack: {e:#}");
        }
        lines
    }
}

/// The environment Lambda gives a `provided.al2023` process, then the
/// template's variables, then the local endpoint settings, then overrides.
pub fn lambda_environment(
    spec: &FunctionSpec,
    launch: &Launch,
    log_group: &str,
    log_stream: &str,
    runtime_api: &str,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        env.insert(k.to_owned(), v.to_owned());
    };
    set("PATH", "/usr/local/bin:/usr/bin:/bin");
    set("TZ", ":UTC");
    set("LANG", "en_US.UTF-8");
    set("_HANDLER", "bootstrap");
    set("AWS_REGION", &launch.region);
    set("AWS_DEFAULT_REGION", &launch.region);
    set("AWS_LAMBDA_FUNCTION_NAME", &spec.name);
    set(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        &spec.memory_mb.to_string(),
    );
    set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
    set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand");
    set("AWS_LAMBDA_LOG_GROUP_NAME", log_group);
    set("AWS_LAMBDA_LOG_STREAM_NAME", log_stream);
    set("AWS_LAMBDA_RUNTIME_API", runtime_api);
    set("LAMBDA_TASK_ROOT", &launch.bin_dir.to_string_lossy());
    set("LAMBDA_RUNTIME_DIR", &launch.bin_dir.to_string_lossy());
    // Lambda sets these only for the JSON log format.
    if spec.log_format.eq_ignore_ascii_case("json") {
        set("AWS_LAMBDA_LOG_FORMAT", "JSON");
        if let Some(level) = &spec.log_level {
            set("AWS_LAMBDA_LOG_LEVEL", level);
        }
    }
    env.extend(spec.environment.clone());
    env.extend(launch.environment.clone());
    for key in [&spec.logical_id, &spec.name] {
        if let Some(extra) = launch.overrides.get(key) {
            env.extend(extra.clone());
        }
    }
    env
}

/// An X-Ray trace header for one invocation (the functions are `Tracing:
/// Active`).
fn trace_header() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{now:08x}-{};Parent={};Sampled=1",
        &id[..24],
        &id[16..32]
    )
}

/// A Lambda-style error payload.
pub fn error_body(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string())
}

async fn next_invocation(State(state): State<Arc<RuntimeState>>) -> Response {
    let pending = state.next.lock().await.recv().await;
    let Some(pending) = pending else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put("lambda-runtime-aws-request-id", &pending.request_id);
    put(
        "lambda-runtime-deadline-ms",
        &pending.deadline_ms.to_string(),
    );
    put("lambda-runtime-invoked-function-arn", &state.function_arn);
    put("lambda-runtime-trace-id", &pending.trace_id);
    put("content-type", "application/json");
    if let Some(context) = &pending.client_context {
        put("lambda-runtime-client-context", context);
    }
    *state.current.lock().unwrap_or_else(|e| e.into_inner()) =
        Some((pending.request_id, pending.reply));
    (headers, pending.payload).into_response()
}

fn finish(state: &RuntimeState, id: &str, reply: Reply) -> Response {
    let mut current = state.current.lock().unwrap_or_else(|e| e.into_inner());
    match current.take() {
        Some((current_id, sender)) if current_id == id => {
            let _ = sender.send(reply);
            (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
        }
        other => {
            *current = other;
            (
                StatusCode::BAD_REQUEST,
                r#"{"errorType":"InvalidRequestID","errorMessage":"Invalid request ID"}"#,
            )
                .into_response()
        }
    }
}

async fn response(
    State(state): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    finish(&state, &id, Reply::Response(body))
}

async fn error(
    State(state): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    finish(&state, &id, Reply::Error(normalise_error(&headers, body)))
}

async fn init_error(
    State(state): State<Arc<RuntimeState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    *state.init_error.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(normalise_error(&headers, body));
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
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

    #[test]
    fn trace_headers_have_xray_shape() {
        let header = trace_header();
        let root = header
            .strip_prefix("Root=1-")
            .and_then(|r| r.split(';').next())
            .unwrap_or_default();
        let (time, id) = root.split_once('-').unwrap_or_default();
        assert_eq!((time.len(), id.len()), (8, 24), "{header}");
        assert!(header.ends_with(";Sampled=1"));
    }
}
