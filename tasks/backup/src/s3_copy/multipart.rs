//! The multipart half of [`super`]: `UploadPartCopy` in parts copied
//! concurrently, the upload handed to the next invocation when time runs
//! out, and only parts that can finish in time started.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_s3::types::CompletedPart;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use sfn_task::TaskError;
use sfn_task::error::service_answer;

use super::{
    Attempt, Head, Job, Limits, copy_metadata, copy_source, is_changed, is_missing, long_copy,
};
use crate::continuation::OpenCopy;
use crate::uploads;

enum PartFailure {
    Missing,
    Changed,
    Other(TaskError),
}

pub(super) async fn multipart_copy(
    job: Job<'_>,
    key: &str,
    head: &Head,
    dest: &str,
    open: Option<OpenCopy>,
    limits: Limits,
) -> Result<Attempt, TaskError> {
    let _turn = job
        .multipart_gate
        .acquire()
        .await
        .map_err(|_| TaskError::failed("the multipart gate closed"))?;
    let bucket = job.config.bucket.as_str();
    // Resume the open upload if it is of this version and still there.
    let mut resumed = None;
    if let Some(open) = open {
        if open.source_etag == head.etag {
            if let Some(parts) =
                uploads::finished_parts(job.s3, bucket, dest, &open.upload_id).await?
            {
                resumed = Some((open, parts));
            }
        } else {
            uploads::abort(job.s3, bucket, dest, &open.upload_id).await;
        }
    }
    let from_earlier = resumed.is_some();
    let (open, mut parts) = match resumed {
        Some(found) => found,
        None => {
            if Instant::now() >= limits.stop_starting {
                return Ok(Attempt::NotStarted);
            }
            let upload = job
                .s3
                .create_multipart_upload()
                .bucket(bucket)
                .key(dest)
                .set_metadata(Some(copy_metadata(job, head)))
                .set_content_type(head.content_type.clone())
                .set_cache_control(head.cache_control.clone())
                .set_content_disposition(head.content_disposition.clone())
                .set_content_encoding(head.content_encoding.clone())
                .set_content_language(head.content_language.clone())
                .set_storage_class(job.storage_class.cloned())
                .send()
                .await
                .map_err(|e| TaskError::from(e).context("starting a multipart copy"))?;
            let upload_id = uploads::upload_id(&upload)?;
            let open = OpenCopy {
                source_key: key.to_owned(),
                source_etag: head.etag.clone(),
                upload_id,
                part_size: uploads::part_size(job.config.copy_part_size, head.size),
            };
            (open, Vec::new())
        }
    };
    let total = head.size.div_ceil(open.part_size).max(1);
    let finished: HashSet<i32> = parts
        .iter()
        .filter_map(CompletedPart::part_number)
        .collect();
    let mut missing = (1..=total)
        .filter_map(|n| i32::try_from(n).ok())
        .filter(|n| !finished.contains(n));
    let source = copy_source(job.source_bucket, key);
    let mut in_flight = FuturesUnordered::new();
    let mut failure = None;
    let mut progressed = false;
    // The slowest part so far: a part that could not finish before `hard`
    // would be copied for nothing and again next time, so none starts then.
    let mut slowest = Duration::ZERO;
    loop {
        while failure.is_none()
            && in_flight.len() < job.config.part_concurrency
            && starts_in_time(Instant::now(), slowest, limits)
        {
            let Some(number) = missing.next() else { break };
            let offset = (u64::try_from(number).unwrap_or(1) - 1) * open.part_size;
            let end = (offset + open.part_size).min(head.size).saturating_sub(1);
            let copy = copy_part(
                job,
                &source,
                head,
                dest,
                &open.upload_id,
                number,
                offset,
                end,
            );
            let timed = async move {
                let started = Instant::now();
                (copy.await, started.elapsed())
            };
            in_flight.push(tokio::time::timeout_at(limits.hard.into(), timed));
        }
        let Some(result) = in_flight.next().await else {
            break;
        };
        match result {
            // Cut off at the deadline: `ListParts` tells next time.
            Err(_elapsed) => {}
            Ok((Ok(part), took)) => {
                progressed = true;
                slowest = slowest.max(took);
                parts.push(part);
            }
            Ok((Err(err), _)) => {
                failure.get_or_insert(err);
            }
        }
    }
    match failure {
        Some(PartFailure::Missing) => {
            uploads::abort(job.s3, bucket, dest, &open.upload_id).await;
            return Ok(Attempt::Gone);
        }
        Some(PartFailure::Changed) => {
            uploads::abort(job.s3, bucket, dest, &open.upload_id).await;
            return Ok(Attempt::SourceChanged);
        }
        Some(PartFailure::Other(err)) => {
            // A retry continues an upload an earlier invocation handed on;
            // one started here would be lost with this invocation.
            if !from_earlier || !matches!(err, TaskError::Retryable(_)) {
                uploads::abort(job.s3, bucket, dest, &open.upload_id).await;
            }
            return Err(err);
        }
        None => {}
    }
    drop(in_flight);
    if parts.len() as u64 == total {
        let etag = uploads::complete(job.s3, bucket, dest, &open.upload_id, parts).await?;
        return Ok(Attempt::Copied(etag));
    }
    Ok(Attempt::Paused { open, progressed })
}

