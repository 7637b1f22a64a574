//! Function output on its way to CloudWatch Logs, as Lambda's log agent
//! handles it: what a process writes ([`Capture`]) becomes, with Lambda's
//! platform lines and level filtering applied, the events of its log stream
//! ([`LogStream`]): kept in a local file and shipped to the emulated
//! CloudWatch Logs ([`Shipper`]).
//!
//! The capture is a file rather than a pipe: whatever the process wrote
//! before it posted its response is in the file when the response arrives,
//! so an invocation's log is complete without waiting for a reader.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;

/// One CloudWatch Logs event.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    /// Milliseconds since the epoch.
    pub time_ms: i64,
    /// The message (one line).
    pub message: String,
}

impl LogEvent {
    /// A line the function wrote: at its own JSON `timestamp` (or `time`)
    /// if it has one, else at `fallback_ms`.
    pub fn from_line(line: String, fallback_ms: i64) -> Self {
        Self {
            time_ms: line_time_ms(&line, fallback_ms),
            message: line,
        }
    }
}

/// What one process writes to stdout and stderr.
#[derive(Debug)]
pub struct Capture {
    /// The file the process writes to.
    pub path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Capture {
    /// A new capture file named `id` under `dir/function`, and the file for
    /// the process's stdout and stderr.
    pub fn create(dir: &Path, function: &str, id: &str) -> Result<(Self, std::fs::File)> {
        let folder = dir.join(function);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let path = folder.join(format!("{id}.out"));
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok((
            Self {
                path,
                offset: 0,
                partial: Vec::new(),
            },
            file,
        ))
    }

    /// Complete lines written since the last call.
    pub fn read_new_lines(&mut self) -> Result<Vec<String>> {
        let mut file = std::fs::File::open(&self.path)?;
        file.seek(SeekFrom::Start(self.offset))?;
        let mut fresh = Vec::new();
        file.read_to_end(&mut fresh)?;
        self.offset += fresh.len() as u64;
        self.partial.extend_from_slice(&fresh);
        let Some(last_newline) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Ok(Vec::new());
        };
        let rest = self.partial.split_off(last_newline + 1);
        let complete = std::mem::replace(&mut self.partial, rest);
        Ok(String::from_utf8_lossy(&complete)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// Whatever is left at the end, complete or not (the process is gone).
    pub fn read_rest(&mut self) -> Result<Vec<String>> {
        let mut lines = self.read_new_lines()?;
        if !self.partial.is_empty() {
            lines.push(String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned());
        }
        Ok(lines)
    }
}

/// One log stream: its name as Lambda gives it, and the local copy of its
/// events (one message per line) under the state folder.
#[derive(Debug)]
pub struct LogStream {
    /// CloudWatch log group.
    pub group: String,
    /// CloudWatch log stream name, as Lambda names them.
    pub stream: String,
    /// The local copy.
    pub path: PathBuf,
    /// The id shared with the process's capture file.
    pub id: String,
}

impl LogStream {
    /// A new stream of `function` in `group`, its local copy under `dir`.
    pub fn create(dir: &Path, function: &str, group: &str) -> Result<Self> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let stream = format!("{}/[$LATEST]{id}", chrono::Utc::now().format("%Y/%m/%d"));
        let folder = dir.join(function);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let path = folder.join(format!("{id}.log"));
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self {
            group: group.to_owned(),
            stream,
            path,
            id,
        })
    }

