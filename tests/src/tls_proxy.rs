//! A TLS endpoint in front of a local plain-HTTP one (moto, a Sentry sink,
//! an export server): a test CA made by `openssl`, trusted by programs
//! through `SSL_CERT_FILE`, never by turning verification off. Everything
//! the tasks reach on AWS is HTTPS, and every other test talks plain HTTP.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The test CA, the proxy's certificate and the trust bundle programs get.
pub struct TestTls {
    /// The system bundle plus the test CA (`SSL_CERT_FILE`).
    pub bundle: PathBuf,
    /// The test CA alone: what the first call costs without parsing a
    /// full bundle.
    pub ca_only: PathBuf,
    /// The proxy's side.
    pub acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TestTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestTls")
            .field("bundle", &self.bundle)
            .field("ca_only", &self.ca_only)
            .finish_non_exhaustive()
    }
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let status = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running openssl")?;
    if !status.success() {
        bail!("openssl {args:?} failed: {status}");
    }
    Ok(())
}

/// Makes a test CA and a `localhost` certificate it signs in `dir`, with
/// `openssl` (Debian's, installed by `make test`'s system-deps).
pub fn test_tls(dir: &Path) -> Result<TestTls> {
    std::fs::create_dir_all(dir)?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=sfn-task test CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &ca)?;
    let mut csr = vec!["req", "-new", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(dir, &csr)?;
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    )?;
    let system = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .context("no system CA bundle to build the trust bundle from")?;
    let bundle = dir.join("bundle.pem");
    std::fs::write(
        &bundle,
        system + &std::fs::read_to_string(dir.join("ca.pem"))?,
    )?;
    let certs =
        CertificateDer::pem_file_iter(dir.join("server.pem"))?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key"))?;
    // Named: the workspace links two providers (the dev tools' SDK client
    // brings aws-lc), so there is no process default to fall back on.
    let ring = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(ring)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(TestTls {
        bundle,
        ca_only: dir.join("ca.pem"),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    })
}

/// Terminates TLS on 127.0.0.1 and forwards the plain bytes to `upstream`.
pub async fn start_proxy(acceptor: TlsAcceptor, upstream: String) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    Ok(format!("https://localhost:{}", address.port()))
}
