//! Measuring Lambda processes from the outside: a Runtime API that notes
//! when a process first asks for work and when each answer arrives, and the
//! statistics the report prints.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, watch};

/// A Runtime API for one process: invocations are handed out in order, each
/// answer (response or error) comes back with the time it arrived.
#[derive(Debug)]
pub struct TimedApi {
    /// `host:port` for `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    queue: mpsc::Sender<Bytes>,
    answers: tokio::sync::Mutex<mpsc::Receiver<(Instant, bool)>>,
    first_next: watch::Receiver<Option<Instant>>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    queue: tokio::sync::Mutex<mpsc::Receiver<Bytes>>,
    answers: mpsc::Sender<(Instant, bool)>,
    first_next: watch::Sender<Option<Instant>>,
    sequence: Mutex<u64>,
}

impl Drop for TimedApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TimedApi {
    /// Listens on 127.0.0.1.
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let (queue, queued) = mpsc::channel(1);
        let (answer_tx, answers) = mpsc::channel(16);
        let (first_tx, first_next) = watch::channel(None);
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(queued),
            answers: answer_tx,
            first_next: first_tx,
            sequence: Mutex::new(0),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(answered_ok),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(answered_error),
            )
            .route("/2018-06-01/runtime/init/error", post(answered_error))
            .with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            queue,
            answers: tokio::sync::Mutex::new(answers),
            first_next,
            server,
        })
    }

    /// When the process first asked for an invocation (waits for it).
    pub async fn first_next(&self, limit: Duration) -> Result<Instant> {
        let mut seen = self.first_next.clone();
        let at = tokio::time::timeout(limit, seen.wait_for(Option::is_some))
            .await
            .context("the process never asked for an invocation")??;
        at.context("no time recorded")
    }

    /// Hands out `payload` and waits for the answer: when it arrived and
    /// whether it was a success.
    pub async fn invoke(&self, payload: Bytes, limit: Duration) -> Result<(Instant, bool)> {
        self.queue
            .send(payload)
            .await
            .context("the Runtime API stopped")?;
        let mut answers = self.answers.lock().await;
        tokio::time::timeout(limit, answers.recv())
            .await
            .context("no answer in time")?
            .context("the Runtime API stopped")
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let arrived = Instant::now();
    shared.first_next.send_if_modified(|first| {
        if first.is_none() {
            *first = Some(arrived);
            true
        } else {
            false
        }
    });
    let payload = shared.queue.lock().await.recv().await;
    let Some(payload) = payload else {
        return StatusCode::GONE.into_response();
    };
    let id = {
        let mut sequence = shared.sequence.lock().unwrap_or_else(|e| e.into_inner());
        *sequence += 1;
        *sequence
    };
    let deadline = std::time::SystemTime::now() + Duration::from_secs(60);
    let deadline_ms = deadline
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    put("lambda-runtime-aws-request-id", format!("bench-{id}"));
    put("lambda-runtime-deadline-ms", deadline_ms.to_string());
    put(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:eu-west-1:123456789012:function:bench".to_owned(),
    );
    put(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
    );
    (headers, payload).into_response()
}

async fn answered_ok(State(shared): State<Arc<Shared>>, _body: Bytes) -> StatusCode {
    let _ = shared.answers.send((Instant::now(), true)).await;
    StatusCode::ACCEPTED
}

async fn answered_error(State(shared): State<Arc<Shared>>, _body: Bytes) -> StatusCode {
    let _ = shared.answers.send((Instant::now(), false)).await;
    StatusCode::ACCEPTED
}

/// Median, extremes and tail of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Sample size.
    pub n: usize,
    /// Smallest value.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

/// Summarises `values` (any order); `None` when empty.
pub fn summarise(values: &[f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index]
    };
    Some(Summary {
        n: sorted.len(),
        min: sorted[0],
        p50: rank(0.5),
        p99: rank(0.99),
        max: sorted[sorted.len() - 1],
    })
}

/// Peak resident set size of a live process, from `/proc/<pid>/status`.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_uses_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = summarise(&values).unwrap_or_else(|| panic!("empty"));
        assert_eq!(
            (s.n, s.min, s.p50, s.p99, s.max),
            (100, 1.0, 50.0, 99.0, 100.0)
        );
        assert!(summarise(&[]).is_none());
        assert_eq!(summarise(&[3.0]).map(|s| s.p99), Some(3.0));
    }
}
