//! A fault-injecting HTTP proxy for the S3 and SQS traffic of the tasks:
//! answers chosen requests with `503 SlowDown` or `500 InternalError`,
//! resets their connections (before or after the request reached the
//! service), or holds them before passing them on.
//!
//! Everything else goes through unchanged to the upstream (the moto server).
//! Only the tasks are pointed at the proxy (`AWS_ENDPOINT_URL_S3`,
//! `AWS_ENDPOINT_URL_SQS`); tests keep checking the emulated services
//! directly, so a fault never hides what was really stored.
//!
//! Requests are matched by a substring of their description,
//! `"<METHOD> <path?query> <x-amz-target>"`. S3 operations show as REST
//! calls (`"PUT /bucket/invoices/"`, `"partNumber="` for UploadPart,
//! `"POST /bucket/key?uploadId="` for CompleteMultipartUpload); SQS's JSON
//! protocol names the operation (`"AmazonSQS.SendMessage"`).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `503 SlowDown`, S3's throttling answer (SQS gets a 503 too).
    SlowDown,
    /// `500 InternalError`.
    InternalError,
    /// The connection is reset before the request reaches the service.
    Reset,
    /// The request reaches the service, then the connection is reset
    /// instead of answering: the client cannot know it succeeded.
    LostResponse,
    /// The request is held this long, then passed on.
    Stall(Duration),
}

/// Which requests get a fault, and how many of them.
#[derive(Debug, Clone)]
pub struct Rule {
    /// A substring of the request's description; empty matches every request.
    pub pattern: String,
    /// The fault.
    pub fault: Fault,
    /// How many more matching requests get it; `None` until cleared.
    pub remaining: Option<u32>,
}

impl Rule {
    /// Every matching request gets `fault` until [`FaultProxy::clear`].
    pub fn always(pattern: &str, fault: Fault) -> Self {
        Self {
            pattern: pattern.to_owned(),
            fault,
            remaining: None,
        }
    }

    /// The next `count` matching requests get `fault`.
    pub fn times(count: u32, pattern: &str, fault: Fault) -> Self {
        Self {
            pattern: pattern.to_owned(),
            fault,
            remaining: Some(count),
        }
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `"<METHOD> <path?query> <x-amz-target>"`.
    pub request: String,
    /// The fault it got, if any.
    pub fault: Option<Fault>,
}

#[derive(Debug, Default)]
struct Plan {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

impl Plan {
    /// The fault for `request`, counting it down; the first matching rule
    /// with faults left wins.
    fn take(&mut self, request: &str) -> Option<Fault> {
        let rule = self.rules.iter_mut().find(|r| {
            request.contains(r.pattern.as_str()) && r.remaining.is_none_or(|left| left > 0)
        });
        let fault = rule.map(|r| {
            if let Some(left) = r.remaining.as_mut() {
                *left -= 1;
            }
            r.fault
        });
        self.seen.push(Seen {
            request: request.to_owned(),
            fault,
        });
        fault
    }
}

/// A running proxy on 127.0.0.1. Stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// Its base URL, for the tasks' endpoint variables.
    pub url: String,
    plan: Arc<Mutex<Plan>>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (a base URL such as moto's).
    pub async fn start(upstream: &str) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the fault proxy")?;
        let url = format!("http://{}", listener.local_addr()?);
        let plan = Arc::new(Mutex::new(Plan::default()));
        let shared = Shared {
            plan: plan.clone(),
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: crate::clients::http(),
        };
        let accept = tokio::spawn(accept_loop(listener, Arc::new(shared)));
        Ok(Self { url, plan, accept })
    }

    /// Adds a rule after the existing ones.
    pub fn inject(&self, rule: Rule) {
        lock(&self.plan).rules.push(rule);
    }

    /// Removes every rule: from now on everything passes.
    pub fn clear(&self) {
        lock(&self.plan).rules.clear();
    }

    /// Every request seen so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.plan).seen.clone()
    }

    /// How many requests got a fault so far.
    pub fn faults_applied(&self) -> usize {
        lock(&self.plan)
            .seen
            .iter()
            .filter(|s| s.fault.is_some())
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A poisoned lock only means a test thread panicked while holding it; the
/// plan itself is still consistent.
fn lock(plan: &Mutex<Plan>) -> MutexGuard<'_, Plan> {
    plan.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug)]
struct Shared {
    plan: Arc<Mutex<Plan>>,
    upstream: String,
    client: reqwest::Client,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(stream, shared).await {
                eprintln!("devstack: fault proxy connection from {peer}: {e:#}");
            }
        });
    }
}

