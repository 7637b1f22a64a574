//! What the backup does with a source that changes under it, object by
//! object against the moto server: deleted after it was listed (S3 answers
//! `HeadObject` with a bare 404, `CopyObject` with `NoSuchKey`), or
//! rewritten after it was listed. Driven through the library, because a
//! real listing cannot be made stale on cue.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use backup::manifest::Outcome;
use backup::s3_copy::{self, Job, Limits, Listed, Step};
use tests::backup_run::{BACKUPS, SOURCE, moto_with_buckets};
use tokio::sync::Semaphore;

fn config() -> backup::Config {
    backup::Config::from_lookup(|k| match k {
        "BACKUP_BUCKET" => Some(BACKUPS.into()),
        "BACKUP_SOURCE_BUCKETS" => Some(SOURCE.into()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn limits() -> Limits {
    Limits {
        stop_starting: Instant::now() + Duration::from_secs(60),
        hard: Instant::now() + Duration::from_secs(90),
    }
}

#[tokio::test]
async fn objects_deleted_or_rewritten_after_listing_are_recorded_as_they_are() {
    let moto = moto_with_buckets().await;
    let s3 = moto.s3();
    let config = config();
    let gate = Semaphore::new(1);
    let job = Job {
        s3: &s3,
        config: &config,
        source_bucket: SOURCE,
        prefix: "daily/",
        run_key: "backups/crm/20261201T120000Z/",
        storage_class: None,
        correlation_id: "changes-1",
        multipart_gate: &gate,
        batch: None,
    };

    // Listed, then deleted: skipped and counted, not a failed run.
    let deleted = Listed {
        key: "daily/deleted.json".into(),
        size: 10,
        etag: "0123456789abcdef0123456789abcdef".into(),
    };
    for look_for_copy in [false, true] {
        match s3_copy::back_up(job, &deleted, look_for_copy, None, limits()).await {
            Ok(Step::Done(entry)) => {
                assert_eq!(entry.outcome, Outcome::Vanished);
                assert_eq!(entry.key, None);
            }
            other => panic!("{other:?}"),
        }
    }

    // Listed, then rewritten: the version copied is the one recorded.
    s3.put_object()
        .bucket(SOURCE)
        .key("daily/rewritten.json")
        .body(ByteStream::from_static(b"the second version"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let stale = Listed {
        key: "daily/rewritten.json".into(),
        size: 17,
        etag: "etag-of-the-first-version".into(),
    };
    let entry = match s3_copy::back_up(job, &stale, false, None, limits()).await {
        Ok(Step::Done(entry)) => entry,
        other => panic!("{other:?}"),
    };
    assert_eq!(entry.outcome, Outcome::Copied);
    assert!(entry.changed_during_run);
    assert_eq!(entry.size, Some(18));
    assert_ne!(
        entry.source_etag.as_deref(),
        Some("etag-of-the-first-version")
    );
    let key = entry.key.clone().unwrap_or_default();
    assert_eq!(moto.read_object(BACKUPS, &key).await, b"the second version");

    // The copy records that version; looked for again, it is found.
    let current = Listed {
        etag: entry.source_etag.clone().unwrap_or_default(),
        size: 18,
        ..stale
    };
    match s3_copy::back_up(job, &current, true, None, limits()).await {
        Ok(Step::Done(again)) => {
            assert_eq!(again.outcome, Outcome::AlreadyCopied);
            assert!(!again.changed_during_run);
        }
        other => panic!("{other:?}"),
    }
}
