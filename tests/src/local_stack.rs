//! The local stack (`devstack`) started for one test: the project's template
//! (or a fixture template) against the binaries `make test` built, with its
//! own moto server and state folder. [`LocalStack::finish`] stops it and
//! checks every log line the functions wrote.

pub use crate::fixture::event;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use devstack::stack::{Options, Stack};
use devstack::workflow::{self, Finished};
use serde_json::Value;

use crate::moto::moto_binary;

/// How long a workflow may take in a test.
pub const WORKFLOW_LIMIT: Duration = Duration::from_secs(120);

/// E-mail addresses in the sample orders (`events/`): no log line may hold one.
pub const TEST_EMAILS: &[&str] = &[
    "zoe.mueller@example.com",
    "taro.yamada@example.jp",
    "billing@acme.example",
];

/// Keys every function log line has (the schema `common` writes).
const REQUIRED_KEYS: &[&str] = &["timestamp", "level", "message", "service", "function_name"];

/// A running local stack.
#[derive(Debug)]
pub struct LocalStack {
    /// The stack.
    pub stack: Stack,
    state_dir: PathBuf,
}

/// Builds the options for a test stack.
#[derive(Debug)]
pub struct Builder {
    options: Options,
}

/// The repository checkout this crate was built from.
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `target/<profile>`: where `make test` built the task binaries.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .unwrap_or_default()
}

impl Builder {
    /// The project's `template.yaml`.
    pub fn project() -> Self {
        Self::with_template(repo_root().join("template.yaml"))
    }

    /// The fixture template of the local stack's own tests.
    pub fn fixture() -> Self {
        Self::with_template(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/fixture-template.yaml"),
        )
    }

    fn with_template(template: PathBuf) -> Self {
        let state_dir = std::env::temp_dir().join(format!(
            "devstack-test-{}-{}",
            std::process::id(),
            uuid_like()
        ));
        Self {
            options: Options {
                template,
                stack_name: "test".to_owned(),
                region: crate::moto::REGION.to_owned(),
                port: 0,
                moto_binary: moto_binary(),
                bin_dir: bin_dir(),
                state_dir,
                parameters: BTreeMap::new(),
                function_env: HashMap::new(),
                function_timeouts: HashMap::new(),
                definitions: HashMap::new(),
                fault_proxy: false,
                moto_fixes: true,
            },
        }
    }

    /// A template parameter.
    #[must_use]
    pub fn parameter(mut self, name: &str, value: &str) -> Self {
        self.options
            .parameters
            .insert(name.to_owned(), value.to_owned());
        self
    }

    /// An environment variable for one function (logical ID).
    #[must_use]
    pub fn function_env(mut self, function: &str, name: &str, value: &str) -> Self {
        self.options
            .function_env
            .entry(function.to_owned())
            .or_default()
            .insert(name.to_owned(), value.to_owned());
        self
    }

    /// A `Timeout` override for one function (logical ID).
    #[must_use]
    pub fn function_timeout(mut self, function: &str, timeout: Duration) -> Self {
        self.options
            .function_timeouts
            .insert(function.to_owned(), timeout);
        self
    }

    /// Runs `path` (relative to the repository) instead of the template's
    /// definition of state machine `logical_id`.
    #[must_use]
    pub fn definition(mut self, logical_id: &str, path: &str) -> Self {
        self.options
            .definitions
            .insert(logical_id.to_owned(), repo_root().join(path));
        self
    }

    /// moto as released, without the local stack's fixes: what the
    /// fidelity tests compare with.
    #[must_use]
    pub fn plain_moto(mut self) -> Self {
        self.options.moto_fixes = false;
        self
    }

    /// The functions reach S3 and SQS through a fault proxy
    /// (`stack.stack.faults`).
    #[must_use]
    pub fn with_fault_proxy(mut self) -> Self {
        self.options.fault_proxy = true;
        self
    }

    /// Starts the stack.
    pub async fn start(self) -> LocalStack {
        let state_dir = self.options.state_dir.clone();
        let stack = Stack::start(self.options)
            .await
            .unwrap_or_else(|e| panic!("starting the local stack: {e:#}"));
        LocalStack { stack, state_dir }
    }
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}")
}

