//! One TLS stack for every HTTPS client a task makes: rustls on *ring*.
//!
//! The SDK's default HTTPS client and reqwest's `rustls` feature both bring
//! rustls on aws-lc, whose C library was the largest single item of a task
//! binary (1.3 MiB of the x86_64 `echo-common`'s code, `cargo bloat`). Here
//! the SDK client is built on *ring* and *ring* is the process's provider
//! for reqwest (Sentry's transport, the backup's exports), so each binary
//! links the one, smaller library. Trust roots are the system's
//! (`SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured), as before; the `tls`
//! end-to-end test goes through a test CA with verification on.

use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Makes *ring* the process's rustls provider, which reqwest clients (built
/// with `rustls-no-provider`) use. Call it before building one; calls after
/// the first do nothing.
pub fn install_crypto_provider() {
    // Err only when a provider is already installed: that one stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The SDK's HTTPS client (hyper, rustls on *ring*, the system's roots),
/// for [`crate::aws::load_config`].
pub(crate) fn sdk_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}
