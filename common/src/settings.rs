//! Settings read once at cold start from the environment.
//!
//! | variable                      | default              | meaning                                                   |
//! |-------------------------------|----------------------|-----------------------------------------------------------|
//! | `AWS_LAMBDA_LOG_FORMAT`       | `Text`               | `JSON` for one JSON object per line (set by `LoggingConfig`) |
//! | `AWS_LAMBDA_LOG_LEVEL`        | `INFO`               | `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` (`FATAL` = `ERROR`) |
//! | `TASK_DEADLINE_MARGIN_MS`     | `1000`               | the deadline guard fires this long before the Lambda deadline |
//! | `METRICS_NAMESPACE`           | `StepFunctionsTasks` | CloudWatch namespace of the end line's EMF metrics        |
//! | `S3_FORCE_PATH_STYLE`         | `false`              | `true` for path-style S3 URLs (local emulators)           |
//! | `AWS_ATTEMPT_TIMEOUT_MS`      | `30000`              | how long one AWS request attempt may take before the SDK retries it |
//! | `SENTRY_DSN`                  | unset                | Sentry is off unless set (and non-empty)                  |
//! | `SENTRY_ENVIRONMENT`          | `production`         | Sentry `environment`                                      |
//! | `SENTRY_RELEASE`              | `<task>@<version>`   | Sentry `release`                                          |
//! | `SENTRY_FLUSH_TIMEOUT_MS`     | `2000`               | upper bound of the per-invocation flush                   |
//! | `SENTRY_REPORT_INVALID_INPUT` | `false`              | also report `Task.InvalidInput` errors                    |
//!
//! AWS endpoints, region and credentials come from the SDK's own variables
//! (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, `AWS_REGION`, ...).

use std::time::Duration;

use tracing::Level;

/// Everything `common` reads from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// JSON lines (`true`) or readable text.
    pub json_logs: bool,
    /// The most verbose level written.
    pub log_level: Level,
    /// How long before the Lambda deadline the guard fires.
    pub deadline_margin: Duration,
    /// CloudWatch namespace for the end line's metrics.
    pub metrics_namespace: String,
    /// Path-style S3 addressing.
    pub s3_force_path_style: bool,
    /// How long one AWS request attempt may take before the SDK gives up
    /// on it and retries: a stalled connection costs this, not the deadline.
    pub aws_attempt_timeout: Duration,
    /// The Sentry DSN; `None` turns Sentry off.
    pub sentry_dsn: Option<String>,
    /// Sentry `environment`.
    pub sentry_environment: String,
    /// Sentry `release`; `None` means `<task>@<crate version>`.
    pub sentry_release: Option<String>,
    /// Upper bound of the Sentry flush after each invocation.
    pub sentry_flush_timeout: Duration,
    /// Whether `Task.InvalidInput` errors are reported to Sentry.
    pub sentry_report_invalid_input: bool,
}

/// A setting that could not be understood; fails the cold start loudly
/// rather than running with a silent default.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("environment variable {name}: {reason}")]
pub struct SettingsError {
    name: &'static str,
    reason: String,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        Ok(Self {
            json_logs: get("AWS_LAMBDA_LOG_FORMAT").is_some_and(|v| v.eq_ignore_ascii_case("json")),
            log_level: match get("AWS_LAMBDA_LOG_LEVEL") {
                None => Level::INFO,
                Some(v) => parse_level(&v).ok_or_else(|| SettingsError {
                    name: "AWS_LAMBDA_LOG_LEVEL",
                    reason: "expected TRACE, DEBUG, INFO, WARN, ERROR or FATAL".into(),
                })?,
            },
            deadline_margin: millis(&get, "TASK_DEADLINE_MARGIN_MS", 1000)?,
            metrics_namespace: get("METRICS_NAMESPACE")
                .unwrap_or_else(|| "StepFunctionsTasks".to_owned()),
            s3_force_path_style: flag(&get, "S3_FORCE_PATH_STYLE")?,
            aws_attempt_timeout: millis(&get, "AWS_ATTEMPT_TIMEOUT_MS", 30_000)?,
            sentry_dsn: get("SENTRY_DSN"),
            sentry_environment: get("SENTRY_ENVIRONMENT")
                .unwrap_or_else(|| "production".to_owned()),
            sentry_release: get("SENTRY_RELEASE"),
            sentry_flush_timeout: millis(&get, "SENTRY_FLUSH_TIMEOUT_MS", 2000)?,
            sentry_report_invalid_input: flag(&get, "SENTRY_REPORT_INVALID_INPUT")?,
        })
    }
}

fn parse_level(v: &str) -> Option<Level> {
    match v.to_ascii_uppercase().as_str() {
        "TRACE" => Some(Level::TRACE),
        "DEBUG" => Some(Level::DEBUG),
        "INFO" => Some(Level::INFO),
        "WARN" | "WARNING" => Some(Level::WARN),
        "ERROR" | "FATAL" => Some(Level::ERROR),
        _ => None,
    }
}

fn millis(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<Duration, SettingsError> {
    let ms = match get(name) {
        None => default,
        Some(v) => v.trim().parse().map_err(|_| SettingsError {
            name,
            reason: "expected a whole number of milliseconds".into(),
        })?,
    };
    Ok(Duration::from_millis(ms))
}

fn flag(get: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<bool, SettingsError> {
    match get(name).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(_) => Err(SettingsError {
            name,
            reason: "expected true or false".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let s = settings(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.json_logs);
        assert_eq!(s.log_level, Level::INFO);
        assert_eq!(s.deadline_margin, Duration::from_secs(1));
        assert_eq!(s.sentry_dsn, None);
        assert_eq!(s.sentry_flush_timeout, Duration::from_secs(2));
        assert!(!s.s3_force_path_style);
        assert!(!s.sentry_report_invalid_input);
        assert_eq!(s.aws_attempt_timeout, Duration::from_secs(30));
    }

    #[test]
    fn lambda_logging_config_and_overrides() {
        let s = settings(&[
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "warn"),
            ("TASK_DEADLINE_MARGIN_MS", "250"),
            ("S3_FORCE_PATH_STYLE", "true"),
            ("AWS_ATTEMPT_TIMEOUT_MS", "1500"),
            ("SENTRY_DSN", ""),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(s.json_logs);
        assert_eq!(s.log_level, Level::WARN);
        assert_eq!(s.deadline_margin, Duration::from_millis(250));
        assert!(s.s3_force_path_style);
        assert_eq!(s.aws_attempt_timeout, Duration::from_millis(1500));
        assert_eq!(s.sentry_dsn, None, "an empty DSN means Sentry off");
    }

    #[test]
    fn nonsense_fails_loudly() {
        assert!(settings(&[("AWS_LAMBDA_LOG_LEVEL", "LOUD")]).is_err());
        assert!(settings(&[("TASK_DEADLINE_MARGIN_MS", "1s")]).is_err());
        assert!(settings(&[("S3_FORCE_PATH_STYLE", "maybe")]).is_err());
    }
}
