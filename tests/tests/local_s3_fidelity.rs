//! Where the local stack's S3 (moto with `devstack/moto/`) answers as AWS
//! does and moto as released does not; each case runs on both.

use aws_sdk_s3::primitives::ByteStream;
use tests::moto::{MotoServer, moto_binary};

/// Uploads one part and lists the upload's parts through the Rust SDK.
async fn listed_parts(s3: &aws_sdk_s3::Client) -> Result<usize, String> {
    s3.create_bucket()
        .bucket("parts")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let upload = s3
        .create_multipart_upload()
        .bucket("parts")
        .key("k")
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let id = upload.upload_id().unwrap_or_default();
    s3.upload_part()
        .bucket("parts")
        .key("k")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from(vec![7u8; 1024]))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let listed = s3
        .list_parts()
        .bucket("parts")
        .key("k")
        .upload_id(id)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(listed.parts().len())
}

#[tokio::test]
async fn list_parts_answers_with_aws_root_element() {
    // The local stack's moto (what every test and `make demo` run).
    let ours = MotoServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed_parts(&ours.s3()).await, Ok(1));

    // moto as released: `<ListPartsResponse>`, which the SDK refuses.
    let dir = std::env::temp_dir().join(format!("moto-plain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let plain =
        devstack::moto::Moto::start(&moto_binary(), port, port + 1, &dir.join("log"), false)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&ours.sdk_config())
            .endpoint_url(&plain.url)
            .force_path_style(true)
            .build(),
    );
    let refused = listed_parts(&s3).await.err().unwrap_or_default();
    assert!(refused.contains("expected ListPartsResult"), "{refused}");
    plain.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
