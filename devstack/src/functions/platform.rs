//! The lines Lambda itself writes into a function's log stream, and its
//! log-level filtering, from the function's `LoggingConfig`.
//!
//! Text format (AWS's own samples): `INIT_START` once per new process,
//! `START RequestId: <id> Version: $LATEST`, the function's lines, `END
//! RequestId: <id>`, and `REPORT RequestId: <id>` with tab-separated
//! `Duration`, `Billed Duration`, `Memory Size`, `Max Memory Used` and, on a
//! cold start, `Init Duration`; a timed-out or crashed invocation ends its
//! REPORT with `Status: timeout` or `Status: error` and `Error Type`.
//!
//! JSON format: `platform.initStart`, `platform.start` and
//! `platform.report` records (`{"time","type","record"}`), and at
//! `SystemLogLevel: DEBUG` also `platform.initRuntimeDone`,
//! `platform.initReport` and `platform.runtimeDone`. Records of a
//! successful phase are INFO (start, report, initStart) or DEBUG (the
//! others); records of a failed one are WARN. Application lines below
//! `ApplicationLogLevel` are dropped ([`crate::log_levels`]).

use std::time::Duration;

use serde_json::{Value, json};

use crate::log_levels::{Level, LogFormat, application_line_level};
use crate::logs::LogEvent;
use crate::template::FunctionSpec;

/// The local runtime's version, as `INIT_START` and `platform.initStart`
/// name it (AWS names its published runtime builds, `provided:al2023.v97`).
const RUNTIME_VERSION: &str = "al2023.local";

/// How an invocation ended, for the platform's records.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// The function answered with its response.
    Success,
    /// The function answered with an error (`/error`).
    Failure(String),
    /// The function ran past its `Timeout` and was stopped.
    Timeout,
    /// The process died (`Runtime.ExitError`).
    Error(String),
}

impl Status {
    fn name(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure(_) => "failure",
            Self::Timeout => "timeout",
            Self::Error(_) => "error",
        }
    }

    fn error_type(&self) -> Option<&str> {
        match self {
            Self::Failure(t) | Self::Error(t) => Some(t),
            Self::Success | Self::Timeout => None,
        }
    }

    fn level(&self) -> Level {
        if *self == Self::Success {
            Level::Info
        } else {
            Level::Warn
        }
    }
}

/// A process's init phase, written before its first invocation's START.
#[derive(Debug, Clone)]
pub struct InitPhase {
    /// When the process was started (ms since the epoch).
    pub started_ms: i64,
    /// From process start to its first `/next`.
    pub duration: Duration,
    /// What the process wrote before its first `/next`.
    pub lines: Vec<LogEvent>,
}

/// One invocation, as the platform reports it.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// The function.
    pub spec: &'a FunctionSpec,
    /// Lambda's request ID.
    pub request_id: &'a str,
    /// The X-Ray trace header the process was given.
    pub trace_id: &'a str,
    /// The log stream (a process's `instanceId`).
    pub stream: &'a str,
    /// When the process took the invocation (ms since the epoch).
    pub start_ms: i64,
    /// When it ended: the runtime asked for the next one, or was stopped.
    pub end_ms: i64,
    /// From hand-out to end, capped at the function's `Timeout`.
    pub duration: Duration,
    /// The process's peak resident memory so far, MB.
    pub max_memory_mb: u64,
    /// How it ended.
    pub status: Status,
    /// The response's size, for `platform.runtimeDone`.
    pub produced_bytes: usize,
}

