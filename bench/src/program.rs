//! A program run as a Lambda function process, started the same way by
//! every bench: a clean environment, the Runtime API's address, output to
//! a sink (the cost measured is producing the logs, not reading them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use axum::body::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

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

    /// Starts the program against `api`. Returns the child and when it
    /// was started.
    pub fn spawn(&self, api: &TimedApi) -> Result<(tokio::process::Child, Instant)> {
        let mut command = self.command_running(&self.command, api);
        command
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .stdin(Stdio::null());
        let started = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", self.command.display()))?;
        Ok((child, started))
    }

    /// Starts the program inside a cgroup: a shell writes its own pid to
    /// `cgroup_procs`, says so, waits for a go and then becomes the
    /// program, so everything the program runs is under the cgroup from its
    /// first instruction. The clock starts at the go: moving a process into
    /// a cgroup can wait for an RCU grace period (milliseconds after an
    /// idle spell), which is the bench's set-up, not the program's start.
    pub async fn spawn_in_cgroup(
        &self,
        api: &TimedApi,
        cgroup_procs: &Path,
    ) -> Result<(tokio::process::Child, Instant)> {
        let mut shell = self.command_running(Path::new("/bin/sh"), api);
        shell
            .arg("-c")
            .arg(
                r#"echo $$ > "$0" && echo joined && read go && exec "$@" < /dev/null > /dev/null 2>&1"#,
            )
            .arg(cgroup_procs)
            .arg(&self.command)
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::piped());
        let mut child = shell
            .spawn()
            .with_context(|| format!("starting {}", self.command.display()))?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("{}: no pipes to the shell", self.label);
        };
        let mut joined = String::new();
        BufReader::new(stdout).read_line(&mut joined).await?;
        if joined.trim() != "joined" {
            bail!("{}: could not join {}", self.label, cgroup_procs.display());
        }
        let started = Instant::now();
        stdin.write_all(b"go\n").await?;
        drop(stdin);
        Ok((child, started))
    }

    /// `executable` with the program's environment (nothing inherited),
    /// working directory and the Runtime API's address.
    fn command_running(&self, executable: &Path, api: &TimedApi) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(executable);
        command
            .env_clear()
            .envs(&self.env)
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .kill_on_drop(true);
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        command
    }
}