/// Whether a part started `now` still has time: before `stop_starting`,
/// and, once parts have been timed, with the slowest one's duration left
/// before `hard`.
fn starts_in_time(now: Instant, slowest: Duration, limits: Limits) -> bool {
    now < limits.stop_starting && now + slowest < limits.hard
}

#[allow(clippy::too_many_arguments)]
async fn copy_part(
    job: Job<'_>,
    source: &str,
    head: &Head,
    dest: &str,
    upload_id: &str,
    number: i32,
    offset: u64,
    end: u64,
) -> Result<CompletedPart, PartFailure> {
    let part = job
        .s3
        .upload_part_copy()
        .bucket(&job.config.bucket)
        .key(dest)
        .upload_id(upload_id)
        .part_number(number)
        .copy_source(source)
        .copy_source_if_match(&head.etag)
        .copy_source_range(format!("bytes={offset}-{end}"))
        .customize()
        .config_override(long_copy())
        .send()
        .await;
    let part = match part {
        Ok(part) => part,
        Err(err) if is_missing(service_answer(&err)) => return Err(PartFailure::Missing),
        Err(err) if is_changed(service_answer(&err)) => return Err(PartFailure::Changed),
        Err(err) => {
            return Err(PartFailure::Other(
                TaskError::from(err).context("copying a part"),
            ));
        }
    };
    let etag = part
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .ok_or_else(|| PartFailure::Other(TaskError::retryable("S3 returned no part ETag")))?;
    Ok(CompletedPart::builder()
        .part_number(number)
        .e_tag(etag)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(now: Instant) -> Limits {
        Limits {
            stop_starting: now + Duration::from_secs(10),
            hard: now + Duration::from_secs(30),
        }
    }

    #[test]
    fn untimed_parts_start_until_the_stop_point() {
        let now = Instant::now();
        let limits = limits(now);
        assert!(starts_in_time(now, Duration::ZERO, limits));
        assert!(!starts_in_time(
            limits.stop_starting,
            Duration::ZERO,
            limits
        ));
    }

    #[test]
    fn a_part_slower_than_the_time_left_does_not_start() {
        let now = Instant::now();
        let limits = limits(now);
        assert!(starts_in_time(now, Duration::from_secs(29), limits));
        assert!(!starts_in_time(now, Duration::from_secs(30), limits));
        assert!(!starts_in_time(
            now + Duration::from_secs(5),
            Duration::from_secs(25),
            limits
        ));
    }
}