/// The events an invocation adds to its log stream, in order, after
/// Lambda's filtering: the init phase (cold start), START, the function's
/// lines, END and REPORT.
pub fn invocation_events(
    call: &Invocation<'_>,
    init: Option<&InitPhase>,
    lines: Vec<LogEvent>,
) -> Vec<LogEvent> {
    let logging = &call.spec.logging;
    let mut events = Vec::new();
    let platform = |events: &mut Vec<LogEvent>, record: Record| {
        if let Some(event) = record.render(call.spec) {
            events.push(event);
        }
    };
    let keep = |line: &LogEvent| match (logging.format, logging.application_level) {
        (LogFormat::Json, Some(setting)) => application_line_level(&line.message).passes(setting),
        _ => true,
    };
    if let Some(init) = init {
        platform(&mut events, Record::InitStart { call, init });
        events.extend(init.lines.iter().filter(|l| keep(l)).cloned());
        platform(&mut events, Record::InitDone { init });
    }
    platform(&mut events, Record::Start { call });
    events.extend(lines.into_iter().filter(|l| keep(l)));
    platform(&mut events, Record::RuntimeDone { call });
    platform(&mut events, Record::End { call });
    platform(&mut events, Record::Report { call, init });
    events
}

/// One platform record, rendered per the function's log format.
enum Record<'a> {
    InitStart {
        call: &'a Invocation<'a>,
        init: &'a InitPhase,
    },
    InitDone {
        init: &'a InitPhase,
    },
    Start {
        call: &'a Invocation<'a>,
    },
    RuntimeDone {
        call: &'a Invocation<'a>,
    },
    End {
        call: &'a Invocation<'a>,
    },
    Report {
        call: &'a Invocation<'a>,
        init: Option<&'a InitPhase>,
    },
}

impl Record<'_> {
    /// The event, or `None` when this format has no such line or the
    /// system log level drops it.
    fn render(&self, spec: &FunctionSpec) -> Option<LogEvent> {
        match spec.logging.format {
            LogFormat::Text => self.text(spec),
            LogFormat::Json => {
                let (level, time_ms, kind, record) = self.json(spec)?;
                let setting = spec.logging.system_level.unwrap_or(Level::Info);
                level.passes(setting).then(|| LogEvent {
                    time_ms,
                    message: format!(
                        r#"{{"time":"{}","type":"{kind}","record":{record}}}"#,
                        iso_ms(time_ms)
                    ),
                })
            }
        }
    }

    fn text(&self, spec: &FunctionSpec) -> Option<LogEvent> {
        let (time_ms, message) = match self {
            Self::InitStart { init, .. } => (
                init.started_ms,
                format!(
                    "INIT_START Runtime Version: {}\tRuntime Version ARN: {}",
                    runtime_version(spec),
                    runtime_version_arn(spec)
                ),
            ),
            Self::Start { call } => (
                call.start_ms,
                format!("START RequestId: {} Version: $LATEST", call.request_id),
            ),
            Self::End { call } => (call.end_ms, format!("END RequestId: {}", call.request_id)),
            Self::Report { call, init } => (call.end_ms, report_line(call, *init)),
            Self::InitDone { .. } | Self::RuntimeDone { .. } => return None,
        };
        Some(LogEvent { time_ms, message })
    }

    fn json(&self, spec: &FunctionSpec) -> Option<(Level, i64, &'static str, Value)> {
        Some(match self {
            Self::InitStart { call, init } => (
                Level::Info,
                init.started_ms,
                "platform.initStart",
                json!({
                    "initializationType": "on-demand",
                    "phase": "init",
                    "runtimeVersion": runtime_version(spec),
                    "runtimeVersionArn": runtime_version_arn(spec),
                    "functionName": spec.name,
                    "functionVersion": "$LATEST",
                    "instanceId": call.stream,
                    "instanceMaxMemory": u64::from(spec.memory_mb) * 1024 * 1024,
                }),
            ),
            Self::InitDone { init } => (
                Level::Debug,
                init.started_ms + millis(init.duration),
                "platform.initReport",
                json!({
                    "initializationType": "on-demand",
                    "phase": "init",
                    "status": "success",
                    "metrics": {"durationMs": round3(init.duration)},
                }),
            ),
            Self::Start { call } => {
                let mut record = json!({
                    "requestId": call.request_id,
                    "functionArn": spec.arn,
                    "version": "$LATEST",
                });
                if spec.tracing == "Active" {
                    record["tracing"] = tracing(call.trace_id);
                }
                (Level::Info, call.start_ms, "platform.start", record)
            }
            Self::RuntimeDone { call } => {
                let mut record = json!({
                    "requestId": call.request_id,
                    "status": call.status.name(),
                    "metrics": {
                        "durationMs": round3(call.duration),
                        "producedBytes": call.produced_bytes,
                    },
                });
                if let Some(error_type) = call.status.error_type() {
                    record["errorType"] = json!(error_type);
                }
                let level = if call.status == Status::Success {
                    Level::Debug
                } else {
                    Level::Warn
                };
                (level, call.end_ms, "platform.runtimeDone", record)
            }
            Self::End { .. } => return None,
            Self::Report { call, init } => {
                let mut metrics = json!({
                    "durationMs": round3(call.duration),
                    "billedDurationMs": billed_ms(call.duration, *init),
                    "memorySizeMB": spec.memory_mb,
                    "maxMemoryUsedMB": call.max_memory_mb,
                });
                if let Some(init) = init {
                    metrics["initDurationMs"] = json!(round3(init.duration));
                }
                let mut record = json!({
                    "requestId": call.request_id,
                    "metrics": metrics,
                    "status": call.status.name(),
                });
                if let Some(error_type) = call.status.error_type() {
                    record["errorType"] = json!(error_type);
                }
                if spec.tracing == "Active" {
                    record["tracing"] = tracing(call.trace_id);
                }
                (call.status.level(), call.end_ms, "platform.report", record)
            }
        })
    }
}

