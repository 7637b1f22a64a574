//! `make bench`'s workflow measurements on the local stack, written as a
//! Markdown fragment (`workflow.md`) for BENCHMARKS.md:
//!
//! - the project's workflows: wall time and state transitions (what a
//!   Standard workflow is billed by), the JSONata invoice workflow beside
//!   the JSONPath one it replaced (`tests/fixtures/jsonpath/`);
//! - the query languages themselves: a JSONata-heavy and a JSONPath-heavy
//!   state machine doing the same work (twenty Pass states reshaping a
//!   50-line order), so what each costs in the local engine is known.
//!
//! Usage: `workflow-bench <out-dir> <release-bin-dir>` from the repository
//! root, with `MOTO_SERVER` set.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bench::summarise;
use devstack::stack::{Options, Stack};
use serde_json::{Value, json};

const SOURCE_BUCKET: &str = "bench-source";
const RUNS: usize = 5;
const LANGUAGE_RUNS: usize = 10;
const LANGUAGE_STATES: usize = 20;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, out_dir, bin_dir] = args.as_slice() else {
        bail!("usage: workflow-bench <out-dir> <release-bin-dir>");
    };
    let out_dir = PathBuf::from(out_dir);
    std::fs::create_dir_all(&out_dir)?;
    let root = std::env::current_dir()?;
    let mut options = Options::for_project(&root, PathBuf::from(bin_dir));
    options.state_dir = root.join(".local/bench-workflows");
    options.moto_binary = devstack::moto::default_binary();
    options
        .parameters
        .insert("BackupSourceBuckets".to_owned(), SOURCE_BUCKET.to_owned());
    let stack = Stack::start(options).await?;
    let result = report(&stack, &root).await;
    stack.stop().await;
    std::fs::write(out_dir.join("workflow.md"), result?)?;
    Ok(())
}

async fn report(stack: &Stack, root: &Path) -> Result<String> {
    bench::prepare_backup_source(stack, SOURCE_BUCKET).await?;
    let sfn = aws_sdk_sfn::Client::new(&stack.aws);
    let order: Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("events/invoice_order.json"),
    )?)?;
    let jsonpath_invoice = create_jsonpath_invoice(
        stack,
        &sfn,
        &root.join("tests/fixtures/jsonpath/invoice.asl.json"),
    )
    .await?;
    let invoice_input =
        json!({"correlation_id": "bench-invoice", "order_total": 1214.87, "order": order});
    let runs = [
        (
            "invoice (order A-1001, no approval), JSONata",
            stack.state_machine_arn("InvoiceStateMachine")?,
            invoice_input.clone(),
        ),
        (
            "invoice, the JSONPath workflow it replaced",
            jsonpath_invoice,
            invoice_input,
        ),
        (
            "backup (10 objects, one invocation), JSONata",
            stack.state_machine_arn("BackupStateMachine")?,
            json!({"correlation_id": "bench-backup", "backup": {"name": "bench-wf", "source": {"type": "s3", "bucket": SOURCE_BUCKET, "prefix": "daily/"}}}),
        ),
    ];
    let mut table = String::from(
        "| workflow | runs | median wall ms | min | max | state transitions |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for (label, arn, input) in &runs {
        let (walls, transitions) = time(&sfn, arn, input, RUNS).await?;
        let s = summarise(&walls).context("no runs")?;
        let _ = writeln!(
            table,
            "| {label} | {} | {:.0} | {:.0} | {:.0} | {transitions} |",
            s.n, s.p50, s.min, s.max
        );
    }

    let big_order = fifty_line_order(&order);
    let jsonata = create(&sfn, "bench-jsonata-heavy", &jsonata_heavy()).await?;
    let jsonpath = create(&sfn, "bench-jsonpath-heavy", &jsonpath_heavy()).await?;
    let mut languages = String::from(
        "| state machine | runs | median wall ms | min | max | ms per state |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let mut interleaved: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..LANGUAGE_RUNS {
        for (i, arn) in [&jsonata, &jsonpath].into_iter().enumerate() {
            let (walls, transitions) = time(&sfn, arn, &big_order, 1).await?;
            if transitions != LANGUAGE_STATES {
                bail!("expected {LANGUAGE_STATES} transitions, got {transitions}");
            }
            interleaved[i].extend(walls);
        }
    }
    for (label, walls) in [
        "JSONata: 20 Pass states (Output and Assign expressions)",
        "JSONPath: 20 Pass states (Parameters paths and intrinsics)",
    ]
    .iter()
    .zip(&interleaved)
    {
        let s = summarise(walls).context("no runs")?;
        let _ = writeln!(
            languages,
            "| {label} | {} | {:.0} | {:.0} | {:.0} | {:.1} |",
            s.n,
            s.p50,
            s.min,
            s.max,
            s.p50 / LANGUAGE_STATES as f64
        );
    }
    Ok(format!(
        "On the local stack (moto's engine with the local stack's fixes, release binaries, warm after the first run):\n\n{table}\n\
         The query languages in moto's engine, run in turns: each state reshapes a 50-line order \
         (totals per line, a sum, a string, a filter). JSONata is evaluated by jsonata-python, \
         JSONPath by jsonpath-ng: these are local costs, not AWS's.\n\n{languages}"
    ))
}

