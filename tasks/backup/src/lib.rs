//! The `backup` task: copies an S3 prefix (server-side) or streams an HTTP
//! export into `backups/{name}/{run id}/data/` of the backup bucket, with a
//! manifest of everything it backed up.
//!
//! A run longer than one invocation returns `{"done": false, "continuation":
//! ...}` and the state machine calls the task again with the continuation
//! until `done` is true: the listing resumes after the last key done, a
//! multipart copy at its next part, an export at its next byte (`Range`).
//! A run is identified by its `run_id` (the schedule slot or the
//! execution's start time), so distinct runs never share keys, and a retry
//! or a rerun with the same `run_id` finds what is already copied (by the
//! source ETag each copy records) and copies only the rest.
//!
//! | module | job |
//! |---|---|
//! | [`request`] | the input and its validation |
//! | [`batch`] | a Distributed Map's batch of the run, and its end |
//! | [`continuation`] | what one invocation hands the next |
//! | [`s3_run`] | an invocation's pass over an S3 listing |
//! | [`s3_copy`] | one object: `CopyObject`, or `UploadPartCopy` resumed |
//! | [`http_export`] | an export streamed into an upload, resumed by `Range` |
//! | [`part_buffers`] | the export's part buffers, reused |
//! | [`manifest`] | the manifest's parts and index |
//! | [`keys`] | where each object goes |

pub mod address;
pub mod batch;
pub mod config;
pub mod continuation;
pub mod http_export;
pub mod keys;
pub mod manifest;
pub mod part_buffers;
pub mod request;
pub mod s3_copy;
pub mod s3_run;
pub mod sha256;
pub mod uploads;

use aws_sdk_s3::Client;
use serde::Serialize;
use sfn_task::{TaskContext, TaskError};
use tokio::sync::Semaphore;

pub use config::Config;
pub use continuation::Continuation;
pub use request::{BackupRequest, Mode, SourceInput};

use continuation::{S3Position, Totals};
use manifest::{Index, PartWriter};

/// The task's output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Output {
    /// `backups/{name}/{run id}/`.
    pub run_key: String,
    /// The run's canonical id.
    pub run_id: String,
    /// Whether the run (or the batch) is complete.
    pub done: bool,
    /// Invocations the run (or the batch) took so far, this one included.
    pub invocations: u32,
    /// Objects in the backup (so far, while not done).
    pub object_count: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Objects copied by this run.
    pub copied: u64,
    /// Objects found already copied (a rerun).
    pub already_copied: u64,
    /// Objects that changed between listing and copy (the copied version
    /// is in the manifest).
    pub changed: u64,
    /// Objects deleted from the source after they were listed.
    pub vanished: u64,
    /// The manifest's key, once done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_key: Option<String>,
    /// A batch's manifest parts, once it is done: pass them all to `finish`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_parts: Option<Vec<String>>,
    /// Pass back as `continuation` while not done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation: Option<Continuation>,
}

impl Output {
    fn new(run_key: String, run_id: String, invocations: u32, totals: Totals) -> Self {
        Self {
            run_key,
            run_id,
            done: false,
            invocations,
            object_count: totals.objects,
            bytes: totals.bytes,
            copied: totals.copied,
            already_copied: totals.already_copied,
            changed: totals.changed,
            vanished: totals.vanished,
            manifest_key: None,
            manifest_parts: None,
            continuation: None,
        }
    }
}

/// The handler.
pub async fn handle(
    s3: &Client,
    config: &Config,
    request: BackupRequest,
    ctx: TaskContext,
) -> Result<Output, TaskError> {
    let run = request.validate(config)?;
    let run_key = run.run_key();
    let batch = match &run.mode {
        Mode::Check => return Ok(Output::new(run_key, run.run_id, 0, Totals::default())),
        Mode::Finish(finish) => return batch::finish_run(s3, config, &run, finish, &ctx).await,
        Mode::Batch(objects) => Some(objects.as_slice()),
        Mode::Whole => None,
    };
    let mut continuation = run
        .continuation
        .clone()
        .unwrap_or_else(|| Continuation::start(&run.run_id, now()));
    continuation.invocations += 1;
    let parts_dir = match batch {
        Some(objects) => batch::part_prefix(&run_key, objects),
        None => manifest::parts_dir(&run_key),
    };
    let mut manifest = PartWriter::new(
        parts_dir.clone(),
        ctx.correlation_id(),
        continuation.manifest_parts,
        config.manifest_part_entries(),
    );
    let (finished, source) = match &run.source {
        SourceInput::S3 { bucket, prefix } => {
            let job = S3Invocation {
                s3,
                config,
                run: &run,
                run_key: &run_key,
                batch,
                parts_dir: &parts_dir,
            };
            let finished =
                copy_s3(job, bucket, prefix, &ctx, &mut manifest, &mut continuation).await?;
            let source = manifest::Source::S3 {
                bucket: bucket.clone(),
                prefix: prefix.clone(),
            };
            (finished, source)
        }
        SourceInput::Http { url, file_name } => {
            let export = (url.as_str(), file_name.as_deref());
            stream_export(
                s3,
                config,
                &run,
                export,
                &ctx,
                &mut manifest,
                &mut continuation,
            )
            .await?
        }
    };
    continuation.manifest_parts = manifest.written();
    let mut output = Output::new(
        run_key.clone(),
        run.run_id.clone(),
        continuation.invocations,
        continuation.totals,
    );
    if !finished {
        output.continuation = Some(continuation);
        return Ok(output);
    }
    output.done = true;
    if batch.is_some() {
        // The run's index is written by `finish`, once every batch is done.
        output.manifest_parts = Some(manifest.keys());
        return Ok(output);
    }
    let index = Index {
        schema_version: manifest::SCHEMA_VERSION,
        name: run.name.clone(),
        run_id: run.run_id.clone(),
        run_key: run_key.clone(),
        correlation_id: ctx.correlation_id().to_owned(),
        source,
        started_at: continuation.started_at.clone(),
        finished_at: now(),
        invocations: continuation.invocations,
        totals: continuation.totals,
        parts: manifest.keys(),
    };
    output.manifest_key = Some(manifest::write_index(s3, &config.bucket, &index).await?);
    Ok(output)
}

