//! A program run as a Lambda function process, started the same way by
//! every bench: a clean environment, the Runtime API's address, output to
//! a sink (the cost measured is producing the logs, not reading them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, Result};
use axum::body::Bytes;

use crate::TimedApi;

/// What to start, and the invocation payload it is given.
#[derive(Debug, Clone)]
pub struct Program {
    /// The row's name in the report.
    pub label: String,
    /// The executable.
    pub command: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its working directory (the bench's when `None`).
    pub cwd: Option<PathBuf>,
    /// Its whole environment: nothing is inherited.
    pub env: BTreeMap<String, String>,
    /// The body of each invocation.
    pub payload: Bytes,
}

impl Program {
    /// A program with no arguments, run in the bench's directory.
    pub fn new(
        label: impl Into<String>,
        command: PathBuf,
        env: BTreeMap<String, String>,
        payload: Bytes,
    ) -> Self {
        Self {
            label: label.into(),
            command,
            args: Vec::new(),
            cwd: None,
            env,
            payload,
        }
    }

    /// Starts the program against `api`; with `cgroup_procs`, a shell first
    /// writes its own pid there and then becomes the program, so everything
    /// the program runs is under the cgroup from its first instruction.
    /// Returns the child and when it was started.
    pub fn spawn(
        &self,
        api: &TimedApi,
        cgroup_procs: Option<&Path>,
    ) -> Result<(tokio::process::Child, Instant)> {
        let mut command = match cgroup_procs {
            None => tokio::process::Command::new(&self.command),
            Some(procs) => {
                let mut shell = tokio::process::Command::new("/bin/sh");
                shell
                    .arg("-c")
                    .arg(r#"echo $$ > "$0" && exec "$@""#)
                    .arg(procs)
                    .arg(&self.command);
                shell
            }
        };
        command
            .args(&self.args)
            .env_clear()
            .envs(&self.env)
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        let started = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", self.command.display()))?;
        Ok((child, started))
    }
}
