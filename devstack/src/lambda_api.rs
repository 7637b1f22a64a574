//! Lambda's control plane for the template's functions: `ListFunctions`,
//! `GetFunction` and `GetFunctionConfiguration`, answered from the
//! template as Lambda answers them for a deployed stack.
//!
//! Only `$LATEST` exists locally: a version or alias qualifier is
//! `ResourceNotFoundException`, as it is on AWS for one never published.
//! `CodeSize` and `CodeSha256` describe the binary the local stack runs
//! (AWS's describe the deployment zip), and `Code.Location` is its path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::template::FunctionSpec;

/// Functions per `ListFunctions` page, as Lambda returns them.
const PAGE: usize = 50;

/// The control plane's view of the stack's functions.
#[derive(Debug)]
pub struct ControlPlane {
    functions: Vec<FunctionSpec>,
    bin_dir: PathBuf,
    /// When the stack was provisioned, as `LastModified` gives it.
    last_modified: String,
    revision_id: String,
    /// Size and SHA-256 of each binary, computed once.
    code: Mutex<HashMap<String, (u64, String)>>,
}

impl ControlPlane {
    /// The functions of `specs`, built into `bin_dir`.
    pub fn new(specs: &[FunctionSpec], bin_dir: &Path) -> Self {
        Self {
            functions: specs.to_vec(),
            bin_dir: bin_dir.to_path_buf(),
            last_modified: chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                .to_string(),
            revision_id: uuid::Uuid::new_v4().to_string(),
            code: Mutex::new(HashMap::new()),
        }
    }

    /// `GET /2015-03-31/functions`: `Marker` is the index to start at.
    pub fn list(&self, query: &HashMap<String, String>) -> Response {
        let start: usize = query
            .get("Marker")
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        let max = query
            .get("MaxItems")
            .and_then(|m| m.parse().ok())
            .unwrap_or(PAGE)
            .clamp(1, PAGE);
        let page: Vec<Value> = self
            .functions
            .iter()
            .skip(start)
            .take(max)
            .map(|f| self.configuration(f, false))
            .collect();
        let mut body = json!({"Functions": page});
        if start + max < self.functions.len() {
            body["NextMarker"] = json!((start + max).to_string());
        }
        json_response(StatusCode::OK, &body)
    }

    /// `GET /2015-03-31/functions/{name}`.
    pub fn get(&self, name: &str, query: &HashMap<String, String>) -> Response {
        match self.find(name, query) {
            Ok(function) => json_response(
                StatusCode::OK,
                &json!({
                    "Configuration": self.configuration(function, true),
                    "Code": {
                        "RepositoryType": "S3",
                        "Location": format!("file://{}", self.binary(function).display()),
                    },
                    "Tags": {},
                }),
            ),
            Err(missing) => not_found(&missing),
        }
    }

    /// `GET /2015-03-31/functions/{name}/configuration`.
    pub fn get_configuration(&self, name: &str, query: &HashMap<String, String>) -> Response {
        match self.find(name, query) {
            Ok(function) => json_response(StatusCode::OK, &self.configuration(function, true)),
            Err(missing) => not_found(&missing),
        }
    }

    /// The function, or the message of Lambda's `ResourceNotFoundException`.
    fn find(&self, name: &str, query: &HashMap<String, String>) -> Result<&FunctionSpec, String> {
        let qualifier = query
            .get("Qualifier")
            .cloned()
            .or_else(|| qualifier_of(name).map(str::to_owned));
        let base = crate::template::function_name_from(name);
        let found = self
            .functions
            .iter()
            .find(|f| f.name == base)
            .filter(|_| qualifier.as_deref().is_none_or(|q| q == "$LATEST"));
        found.ok_or_else(|| {
            let arn = match self.functions.first() {
                Some(f) => {
                    let prefix = f.arn.rsplit_once(':').map_or("", |(p, _)| p);
                    format!("{prefix}:{base}")
                }
                None => base.to_owned(),
            };
            let arn = match &qualifier {
                Some(q) => format!("{arn}:{q}"),
                None => arn,
            };
            format!("Function not found: {arn}")
        })
    }