impl LocalStack {
    /// A Step Functions client for the stack.
    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(&self.stack.aws)
    }

    /// An SQS client for the stack.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.stack.aws)
    }

    /// An S3 client for the stack.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        devstack::clients::s3(&self.stack.aws)
    }

    /// Creates `bucket` and puts `objects` (key, body) into it, 16 at a
    /// time.
    pub async fn fill_bucket(
        &self,
        bucket: &str,
        objects: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) {
        use futures_util::StreamExt;
        let s3 = self.s3();
        devstack::provision::create_bucket(&s3, bucket, crate::moto::REGION)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let puts = objects.into_iter().map(|(key, body)| {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(body.into())
                .send()
        });
        let failed = futures_util::stream::iter(puts)
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .find_map(Result::err);
        if let Some(e) = failed {
            panic!("filling {bucket}: {e:?}");
        }
    }

    /// Runs `logical_id`'s state machine on `input` to its end.
    pub async fn run(&self, logical_id: &str, name: &str, input: &Value) -> Finished {
        let sfn = self.sfn();
        let arn = self
            .stack
            .state_machine_arn(logical_id)
            .unwrap_or_else(|e| panic!("{e}"));
        let execution = workflow::start(&sfn, &arn, name, input)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        self.wait(&execution).await
    }

    /// Waits for `execution` to end.
    pub async fn wait(&self, execution: &str) -> Finished {
        workflow::follow(&self.sfn(), execution, WORKFLOW_LIMIT, |_| {})
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Every message on the notification queue (left there).
    pub async fn notifications(&self) -> Vec<devstack::queue::Received> {
        let url = self
            .stack
            .queue_url("NotificationQueue")
            .unwrap_or_else(|e| panic!("{e}"));
        devstack::queue::peek_all(&self.sqs(), &url, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The parsed log lines of one correlation ID, oldest first.
    pub fn trail(&self, correlation_id: &str) -> Vec<Value> {
        let lines = self.stack.log_lines().unwrap_or_else(|e| panic!("{e:#}"));
        devstack::trail::select(lines.iter().map(String::as_str), correlation_id)
            .into_iter()
            .map(|t| t.line)
            .collect()
    }

    /// Stops the stack and checks every line its functions wrote: with the
    /// JSON log format, JSON with `common`'s schema, invocation lines with a
    /// correlation ID, and no e-mail address from the sample orders. Returns
    /// the JSON-format functions' lines.
    pub async fn finish(self) -> Vec<Value> {
        let log_dir = self.stack.log_dir.clone();
        let functions = self.stack.spec.functions.clone();
        self.stack.stop().await;
        let mut parsed = Vec::new();
        for function in &functions {
            let dir = log_dir.join(&function.name);
            let lines = devstack::trail::read_stream_lines(&dir)
                .unwrap_or_else(|e| panic!("reading {}: {e:#}", dir.display()));
            crate::log_scan::archive("local-stack", lines.iter().map(String::as_str));
            if function.logging.format == devstack::log_levels::LogFormat::Json {
                parsed.extend(check_log_lines(&lines));
            }
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
        parsed
    }
}

/// Asserts the log schema on every line; returns them parsed.
pub fn check_log_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|text| {
            for email in TEST_EMAILS {
                assert!(!text.contains(email), "a log line holds {email}: {text}");
            }
            let line: Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {text}"));
            if is_platform_record(&line) {
                return line;
            }
            for key in REQUIRED_KEYS {
                assert!(line.get(key).is_some(), "no `{key}` on a log line: {text}");
            }
            if line.get("function_request_id").is_some() {
                assert!(
                    line["correlation_id"].is_string(),
                    "an invocation's line without correlation_id: {text}"
                );
            }
            line
        })
        .collect()
}

/// Whether a line is one of Lambda's own `platform.*` records (JSON log
/// format), not a line the function wrote.
pub fn is_platform_record(line: &Value) -> bool {
    line["type"]
        .as_str()
        .is_some_and(|t| t.starts_with("platform."))
        && line.get("record").is_some()
}