/// Runs `arn` on `input` `runs` times: wall times (ms) and the transitions
/// of the last run.
async fn time(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    input: &Value,
    runs: usize,
) -> Result<(Vec<f64>, usize)> {
    let mut walls = Vec::new();
    let mut transitions = 0;
    for _ in 0..runs {
        let name = uuid_name();
        let started = Instant::now();
        let execution = devstack::workflow::start(sfn, arn, &name, input).await?;
        let done =
            devstack::workflow::follow(sfn, &execution, Duration::from_secs(120), |_| {}).await?;
        if done.status != "SUCCEEDED" {
            bail!("{arn}: {} ({:?})", done.status, done.cause);
        }
        walls.push(started.elapsed().as_secs_f64() * 1e3);
        transitions = done.transitions();
    }
    Ok((walls, transitions))
}

fn uuid_name() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!(
        "bench-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

async fn create(sfn: &aws_sdk_sfn::Client, name: &str, definition: &Value) -> Result<String> {
    let created = sfn
        .create_state_machine()
        .name(name)
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/bench")
        .send()
        .await
        .with_context(|| format!("creating {name}"))?;
    Ok(created.state_machine_arn().to_owned())
}

/// The JSONPath invoice workflow, with the template's substitutions.
async fn create_jsonpath_invoice(
    stack: &Stack,
    sfn: &aws_sdk_sfn::Client,
    path: &Path,
) -> Result<String> {
    let mut machine = stack
        .spec
        .state_machine("InvoiceStateMachine")
        .context("no InvoiceStateMachine")?
        .clone();
    machine.replace_definition(path)?;
    let definition: Value = serde_json::from_str(&machine.definition)?;
    create(sfn, "bench-invoice-jsonpath", &definition).await
}

fn fifty_line_order(order: &Value) -> Value {
    let line = &order["lines"][0];
    let lines: Vec<Value> = (0..50)
        .map(|i| {
            let mut l = line.clone();
            l["description"] = json!(format!("Line {i}"));
            l["quantity"] = json!(i % 7 + 1);
            l["unit_price"] = json!(12.5 + f64::from(i));
            l
        })
        .collect();
    json!({"order": {"order_id": "BENCH-1", "currency": "EUR", "lines": lines}})
}

/// `LANGUAGE_STATES` copies of `state`, one after the other.
fn chain(state: &Value) -> serde_json::Map<String, Value> {
    (0..LANGUAGE_STATES)
        .map(|i| {
            let mut state = state.clone();
            if i + 1 < LANGUAGE_STATES {
                state["Next"] = json!(format!("S{}", i + 1));
            } else {
                state["End"] = json!(true);
            }
            (format!("S{i}"), state)
        })
        .collect()
}

/// Each state: line totals, their sum, a label, the lines over a threshold,
/// carried in a variable and the output.
fn jsonata_heavy() -> Value {
    let states = chain(&json!({
        "Type": "Pass",
        "Assign": {"last_total": "{% $sum($states.input.order.lines.(quantity * unit_price)) %}"},
        "Output": {
            "order": "{% $states.input.order %}",
            "totals": "{% $states.input.order.lines.(quantity * unit_price) %}",
            "total": "{% $sum($states.input.order.lines.(quantity * unit_price)) %}",
            "label": "{% 'Order ' & $states.input.order.order_id & ' in ' & $states.input.order.currency %}",
            "big": "{% $states.input.order.lines[quantity > 3].description %}"
        }
    }));
    json!({"QueryLanguage": "JSONata", "StartAt": "S0", "States": states})
}

/// The same work in JSONPath, as far as its paths and intrinsics reach.
fn jsonpath_heavy() -> Value {
    let states = chain(&json!({
        "Type": "Pass",
        "Assign": {"last_count.$": "States.ArrayLength($.order.lines)"},
        "Parameters": {
            "order.$": "$.order",
            "quantities.$": "$.order.lines[*].quantity",
            "count.$": "States.ArrayLength($.order.lines)",
            "label.$": "States.Format('Order {} in {}', $.order.order_id, $.order.currency)",
            "big.$": "$.order.lines[?(@.quantity > 3)].description"
        }
    }));
    json!({"StartAt": "S0", "States": states})
}
