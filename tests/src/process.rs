//! A task binary as a child process, with its output captured.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

/// A running task process. Dropping it kills the process.
#[derive(Debug)]
pub struct TaskProcess {
    program: String,
    child: Child,
    stdout: Option<JoinHandle<Vec<String>>>,
    stderr: Option<JoinHandle<Vec<String>>>,
}

/// What a stopped process wrote.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Every stdout line, in order.
    pub stdout: Vec<String>,
    /// Every stderr line, in order.
    pub stderr: Vec<String>,
}

impl Captured {
    /// Stdout lines parsed as JSON; panics on a line that is not JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .iter()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"))
            })
            .collect()
    }
}

impl TaskProcess {
    /// Starts `program` with a clean environment plus `envs`.
    pub fn spawn(program: &str, envs: &[(&str, String)]) -> std::io::Result<Self> {
        let mut command = Command::new(program);
        command
            .env_clear()
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Ok(path) = std::env::var("PATH") {
            command.env("PATH", path);
        }
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().map(read_lines);
        let stderr = child.stderr.take().map(read_lines);
        let program = std::path::Path::new(program)
            .file_name()
            .map_or_else(|| program.to_owned(), |n| n.to_string_lossy().into_owned());
        Ok(Self {
            program,
            child,
            stdout,
            stderr,
        })
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process's peak resident memory so far (`VmHWM`), in bytes,
    /// read from outside the process.
    pub fn peak_rss(&self) -> Option<u64> {
        devstack::process_memory::peak_rss_kib(self.child.id()).map(|kib| kib * 1024)
    }

    /// Kills the process and returns everything it wrote.
    pub fn stop(mut self) -> Captured {
        self.collect()
    }

    /// Kills the process, reads what it wrote and keeps a copy for the
    /// suite's log scan.
    fn collect(&mut self) -> Captured {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let captured = Captured {
            stdout: join(self.stdout.take()),
            stderr: join(self.stderr.take()),
        };
        crate::log_scan::archive(
            &self.program,
            captured
                .stdout
                .iter()
                .chain(&captured.stderr)
                .map(String::as_str),
        );
        captured
    }
}

impl Drop for TaskProcess {
    fn drop(&mut self) {
        if self.stdout.is_some() || self.stderr.is_some() {
            self.collect();
        }
    }
}

fn read_lines(stream: impl Read + Send + 'static) -> JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        BufReader::new(stream)
            .lines()
            .map_while(Result::ok)
            .collect()
    })
}

fn join(handle: Option<JoinHandle<Vec<String>>>) -> Vec<String> {
    handle.and_then(|h| h.join().ok()).unwrap_or_default()
}
