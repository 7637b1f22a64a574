//! Measuring Lambda processes from the outside: a Runtime API that notes
//! when a process first asks for work and when each answer arrives, and the
//! statistics the report prints.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::body::Bytes;
use devstack::runtime_api::{Invocation, Reply, RuntimeApi};

mod program;
pub use program::Program;

/// A Runtime API for one process (the local stack's): invocations are
/// handed out in order, each answer (response or error) comes back with the
/// time it arrived.
#[derive(Debug)]
pub struct TimedApi {
    /// `host:port` for `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    api: RuntimeApi,
    sequence: AtomicU64,
}

impl TimedApi {
    /// Listens on 127.0.0.1.
    pub async fn start() -> Result<Self> {
        let api = RuntimeApi::start().await?;
        Ok(Self {
            address: api.address(),
            api,
            sequence: AtomicU64::new(0),
        })
    }

    /// When the process first asked for an invocation (waits for it).
    pub async fn first_next(&self, limit: Duration) -> Result<Instant> {
        let mut polls = self.api.polls();
        let polls = tokio::time::timeout(limit, polls.wait_for(|p| p.first.is_some()))
            .await
            .context("the process never asked for an invocation")??;
        polls.first.context("no time recorded")
    }

    /// Hands out `payload` and waits for the answer: when it arrived and
    /// whether it was a success.
    pub async fn invoke(&self, payload: Bytes, limit: Duration) -> Result<(Instant, bool)> {
        let (answered, reply) = self.invoke_reply(payload, limit).await?;
        Ok((answered, matches!(reply, Reply::Response(_))))
    }

    /// As [`TimedApi::invoke`], with what the process posted.
    pub async fn invoke_reply(&self, payload: Bytes, limit: Duration) -> Result<(Instant, Reply)> {
        let id = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let deadline_ms = (SystemTime::now() + Duration::from_secs(60))
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let answer = self.api.submit(Invocation {
            request_id: format!("bench-{id}"),
            payload,
            deadline_ms,
            function_arn: "arn:aws:lambda:eu-west-1:123456789012:function:bench".to_owned(),
            trace_id: "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
            client_context: None,
        });
        let answer = tokio::time::timeout(limit, answer)
            .await
            .context("no answer in time")?
            .context("the Runtime API stopped")?;
        Ok((answer.answered, answer.reply))
    }
}

/// Ten small objects under `daily/` of `bucket`, created on `stack`: the
/// source the backup measurements copy.
pub async fn prepare_backup_source(stack: &devstack::stack::Stack, bucket: &str) -> Result<()> {
    let s3 = devstack::clients::s3(&stack.aws);
    devstack::provision::create_bucket(&s3, bucket, &stack.spec.placement.region).await?;
    for i in 0..10 {
        s3.put_object()
            .bucket(bucket)
            .key(format!("daily/part-{i}.json"))
            .body(format!("{{\"n\": {i}}}").into_bytes().into())
            .send()
            .await?;
    }
    Ok(())
}

/// Median, extremes and tail of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Sample size.
    pub n: usize,
    /// Smallest value.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

/// Summarises `values` (any order); `None` when empty.
pub fn summarise(values: &[f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index]
    };
    Some(Summary {
        n: sorted.len(),
        min: sorted[0],
        p50: rank(0.5),
        p99: rank(0.99),
        max: sorted[sorted.len() - 1],
    })
}

/// Peak resident set size of a live process, from `/proc/<pid>/status`.
pub use devstack::process_memory::peak_rss_kib;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_uses_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = summarise(&values).unwrap_or_else(|| panic!("empty"));
        assert_eq!(
            (s.n, s.min, s.p50, s.p99, s.max),
            (100, 1.0, 50.0, 99.0, 100.0)
        );
        assert!(summarise(&[]).is_none());
        assert_eq!(summarise(&[3.0]).map(|s| s.p99), Some(3.0));
    }
}
