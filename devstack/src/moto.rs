//! The moto server behind the local endpoint: S3, SQS, Step Functions and
//! CloudWatch Logs.
//!
//! It runs with `devstack_moto`, a small Python package of the local stack's
//! own (`devstack/moto/`, compiled into this binary and written next to
//! moto's log at start): it plugs a JSONata evaluator into moto's Step
//! Functions engine and restores AWS's semantics where moto differs, then
//! calls moto's own `main`. See `docs/local-fidelity.md`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

/// The loader's files, as `(name, source)`.
const LOADER: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../moto/devstack_moto/__init__.py"),
    ),
    (
        "__main__.py",
        include_str!("../moto/devstack_moto/__main__.py"),
    ),
    (
        "definitions.py",
        include_str!("../moto/devstack_moto/definitions.py"),
    ),
    ("errors.py", include_str!("../moto/devstack_moto/errors.py")),
    (
        "executions.py",
        include_str!("../moto/devstack_moto/executions.py"),
    ),
    (
        "item_batcher.py",
        include_str!("../moto/devstack_moto/item_batcher.py"),
    ),
    (
        "item_reader.py",
        include_str!("../moto/devstack_moto/item_reader.py"),
    ),
    (
        "jsonata_states.py",
        include_str!("../moto/devstack_moto/jsonata_states.py"),
    ),
    (
        "jsonata_string.py",
        include_str!("../moto/devstack_moto/jsonata_string.py"),
    ),
    (
        "jsonpath_states.py",
        include_str!("../moto/devstack_moto/jsonpath_states.py"),
    ),
    ("limits.py", include_str!("../moto/devstack_moto/limits.py")),
    (
        "s3_responses.py",
        include_str!("../moto/devstack_moto/s3_responses.py"),
    ),
    (
        "variables.py",
        include_str!("../moto/devstack_moto/variables.py"),
    ),
    (
        "insights/__init__.py",
        include_str!("../moto/devstack_moto/insights/__init__.py"),
    ),
    (
        "insights/evaluate.py",
        include_str!("../moto/devstack_moto/insights/evaluate.py"),
    ),
    (
        "insights/fields.py",
        include_str!("../moto/devstack_moto/insights/fields.py"),
    ),
    (
        "insights/query.py",
        include_str!("../moto/devstack_moto/insights/query.py"),
    ),
    (
        "insights/scanner.py",
        include_str!("../moto/devstack_moto/insights/scanner.py"),
    ),
    (
        "insights/values.py",
        include_str!("../moto/devstack_moto/insights/values.py"),
    ),
];

/// How many lines of moto's log a start-up error quotes.
const LOG_LINES_IN_ERRORS: usize = 15;

/// A moto server on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// Its own base URL (the local endpoint forwards here).
    pub url: String,
}

impl Moto {
    /// Starts the moto of the venv `moto_server` belongs to on `port`, with
    /// the local stack's fixes, telling its Step Functions engine to make
    /// Lambda calls to `lambda_port` (moto's engine sends them to
    /// `localhost:$MOTO_PORT`); waits until it answers and switches state
    /// machine execution on. Its output goes to `log`. Without `fixes`
    /// it is moto as released (for showing what the fixes change).
    pub async fn start(
        moto_server: &Path,
        port: u16,
        lambda_port: u16,
        log: &Path,
        fixes: bool,
    ) -> Result<Self> {
        let python = venv_python(moto_server)?;
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = if fixes {
            let loader_dir = log.with_file_name("moto-loader");
            write_loader(&loader_dir)?;
            let mut command = Command::new(&python);
            command
                .args(["-m", "devstack_moto"])
                .env("PYTHONPATH", &loader_dir);
            command
        } else {
            Command::new(moto_server)
        };
        let child = command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_PORT", lambda_port.to_string())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "starting moto with {} (make venv installs the pinned moto server)",
                    python.display()
                )
            })?;
        let mut moto = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        if let Err(e) = moto.wait_ready(Duration::from_secs(60)).await {
            return Err(e.context(log_tail(log)));
        }
        let config = crate::clients::http()
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
        let client = crate::clients::http();
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

/// The Python of the venv whose `bin/` holds `moto_server`: moto and
/// `jsonata-python` are installed there (requirements.txt).
fn venv_python(moto_server: &Path) -> Result<PathBuf> {
    let bin = moto_server.parent().unwrap_or_else(|| Path::new("."));
    ["python3", "python"]
        .iter()
        .map(|name| bin.join(name))
        .find(|candidate| candidate.exists())
        .with_context(|| {
            format!(
                "no Python beside {} (make venv creates the venv with moto and jsonata-python)",
                moto_server.display()
            )
        })
}

fn write_loader(dir: &Path) -> Result<()> {
    let package = dir.join("devstack_moto");
    std::fs::create_dir_all(&package).with_context(|| format!("creating {}", package.display()))?;
    for (name, source) in LOADER {
        let path = package.join(name);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        std::fs::write(&path, source).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The end of moto's log, for an error saying why it did not start.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_LINES_IN_ERRORS);
    format!(
        "moto's log ({}) ends with:\n{}",
        log.display(),
        lines[start..].join("\n")
    )
}

/// `--moto-server`, else `MOTO_SERVER`, else the project venv's.
pub fn default_binary() -> PathBuf {
    std::env::var_os("MOTO_SERVER")
        .map_or_else(|| PathBuf::from(".venv/bin/moto_server"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_loader_is_compiled_in() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("moto/devstack_moto");
        let mut on_disk = Vec::new();
        let mut folders = vec![dir.clone()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder)
                .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
                .filter_map(Result::ok)
            {
                let path = entry.path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|e| e == "py") {
                    let relative = path.strip_prefix(&dir).unwrap_or(&path);
                    on_disk.push(relative.to_string_lossy().into_owned());
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = LOADER.iter().map(|(name, _)| (*name).to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }
}
