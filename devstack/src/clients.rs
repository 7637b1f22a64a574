//! AWS clients pointed at the local endpoint, with local credentials.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;

/// The credentials every local client and function uses: moto checks none.
pub const ACCESS_KEY: &str = "local";
/// See [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "local";

/// An SDK configuration for `endpoint` in `region`.
pub fn config(endpoint: &str, region: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
            Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "devstack"),
        ))
        .build()
}

/// An S3 client with path-style addressing (the endpoint is an IP address).
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

/// A reqwest client for the local endpoints. reqwest is built in this
/// workspace as the tasks build it, with rustls and no crypto provider of
/// its own (one TLS stack per binary, `sfn_task::tls`), so *ring* is made
/// the process's provider first.
pub fn http() -> reqwest::Client {
    // Err only when one is installed already: that one stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