/// The text REPORT line. Each field is followed by a tab; a `Status` part
/// (timeouts and crashes only) ends the line without one.
fn report_line(call: &Invocation<'_>, init: Option<&InitPhase>) -> String {
    let mut line = format!(
        "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
        call.request_id,
        call.duration.as_secs_f64() * 1000.0,
        billed_ms(call.duration, init),
        call.spec.memory_mb,
        call.max_memory_mb,
    );
    if let Some(init) = init {
        line.push_str(&format!(
            "Init Duration: {:.2} ms\t",
            init.duration.as_secs_f64() * 1000.0
        ));
    }
    match &call.status {
        Status::Timeout => line.push_str("Status: timeout"),
        Status::Error(error_type) => {
            line.push_str(&format!("Status: error\tError Type: {error_type}"));
        }
        Status::Success | Status::Failure(_) => {}
    }
    line
}

/// What Lambda bills a `provided` runtime: duration plus init, rounded up
/// to the millisecond.
fn billed_ms(duration: Duration, init: Option<&InitPhase>) -> u64 {
    let total = duration + init.map_or(Duration::ZERO, |i| i.duration);
    u64::try_from(total.as_micros().div_ceil(1000)).unwrap_or(u64::MAX)
}

fn round3(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn tracing(trace_id: &str) -> Value {
    json!({"type": "X-Amzn-Trace-Id", "value": trace_id})
}

fn runtime_version(spec: &FunctionSpec) -> String {
    let family = spec.runtime.split('.').next().unwrap_or("provided");
    format!("{family}:{RUNTIME_VERSION}")
}

fn runtime_version_arn(spec: &FunctionSpec) -> String {
    let region = spec.arn.split(':').nth(3).unwrap_or("local");
    format!("arn:aws:lambda:{region}::runtime:devstack-{RUNTIME_VERSION}")
}

/// `2026-11-24T10:00:00.123Z`.
pub fn iso_ms(time_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(time_ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::template::LoggingConfig;

    fn spec(format: LogFormat, system: Option<Level>) -> FunctionSpec {
        FunctionSpec {
            logical_id: "F".to_owned(),
            name: "f".to_owned(),
            arn: "arn:aws:lambda:eu-west-1:123456789012:function:f".to_owned(),
            binary: "f".to_owned(),
            timeout: Duration::from_secs(3),
            memory_mb: 128,
            environment: BTreeMap::new(),
            logging: LoggingConfig {
                format,
                application_level: (format == LogFormat::Json).then_some(Level::Info),
                system_level: system,
                group: "/aws/lambda/f".to_owned(),
            },
            runtime: "provided.al2023".to_owned(),
            handler: "bootstrap".to_owned(),
            architectures: vec!["arm64".to_owned()],
            description: String::new(),
            tracing: "PassThrough".to_owned(),
            ephemeral_storage_mb: 512,
            role_arn: String::new(),
        }
    }

    fn call<'a>(spec: &'a FunctionSpec, status: Status) -> Invocation<'a> {
        Invocation {
            spec,
            request_id: "id-1",
            trace_id: "Root=1-x",
            stream: "2026/12/01/[$LATEST]abc",
            start_ms: 1_000,
            end_ms: 1_050,
            duration: Duration::from_micros(38_660),
            max_memory_mb: 54,
            status,
            produced_bytes: 2,
        }
    }

    fn init() -> InitPhase {
        InitPhase {
            started_ms: 900,
            duration: Duration::from_micros(203_690),
            lines: vec![LogEvent::from_line("init line".to_owned(), 950)],
        }
    }

    #[test]
    fn text_lines_are_lambda_s() {
        let spec = spec(LogFormat::Text, None);
        let events = invocation_events(
            &call(&spec, Status::Success),
            Some(&init()),
            vec![LogEvent::from_line("hello".to_owned(), 1_010)],
        );
        let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
        assert!(messages[0].starts_with("INIT_START Runtime Version: provided:al2023.local\t"));
        assert_eq!(
            messages[1..],
            [
                "init line",
                "START RequestId: id-1 Version: $LATEST",
                "hello",
                "END RequestId: id-1",
                "REPORT RequestId: id-1\tDuration: 38.66 ms\tBilled Duration: 243 ms\tMemory Size: 128 MB\tMax Memory Used: 54 MB\tInit Duration: 203.69 ms\t",
            ]
        );
        let timed_out = report_line(&call(&spec, Status::Timeout), None);
        assert!(timed_out.ends_with("Max Memory Used: 54 MB\tStatus: timeout"));
        let crashed = report_line(
            &call(&spec, Status::Error("Runtime.ExitError".into())),
            None,
        );
        assert!(crashed.ends_with("\tStatus: error\tError Type: Runtime.ExitError"));
        let failed = report_line(&call(&spec, Status::Failure("Task.Failed".into())), None);
        assert!(failed.ends_with("Max Memory Used: 54 MB\t"), "{failed}");
    }

    #[test]
    fn json_records_follow_the_system_log_level() {
        let debug = spec(LogFormat::Json, Some(Level::Debug));
        let all = invocation_events(&call(&debug, Status::Success), Some(&init()), Vec::new());
        let kinds: Vec<String> = all
            .iter()
            .map(|e| {
                serde_json::from_str::<Value>(&e.message).unwrap_or_default()["type"]
                    .as_str()
                    .unwrap_or("-")
                    .to_owned()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "platform.initStart",
                "-",
                "platform.initReport",
                "platform.start",
                "platform.runtimeDone",
                "platform.report"
            ]
        );
        let report: Value = serde_json::from_str(&all[5].message).unwrap_or_default();
        assert_eq!(report["time"], "1970-01-01T00:00:01.050Z");
        assert_eq!(
            report["record"]["metrics"],
            json!({"durationMs": 38.66, "billedDurationMs": 243, "memorySizeMB": 128,
                   "maxMemoryUsedMB": 54, "initDurationMs": 203.69})
        );
        assert!(all[0].message.starts_with(r#"{"time":"#), "AWS's key order");

        let warn = spec(LogFormat::Json, Some(Level::Warn));
        assert!(invocation_events(&call(&warn, Status::Success), None, Vec::new()).is_empty());
        let failed = invocation_events(&call(&warn, Status::Timeout), None, Vec::new());
        assert_eq!(
            failed.len(),
            2,
            "runtimeDone and report of a failure are WARN"
        );
    }
}
