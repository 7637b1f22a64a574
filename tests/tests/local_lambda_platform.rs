//! Lambda's own side of a function, on the local stack, through the real
//! AWS CLI: the control plane (`list-functions`, `get-function`,
//! `get-function-configuration`), the platform lines every log stream and
//! log tail carries (`START`/`END`/`REPORT` or `platform.*` records), and
//! the log-level filtering of `LoggingConfig`.

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tests::aws_cli::{aws, aws_json, invoke};
use tests::local_stack::Builder;

const JSON_FUNCTION: &str = "test-fixture";
const TEXT_FUNCTION: &str = "test-fixture-text";
const QUIET_FUNCTION: &str = "test-fixture-quiet";

fn echo(text: &str) -> Value {
    json!({"correlation_id": "platform-1", "input": {"action": "echo", "text": text}})
}

/// The tail's lines parsed as JSON (every line is, with the JSON format).
fn records(tail: &str) -> Vec<Value> {
    tail.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn kinds(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            r["type"]
                .as_str()
                .or(r["message"].as_str())
                .unwrap_or("?")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_control_plane_describes_the_template_s_functions() {
    let stack = Builder::fixture().start().await;
    let listed = aws_json(&stack.stack.endpoint, &["lambda", "list-functions"]).await;
    let functions = listed["Functions"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = functions
        .iter()
        .filter_map(|f| f["FunctionName"].as_str())
        .collect();
    assert_eq!(names, [JSON_FUNCTION, TEXT_FUNCTION, QUIET_FUNCTION]);
    let json_function = &functions[0];
    assert_eq!(json_function["Runtime"], "provided.al2023");
    assert_eq!(json_function["Handler"], "bootstrap");
    assert_eq!(json_function["MemorySize"], 256);
    assert_eq!(json_function["Timeout"], 2);
    assert_eq!(json_function["Architectures"], json!(["arm64"]));
    assert_eq!(json_function["TracingConfig"]["Mode"], "Active");
    assert_eq!(
        json_function["LoggingConfig"],
        json!({"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO",
               "LogGroup": "/aws/lambda/test-fixture"})
    );
    assert!(
        json_function.get("State").is_none(),
        "ListFunctions leaves out the state fields"
    );
    assert_eq!(
        functions[1]["LoggingConfig"],
        json!({"LogFormat": "Text", "LogGroup": "/aws/lambda/test-fixture-text"}),
        "no levels with the text format"
    );
    assert_eq!(
        functions[2]["LoggingConfig"]["ApplicationLogLevel"], "WARN",
        "{}",
        functions[2]
    );

    let arn = stack.stack.spec.functions[0].arn.clone();
    let got = aws_json(
        &stack.stack.endpoint,
        &["lambda", "get-function", "--function-name", &arn],
    )
    .await;
    let configuration = &got["Configuration"];
    assert_eq!(configuration["FunctionArn"], json!(arn));
    assert_eq!(configuration["State"], "Active");
    assert_eq!(configuration["LastUpdateStatus"], "Successful");
    assert_eq!(got["Code"]["RepositoryType"], "S3");
    let binary = std::fs::read(
        stack
            .stack
            .function_binary("FixtureFunction")
            .unwrap_or_else(|e| panic!("{e:#}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(configuration["CodeSize"], binary.len());
    assert_eq!(
        configuration["CodeSha256"],
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&binary))
    );
    let alone = aws_json(
        &stack.stack.endpoint,
        &[
            "lambda",
            "get-function-configuration",
            "--function-name",
            JSON_FUNCTION,
        ],
    )
    .await;
    assert_eq!(&alone, configuration);

    for (function, qualifier) in [("no-such-function", None), (JSON_FUNCTION, Some("live"))] {
        let mut args = vec![
            "lambda",
            "get-function-configuration",
            "--function-name",
            function,
        ];
        args.extend(qualifier.iter().flat_map(|q| ["--qualifier", *q]));
        let missing = aws(&stack.stack.endpoint, &args).await;
        let stderr = String::from_utf8_lossy(&missing.stderr);
        assert!(
            !missing.status.success() && stderr.contains("ResourceNotFoundException"),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "Function not found: arn:aws:lambda:eu-west-1:123456789012:function:{function}"
            )),
            "{stderr}"
        );
    }
    stack.finish().await;
}

#[tokio::test]
async fn json_log_streams_carry_platform_records_with_real_init_time_and_memory() {
    let stack = Builder::fixture().start().await;
    let cold = invoke(
        &stack.stack.endpoint,
        JSON_FUNCTION,
        &echo("cold"),
        &["--log-type", "Tail"],
    )
    .await;
    let cold_records = records(&cold.log_tail());
    assert_eq!(
        kinds(&cold_records),
        [
            "platform.initStart",
            "platform.start",
            "task started",
            "echoing",
            "task finished",
            "platform.report"
        ]
    );
    let init = &cold_records[0]["record"];
    assert_eq!(init["functionName"], JSON_FUNCTION);
    assert_eq!(init["initializationType"], "on-demand");
    assert_eq!(init["instanceMaxMemory"], 256 * 1024 * 1024);
    let request_id = cold_records[2]["function_request_id"].clone();
    assert_eq!(cold_records[1]["record"]["requestId"], request_id);
    assert!(
        cold_records[1]["record"]["tracing"]["value"]
            .as_str()
            .is_some_and(|t| t.starts_with("Root=1-"))
    );

    let report = &cold_records[5]["record"];
    assert_eq!(report["requestId"], request_id);
    assert_eq!(report["status"], "success");
    let metrics = &report["metrics"];
    let duration = metrics["durationMs"].as_f64().unwrap_or_default();
    let init_duration = metrics["initDurationMs"].as_f64().unwrap_or_default();
    assert!(duration > 0.0 && init_duration > 0.0, "{metrics}");
    assert_eq!(
        metrics["billedDurationMs"].as_f64(),
        Some((duration + init_duration).ceil()),
        "provided runtimes are billed duration plus init, rounded up"
    );
    assert_eq!(metrics["memorySizeMB"], 256);
    // The process's own peak RSS when it answered: the report's is at
    // least that (it is read later) and no more than a few MB above.
    let own_peak_mb = cold.payload["peak_rss_kib"]
        .as_u64()
        .unwrap_or_else(|| panic!("{}", cold.payload))
        .div_ceil(1024);
    let reported = metrics["maxMemoryUsedMB"].as_u64().unwrap_or_default();
    assert!(
        (own_peak_mb..=own_peak_mb + 4).contains(&reported),
        "Max Memory Used {reported} MB, the process saw {own_peak_mb} MB"
    );

    let warm = invoke(
        &stack.stack.endpoint,
        JSON_FUNCTION,
        &echo("warm"),
        &["--log-type", "Tail"],
    )
    .await;
    let warm_records = records(&warm.log_tail());
    assert_eq!(
        kinds(&warm_records)[0],
        "platform.start",
        "no init when warm"
    );
    let warm_report = warm_records
        .last()
        .map(|r| r["record"]["metrics"].clone())
        .unwrap_or_default();
    assert!(warm_report.get("initDurationMs").is_none(), "{warm_report}");

    // The same records are in CloudWatch Logs, in the function's group.
    let events = aws_json(
        &stack.stack.endpoint,
        &[
            "logs",
            "filter-log-events",
            "--log-group-name",
            "/aws/lambda/test-fixture",
        ],
    )
    .await;
    let reports = events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("\"type\":\"platform.report\""))
        })
        .count();
    assert_eq!(reports, 2, "{events}");
    stack.finish().await;
}

