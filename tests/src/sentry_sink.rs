//! A local Sentry endpoint: receives envelopes over HTTP exactly as sentry.io
//! would, so the SDK's real transport is exercised.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;
use tokio::sync::Notify;

/// How the endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Stores the envelope and answers 200.
    Accept,
    /// Stores nothing and answers with this status (429, 500, ...).
    Status(u16),
    /// Accepts the connection and never answers.
    Hang,
}

#[derive(Clone)]
struct Shared {
    behaviour: Behaviour,
    envelopes: Arc<Mutex<Vec<Vec<u8>>>>,
    arrived: Arc<Notify>,
}

/// A running endpoint on 127.0.0.1.
#[derive(Debug)]
pub struct SentrySink {
    addr: SocketAddr,
    envelopes: Arc<Mutex<Vec<Vec<u8>>>>,
    arrived: Arc<Notify>,
    server: tokio::task::JoinHandle<()>,
}

impl SentrySink {
    /// Starts an endpoint answering as `behaviour` says.
    pub async fn start(behaviour: Behaviour) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            behaviour,
            envelopes: Arc::default(),
            arrived: Arc::default(),
        };
        let app = Router::new()
            .route("/api/{project}/envelope/", post(receive))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            envelopes: shared.envelopes,
            arrived: shared.arrived,
            server,
        })
    }

    /// A DSN pointing at this endpoint.
    pub fn dsn(&self) -> String {
        format!("http://public@{}/1", self.addr)
    }

    /// A DSN for a port nothing listens on (connection refused).
    pub fn refusing_dsn() -> std::io::Result<String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        drop(listener);
        Ok(format!("http://public@{addr}/1"))
    }

    /// Every event item received so far.
    pub fn events(&self) -> Vec<Value> {
        self.envelopes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flat_map(|raw| event_items(raw))
            .collect()
    }

    /// Waits until at least `count` events arrived, or `timeout` passed.
    pub async fn wait_for_events(&self, count: usize, timeout: std::time::Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            let events = self.events();
            if events.len() >= count {
                return events;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.events();
            }
        }
    }
}

impl Drop for SentrySink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    match shared.behaviour {
        Behaviour::Accept => {
            shared
                .envelopes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(body.to_vec());
            shared.arrived.notify_waiters();
            StatusCode::OK
        }
        Behaviour::Status(code) => {
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Behaviour::Hang => std::future::pending().await,
    }
}

/// The payloads of an envelope's `event` items. An envelope is a header line,
/// then per item a header line (with an optional `length`) and a payload.
pub fn event_items(raw: &[u8]) -> Vec<Value> {
    let mut events = Vec::new();
    let mut rest = match split_line(raw) {
        Some((_, rest)) => rest,
        None => return events,
    };
    while let Some((header, after)) = split_line(rest) {
        if header.is_empty() {
            rest = after;
            continue;
        }
        let header: Value = serde_json::from_slice(header).unwrap_or(Value::Null);
        let (payload, after_payload) = match header["length"].as_u64() {
            Some(len) => {
                let len = usize::try_from(len).unwrap_or(usize::MAX).min(after.len());
                let (payload, tail) = after.split_at(len);
                (payload, tail.strip_prefix(b"\n").unwrap_or(tail))
            }
            None => split_line(after).unwrap_or((after, &[])),
        };
        if header["type"] == "event"
            && let Ok(event) = serde_json::from_slice(payload)
        {
            events.push(event);
        }
        rest = after_payload;
    }
    events
}

fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    if bytes.is_empty() {
        return None;
    }
    match bytes.iter().position(|b| *b == b'\n') {
        Some(i) => Some((&bytes[..i], &bytes[i + 1..])),
        None => Some((bytes, &[])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_items_with_and_without_length() {
        let raw = b"{\"event_id\":\"x\"}\n{\"type\":\"event\",\"length\":11}\n{\"a\":\"b\\n\"}\n{\"type\":\"client_report\"}\n{}\n{\"type\":\"event\"}\n{\"c\":1}\n";
        let events = event_items(raw);
        assert_eq!(
            events,
            vec![serde_json::json!({"a": "b\n"}), serde_json::json!({"c": 1})]
        );
    }
}
