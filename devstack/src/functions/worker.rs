//! One function process: started with Lambda's environment against its own
//! Runtime API, its output captured, killed when it runs past its time.

use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::body::Bytes;
use tokio::process::Command;
use tokio::sync::{oneshot, watch};

use super::environment::{Launch, lambda_environment};
use super::platform::InitPhase;
use crate::logs::{Capture, LogEvent, LogStream, Shipper};
use crate::runtime_api::{RuntimeApi, error_body};
use crate::template::FunctionSpec;

/// One function process.
#[derive(Debug)]
pub(super) struct Worker {
    pub(super) api: RuntimeApi,
    pub(super) log: tokio::sync::Mutex<WorkerLog>,
    pid: Option<u32>,
    exited: watch::Receiver<Option<ExitStatus>>,
    kill: Mutex<Option<oneshot::Sender<()>>>,
    killed: AtomicBool,
    /// The highest `VmHWM` seen, KiB (the process may be gone when asked).
    peak_kib: AtomicU64,
    started: Instant,
    started_wall_ms: i64,
    /// The init phase, until the first invocation writes it.
    init: Mutex<Option<InitPhase>>,
    /// Whether the process has asked for its first invocation.
    ready: AtomicBool,
}

/// What a worker's output goes through: its capture and its log stream.
#[derive(Debug)]
pub(super) struct WorkerLog {
    pub(super) capture: Capture,
    pub(super) stream: LogStream,
}

