//! A batched run: a Step Functions Distributed Map lists the prefix (its S3
//! `ItemReader`) and cuts the objects into batches (`ItemBatcher`); each
//! child execution calls the task with its batch as `items`, and one last
//! call with `finish` writes the run's index.
//!
//! A batch is a small run of its own inside the run: it copies exactly its
//! objects (listed from `items`, never from the bucket), continues across
//! invocations like any run, and writes its manifest parts under
//! `manifest/batch-{tag}/` (the tag of its first key), so batches running
//! side by side never write the same key and a retried batch overwrites its
//! own parts. `finish` reads the parts back to count the run's totals: the
//! totals in the index are what the parts hold, never what a caller says.

use aws_sdk_s3::Client;
use futures_util::StreamExt;
use futures_util::stream;
use serde::Deserialize;
use sfn_task::error::service_answer;
use sfn_task::{TaskContext, TaskError};

use crate::Output;
use crate::config::Config;
use crate::continuation::{Totals, key_tag};
use crate::manifest::{self, Entry, Index};
use crate::request::{SourceInput, Validated};
use crate::s3_copy::Listed;

/// The most objects one batch may name. A Distributed Map child's input is
/// at most 256 KiB, about 2,000 items of the S3 `ItemReader`'s shape.
pub const MAX_ITEMS: usize = 10_000;
/// The most parts a `finish` may name.
pub const MAX_PARTS: usize = 100_000;
/// Parts read at once by `finish`.
const READ_CONCURRENCY: usize = 8;

/// One object of a batch, as the Distributed Map's S3 `ItemReader` gives it
/// (`LastModified` and `StorageClass` are ignored).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Item {
    /// The source key.
    #[serde(rename = "Key")]
    pub key: String,
    /// Its ETag when listed (quoted or not).
    #[serde(rename = "Etag", default)]
    pub etag: Option<String>,
    /// Its size when listed.
    #[serde(rename = "Size", default)]
    pub size: Option<u64>,
}

/// Finishes a batched run.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Finish {
    /// Every manifest part the batches wrote (their `manifest_parts`).
    pub parts: Vec<String>,
    /// When the run started (RFC 3339), for the index.
    pub started_at: String,
    /// Invocations the batches took, for the index.
    pub invocations: u32,
}

/// The batch's objects, checked: 1 to [`MAX_ITEMS`], each under `prefix`,
/// none twice, in key order (the order a listing resumes in).
pub fn listed(items: Vec<Item>, prefix: &str) -> Result<Vec<Listed>, TaskError> {
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(TaskError::invalid_input(format!(
            "items: 1 to {MAX_ITEMS} objects (set the Distributed Map's MaxItemsPerBatch)"
        )));
    }
    let mut objects = Vec::with_capacity(items.len());
    for item in items {
        if !item.key.starts_with(prefix) || item.key.len() > crate::keys::MAX_KEY_BYTES {
            return Err(TaskError::invalid_input(
                "items: every Key must be under source.prefix (at most 1024 bytes)",
            ));
        }
        objects.push(Listed {
            key: item.key,
            size: item.size.unwrap_or(0),
            etag: item.etag.unwrap_or_default().trim_matches('"').to_owned(),
        });
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    if objects.windows(2).any(|pair| pair[0].key == pair[1].key) {
        return Err(TaskError::invalid_input("items: a Key appears twice"));
    }
    Ok(objects)
}

/// Where a batch's manifest parts go: `{run key}manifest/batch-{tag}/`.
pub fn part_prefix(run_key: &str, objects: &[Listed]) -> String {
    let first = objects.first().map_or("", |o| o.key.as_str());
    format!("{run_key}manifest/batch-{}/", key_tag(first))
}

/// Whether this is the batch's first attempt ever: it claims the batch with
/// a marker only one attempt can create (`If-None-Match: *`). A first
/// attempt knows no copy of its objects can exist yet, so it looks for
/// none; any later one (a retry, a rerun of the run) looks before copying.
pub async fn first_attempt(s3: &Client, bucket: &str, prefix: &str) -> Result<bool, TaskError> {
    let claimed = s3
        .put_object()
        .bucket(bucket)
        .key(format!("{prefix}started"))
        .if_none_match("*")
        .body(Vec::new().into())
        .send()
        .await;
    match claimed {
        Ok(_) => Ok(true),
        Err(err)
            if service_answer(&err).is_some_and(|a| {
                a.is(&["PreconditionFailed", "ConditionalRequestConflict"], 412)
            }) =>
        {
            Ok(false)
        }
        Err(err) => Err(TaskError::from(err).context("claiming the batch")),
    }
}

