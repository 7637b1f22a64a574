//! The environment of a function process, as Lambda gives it to a
//! `provided.al2023` runtime.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::log_levels::LogFormat;
use crate::template::FunctionSpec;

/// Everything every function process gets besides its template settings.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Where the task binaries are (`target/debug`).
    pub bin_dir: PathBuf,
    /// Where the local copies of the log streams go.
    pub log_dir: PathBuf,
    /// Where what each process writes is captured before Lambda's
    /// filtering and platform lines.
    pub capture_dir: PathBuf,
    /// Region the functions run in.
    pub region: String,
    /// Extra environment for every function (endpoint, local credentials).
    pub environment: BTreeMap<String, String>,
    /// Per-function overrides, by logical ID or name (test switches).
    pub overrides: HashMap<String, BTreeMap<String, String>>,
}

/// The environment Lambda gives a `provided.al2023` process, then the
/// template's variables, then the local endpoint settings, then overrides.
pub fn lambda_environment(
    spec: &FunctionSpec,
    launch: &Launch,
    log_stream: &str,
    runtime_api: &str,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        env.insert(k.to_owned(), v.to_owned());
    };
    set("PATH", "/usr/local/bin:/usr/bin:/bin");
    set("TZ", ":UTC");
    set("LANG", "en_US.UTF-8");
    set("_HANDLER", &spec.handler);
    set("AWS_REGION", &launch.region);
    set("AWS_DEFAULT_REGION", &launch.region);
    set("AWS_LAMBDA_FUNCTION_NAME", &spec.name);
    set(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        &spec.memory_mb.to_string(),
    );
    set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
    set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand");
    set("AWS_LAMBDA_LOG_GROUP_NAME", &spec.logging.group);
    set("AWS_LAMBDA_LOG_STREAM_NAME", log_stream);
    set("AWS_LAMBDA_RUNTIME_API", runtime_api);
    set("LAMBDA_TASK_ROOT", &launch.bin_dir.to_string_lossy());
    set("LAMBDA_RUNTIME_DIR", &launch.bin_dir.to_string_lossy());
    set("AWS_LAMBDA_LOG_FORMAT", spec.logging.format.as_str());
    // The application level reaches the runtime only with the JSON format.
    if spec.logging.format == LogFormat::Json
        && let Some(level) = spec.logging.application_level
    {
        set("AWS_LAMBDA_LOG_LEVEL", level.as_str());
    }
    env.extend(spec.environment.clone());
    env.extend(launch.environment.clone());
    for key in [&spec.logical_id, &spec.name] {
        if let Some(extra) = launch.overrides.get(key) {
            env.extend(extra.clone());
        }
    }
    env
}

/// An X-Ray trace header for one invocation (`Root=1-<time>-<id>;...`).
pub fn trace_header() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{now:08x}-{};Parent={};Sampled=1",
        &id[..24],
        &id[16..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_levels::Level;
    use crate::template::StackSpec;

    #[test]
    fn the_log_format_is_always_set_and_the_level_only_with_json() {
        let template: serde_norway::Value = serde_norway::from_str(
            "Resources:\n  J:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildProperties: {Binary: j}}\n    Properties:\n      LoggingConfig: {LogFormat: JSON, ApplicationLogLevel: WARN}\n  T:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildProperties: {Binary: t}}\n    Properties: {}\n",
        )
        .unwrap_or(serde_norway::Value::Null);
        let placement = crate::template::Placement {
            stack_name: "s".to_owned(),
            region: "eu-west-1".to_owned(),
            account: "123456789012".to_owned(),
            endpoint: "http://127.0.0.1:1".to_owned(),
        };
        let spec = StackSpec::from_yaml(
            &template,
            std::path::Path::new("."),
            placement,
            &BTreeMap::new(),
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        let launch = Launch {
            bin_dir: PathBuf::from("bin"),
            log_dir: PathBuf::from("logs"),
            capture_dir: PathBuf::from("capture"),
            region: "eu-west-1".to_owned(),
            environment: BTreeMap::new(),
            overrides: HashMap::new(),
        };
        let json = lambda_environment(&spec.functions[0], &launch, "stream", "api");
        assert_eq!(json["AWS_LAMBDA_LOG_FORMAT"], "JSON");
        assert_eq!(json["AWS_LAMBDA_LOG_LEVEL"], Level::Warn.as_str());
        assert_eq!(json["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/s-J");
        let text = lambda_environment(&spec.functions[1], &launch, "stream", "api");
        assert_eq!(text["AWS_LAMBDA_LOG_FORMAT"], "Text");
        assert!(!text.contains_key("AWS_LAMBDA_LOG_LEVEL"));
    }

    #[test]
    fn trace_headers_have_xray_shape() {
        let header = trace_header();
        let root = header
            .strip_prefix("Root=1-")
            .and_then(|r| r.split(';').next())
            .unwrap_or_default();
        let (time, id) = root.split_once('-').unwrap_or_default();
        assert_eq!((time.len(), id.len()), (8, 24), "{header}");
        assert!(header.ends_with(";Sampled=1"));
    }
}