#[tokio::test]
async fn text_log_streams_carry_start_end_and_report_lines() {
    let stack = Builder::fixture().start().await;
    let cold = invoke(
        &stack.stack.endpoint,
        TEXT_FUNCTION,
        &echo("text"),
        &["--log-type", "Tail"],
    )
    .await;
    let tail = cold.log_tail();
    let lines: Vec<&str> = tail.lines().collect();
    assert!(
        lines[0].starts_with("INIT_START Runtime Version: provided:")
            && lines[0].contains("\tRuntime Version ARN: arn:aws:lambda:eu-west-1::runtime:"),
        "{tail}"
    );
    let start = lines
        .iter()
        .find_map(|l| l.strip_prefix("START RequestId: "))
        .unwrap_or_else(|| panic!("no START line: {tail}"));
    let request_id = start
        .strip_suffix(" Version: $LATEST")
        .unwrap_or_else(|| panic!("START without Version: {start}"));
    let end = lines.len() - 2;
    assert_eq!(lines[end], format!("END RequestId: {request_id}"));
    let report = lines[end + 1];
    let fields: Vec<&str> = report.split('\t').collect();
    assert_eq!(fields[0], format!("REPORT RequestId: {request_id}"));
    let value = |name: &str| -> f64 {
        fields
            .iter()
            .find_map(|f| f.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.split(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {report:?}"))
    };
    assert_eq!(
        value("Billed Duration"),
        (value("Duration") + value("Init Duration")).ceil()
    );
    assert_eq!(value("Memory Size"), 256.0);
    assert!(value("Max Memory Used") >= 1.0);
    assert_eq!(fields.last(), Some(&""), "each field ends with a tab");
    let start_at = lines
        .iter()
        .position(|l| l.starts_with("START "))
        .unwrap_or_default();
    let own = &lines[start_at + 1..end];
    assert!(
        own.iter().any(|l| l.contains("task started"))
            && own
                .iter()
                .all(|l| !l.starts_with("START ") && !l.starts_with("END ")),
        "the function's own lines sit between START and END: {tail}"
    );

    // Killed at its Timeout: Duration is the timeout, REPORT says so.
    let hung = invoke(
        &stack.stack.endpoint,
        TEXT_FUNCTION,
        &json!({"input": {"action": "block", "ms": 10_000}}),
        &["--log-type", "Tail"],
    )
    .await;
    assert_eq!(hung.payload["errorType"], "Sandbox.Timedout");
    let tail = hung.log_tail();
    let report = tail
        .lines()
        .find(|l| l.starts_with("REPORT"))
        .unwrap_or_else(|| panic!("{tail}"));
    assert!(report.contains("\tDuration: 2000.00 ms\t"), "{report}");
    assert!(report.ends_with("\tStatus: timeout"), "{report:?}");
    stack.finish().await;
}

#[tokio::test]
async fn log_levels_drop_what_lambda_drops() {
    let stack = Builder::fixture().start().await;
    // ApplicationLogLevel WARN, SystemLogLevel WARN: a success leaves
    // nothing (its lines are INFO, its start and report records too).
    let quiet = invoke(
        &stack.stack.endpoint,
        QUIET_FUNCTION,
        &echo("quiet"),
        &["--log-type", "Tail"],
    )
    .await;
    assert_eq!(quiet.payload["echo"], "quiet");
    assert_eq!(quiet.log_tail().trim(), "", "{}", quiet.log_tail());

    // A failure keeps its WARN end line and its (WARN) report record; the
    // INFO start line and the INFO start record are dropped.
    let failed = invoke(
        &stack.stack.endpoint,
        QUIET_FUNCTION,
        &json!({"input": {"action": "fail", "kind": "invalid_input"}}),
        &["--log-type", "Tail"],
    )
    .await;
    assert_eq!(failed.payload["errorType"], "Task.InvalidInput");
    let kept = records(&failed.log_tail());
    assert_eq!(
        kinds(&kept),
        ["task finished", "platform.runtimeDone", "platform.report"]
    );
    assert_eq!(kept[0]["level"], "WARN");
    assert_eq!(kept[2]["record"]["status"], "failure");
    assert_eq!(kept[2]["record"]["errorType"], "Task.InvalidInput");

    // The INFO function keeps everything for the same failure.
    let loud = invoke(
        &stack.stack.endpoint,
        JSON_FUNCTION,
        &json!({"input": {"action": "fail", "kind": "invalid_input"}}),
        &["--log-type", "Tail"],
    )
    .await;
    let all = kinds(&records(&loud.log_tail()));
    assert!(all.contains(&"task started".to_owned()), "{all:?}");
    assert!(all.contains(&"platform.start".to_owned()), "{all:?}");
    assert!(
        all.contains(&"platform.runtimeDone".to_owned()),
        "a failed runtimeDone is WARN, kept at INFO (a successful one is DEBUG): {all:?}"
    );
    stack.finish().await;
}
