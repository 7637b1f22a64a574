//! A local HTTP "export endpoint" that generates its data on the fly, so a
//! test can stream hundreds of MiB without storing them.
//!
//! - `GET /export/{bytes}`: exactly `bytes` bytes of a fixed pattern.
//! - `GET /broken/{bytes}`: announces `2 × bytes`, sends `bytes`, then fails.
//! - `GET /redirect`: a 302 to the instance metadata address.

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream;

const CHUNK: usize = 64 * 1024;

/// The byte at `offset` of every export.
pub fn pattern_byte(offset: u64) -> u8 {
    (offset.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// The export server on 127.0.0.1; stopped when dropped.
#[derive(Debug)]
pub struct ExportServer {
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl ExportServer {
    /// Starts the server on a free port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/export/{bytes}", get(export))
            .route("/broken/{bytes}", get(broken))
            .route("/redirect", get(redirect));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, server })
    }

    /// `127.0.0.1:<port>`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for ExportServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn body(total: u64, fail_after: Option<u64>) -> Body {
    let chunks = stream::unfold(0u64, move |offset| async move {
        if let Some(limit) = fail_after
            && offset >= limit
        {
            return Some((Err(std::io::Error::other("export crashed")), u64::MAX));
        }
        if offset >= total {
            return None;
        }
        let len = (total - offset).min(CHUNK as u64);
        let bytes: Vec<u8> = (offset..offset + len).map(pattern_byte).collect();
        Some((Ok(Bytes::from(bytes)), offset + len))
    });
    Body::from_stream(chunks)
}

async fn export(Path(bytes): Path<u64>) -> Response {
    (
        [(header::CONTENT_LENGTH, bytes.to_string())],
        body(bytes, None),
    )
        .into_response()
}

async fn broken(Path(bytes): Path<u64>) -> Response {
    let announced = bytes * 2;
    (
        [(header::CONTENT_LENGTH, announced.to_string())],
        body(announced, Some(bytes)),
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
