//! The local Lambda service's execution side: one pool of processes per
//! function, each process with its own Runtime API endpoint.
//!
//! Like Lambda, a process handles one invocation at a time; an idle (warm)
//! process is reused, otherwise a new one starts (cold). A process that runs
//! past the function's `Timeout` is killed and the caller gets the error
//! Lambda gives for a timed-out invocation. Each invocation's log gets
//! Lambda's platform lines and level filtering ([`platform`]).

mod environment;
pub mod platform;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use axum::body::Bytes;

pub use environment::{Launch, lambda_environment, trace_header};
use platform::Status;
use worker::{InitFailure, Worker, now_ms};

use crate::logs::{LogEvent, Shipper, tail};
use crate::runtime_api::{Invocation, Reply, error_body};
use crate::template::FunctionSpec;

/// Lambda's limit on a synchronous invocation's request and response.
pub const PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;
/// How much log `X-Amz-Log-Type: Tail` returns.
const TAIL_LIMIT: usize = 4 * 1024;
/// Lambda's limit on an on-demand init phase.
const INIT_LIMIT: Duration = Duration::from_secs(10);

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
    /// The last 4 KB of its log, platform lines included.
    pub log_tail: String,
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

/// How waiting for an answer ended.
enum Settled {
    Answered(Option<crate::runtime_api::Answer>),
    Exited(Option<std::process::ExitStatus>),
    TimedOut,
}

