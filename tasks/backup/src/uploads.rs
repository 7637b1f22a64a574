//! Multipart upload bookkeeping shared by copies and exports: part sizes,
//! reading back finished parts, completing, aborting.

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use sfn_task::TaskError;
use sfn_task::error::service_answer;

use crate::continuation::MAX_PART_SIZE;

/// S3's most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;

const MIB: u64 = 1 << 20;

/// The part size for an object of `size` bytes: `preferred`, raised so the
/// object fits in 10,000 parts, in whole MiB (so a part boundary is also a
/// SHA-256 block boundary).
pub fn part_size(preferred: u64, size: u64) -> u64 {
    preferred
        .max(size.div_ceil(MAX_PARTS))
        .div_ceil(MIB)
        .saturating_mul(MIB)
        .min(MAX_PART_SIZE)
}

/// The number of the part after `parts` finished ones, or a permanent
/// error naming the limit: S3 refuses part 10,001, and an export whose
/// length was not announced (or was wrong) cannot grow its parts midway.
pub fn next_part_number(parts: u32, part_size: u64) -> Result<i32, TaskError> {
    match u16::try_from(parts) {
        Ok(done) if u64::from(done) < MAX_PARTS => Ok(i32::from(done) + 1),
        _ => Err(TaskError::failed(format!(
            "the export is larger than S3's 10,000 parts of {} MiB ({} GiB) and did not \
             announce its length (Content-Length) up front, which would have sized the parts \
             to fit; raise BACKUP_UPLOAD_PART_SIZE",
            part_size / MIB,
            (MAX_PARTS * part_size) >> 30
        ))),
    }
}

/// The finished parts of an upload, by number; `None` if the upload no
/// longer exists (aborted, completed, or never ours).
pub async fn finished_parts(
    s3: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<Option<Vec<CompletedPart>>, TaskError> {
    let mut parts = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = s3
            .list_parts()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .set_part_number_marker(marker.clone())
            .send()
            .await;
        let page = match page {
            Ok(page) => page,
            Err(err) if service_answer(&err).is_some_and(|a| a.is(&["NoSuchUpload"], 404)) => {
                return Ok(None);
            }
            Err(err) => return Err(TaskError::from(err).context("reading an upload's parts")),
        };
        for part in page.parts() {
            if let (Some(number), Some(etag)) = (part.part_number(), part.e_tag()) {
                // An upload created with a checksum algorithm must name each
                // part's checksum when it completes; ListParts returns them.
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .e_tag(etag)
                        .set_checksum_crc32(part.checksum_crc32().map(str::to_owned))
                        .build(),
                );
            }
        }
        match page.next_part_number_marker() {
            Some(next) if page.is_truncated() == Some(true) => marker = Some(next.to_owned()),
            _ => break,
        }
    }
    parts.sort_by_key(|p| p.part_number());
    parts.dedup_by_key(|p| p.part_number());
    Ok(Some(parts))
}

/// Completes an upload from its parts; the object's ETag.
pub async fn complete(
    s3: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    mut parts: Vec<CompletedPart>,
) -> Result<String, TaskError> {
    parts.sort_by_key(|p| p.part_number());
    let done = s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(|e| TaskError::from(e).context("completing a multipart upload"))?;
    Ok(done
        .e_tag()
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned())
}

/// The upload id `CreateMultipartUpload` answered with.
pub fn upload_id(
    created: &aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput,
) -> Result<String, TaskError> {
    created
        .upload_id()
        .map(str::to_owned)
        .ok_or_else(|| TaskError::retryable("S3 returned no upload id"))
}

/// Aborts an upload, best effort: the bucket's lifecycle rule removes what
/// a killed process leaves behind.
pub async fn abort(s3: &Client, bucket: &str, key: &str, upload_id: &str) {
    if let Err(err) = s3
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
    {
        tracing::warn!(error = %TaskError::from(err), "could not abort a multipart upload");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_fit_s3s_limits() {
        let five = 5 * MIB;
        assert_eq!(part_size(five, 12 * MIB), five);
        // 10,000 parts of the preferred size are too few for 100 GiB.
        let big = 100 << 30;
        let size = part_size(five, big);
        assert!(
            size.saturating_mul(MAX_PARTS) >= big && size.is_multiple_of(MIB),
            "{size}"
        );
        // S3's largest object, 5 TiB, still fits.
        let largest = 5u64 << 40;
        assert!(part_size(five, largest).saturating_mul(MAX_PARTS) >= largest);
        assert_eq!(part_size(five + 1, 0), 6 * MIB);
    }

    #[test]
    fn part_10001_is_refused_before_it_is_sent() {
        assert_eq!(next_part_number(0, 6 * MIB).ok(), Some(1));
        assert_eq!(next_part_number(9_999, 6 * MIB).ok(), Some(10_000));
        let err = next_part_number(10_000, 6 * MIB)
            .err()
            .map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(
            err.contains("10,000 parts of 6 MiB (58 GiB)") && err.contains("Content-Length"),
            "{err}"
        );
    }
}
