//! One invocation's share of an S3 run: list a page after where the run
//! stopped, copy what is not done yet (bounded concurrency), move the
//! position past what is, and repeat until the listing ends or time runs
//! out. Nothing is held for more than one page, whatever the prefix holds.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use sfn_task::{TaskContext, TaskError};

use crate::continuation::{S3Position, Totals, key_tag};
use crate::manifest::PartWriter;
use crate::s3_copy::{self, Job, Limits, Listed, Step};

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The objects, in key order.
    pub objects: Vec<Listed>,
    /// Whether more follow.
    pub truncated: bool,
}

/// Lists up to `max_keys` objects under `prefix` after `start_after` (of
/// the batch, if the job has one).
pub async fn list_page(
    job: Job<'_>,
    start_after: Option<&str>,
    max_keys: i32,
) -> Result<Page, TaskError> {
    if let Some(batch) = job.batch {
        let from = start_after.map_or(0, |after| {
            batch.partition_point(|o| o.key.as_str() <= after)
        });
        let take = usize::try_from(max_keys).unwrap_or(1000);
        let objects = batch[from..].iter().take(take).cloned().collect::<Vec<_>>();
        return Ok(Page {
            truncated: from + objects.len() < batch.len(),
            objects,
        });
    }
    let page = job
        .s3
        .list_objects_v2()
        .bucket(job.source_bucket)
        .prefix(job.prefix)
        .set_start_after(start_after.map(str::to_owned))
        .max_keys(max_keys)
        .send()
        .await
        .map_err(|e| TaskError::from(e).context("listing the source"))?;
    let objects = page
        .contents()
        .iter()
        .filter_map(|object| {
            Some(Listed {
                key: object.key()?.to_owned(),
                size: u64::try_from(object.size().unwrap_or(0)).unwrap_or(0),
                etag: object
                    .e_tag()
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_owned(),
            })
        })
        .collect();
    Ok(Page {
        objects,
        truncated: page.is_truncated() == Some(true),
    })
}

/// Whether the run's destination holds nothing yet.
pub async fn destination_is_empty(job: Job<'_>) -> Result<bool, TaskError> {
    let page = job
        .s3
        .list_objects_v2()
        .bucket(&job.config.bucket)
        .prefix(format!("{}data/", job.run_key))
        .max_keys(1)
        .send()
        .await
        .map_err(|e| TaskError::from(e).context("looking for an earlier attempt's copies"))?;
    Ok(page.key_count().unwrap_or(0) == 0 && page.contents().is_empty())
}

/// Kept after the copy time limit to abort what is in flight before the
/// deadline guard drops everything.
const ABORT_RESERVE: Duration = Duration::from_secs(3);

/// What an invocation's pass did.
#[derive(Debug)]
pub struct Pass {
    /// Where the run stands now.
    pub position: S3Position,
    /// Whether anything was done (an object, or a part of one).
    pub progressed: bool,
}

/// Works through the listing from `position` until it ends or time runs
/// out; every object done goes to `manifest` and `totals`.
pub async fn run(
    job: Job<'_>,
    ctx: &TaskContext,
    mut position: S3Position,
    manifest: &mut PartWriter,
    totals: &mut Totals,
) -> Result<Pass, TaskError> {
    let config = job.config;
    // Copies start only with `stop_before` left, so each has at least half
    // of it before the hard limit, and half is kept to abort.
    let reserve = ABORT_RESERVE.min(config.stop_before / 2);
    let limits = Limits {
        stop_starting: ctx
            .guard_deadline()
            .checked_sub(config.stop_before)
            .unwrap_or_else(Instant::now),
        hard: ctx
            .guard_deadline()
            .checked_sub(reserve)
            .unwrap_or_else(|| ctx.guard_deadline()),
    };
    let mut progressed = false;
    while !(position.listing_done && position.open_copy.is_none())
        && Instant::now() < limits.stop_starting
    {
        let page = list_page(job, position.after_key.as_deref(), config.list_page_size).await?;
        let (finished, page_progressed) =
            run_page(job, ctx, &page, &mut position, manifest, totals, limits).await?;
        progressed |= page_progressed;
        if !finished {
            break;
        }
    }
    Ok(Pass {
        position,
        progressed,
    })
}

