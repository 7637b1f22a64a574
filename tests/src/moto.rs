//! The moto server (pinned in requirements.txt, installed into .venv by the
//! Makefile) started on 127.0.0.1 for one test, and AWS clients pointed at
//! it. It runs with the local stack's fixes (`devstack/moto/`), exactly as
//! the local stack runs it, so a task test and a workflow test see the same
//! S3.

use crate::process::TaskProcess;
use crate::runtime_api::LocalRuntimeApi;
use std::net::TcpListener;
use std::path::PathBuf;

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Region every local resource lives in.
pub const REGION: &str = "eu-west-1";
/// Account moto uses.
pub const ACCOUNT: &str = "123456789012";

/// A running moto server; stopped when dropped.
#[derive(Debug)]
pub struct MotoServer {
    /// Killed when dropped.
    _server: devstack::moto::Moto,
    port: u16,
    /// Holds moto's log and its loader until the server stops.
    _state: TempDir,
}

/// A directory removed when dropped.
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the moto server executable is: `MOTO_SERVER` if set, else the
/// project venv's.
pub fn moto_binary() -> PathBuf {
    let binary = std::env::var_os("MOTO_SERVER").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server"),
        PathBuf::from,
    );
    if !binary.exists() {
        // One line and out, not a panic deep inside a test: every test of
        // this binary would fail the same way. Written to the stream itself:
        // the test harness captures `eprintln!`, and exiting would lose it.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "error: {} not found: run `make test` (it installs moto into .venv), \
             or set MOTO_SERVER",
            binary.display()
        );
        std::process::exit(2);
    }
    binary
}

impl MotoServer {
    /// Starts moto on a free port and waits until it answers.
    pub async fn start() -> Result<Self, String> {
        let binary = moto_binary();
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        // Nothing listens there: these tests run no state machine.
        let lambda_port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let state =
            TempDir(std::env::temp_dir().join(format!("moto-test-{}-{port}", std::process::id())));
        std::fs::create_dir_all(&state.0).map_err(|e| format!("{}: {e}", state.0.display()))?;
        let log = state.0.join("moto.log");
        let moto = devstack::moto::Moto::start(&binary, port, lambda_port, &log, true)
            .await
            .map_err(|e| {
                format!(
                    "cannot start {} ({e:#}); run `make test`, which installs it",
                    binary.display()
                )
            })?;
        Ok(Self {
            _server: moto,
            port,
            _state: state,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// SDK configuration for this server, with test credentials.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                aws_sdk_s3::config::Credentials::new("test", "test", None, None, "moto"),
            ))
            .build()
    }

    /// A path-style S3 client.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Creates an S3 bucket in [`REGION`].
    pub async fn create_bucket(&self, name: &str) {
        self.s3()
            .create_bucket()
            .bucket(name)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating bucket {name}: {e:?}"));
    }

    /// The bytes of an S3 object; panics if it cannot be read.
    pub async fn read_object(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.s3()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e:?}"))
            .body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"))
            .into_bytes()
            .to_vec()
    }

    /// Every key in `bucket` (one page: tests keep buckets small when they list).
    pub async fn object_keys(&self, bucket: &str) -> Vec<String> {
        self.s3()
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("listing {bucket}: {e:?}"))
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    /// How many multipart uploads are open in `bucket`.
    pub async fn open_uploads(&self, bucket: &str) -> usize {
        self.s3()
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("listing uploads in {bucket}: {e:?}"))
            .uploads()
            .len()
    }

    /// An SQS client.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config())
    }

    /// The environment a task process needs to talk to this server.
    pub fn task_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("S3_FORCE_PATH_STYLE", "true".to_owned()),
        ]
    }

    /// Starts the task binary `task` against this moto, with `extra`
    /// settings after [`MotoServer::task_env`] (a later one wins).
    pub async fn start_task(
        &self,
        task: &str,
        extra: &[(&'static str, &str)],
    ) -> (LocalRuntimeApi, TaskProcess) {
        self.start_program(&crate::binaries::task_binary(task), extra)
            .await
    }

    /// [`MotoServer::start_task`] for the binary at `program`.
    pub async fn start_program(
        &self,
        program: &str,
        extra: &[(&'static str, &str)],
    ) -> (LocalRuntimeApi, TaskProcess) {
        let env = self.task_env();
        let mut all: Vec<(&'static str, &str)> =
            env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(extra);
        crate::fixture::start(program, &all).await
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
