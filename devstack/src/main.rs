//! `devstack`: the local stack's command line.
//!
//! - `devstack up`: start the stack and keep it running until Ctrl-C.
//! - `devstack demo`: start it, run the demo workflows, report, stop.
//! - `devstack logs <correlation-id>`: every line of one correlation ID.
//! - `devstack requirements`: the pinned Python packages it runs with.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use devstack::stack::{Options, Stack};

mod demo;

#[derive(Debug, Parser)]
#[command(about = "Run a SAM template's state machines against the real task binaries, locally")]
struct Cli {
    /// The SAM template.
    #[arg(long, default_value = "template.yaml", global = true)]
    template: PathBuf,
    /// Where logs and local copies go.
    #[arg(long, default_value = ".local/devstack", global = true)]
    state_dir: PathBuf,
    /// Folder of the task binaries (`cargo build --bins` puts them in target/debug).
    #[arg(long, default_value = "target/debug", global = true)]
    bin_dir: PathBuf,
    /// The moto server executable (`MOTO_SERVER`, else the project venv's).
    #[arg(long, global = true)]
    moto_server: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the stack and keep it running until Ctrl-C.
    Up {
        /// Port of the local endpoint.
        #[arg(long, default_value_t = 4566)]
        port: u16,
        /// A template parameter, as `sam deploy --parameter-overrides` takes it.
        #[arg(long = "parameter", value_name = "NAME=VALUE")]
        parameters: Vec<String>,
        /// Run this definition file instead of the template's for one state
        /// machine (logical ID or name), with the template's substitutions.
        #[arg(long = "definition", value_name = "STATE_MACHINE=FILE")]
        definitions: Vec<String>,
    },
    /// Start the stack, run the demo workflows, print what they did, stop.
    Demo,
    /// Print the Python packages the local stack needs (moto and the JSONata
    /// evaluator, pinned), for `pip install -r`.
    Requirements,
    /// Print every log line of one correlation ID, oldest first.
    Logs {
        /// The correlation ID.
        correlation_id: String,
        /// A running stack's endpoint to read CloudWatch Logs from; without
        /// it the local copies of the last run's log streams are read.
        #[arg(long)]
        endpoint: Option<String>,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = std::env::current_dir()?;
    let mut options = Options::for_project(&root, cli.bin_dir.clone());
    options.template = cli.template.clone();
    options.state_dir = cli.state_dir.clone();
    options.moto_binary = cli
        .moto_server
        .clone()
        .unwrap_or_else(devstack::moto::default_binary);
    match cli.command {
        Command::Up {
            port,
            parameters,
            definitions,
        } => {
            options.port = port;
            options.parameters = pairs("--parameter", &parameters)?;
            options.definitions = pairs("--definition", &definitions)?
                .into_iter()
                .map(|(k, v)| (k, PathBuf::from(v)))
                .collect();
            up(options).await
        }
        Command::Demo => demo::run(options).await,
        Command::Requirements => {
            print!("{}", include_str!("../../requirements.txt"));
            Ok(())
        }
        Command::Logs {
            correlation_id,
            endpoint,
        } => logs(&cli.state_dir, &correlation_id, endpoint.as_deref()).await,
    }
}

fn pairs(flag: &str, given: &[String]) -> Result<BTreeMap<String, String>> {
    given
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
            None => bail!("{flag} {p}: expected NAME=VALUE"),
        })
        .collect()
}

async fn up(options: Options) -> Result<()> {
    let stack = Stack::start(options).await?;
    println!("Local stack up on {}", stack.endpoint);
    println!(
        "  console       {} (executions, approvals, Logs Insights)",
        stack.console_url()
    );
    println!(
        "  export AWS_ENDPOINT_URL={} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION={}",
        stack.endpoint, stack.spec.placement.region
    );
    for machine in &stack.spec.state_machines {
        println!("  state machine {}", machine.arn);
    }
    for function in &stack.spec.functions {
        println!(
            "  function      {} (bin {})",
            function.name, function.binary
        );
    }
    println!("Ctrl-C stops it.");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    println!("Stopping…");
    stack.stop().await;
    Ok(())
}

async fn logs(state_dir: &std::path::Path, id: &str, endpoint: Option<&str>) -> Result<()> {
    let trail = match endpoint {
        Some(endpoint) => {
            let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "eu-west-1".to_owned());
            let client =
                aws_sdk_cloudwatchlogs::Client::new(&devstack::clients::config(endpoint, &region));
            devstack::trail::from_cloudwatch(&client, "/aws/lambda/", id).await?
        }
        None => {
            let lines = devstack::trail::read_local_lines(&state_dir.join("logs"))?;
            devstack::trail::select(lines.iter().map(String::as_str), id)
        }
    };
    if trail.is_empty() {
        bail!("no log line has correlation_id {id:?}");
    }
    for line in &trail {
        println!("{}", devstack::trail::format_line(line));
    }
    Ok(())
}

/// How long a demo workflow may take before the demo gives up on it.
pub(crate) const WORKFLOW_LIMIT: Duration = Duration::from_secs(300);
