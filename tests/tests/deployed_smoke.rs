//! "Does my step function even work?" against a deployed stack: starts each
//! workflow and waits for its terminal status. Skipped unless `STACK_NAME`
//! is set (with credentials and a region, as for the AWS CLI). Uses the
//! project venv's AWS CLI (`make test` installs it).
//!
//! `SMOKE_BACKUP_BUCKET`: a bucket in the stack's `BackupSourceBuckets`; with
//! it the backup workflow must succeed, without it the run must still end
//! (failed on the allowlist, after its failure notification).

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn aws(args: &[&str]) -> Value {
    let cli = format!("{ROOT}/.venv/bin/aws");
    let output = Command::new(&cli)
        .args(args)
        .args(["--output", "json"])
        .output()
        .unwrap_or_else(|e| panic!("{cli}: {e}"));
    assert!(
        output.status.success(),
        "aws {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

fn stack_output(outputs: &Value, key: &str) -> String {
    outputs
        .as_array()
        .and_then(|o| o.iter().find(|x| x["OutputKey"] == key))
        .and_then(|x| x["OutputValue"].as_str())
        .unwrap_or_else(|| panic!("stack output {key} missing"))
        .to_owned()
}

fn run(state_machine: &str, name: &str, input: &Value) -> String {
    let started = aws(&[
        "stepfunctions",
        "start-execution",
        "--state-machine-arn",
        state_machine,
        "--name",
        name,
        "--input",
        &input.to_string(),
    ]);
    let arn = started["executionArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let described = aws(&[
            "stepfunctions",
            "describe-execution",
            "--execution-arn",
            &arn,
        ]);
        let status = described["status"].as_str().unwrap_or_default().to_owned();
        if status != "RUNNING" {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{name} still running after 15 minutes"
        );
        // Polling a remote service's status API; there is no event to wait on.
        std::thread::sleep(Duration::from_secs(3));
    }
}

#[test]
fn every_workflow_reaches_its_terminal_status() {
    let Ok(stack) = std::env::var("STACK_NAME") else {
        eprintln!("skipped: set STACK_NAME (and AWS credentials) to smoke-test a deployed stack");
        return;
    };
    let outputs = aws(&["cloudformation", "describe-stacks", "--stack-name", &stack])["Stacks"][0]
        ["Outputs"]
        .clone();
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);

    let mut order = tests::fixture::event("invoice_order.json");
    order["order_id"] = json!(format!("SMOKE-{stamp}"));
    let invoice =
        json!({"correlation_id": format!("smoke-{stamp}"), "order_total": 100, "order": order});
    let status = run(
        &stack_output(&outputs, "InvoiceStateMachineArn"),
        &format!("smoke-invoice-{stamp}"),
        &invoice,
    );
    assert_eq!(status, "SUCCEEDED", "invoice workflow");

    let bucket = std::env::var("SMOKE_BACKUP_BUCKET").ok();
    let backup = json!({"correlation_id": format!("smoke-{stamp}"), "backup": {
        "name": "smoke",
        "source": {"type": "s3", "bucket": bucket.clone().unwrap_or_else(|| "not-allowlisted".into()), "prefix": ""}}});
    let status = run(
        &stack_output(&outputs, "BackupStateMachineArn"),
        &format!("smoke-backup-{stamp}"),
        &backup,
    );
    if bucket.is_some() {
        assert_eq!(status, "SUCCEEDED", "backup workflow");
    } else {
        assert_eq!(
            status, "FAILED",
            "backup of a bucket outside the allowlist ends failed"
        );
    }
}