/// What an S3 invocation works on.
#[derive(Clone, Copy)]
struct S3Invocation<'a> {
    s3: &'a Client,
    config: &'a Config,
    run: &'a request::Validated,
    run_key: &'a str,
    batch: Option<&'a [s3_copy::Listed]>,
    parts_dir: &'a str,
}

/// One invocation's share of an S3 run (or of one batch of it): whether it
/// is done.
async fn copy_s3(
    job: S3Invocation<'_>,
    bucket: &str,
    prefix: &str,
    ctx: &TaskContext,
    manifest: &mut PartWriter,
    continuation: &mut Continuation,
) -> Result<bool, TaskError> {
    let S3Invocation { s3, config, .. } = job;
    let gate = Semaphore::new(1);
    let copy = s3_copy::Job {
        s3,
        config,
        source_bucket: bucket,
        prefix,
        run_key: job.run_key,
        storage_class: job.run.storage_class.as_ref(),
        correlation_id: ctx.correlation_id(),
        multipart_gate: &gate,
        batch: job.batch,
    };
    let position = match (continuation.s3.take(), job.batch) {
        (Some(position), _) => position,
        (None, Some(_)) => S3Position {
            fresh: batch::first_attempt(s3, &config.bucket, job.parts_dir).await?,
            ..S3Position::default()
        },
        (None, None) => S3Position {
            fresh: s3_run::destination_is_empty(copy).await?,
            ..S3Position::default()
        },
    };
    let pass = s3_run::run(copy, ctx, position, manifest, &mut continuation.totals).await?;
    manifest.flush(s3, &config.bucket).await?;
    let finished = pass.position.listing_done && pass.position.open_copy.is_none();
    tracing::info!(
        copied = continuation.totals.copied,
        objects = continuation.totals.objects,
        finished,
        "copy pass finished"
    );
    if !finished && !pass.progressed {
        // Possibly a slow moment; Retry backs off and tries again.
        return Err(no_progress());
    }
    continuation.s3 = Some(pass.position);
    Ok(finished)
}

/// One invocation's share of an export (`url`, `file_name`): whether it is
/// done, and the source as the manifest records it.
async fn stream_export(
    s3: &Client,
    config: &Config,
    run: &request::Validated,
    (url, file_name): (&str, Option<&str>),
    ctx: &TaskContext,
    manifest: &mut PartWriter,
    continuation: &mut Continuation,
) -> Result<(bool, manifest::Source), TaskError> {
    let vetted = address::vet(url, config).await?;
    let dest = keys::export_key(&run.run_key(), file_name);
    let job = http_export::Job {
        s3,
        config,
        source: &vetted,
        dest: &dest,
        storage_class: run.storage_class.as_ref(),
        correlation_id: ctx.correlation_id(),
    };
    let before = continuation.http.take();
    let upload_before = before.as_ref().map(|p| (p.upload_id.clone(), p.bytes));
    let finished = match http_export::run(job, ctx, before).await? {
        http_export::Step::Done(entry) => {
            tracing::info!(bytes = entry.size, "export stored");
            entry.count(&mut continuation.totals);
            manifest.push(s3, &config.bucket, entry).await?;
            manifest.flush(s3, &config.bucket).await?;
            true
        }
        http_export::Step::Paused(position) => {
            let progressed = match &upload_before {
                Some((upload, bytes)) if *upload == position.upload_id => position.bytes > *bytes,
                _ => position.bytes > 0,
            };
            if !progressed {
                return Err(no_progress());
            }
            tracing::info!(bytes = position.bytes, "export continues next invocation");
            continuation.http = Some(position);
            false
        }
    };
    let source = manifest::Source::Http {
        host: vetted.url().host_str().unwrap_or_default().to_owned(),
        path: vetted.url().path().to_owned(),
    };
    Ok((finished, source))
}

fn no_progress() -> TaskError {
    TaskError::retryable(
        "no progress in this invocation; raise the function timeout or lower BACKUP_STOP_BEFORE_MS",
    )
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