    /// Appends `events` to the local copy.
    pub fn append(&self, events: &[LogEvent]) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        let mut text = String::new();
        for event in events {
            text.push_str(&event.message);
            text.push('\n');
        }
        file.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// The last `limit` bytes of `events`, cut at a character boundary, as
/// `X-Amz-Log-Result` carries them.
pub fn tail(events: &[LogEvent], limit: usize) -> String {
    let mut text = String::new();
    for event in events {
        text.push_str(&event.message);
        text.push('\n');
    }
    if text.len() <= limit {
        return text;
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// Milliseconds since the epoch a line was written at: its own `timestamp`
/// field if it is a JSON line with one, else `fallback`.
pub fn line_time_ms(line: &str, fallback: i64) -> i64 {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| {
            v.get("timestamp")
                .or_else(|| v.get("time"))
                .and_then(serde_json::Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        })
        .map_or(fallback, |t| t.timestamp_millis())
}

/// Sends log events to the emulated CloudWatch Logs.
#[derive(Debug, Clone)]
pub struct Shipper {
    client: Client,
}

impl Shipper {
    /// Ships with `client` (pointed at moto).
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Creates a log group unless it exists.
    pub async fn ensure_group(&self, group: &str) -> Result<()> {
        match self
            .client
            .create_log_group()
            .log_group_name(group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_already_exists_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(anyhow::Error::new(e).context(format!("creating log group {group}"))),
        }
    }

    /// Creates the stream (and its group if needed).
    pub async fn open(&self, stream: &LogStream) -> Result<()> {
        self.ensure_group(&stream.group).await?;
        self.client
            .create_log_stream()
            .log_group_name(&stream.group)
            .log_stream_name(&stream.stream)
            .send()
            .await
            .with_context(|| format!("creating log stream {}", stream.stream))?;
        Ok(())
    }

    /// Ships `events`, in time order (CloudWatch Logs wants a batch in
    /// order; equal times keep the order they were written in).
    pub async fn put(&self, stream: &LogStream, events: &[LogEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut ordered: Vec<&LogEvent> = events.iter().collect();
        ordered.sort_by_key(|e| e.time_ms);
        let events: Vec<InputLogEvent> = ordered
            .into_iter()
            .map(|e| {
                InputLogEvent::builder()
                    .timestamp(e.time_ms)
                    .message(&e.message)
                    .build()
            })
            .collect::<Result<_, _>>()?;
        self.client
            .put_log_events()
            .log_group_name(&stream.group)
            .log_stream_name(&stream.stream)
            .set_log_events(Some(events))
            .send()
            .await
            .with_context(|| format!("shipping logs to {}", stream.group))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_once_and_partial_lines_wait() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("devstack-logs-{}", uuid::Uuid::now_v7()));
        let (mut capture, mut file) = Capture::create(&dir, "f", "x")?;
        write!(file, "one\ntw")?;
        assert_eq!(capture.read_new_lines()?, vec!["one"]);
        write!(file, "o\nthree")?;
        assert_eq!(capture.read_new_lines()?, vec!["two"]);
        assert_eq!(capture.read_rest()?, vec!["three"]);

        let stream = LogStream::create(&dir, "f", "/aws/lambda/f")?;
        assert!(stream.stream.contains("[$LATEST]"));
        stream.append(&[LogEvent::from_line("a".to_owned(), 1)])?;
        stream.append(&[LogEvent::from_line("b".to_owned(), 2)])?;
        assert_eq!(std::fs::read_to_string(&stream.path)?, "a\nb\n");
        std::fs::remove_dir_all(dir)?;
        Ok(())
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        let events = vec![LogEvent::from_line("é".repeat(10), 0)];
        let t = tail(&events, 5);
        assert!(t.len() <= 5);
        assert!(t.ends_with('\n'));
        assert_eq!(tail(&[LogEvent::from_line("a".to_owned(), 0)], 4096), "a\n");
    }

    #[test]
    fn json_lines_keep_their_own_time() {
        let line = r#"{"timestamp":"2026-11-24T10:00:00.123Z","message":"x"}"#;
        assert_eq!(line_time_ms(line, 7), 1_795_514_400_123);
        assert_eq!(line_time_ms("plain text", 7), 7);
        assert_eq!(
            LogEvent::from_line(line.to_owned(), 7).time_ms,
            1_795_514_400_123
        );
    }
}
