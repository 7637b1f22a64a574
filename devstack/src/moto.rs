//! The moto server behind the local endpoint: S3, SQS, Step Functions and
//! CloudWatch Logs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

/// A moto server on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// Its own base URL (the local endpoint forwards here).
    pub url: String,
}

impl Moto {
    /// Starts `binary` on `port`, telling its Step Functions engine to make
    /// Lambda calls to `lambda_port` (moto's engine sends them to
    /// `localhost:$MOTO_PORT`), waits until it answers, and switches state
    /// machine execution on.
    pub async fn start(binary: &Path, port: u16, lambda_port: u16, log: &Path) -> Result<Self> {
        let log =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_PORT", lambda_port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (make venv installs the pinned moto server)",
                    binary.display()
                )
            })?;
        let mut moto = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        moto.wait_ready(Duration::from_secs(60)).await?;
        let config = reqwest::Client::new()
            .post(format!("{}/moto-api/config", moto.url))
            .json(&serde_json::json!({"stepfunctions": {"execute_state_machine": true}}))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("switching on moto's state machine execution")?;
        drop(config);
        Ok(moto)
    }

    async fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let started = Instant::now();
        let client = reqwest::Client::new();
        let url = format!("{}/moto-api/data.json", self.url);
        let mut pause = Duration::from_millis(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the moto server exited during start-up ({status})");
            }
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            if started.elapsed() > limit {
                bail!("the moto server did not answer within {limit:?}");
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// `--moto-server`, else `MOTO_SERVER`, else the project venv's.
pub fn default_binary() -> PathBuf {
    std::env::var_os("MOTO_SERVER")
        .map_or_else(|| PathBuf::from(".venv/bin/moto_server"), PathBuf::from)
}
