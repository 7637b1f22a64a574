//! A local HTTP "export endpoint" that generates its data on the fly, so a
//! test can stream hundreds of MiB without storing them.
//!
//! - `GET /export/{bytes}`: exactly `bytes` bytes of a fixed pattern, no
//!   range support (like many report endpoints).
//! - `GET /ranged/{bytes}`: the same with `Accept-Ranges: bytes`, a strong
//!   `ETag`, and `Range` / `If-Range` honoured.
//! - `GET /changes-once/{bytes}`: ranged, but from the second request on it
//!   is a new version (another `ETag`, other bytes: [`pattern_byte_v2`]).
//! - `GET /broken/{bytes}`: announces `2 × bytes`, sends `bytes`, then fails.
//! - `GET /redirect`: a 302 to the instance metadata address.
//!
//! `?mibps=N` paces any export at N MiB/s, so it outlasts a short deadline.
//! [`ExportServer::requests`] tells what was asked and how much was sent.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream;

const CHUNK: usize = 64 * 1024;

/// The byte at `offset` of every export.
pub fn pattern_byte(offset: u64) -> u8 {
    (offset.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// The byte at `offset` of `/changes-once` from its second request on.
pub fn pattern_byte_v2(offset: u64) -> u8 {
    pattern_byte(offset) ^ 0x5a
}

/// One request the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The path.
    pub path: String,
    /// Its `Range` header.
    pub range: Option<String>,
    /// The status answered.
    pub status: u16,
}

#[derive(Debug, Default)]
struct Shared {
    requests: Mutex<Vec<Served>>,
    /// Body bytes sent, over all requests.
    sent: Arc<AtomicU64>,
    /// Requests to `/changes-once`.
    changes: AtomicU64,
}

/// The export server on 127.0.0.1; stopped when dropped.
#[derive(Debug)]
pub struct ExportServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl ExportServer {
    /// Starts the server on a free port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/export/{bytes}", get(export))
            .route("/ranged/{bytes}", get(ranged))
            .route("/changes-once/{bytes}", get(changes_once))
            .route("/broken/{bytes}", get(broken))
            .route("/redirect", get(redirect))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    /// `127.0.0.1:<port>`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<Served> {
        self.shared
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Body bytes sent so far.
    pub fn bytes_sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }
}

impl Drop for ExportServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `mibps` from the query string.
fn pace(uri: &Uri) -> Option<u64> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("mibps="))?
        .parse()
        .ok()
        .filter(|&n| n > 0)
}

struct Plan {
    from: u64,
    to: u64,
    fail_after: Option<u64>,
    pattern: fn(u64) -> u8,
    mibps: Option<u64>,
    sent: Arc<AtomicU64>,
}

fn body(plan: Plan) -> Body {
    let chunks = stream::unfold(plan.from, move |offset| {
        let sent = plan.sent.clone();
        async move {
            if let Some(limit) = plan.fail_after
                && offset >= limit
            {
                return Some((Err(std::io::Error::other("export crashed")), u64::MAX));
            }
            if offset >= plan.to {
                return None;
            }
            let len = (plan.to - offset).min(CHUNK as u64);
            if let Some(mibps) = plan.mibps {
                let micros = len * 1_000_000 / (mibps << 20);
                tokio::time::sleep(Duration::from_micros(micros)).await;
            }
            let bytes: Vec<u8> = (offset..offset + len).map(plan.pattern).collect();
            sent.fetch_add(len, Ordering::Relaxed);
            Some((Ok(Bytes::from(bytes)), offset + len))
        }
    });
    Body::from_stream(chunks)
}

fn record(shared: &Shared, uri: &Uri, headers: &HeaderMap, status: StatusCode) {
    if let Ok(mut requests) = shared.requests.lock() {
        requests.push(Served {
            path: uri.path().to_owned(),
            range: headers
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            status: status.as_u16(),
        });
    }
}

async fn export(
    State(shared): State<Arc<Shared>>,
    Path(bytes): Path<u64>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&shared, &uri, &headers, StatusCode::OK);
    let plan = Plan {
        from: 0,
        to: bytes,
        fail_after: None,
        pattern: pattern_byte,
        mibps: pace(&uri),
        sent: shared.sent.clone(),
    };
    ([(header::CONTENT_LENGTH, bytes.to_string())], body(plan)).into_response()
}

/// The first byte of `bytes=N-`, the only form the task sends.
fn range_from(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(header::RANGE)?.to_str().ok()?;
    value
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

fn ranged_response(
    shared: &Shared,
    uri: &Uri,
    headers: &HeaderMap,
    bytes: u64,
    etag: &str,
    pattern: fn(u64) -> u8,
) -> Response {
    let if_range_holds = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == etag);
    let from = range_from(headers).filter(|_| if_range_holds);
    let plan = |from| Plan {
        from,
        to: bytes,
        fail_after: None,
        pattern,
        mibps: pace(uri),
        sent: shared.sent.clone(),
    };
    match from {
        Some(from) if from >= bytes => {
            record(shared, uri, headers, StatusCode::RANGE_NOT_SATISFIABLE);
            (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{bytes}"))],
            )
                .into_response()
        }
        Some(from) => {
            record(shared, uri, headers, StatusCode::PARTIAL_CONTENT);
            (
                StatusCode::PARTIAL_CONTENT,
                [
                    (header::CONTENT_LENGTH, (bytes - from).to_string()),
                    (
                        header::CONTENT_RANGE,
                        format!("bytes {from}-{}/{bytes}", bytes - 1),
                    ),
                    (header::ETAG, etag.to_owned()),
                    (header::ACCEPT_RANGES, "bytes".to_owned()),
                ],
                body(plan(from)),
            )
                .into_response()
        }
        None => {
            record(shared, uri, headers, StatusCode::OK);
            (
                [
                    (header::CONTENT_LENGTH, bytes.to_string()),
                    (header::ETAG, etag.to_owned()),
                    (header::ACCEPT_RANGES, "bytes".to_owned()),
                ],
                body(plan(0)),
            )
                .into_response()
        }
    }
}

async fn ranged(
    State(shared): State<Arc<Shared>>,
    Path(bytes): Path<u64>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    ranged_response(&shared, &uri, &headers, bytes, "\"v1\"", pattern_byte)
}

async fn changes_once(
    State(shared): State<Arc<Shared>>,
    Path(bytes): Path<u64>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let first = shared.changes.fetch_add(1, Ordering::Relaxed) == 0;
    if first {
        ranged_response(&shared, &uri, &headers, bytes, "\"v1\"", pattern_byte)
    } else {
        ranged_response(&shared, &uri, &headers, bytes, "\"v2\"", pattern_byte_v2)
    }
}

async fn broken(
    State(shared): State<Arc<Shared>>,
    Path(bytes): Path<u64>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&shared, &uri, &headers, StatusCode::OK);
    let announced = bytes * 2;
    let plan = Plan {
        from: 0,
        to: announced,
        fail_after: Some(bytes),
        pattern: pattern_byte,
        mibps: pace(&uri),
        sent: shared.sent.clone(),
    };
    (
        [(header::CONTENT_LENGTH, announced.to_string())],
        body(plan),
    )
        .into_response()
}

async fn redirect() -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, "http://169.254.169.254/latest/meta-data/")],
    )
        .into_response()
}
