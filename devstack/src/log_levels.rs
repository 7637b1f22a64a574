//! Lambda's logging controls: the log format and the application and
//! system log levels of a function's `LoggingConfig`, and which lines each
//! level lets through.
//!
//! AWS: "When you select a log level, Lambda sends logs at that level and
//! lower" (TRACE is the most detail, FATAL the least); levels need the JSON
//! format; application lines are JSON objects whose `level` names one of
//! the six levels, and "if the level value field is invalid or missing,
//! Lambda will assign the log output the level INFO" (as it does when the
//! line has no valid RFC 3339 timestamp).

use std::fmt;

use anyhow::{Result, bail};
use serde_json::Value;

/// `LoggingConfig.LogFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Lines as the function writes them; no filtering; text platform lines.
    Text,
    /// Level filtering, and the platform writes JSON `platform.*` records.
    Json,
}

impl LogFormat {
    /// `JSON` or `Text` (any case), as the template gives it.
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            _ => bail!("LogFormat {text:?}: expected JSON or Text"),
        }
    }

    /// `AWS_LAMBDA_LOG_FORMAT` and the control plane's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "Text",
            Self::Json => "JSON",
        }
    }
}

/// A log level, most detail first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `TRACE`.
    Trace,
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARN`.
    Warn,
    /// `ERROR`.
    Error,
    /// `FATAL`.
    Fatal,
}

impl Level {
    /// One of the six names, in any case (AWS's own example logs `debug`).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_uppercase().as_str() {
            "TRACE" => Self::Trace,
            "DEBUG" => Self::Debug,
            "INFO" => Self::Info,
            "WARN" => Self::Warn,
            "ERROR" => Self::Error,
            "FATAL" => Self::Fatal,
            _ => return None,
        })
    }

    /// The name Lambda uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "TRACE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
            Self::Fatal => "FATAL",
        }
    }

    /// Whether a line at `self` is sent when the setting is `setting`.
    pub fn passes(self, setting: Level) -> bool {
        self >= setting
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The level Lambda gives an application line: its JSON `level` when the
/// line is a JSON object with a known level and a valid RFC 3339
/// `timestamp` (or `time`); INFO otherwise.
pub fn application_line_level(line: &str) -> Level {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(line) else {
        return Level::Info;
    };
    let valid_time = ["timestamp", "time"].iter().any(|key| {
        object
            .get(*key)
            .and_then(Value::as_str)
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
    });
    if !valid_time {
        return Level::Info;
    }
    object
        .get("level")
        .and_then(Value::as_str)
        .and_then(Level::parse)
        .unwrap_or(Level::Info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_from_most_detail_to_least() {
        assert!(Level::Warn.passes(Level::Info));
        assert!(Level::Info.passes(Level::Info));
        assert!(!Level::Debug.passes(Level::Info));
        assert!(!Level::Info.passes(Level::Warn));
        assert!(Level::Fatal.passes(Level::Error));
        assert_eq!(Level::parse("debug"), Some(Level::Debug));
        assert_eq!(Level::parse("WARNING"), None);
    }

    #[test]
    fn application_lines_without_a_known_level_or_a_valid_time_are_info() {
        let at = r#""timestamp":"2026-11-24T10:00:00.123Z""#;
        assert_eq!(
            application_line_level(&format!(r#"{{{at},"level":"WARN"}}"#)),
            Level::Warn
        );
        assert_eq!(
            application_line_level(&format!(r#"{{{at},"level":"debug"}}"#)),
            Level::Debug
        );
        assert_eq!(
            application_line_level(&format!(r#"{{{at},"level":"WARNING"}}"#)),
            Level::Info
        );
        assert_eq!(application_line_level(&format!("{{{at}}}")), Level::Info);
        assert_eq!(
            application_line_level(r#"{"level":"ERROR","timestamp":"yesterday"}"#),
            Level::Info
        );
        assert_eq!(
            application_line_level(r#"{"level":"ERROR"}"#),
            Level::Info,
            "no timestamp"
        );
        assert_eq!(application_line_level("plain text ERROR"), Level::Info);
        assert_eq!(
            application_line_level(r#"{"time":"2026-11-24T10:00:00Z","level":"ERROR"}"#),
            Level::Error
        );
    }
}