    fn binary(&self, function: &FunctionSpec) -> PathBuf {
        self.bin_dir.join(&function.binary)
    }

    fn code(&self, function: &FunctionSpec) -> (u64, String) {
        let mut code = self.code.lock().unwrap_or_else(|e| e.into_inner());
        code.entry(function.binary.clone())
            .or_insert_with(|| match std::fs::read(self.binary(function)) {
                Ok(bytes) => (bytes.len() as u64, BASE64.encode(Sha256::digest(&bytes))),
                Err(_) => (0, String::new()),
            })
            .clone()
    }

    /// `FunctionConfiguration`; `ListFunctions` leaves out the state fields.
    fn configuration(&self, function: &FunctionSpec, full: bool) -> Value {
        let (code_size, code_sha) = self.code(function);
        let mut logging = Map::new();
        logging.insert("LogFormat".into(), json!(function.logging.format.as_str()));
        if let Some(level) = function.logging.application_level {
            logging.insert("ApplicationLogLevel".into(), json!(level.as_str()));
        }
        if let Some(level) = function.logging.system_level {
            logging.insert("SystemLogLevel".into(), json!(level.as_str()));
        }
        logging.insert("LogGroup".into(), json!(function.logging.group));
        let mut configuration = json!({
            "FunctionName": function.name,
            "FunctionArn": function.arn,
            "Runtime": function.runtime,
            "Role": function.role_arn,
            "Handler": function.handler,
            "CodeSize": code_size,
            "Description": function.description,
            "Timeout": function.timeout.as_secs(),
            "MemorySize": function.memory_mb,
            "LastModified": self.last_modified,
            "CodeSha256": code_sha,
            "Version": "$LATEST",
            "Environment": {"Variables": function.environment},
            "TracingConfig": {"Mode": function.tracing},
            "RevisionId": self.revision_id,
            "PackageType": "Zip",
            "Architectures": function.architectures,
            "EphemeralStorage": {"Size": function.ephemeral_storage_mb},
            "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
            "LoggingConfig": logging,
        });
        if full {
            configuration["State"] = json!("Active");
            configuration["LastUpdateStatus"] = json!("Successful");
        }
        configuration
    }
}

/// The `:qualifier` of `name:qualifier` or of a qualified ARN.
fn qualifier_of(name_or_arn: &str) -> Option<&str> {
    let parts: Vec<&str> = name_or_arn.split(':').collect();
    match parts.iter().position(|p| *p == "function") {
        Some(i) => parts.get(i + 2).copied(),
        None if parts.len() == 2 => Some(parts[1]),
        None => None,
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A Lambda API error as the SDKs parse it (rest-json: `x-amzn-ErrorType`).
pub fn lambda_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let mut response = json_response(
        status,
        &json!({"Type": "User", "Message": message, "message": message}),
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(error_type) {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    // AWS sends a request ID with every answer, errors included; moto's
    // Step Functions engine reads it to build a Lambda error's cause, and
    // without it fails the execution with `States.Runtime` (KeyError).
    if let Ok(value) = axum::http::HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

fn not_found(message: &str) -> Response {
    lambda_error(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_a_type_and_a_request_id() {
        let response = lambda_error(StatusCode::BAD_GATEWAY, "ServiceException", "boom");
        assert_eq!(response.headers()["x-amzn-errortype"], "ServiceException");
        let id = response.headers()["x-amzn-requestid"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(id.len(), 36, "{id}");
    }

    #[test]
    fn qualifiers_come_from_names_and_arns() {
        assert_eq!(qualifier_of("f"), None);
        assert_eq!(qualifier_of("f:live"), Some("live"));
        assert_eq!(
            qualifier_of("arn:aws:lambda:eu-west-1:123456789012:function:f:$LATEST"),
            Some("$LATEST")
        );
        assert_eq!(
            qualifier_of("arn:aws:lambda:eu-west-1:123456789012:function:f"),
            None
        );
    }
}