/// Copies what is not done of `page`; whether the whole page is done.
async fn run_page(
    job: Job<'_>,
    ctx: &TaskContext,
    page: &Page,
    position: &mut S3Position,
    manifest: &mut PartWriter,
    totals: &mut Totals,
    limits: Limits,
) -> Result<(bool, bool), TaskError> {
    let tags: Vec<String> = page.objects.iter().map(|o| key_tag(&o.key)).collect();
    let done_before: HashSet<&str> = position.done_beyond.iter().map(String::as_str).collect();
    let uncertain: HashSet<&str> = position.uncertain.iter().map(String::as_str).collect();
    let mut done: Vec<bool> = tags
        .iter()
        .map(|t| done_before.contains(t.as_str()))
        .collect();
    // A retried invocation may have copied what its failed attempt did not
    // record; a run that did not start empty may hold copies of any key.
    let look_everywhere = !position.fresh || ctx.retry_count() > 0;
    let mut open_copy = position.open_copy.take();
    let handed_on = open_copy.as_ref().map(|o| o.upload_id.clone());

    let mut in_flight = FuturesUnordered::new();
    let mut cut = Vec::new();
    let mut failure: Option<TaskError> = None;
    let mut progressed = false;
    let mut next = 0;
    loop {
        while failure.is_none()
            && in_flight.len() < job.config.copy_concurrency
            && Instant::now() < limits.stop_starting
        {
            let Some(index) = (next..page.objects.len()).find(|&i| !done[i]) else {
                next = page.objects.len();
                break;
            };
            next = index + 1;
            let object = &page.objects[index];
            let open = open_copy.take_if(|o| o.source_key == object.key);
            let look = look_everywhere || uncertain.contains(tags[index].as_str());
            in_flight.push(async move {
                let step = tokio::time::timeout_at(
                    limits.hard.into(),
                    s3_copy::back_up(job, object, look, open, limits),
                )
                .await;
                (index, step)
            });
        }
        let Some((index, step)) = in_flight.next().await else {
            break;
        };
        match step {
            // Cut off: the copy may still land, so it is looked for.
            Err(_elapsed) => cut.push(index),
            Ok(Ok(Step::Done(entry))) => {
                entry.count(totals);
                manifest.push(job.s3, &job.config.bucket, entry).await?;
                done[index] = true;
                progressed = true;
            }
            Ok(Ok(Step::Paused {
                open,
                progressed: parts,
            })) => {
                progressed |= parts;
                position.open_copy = Some(open);
            }
            Ok(Ok(Step::NotStarted)) => {}
            Ok(Err(err)) => {
                // Let the copies in flight finish, then report the first.
                failure.get_or_insert(err);
            }
        }
    }
    if let Some(err) = failure {
        // Only an upload handed on by an earlier invocation survives this
        // one; the retry resumes it.
        if let Some(open) = position.open_copy.take()
            && Some(&open.upload_id) != handed_on.as_ref()
        {
            let dest = crate::keys::data_key(job.run_key, job.prefix, &open.source_key);
            crate::uploads::abort(job.s3, &job.config.bucket, &dest, &open.upload_id).await;
        }
        return Err(err);
    }
    // The open copy's object was not listed again where it must be: it was
    // deleted, so its upload goes.
    if let Some(open) = open_copy {
        let passed = page
            .objects
            .last()
            .is_some_and(|last| last.key >= open.source_key);
        if passed || !page.truncated {
            let dest = crate::keys::data_key(job.run_key, job.prefix, &open.source_key);
            crate::uploads::abort(job.s3, &job.config.bucket, &dest, &open.upload_id).await;
        } else {
            position.open_copy = Some(open);
        }
    }

    let page_tags: HashSet<&str> = tags.iter().map(String::as_str).collect();
    // Tags of keys beyond this page stay for a later page.
    let carried = |old: &[String]| -> Vec<String> {
        old.iter()
            .filter(|t| !page_tags.contains(t.as_str()))
            .cloned()
            .collect()
    };
    let first_undone = done.iter().position(|d| !d);
    match first_undone {
        None => {
            if let Some(last) = page.objects.last() {
                position.after_key = Some(last.key.clone());
            }
            position.done_beyond = carried(&position.done_beyond);
            position.uncertain = carried(&position.uncertain);
            position.listing_done = !page.truncated;
            Ok((true, progressed))
        }
        Some(first) => {
            if first > 0 {
                position.after_key = Some(page.objects[first - 1].key.clone());
            }
            let mut beyond = carried(&position.done_beyond);
            beyond.extend(
                (first..tags.len())
                    .filter(|&i| done[i])
                    .map(|i| tags[i].clone()),
            );
            let mut unsure = carried(&position.uncertain);
            unsure.extend(
                (first..tags.len())
                    .filter(|&i| {
                        !done[i] && (cut.contains(&i) || uncertain.contains(tags[i].as_str()))
                    })
                    .map(|i| tags[i].clone()),
            );
            position.done_beyond = beyond;
            position.uncertain = unsure;
            Ok((false, progressed))
        }
    }
}