/// Why a process never became ready for an invocation.
#[derive(Debug)]
pub(super) enum InitFailure {
    /// It posted to `/init/error` or exited: the error body.
    Failed(Bytes),
    /// It did not ask for an invocation in time.
    TimedOut,
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Worker {
    pub(super) async fn start(
        spec: &FunctionSpec,
        launch: &Launch,
        shipper: &Shipper,
    ) -> Result<Arc<Self>> {
        let api = RuntimeApi::start()
            .await
            .context("starting a Runtime API")?;
        let stream = LogStream::create(&launch.log_dir, &spec.name, &spec.logging.group)?;
        let (capture, file) = Capture::create(&launch.capture_dir, &spec.name, &stream.id)?;
        if let Err(e) = shipper.open(&stream).await {
            eprintln!("devstack: {e:#}");
        }
        let binary = launch.bin_dir.join(&spec.binary);
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .envs(lambda_environment(
                spec,
                launch,
                &stream.stream,
                &api.address(),
            ))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true);
        let started = Instant::now();
        let started_wall_ms = now_ms();
        let mut child = command.spawn().with_context(|| {
            format!(
                "starting {} for {} (build the function binaries first: cargo build --bins)",
                binary.display(),
                spec.name
            )
        })?;
        let pid = child.id();
        let (exit_tx, exited) = watch::channel(None);
        let (kill, kill_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status.ok(),
                _ = kill_rx => {
                    let _ = child.kill().await;
                    child.wait().await.ok()
                }
            };
            let _ = exit_tx.send(status);
        });
        Ok(Arc::new(Self {
            api,
            log: tokio::sync::Mutex::new(WorkerLog { capture, stream }),
            pid,
            exited,
            kill: Mutex::new(Some(kill)),
            killed: AtomicBool::new(false),
            peak_kib: AtomicU64::new(0),
            started,
            started_wall_ms,
            init: Mutex::new(None),
            ready: AtomicBool::new(false),
        }))
    }

    /// Waits (at most `limit`) for the process's first `/next`: the end of
    /// its init phase, whose lines and duration are kept for the first
    /// invocation's log.
    pub(super) async fn ready(&self, limit: Duration) -> Result<(), InitFailure> {
        if self.ready.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut polls = self.api.polls();
        let mut exited = self.exited.clone();
        let first = tokio::select! {
            polls = polls.wait_for(|p| p.first.is_some()) => polls.ok().and_then(|p| p.first),
            status = exited.wait_for(Option::is_some) => {
                let status = status.ok().and_then(|s| *s);
                return Err(InitFailure::Failed(self.exit_error(None, status)));
            }
            () = tokio::time::sleep(limit) => return Err(InitFailure::TimedOut),
        };
        let first = first.unwrap_or_else(Instant::now);
        let lines = self
            .log
            .lock()
            .await
            .capture
            .read_new_lines()
            .unwrap_or_default();
        let at = self.wall_ms(first);
        *lock(&self.init) = Some(InitPhase {
            started_ms: self.started_wall_ms,
            duration: first.saturating_duration_since(self.started),
            lines: lines
                .into_iter()
                .map(|l| LogEvent::from_line(l, at))
                .collect(),
        });
        self.ready.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// The init phase, for the first invocation only.
    pub(super) fn take_init(&self) -> Option<InitPhase> {
        lock(&self.init).take()
    }

    /// Milliseconds since the epoch of a moment of this process's life.
    pub(super) fn wall_ms(&self, at: Instant) -> i64 {
        let since = at.saturating_duration_since(self.started);
        self.started_wall_ms + i64::try_from(since.as_millis()).unwrap_or(0)
    }

    pub(super) fn exited(&self) -> watch::Receiver<Option<ExitStatus>> {
        self.exited.clone()
    }

    pub(super) fn alive(&self) -> bool {
        !self.killed.load(Ordering::SeqCst) && self.exited.borrow().is_none()
    }

    pub(super) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        if let Some(kill) = lock(&self.kill).take() {
            let _ = kill.send(());
        }
    }

    /// Waits (at most `limit`) for the process to be gone.
    pub(super) async fn wait_exit(&self, limit: Duration) {
        let mut exited = self.exited.clone();
        let _ = tokio::time::timeout(limit, exited.wait_for(Option::is_some)).await;
    }

    /// The peak resident memory in MB (rounded up), as `Max Memory Used`.
    pub(super) fn max_memory_mb(&self) -> u64 {
        if let Some(kib) = self.pid.and_then(crate::process_memory::peak_rss_kib) {
            self.peak_kib.fetch_max(kib, Ordering::SeqCst);
        }
        self.peak_kib.load(Ordering::SeqCst).div_ceil(1024)
    }

    /// The error an invocation gets when its process ended without
    /// answering: the init error it posted, else Lambda's exit error.
    pub(super) fn exit_error(&self, request_id: Option<&str>, status: Option<ExitStatus>) -> Bytes {
        self.kill();
        if let Some(body) = self.api.init_errors().pop() {
            return body;
        }
        let how = status.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
        let prefix = request_id
            .map(|id| format!("RequestId: {id} "))
            .unwrap_or_default();
        error_body(
            "Runtime.ExitError",
            &format!("{prefix}Error: Runtime exited with error: {how}"),
        )
    }

    /// Lines written since the last call (all that is left once the process
    /// is gone), stamped with their own time or `at`.
    pub(super) async fn new_lines(&self, at: i64) -> Vec<LogEvent> {
        let mut log = self.log.lock().await;
        let lines = if self.alive() {
            log.capture.read_new_lines()
        } else {
            log.capture.read_rest()
        };
        lines
            .unwrap_or_else(|e| {
                eprintln!("devstack: reading {}: {e}", log.capture.path.display());
                Vec::new()
            })
            .into_iter()
            .map(|l| LogEvent::from_line(l, at))
            .collect()
    }

    /// Writes `events` to the stream's local copy and ships them.
    pub(super) async fn write(&self, shipper: &Shipper, events: &[LogEvent]) {
        let log = self.log.lock().await;
        if let Err(e) = log.stream.append(events) {
            eprintln!("devstack: {e:#}");
        }
        if let Err(e) = shipper.put(&log.stream, events).await {
            eprintln!("devstack: {e:#}");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
