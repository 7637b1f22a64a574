//! The real AWS CLI (from the project venv) against a local stack: what a
//! user types, so the local stack is checked the way it is used.

use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use serde_json::Value;

fn aws_cli() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/aws"))
}

/// Runs `aws <args>` against a local stack's `endpoint`.
pub async fn aws(endpoint: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(aws_cli())
        .args(args)
        .args(["--endpoint-url", endpoint, "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_DEFAULT_REGION", crate::moto::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}: {e} (make test installs it)", aws_cli().display()))
}

/// `aws <args>` that must succeed, its JSON output parsed.
pub async fn aws_json(endpoint: &str, args: &[&str]) -> Value {
    let output = aws(endpoint, args).await;
    assert!(
        output.status.success(),
        "aws {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

/// What `aws lambda invoke` printed and the payload it wrote.
#[derive(Debug)]
pub struct Invoked {
    /// `StatusCode`, `FunctionError`, `LogResult`, ...
    pub meta: Value,
    /// The response payload.
    pub payload: Value,
}

impl Invoked {
    /// The decoded `LogResult` (`--log-type Tail`).
    pub fn log_tail(&self) -> String {
        let encoded = self.meta["LogResult"].as_str().unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_else(|e| panic!("LogResult is not base64 ({e}): {encoded}"));
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

static NEXT_FILE: AtomicUsize = AtomicUsize::new(0);

/// `aws lambda invoke` of `function` with `payload` and `extra` options; the
/// payload lands in a file, read back.
pub async fn invoke(endpoint: &str, function: &str, payload: &Value, extra: &[&str]) -> Invoked {
    let out_file = std::env::temp_dir().join(format!(
        "invoke-{}-{}.json",
        std::process::id(),
        NEXT_FILE.fetch_add(1, Ordering::Relaxed)
    ));
    let payload_text = payload.to_string();
    let mut args = vec![
        "lambda",
        "invoke",
        "--function-name",
        function,
        "--payload",
        // AWS CLI v1 sends a blob parameter as given.
        &payload_text,
    ];
    args.extend_from_slice(extra);
    let out_path = out_file.to_string_lossy().into_owned();
    args.push(&out_path);
    let meta = aws_json(endpoint, &args).await;
    let payload = std::fs::read(&out_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let _ = std::fs::remove_file(&out_file);
    Invoked { meta, payload }
}