impl Finish {
    /// Checks the request against the run: parts of this run's batches,
    /// each once; a start time.
    pub fn check(&self, run_key: &str) -> Result<(), TaskError> {
        let batches = format!("{run_key}manifest/batch-");
        // None at all is an empty prefix: a run of no objects.
        if self.parts.len() > MAX_PARTS {
            return Err(TaskError::invalid_input(format!(
                "finish.parts: at most {MAX_PARTS} manifest parts"
            )));
        }
        let foreign = self.parts.iter().any(|part| {
            !part.starts_with(&batches)
                || !part.ends_with(".jsonl")
                || part.contains("..")
                || part.chars().any(char::is_control)
        });
        if foreign {
            return Err(TaskError::invalid_input(
                "finish.parts: only this run's batch manifest parts",
            ));
        }
        let mut sorted: Vec<&String> = self.parts.iter().collect();
        sorted.sort();
        if sorted.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(TaskError::invalid_input(
                "finish.parts: a part appears twice",
            ));
        }
        if chrono::DateTime::parse_from_rfc3339(&self.started_at).is_err() {
            return Err(TaskError::invalid_input(
                "finish.started_at: an RFC 3339 time",
            ));
        }
        Ok(())
    }

    /// The run's totals, counted from the parts themselves.
    pub async fn count(&self, s3: &Client, bucket: &str) -> Result<Totals, TaskError> {
        let counted: Vec<Result<Totals, TaskError>> = stream::iter(&self.parts)
            .map(|part| count_part(s3, bucket, part))
            .buffer_unordered(READ_CONCURRENCY)
            .collect()
            .await;
        let mut totals = Totals::default();
        for part in counted {
            totals.add(&part?);
        }
        Ok(totals)
    }
}

/// Writes a batched run's index, its totals counted from its parts.
pub async fn finish_run(
    s3: &Client,
    config: &Config,
    run: &Validated,
    finish: &Finish,
    ctx: &TaskContext,
) -> Result<Output, TaskError> {
    let SourceInput::S3 { bucket, prefix } = &run.source else {
        return Err(TaskError::invalid_input("finish: for S3 sources"));
    };
    let totals = finish.count(s3, &config.bucket).await?;
    let invocations = finish.invocations.saturating_add(1);
    let mut parts = finish.parts.clone();
    parts.sort();
    let index = Index {
        schema_version: manifest::SCHEMA_VERSION,
        name: run.name.clone(),
        run_id: run.run_id.clone(),
        run_key: run.run_key(),
        correlation_id: ctx.correlation_id().to_owned(),
        source: manifest::Source::S3 {
            bucket: bucket.clone(),
            prefix: prefix.clone(),
        },
        started_at: finish.started_at.clone(),
        finished_at: crate::now(),
        invocations,
        totals,
        parts,
    };
    let mut output = Output::new(run.run_key(), run.run_id.clone(), invocations, totals);
    output.manifest_key = Some(manifest::write_index(s3, &config.bucket, &index).await?);
    output.done = true;
    Ok(output)
}

async fn count_part(s3: &Client, bucket: &str, key: &str) -> Result<Totals, TaskError> {
    let object = match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(object) => object,
        Err(err) if service_answer(&err).is_some_and(|a| a.is(&["NoSuchKey"], 404)) => {
            return Err(TaskError::invalid_input(format!(
                "finish.parts: {key} does not exist"
            )));
        }
        Err(err) => return Err(TaskError::from(err).context("reading a manifest part")),
    };
    let body = object
        .body
        .collect()
        .await
        .map_err(|e| TaskError::retryable(format!("reading a manifest part: {e}")))?
        .into_bytes();
    let mut totals = Totals::default();
    for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let entry: Entry = serde_json::from_slice(line).map_err(|e| {
            TaskError::failed(format!("{key} is not a manifest part this task wrote: {e}"))
        })?;
        entry.count(&mut totals);
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str) -> Item {
        Item {
            key: key.into(),
            etag: Some("\"abc\"".into()),
            size: Some(3),
        }
    }

    #[test]
    fn a_batch_is_checked_and_sorted() {
        let objects = listed(vec![item("d/b"), item("d/a")], "d/").unwrap_or_default();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].key, "d/a");
        assert_eq!(objects[0].etag, "abc");
        for bad in [
            vec![],
            vec![item("other/a")],
            vec![item("d/a"), item("d/a")],
            (0..=MAX_ITEMS).map(|i| item(&format!("d/{i}"))).collect(),
        ] {
            assert!(
                matches!(listed(bad, "d/"), Err(TaskError::InvalidInput(_))),
                "refused"
            );
        }
    }

    #[test]
    fn batches_write_apart() {
        let a = listed(vec![item("d/a")], "d/").unwrap_or_default();
        let b = listed(vec![item("d/b")], "d/").unwrap_or_default();
        assert_ne!(part_prefix("r/", &a), part_prefix("r/", &b));
        assert!(part_prefix("r/", &a).starts_with("r/manifest/batch-"));
    }

    #[test]
    fn finish_names_only_this_runs_parts() {
        let finish = |parts: &[&str]| Finish {
            parts: parts.iter().map(|p| (*p).to_owned()).collect(),
            started_at: "2026-12-01T00:00:00Z".into(),
            invocations: 1,
        };
        let run = "backups/crm/1/";
        let part = "backups/crm/1/manifest/batch-0123456789abcdef/part-000001.jsonl";
        assert!(finish(&[part]).check(run).is_ok());
        assert!(finish(&[]).check(run).is_ok(), "an empty prefix");
        for bad in [
            &["backups/crm/2/manifest/batch-0/part-000001.jsonl"][..],
            &["backups/crm/1/manifest/part-000001.jsonl"][..],
            &["backups/crm/1/manifest/batch-x/../../../2/data/a.jsonl"][..],
            &["backups/crm/1/data/batch-x.jsonl"][..],
            &[part, part][..],
        ] {
            assert!(finish(bad).check(run).is_err(), "{bad:?}");
        }
        let mut late = finish(&[part]);
        late.started_at = "yesterday".into();
        assert!(late.check(run).is_err());
    }
}
