//! The one local endpoint: the Lambda Invoke API for the template's
//! functions, and every other AWS request passed on to the moto server.
//!
//! SDKs, the AWS CLI and moto's Step Functions engine (whose Lambda calls go
//! to `localhost:$MOTO_PORT`) all talk to this endpoint, so a state machine's
//! Lambda tasks reach the real binaries and everything else reaches moto.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::functions::{Functions, Outcome, PAYLOAD_LIMIT, Pool};
use crate::lambda_api::{ControlPlane, lambda_error};
use crate::template::{StackSpec, function_name_from};

/// What the endpoint's handlers share.
#[derive(Debug)]
pub struct Gateway {
    /// The resolved template.
    pub spec: StackSpec,
    /// The function processes.
    pub functions: Functions,
    /// Lambda's control plane for the functions.
    pub control: ControlPlane,
    /// Base URL of the moto server.
    pub moto_url: String,
    /// Client for passing requests on to moto.
    pub client: reqwest::Client,
}

/// The endpoint's routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/2015-03-31/functions/{function}/invocations", post(invoke))
        // ListFunctions: SDKs before mid-2025 send the trailing slash.
        .route("/2015-03-31/functions", get(list_functions))
        .route("/2015-03-31/functions/", get(list_functions))
        .route("/2015-03-31/functions/{function}", get(get_function))
        .route(
            "/2015-03-31/functions/{function}/configuration",
            get(get_function_configuration),
        )
        .fallback(forward)
        .with_state(gateway)
}

type Params = Query<HashMap<String, String>>;

async fn list_functions(State(gateway): State<Arc<Gateway>>, Query(query): Params) -> Response {
    gateway.control.list(&query)
}

async fn get_function(
    State(gateway): State<Arc<Gateway>>,
    Path(function): Path<String>,
    Query(query): Params,
) -> Response {
    gateway.control.get(&function, &query)
}

async fn get_function_configuration(
    State(gateway): State<Arc<Gateway>>,
    Path(function): Path<String>,
    Query(query): Params,
) -> Response {
    gateway.control.get_configuration(&function, &query)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `POST /2015-03-31/functions/{name or ARN}/invocations`.
async fn invoke(
    State(gateway): State<Arc<Gateway>>,
    Path(function): Path<String>,
    headers: HeaderMap,
    payload: Bytes,
) -> Response {
    let name = function_name_from(&function);
    let Some(pool) = gateway
        .spec
        .function(name)
        .and_then(|spec| gateway.functions.get(&spec.name))
    else {
        let arn = format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            gateway.spec.placement.region, gateway.spec.placement.account
        );
        return lambda_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {arn}"),
        );
    };
    if payload.len() > PAYLOAD_LIMIT {
        return lambda_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            &format!(
                "Request must be smaller than {PAYLOAD_LIMIT} bytes for the InvokeFunction operation"
            ),
        );
    }
    let payload = if payload.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        payload
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(&payload).is_err() {
        return lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json",
        );
    }
    let client_context = header(&headers, "x-amz-client-context")
        .and_then(|c| BASE64.decode(c).ok())
        .map(|c| String::from_utf8_lossy(&c).into_owned());
    match header(&headers, "x-amz-invocation-type").unwrap_or("RequestResponse") {
        "RequestResponse" => {}
        "Event" => {
            let request_id = uuid::Uuid::new_v4().to_string();
            tokio::spawn(async move {
                if let Err(e) = pool.invoke(payload, client_context).await {
                    eprintln!("devstack: event invocation of {}: {e:#}", pool.arn());
                }
            });
            return with_request_id(StatusCode::ACCEPTED.into_response(), &request_id);
        }
        "DryRun" => return StatusCode::NO_CONTENT.into_response(),
        other => {
            return lambda_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &format!("Unsupported invocation type {other}"),
            );
        }
    }
    let tail = header(&headers, "x-amz-log-type").is_some_and(|t| t.eq_ignore_ascii_case("tail"));
    respond(&pool, pool.invoke(payload, client_context).await, tail)
}

fn respond(
    pool: &Pool,
    invoked: anyhow::Result<crate::functions::Invoked>,
    tail: bool,
) -> Response {
    let invoked = match invoked {
        Ok(invoked) => invoked,
        Err(e) => {
            return lambda_error(
                StatusCode::BAD_GATEWAY,
                "ServiceException",
                &format!("could not run {}: {e:#}", pool.arn()),
            );
        }
    };
    let (body, function_error) = match invoked.outcome {
        Outcome::Success(body) => (body, false),
        Outcome::FunctionError(body) => (body, true),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "x-amz-executed-version",
        HeaderValue::from_static("$LATEST"),
    );
    if function_error {
        headers.insert(
            "x-amz-function-error",
            HeaderValue::from_static("Unhandled"),
        );
    }
    if tail && let Ok(value) = HeaderValue::from_str(&BASE64.encode(invoked.log_tail)) {
        headers.insert("x-amz-log-result", value);
    }
    with_request_id(response, &invoked.request_id)
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

/// Headers that belong to one connection, not to the request.
pub(crate) fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            // hyper answers `100-continue` itself while reading the body.
            | "expect"
    )
}

/// Passes any other request on to moto, streaming both bodies. The `Host`
/// header is kept, so URLs moto builds (queue URLs) point at this endpoint.
async fn forward(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut outgoing = gateway
        .client
        .request(parts.method, format!("{}{path}", gateway.moto_url))
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    match outgoing.send().await {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if !hop_by_hop(name) {
                    response = response.header(name, value);
                }
            }
            response
                .body(Body::from_stream(answer.bytes_stream()))
                .unwrap_or_else(|e| {
                    (StatusCode::BAD_GATEWAY, format!("devstack: {e}")).into_response()
                })
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("devstack: the moto server did not answer: {e}"),
        )
            .into_response(),
    }
}