/// What the platform learnt while an invocation ran.
struct Ran {
    outcome: Outcome,
    status: Status,
    handed_out: Option<Instant>,
    ended: Instant,
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
        let trace_id = trace_header();
        let ran = self
            .run(&worker, &request_id, &trace_id, payload, client_context)
            .await;
        let events = self.log(&worker, &request_id, &trace_id, &ran).await;
        if worker.alive() {
            self.release(worker);
        }
        Ok(Invoked {
            request_id,
            outcome: ran.outcome,
            log_tail: tail(&events, TAIL_LIMIT),
        })
    }

    async fn run(
        &self,
        worker: &Worker,
        request_id: &str,
        trace_id: &str,
        payload: Bytes,
        client_context: Option<String>,
    ) -> Ran {
        let timeout = self.spec.timeout;
        if let Some(failed) = self.init(worker, request_id).await {
            return failed;
        }
        let begun = Instant::now();
        let deadline_ms = SystemTime::now()
            .checked_add(timeout)
            .and_then(|d| d.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let polls = worker.api.polls();
        let polled_before = polls.borrow().count;
        let answer = worker.api.submit(Invocation {
            request_id: request_id.to_owned(),
            payload,
            deadline_ms,
            function_arn: self.spec.arn.clone(),
            trace_id: trace_id.to_owned(),
            client_context,
        });
        let mut exited = worker.exited();
        let settled = tokio::select! {
            answer = answer => Settled::Answered(answer.ok()),
            status = exited.wait_for(Option::is_some) => Settled::Exited(status.ok().and_then(|s| *s)),
            () = tokio::time::sleep(timeout) => Settled::TimedOut,
        };
        let (outcome, status, handed_out) = match settled {
            Settled::Answered(Some(answer)) => {
                let (outcome, status) = self.answered(answer.reply);
                (outcome, status, Some(answer.handed_out))
            }
            Settled::Answered(None) | Settled::Exited(_) => {
                let exit = match settled {
                    Settled::Exited(status) => status,
                    _ => None,
                };
                let body = worker.exit_error(Some(request_id), exit);
                let status = Status::Error("Runtime.ExitError".into());
                (Outcome::FunctionError(body), status, None)
            }
            Settled::TimedOut => {
                worker.kill();
                worker.wait_exit(Duration::from_secs(5)).await;
                let body = error_body(
                    "Sandbox.Timedout",
                    &format!(
                        "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                        timeout.as_secs_f64()
                    ),
                );
                return Ran {
                    outcome: Outcome::FunctionError(body),
                    status: Status::Timeout,
                    handed_out: Some(begun),
                    ended: begun + timeout,
                };
            }
        };
        // The invocation ends when the runtime asks for the next one (or
        // stops): what it writes until then is part of it.
        let remaining = timeout.saturating_sub(begun.elapsed());
        let mut polls = polls;
        let mut exited = worker.exited();
        tokio::select! {
            _ = polls.wait_for(|p| p.count > polled_before) => {}
            _ = exited.wait_for(Option::is_some) => {}
            () = tokio::time::sleep(remaining) => {}
        }
        Ran {
            outcome,
            status,
            handed_out,
            ended: Instant::now(),
        }
    }

    /// A cold process's init phase; the failed run if it never got ready.
    async fn init(&self, worker: &Worker, request_id: &str) -> Option<Ran> {
        let started = Instant::now();
        match worker.ready(INIT_LIMIT + self.spec.timeout).await {
            Ok(()) => None,
            Err(InitFailure::Failed(body)) => Some(Ran {
                status: Status::Error(error_type(&body)),
                outcome: Outcome::FunctionError(body),
                handed_out: None,
                ended: Instant::now(),
            }),
            Err(InitFailure::TimedOut) => {
                worker.kill();
                let body = error_body(
                    "Sandbox.Timedout",
                    &format!(
                        "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                        self.spec.timeout.as_secs_f64()
                    ),
                );
                Some(Ran {
                    outcome: Outcome::FunctionError(body),
                    status: Status::Timeout,
                    handed_out: Some(started),
                    ended: Instant::now(),
                })
            }
        }
    }

    fn answered(&self, reply: Reply) -> (Outcome, Status) {
        match reply {
            Reply::Response(body) if body.len() > PAYLOAD_LIMIT => {
                let body = error_body(
                    "Function.ResponseSizeTooLarge",
                    &format!(
                        "Response payload size ({} bytes) exceeded maximum allowed payload size ({PAYLOAD_LIMIT} bytes).",
                        body.len()
                    ),
                );
                (
                    Outcome::FunctionError(body),
                    Status::Failure("Function.ResponseSizeTooLarge".into()),
                )
            }
            Reply::Response(body) => (Outcome::Success(body), Status::Success),
            Reply::Error(body) => {
                let status = Status::Failure(error_type(&body));
                (Outcome::FunctionError(body), status)
            }
        }
    }

    /// The invocation's events, with Lambda's platform lines: written to
    /// the stream and shipped; returned for the log tail.
    async fn log(
        &self,
        worker: &Worker,
        request_id: &str,
        trace_id: &str,
        ran: &Ran,
    ) -> Vec<LogEvent> {
        let end_ms = worker.wall_ms(ran.ended);
        let handed_out = ran.handed_out.unwrap_or(ran.ended);
        let lines = worker.new_lines(end_ms).await;
        let stream = worker.log.lock().await.stream.stream.clone();
        let produced_bytes = match &ran.outcome {
            Outcome::Success(body) | Outcome::FunctionError(body) => body.len(),
        };
        let call = platform::Invocation {
            spec: &self.spec,
            request_id,
            trace_id,
            stream: &stream,
            start_ms: worker.wall_ms(handed_out),
            end_ms,
            duration: ran
                .ended
                .saturating_duration_since(handed_out)
                .min(self.spec.timeout),
            max_memory_mb: worker.max_memory_mb(),
            status: ran.status.clone(),
            produced_bytes,
        };
        let init = worker.take_init();
        let events = platform::invocation_events(&call, init.as_ref(), lines);
        worker.write(&self.shipper, &events).await;
        events
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
            worker.wait_exit(Duration::from_secs(5)).await;
            let rest = worker.new_lines(now_ms()).await;
            worker.write(&self.shipper, &rest).await;
        }
    }
}

/// The `errorType` of an error body.
fn error_type(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["errorType"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "Unhandled".to_owned())
}