/// Serves one connection. A second handle on the socket lets a fault set
/// `SO_LINGER` to zero, so closing it sends a TCP reset, as a failing load
/// balancer would, rather than an orderly end.
async fn serve(stream: TcpStream, shared: Arc<Shared>) -> Result<()> {
    let std_stream = stream.into_std()?;
    let socket = Arc::new(std_stream.try_clone()?);
    let stream = TcpStream::from_std(std_stream)?;
    let service = service_fn(move |request| {
        let shared = shared.clone();
        let socket = socket.clone();
        async move { handle(request, &shared, &socket).await }
    });
    // A reset ends the connection with an error on purpose: not worth a line.
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
    Ok(())
}

type Answer = Response<Full<Bytes>>;

async fn handle(
    request: Request<Incoming>,
    shared: &Shared,
    socket: &std::net::TcpStream,
) -> Result<Answer, std::io::Error> {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let description = format!(
        "{} {} {target}",
        request.method(),
        request.uri().path_and_query().map_or("/", |p| p.as_str())
    );
    let fault = lock(&shared.plan).take(&description);
    let json = !target.is_empty();
    match fault {
        Some(Fault::SlowDown) => return Ok(error_answer(StatusCode::SERVICE_UNAVAILABLE, json)),
        Some(Fault::InternalError) => {
            return Ok(error_answer(StatusCode::INTERNAL_SERVER_ERROR, json));
        }
        Some(Fault::Reset) => return Err(reset(socket)),
        Some(Fault::Stall(hold)) => tokio::time::sleep(hold).await,
        Some(Fault::LostResponse) | None => {}
    }
    let answer = match forward(request, shared).await {
        Ok(answer) => answer,
        Err(e) => error_text(StatusCode::BAD_GATEWAY, &format!("fault proxy: {e:#}")),
    };
    if fault == Some(Fault::LostResponse) {
        return Err(reset(socket));
    }
    Ok(answer)
}

/// Makes the coming close a reset and returns the error that makes hyper
/// drop the connection without an answer.
fn reset(socket: &std::net::TcpStream) -> std::io::Error {
    if let Err(e) = socket2::SockRef::from(socket).set_linger(Some(Duration::ZERO)) {
        eprintln!("devstack: fault proxy: SO_LINGER: {e}");
    }
    std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset")
}

/// S3 speaks XML, SQS's JSON protocol JSON; both SDKs retry 500 and 503
/// whatever the body says, but a realistic body keeps their error parsing
/// on its usual path.
fn error_answer(status: StatusCode, json: bool) -> Answer {
    let (code, message) = if status == StatusCode::SERVICE_UNAVAILABLE {
        ("SlowDown", "Please reduce your request rate.")
    } else {
        (
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    };
    let (content_type, body) = if json {
        (
            "application/x-amz-json-1.0",
            serde_json::json!({"__type": format!("com.amazonaws.sqs#{code}"), "message": message})
                .to_string(),
        )
    } else {
        (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>FAULTPROXY</RequestId></Error>"
            ),
        )
    };
    let mut answer = Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() = status;
    answer
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    answer
}

fn error_text(status: StatusCode, text: &str) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(text.to_owned())));
    *answer.status_mut() = status;
    answer
}

/// Connection headers, and `Host`: reqwest sets it for the upstream.
fn hop_by_hop(name: &HeaderName) -> bool {
    crate::gateway::hop_by_hop(name) || name == "host"
}

/// Passes the request on, whole: buffering keeps a lost response exact (the
/// service has the whole request before the reset).
async fn forward(request: Request<Incoming>, shared: &Shared) -> Result<Answer> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .context("reading the request")?
        .to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = shared
        .client
        .request(parts.method, format!("{}{path}", shared.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let upstream = outgoing
        .send()
        .await
        .context("the upstream did not answer")?;
    let mut answer = Response::builder().status(upstream.status());
    for (name, value) in upstream.headers() {
        if !hop_by_hop(name) {
            answer = answer.header(name, value);
        }
    }
    let body = upstream
        .bytes()
        .await
        .context("reading the upstream answer")?;
    answer.body(Full::new(body)).context("building the answer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_count_down_and_the_first_match_wins() {
        let mut plan = Plan::default();
        plan.rules.push(Rule::times(2, "PUT /b/", Fault::SlowDown));
        plan.rules.push(Rule::always("PUT", Fault::InternalError));
        assert_eq!(plan.take("PUT /b/k "), Some(Fault::SlowDown));
        assert_eq!(plan.take("GET /b/k "), None);
        assert_eq!(plan.take("PUT /b/k "), Some(Fault::SlowDown));
        assert_eq!(plan.take("PUT /b/k "), Some(Fault::InternalError));
        assert_eq!(plan.seen.len(), 4);
        plan.rules.clear();
        assert_eq!(plan.take("PUT /b/k "), None);
    }
}
