//! The whole local stack: moto, the local endpoint with the function
//! processes behind it, and the template's resources provisioned.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::faults::FaultProxy;
use crate::functions::{Functions, Launch, lambda_environment};
use crate::gateway::{self, Gateway};
use crate::lambda_api::ControlPlane;
use crate::logs::Shipper;
use crate::moto::Moto;
use crate::template::{Placement, StackSpec};

/// moto's default account, which the emulated services use.
pub const ACCOUNT: &str = "123456789012";

/// How to start a stack.
#[derive(Debug, Clone)]
pub struct Options {
    /// The SAM template.
    pub template: PathBuf,
    /// `AWS::StackName`.
    pub stack_name: String,
    /// `AWS::Region`.
    pub region: String,
    /// Port of the local endpoint; 0 picks a free one.
    pub port: u16,
    /// The moto server executable.
    pub moto_binary: PathBuf,
    /// Where the task binaries are (a cargo `target/<profile>` folder).
    pub bin_dir: PathBuf,
    /// Where logs and other local state go; its `logs/` is emptied at start.
    pub state_dir: PathBuf,
    /// Template parameter values, as `sam deploy --parameter-overrides`.
    pub parameters: BTreeMap<String, String>,
    /// Extra environment per function (logical ID or name): test switches.
    pub function_env: HashMap<String, BTreeMap<String, String>>,
    /// `Timeout` overrides per function (logical ID or name).
    pub function_timeouts: HashMap<String, Duration>,
    /// Definition files to run instead of the template's, per state machine
    /// (logical ID or name).
    pub definitions: HashMap<String, PathBuf>,
    /// Route the functions' S3 and SQS requests through a
    /// [`FaultProxy`] (see [`Stack::faults`]).
    pub fault_proxy: bool,
    /// Run moto with the local stack's fixes to its Step Functions engine
    /// (`devstack/moto/`); off only to show what moto alone does.
    pub moto_fixes: bool,
}

impl Options {
    /// The project's template and binaries, as `make demo` runs them.
    pub fn for_project(root: &std::path::Path, bin_dir: PathBuf) -> Self {
        Self {
            template: root.join("template.yaml"),
            stack_name: "local".to_owned(),
            region: "eu-west-1".to_owned(),
            port: 0,
            moto_binary: root.join(".venv/bin/moto_server"),
            bin_dir,
            state_dir: root.join(".local/devstack"),
            parameters: BTreeMap::new(),
            function_env: HashMap::new(),
            function_timeouts: HashMap::new(),
            definitions: HashMap::new(),
            fault_proxy: false,
            moto_fixes: true,
        }
    }
}

/// A running stack. [`Stack::stop`] ends it; dropping it kills the
/// processes too, without shipping the last log lines.
#[derive(Debug)]
pub struct Stack {
    /// The resolved template.
    pub spec: StackSpec,
    /// Base URL of the local endpoint: the only one clients need.
    pub endpoint: String,
    /// SDK configuration for the local endpoint.
    pub aws: SdkConfig,
    /// Where the function log streams are written.
    pub log_dir: PathBuf,
    /// The proxy between the functions and S3/SQS, when
    /// [`Options::fault_proxy`] asked for one: tests inject faults there,
    /// while their own clients keep seeing the services directly.
    pub faults: Option<FaultProxy>,
    launch: Launch,
    gateway: Arc<Gateway>,
    moto: Moto,
    server: JoinHandle<()>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Stack {
    /// Starts moto and the local endpoint and provisions the template.
    pub async fn start(options: Options) -> Result<Self> {
        let log_dir = options.state_dir.join("logs");
        let capture_dir = options.state_dir.join("capture");
        for dir in [&log_dir, &capture_dir] {
            if dir.exists() {
                std::fs::remove_dir_all(dir)
                    .with_context(|| format!("emptying {}", dir.display()))?;
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .with_context(|| format!("listening on 127.0.0.1:{}", options.port))?;
        let port = listener.local_addr()?.port();
        let endpoint = format!("http://127.0.0.1:{port}");

        let moto_port = free_port()?;
        let moto = Moto::start(
            &options.moto_binary,
            moto_port,
            port,
            &options.state_dir.join("moto.log"),
            options.moto_fixes,
        )
        .await?;

        let placement = Placement {
            stack_name: options.stack_name.clone(),
            region: options.region.clone(),
            account: ACCOUNT.to_owned(),
            endpoint: endpoint.clone(),
        };
        let mut spec = StackSpec::load(&options.template, placement, &options.parameters)?;
        for function in &mut spec.functions {
            for key in [&function.logical_id, &function.name] {
                if let Some(timeout) = options.function_timeouts.get(key) {
                    function.timeout = *timeout;
                }
            }
        }
        for (key, path) in &options.definitions {
            let machine = spec
                .state_machines
                .iter_mut()
                .find(|m| &m.logical_id == key || &m.name == key)
                .with_context(|| {
                    format!("--definition {key}: the template has no such state machine")
                })?;
            machine.replace_definition(path)?;
        }

        let shipper = Shipper::new(aws_sdk_cloudwatchlogs::Client::new(
            &crate::clients::config(&moto.url, &options.region),
        ));
        let faults = if options.fault_proxy {
            Some(FaultProxy::start(&moto.url).await?)
        } else {
            None
        };
        let mut environment = function_endpoint_env(&endpoint);
        if let Some(proxy) = &faults {
            for service in ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS"] {
                environment.insert(service.to_owned(), proxy.url.clone());
            }
        }
        let launch = Launch {
            bin_dir: options.bin_dir.clone(),
            log_dir: log_dir.clone(),
            capture_dir: capture_dir.clone(),
            region: options.region.clone(),
            environment,
            overrides: options.function_env.clone(),
        };
        let gateway = Arc::new(Gateway {
            functions: Functions::new(&spec.functions, launch.clone(), shipper.clone()),
            control: ControlPlane::new(&spec.functions, &options.bin_dir),
            spec: spec.clone(),
            moto_url: moto.url.clone(),
            client: crate::clients::http(),
        });
        let (shutdown, stopped) = oneshot::channel::<()>();
        let console = Arc::new(crate::console::Console::new(
            spec.clone(),
            crate::clients::config(&endpoint, &options.region),
            log_dir.clone(),
        ));
        let app = crate::console::router(console).merge(gateway::router(gateway.clone()));
        let server = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serving.await {
                eprintln!("devstack: the local endpoint stopped: {e}");
            }
        });

        let aws = crate::clients::config(&endpoint, &options.region);
        crate::provision::provision(&aws, &spec, &shipper)
            .await
            .context("provisioning the template's resources")?;
        Ok(Self {
            spec,
            endpoint,
            aws,
            log_dir,
            faults,
            launch,
            gateway,
            moto,
            server,
            shutdown: Some(shutdown),
        })
    }

    /// Stops the function processes (shipping their last lines), the
    /// endpoint and moto.
    pub async fn stop(mut self) {
        self.gateway.functions.shutdown().await;
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // In-flight forwarded requests get a moment; then it is cut.
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.server).await;
        self.server.abort();
        self.moto.stop().await;
    }

    /// The state machine ARN of a logical ID.
    pub fn state_machine_arn(&self, logical_id: &str) -> Result<String> {
        self.spec
            .state_machine(logical_id)
            .map(|m| m.arn.clone())
            .with_context(|| format!("the template has no state machine {logical_id}"))
    }

    /// The bucket name of a logical ID.
    pub fn bucket_name(&self, logical_id: &str) -> Result<String> {
        self.spec
            .bucket(logical_id)
            .map(|b| b.name.clone())
            .with_context(|| format!("the template has no bucket {logical_id}"))
    }

    /// The queue URL of a logical ID.
    pub fn queue_url(&self, logical_id: &str) -> Result<String> {
        self.spec
            .queue(logical_id)
            .map(|q| q.url.clone())
            .with_context(|| format!("the template has no queue {logical_id}"))
    }

    /// The binary function `logical_id` runs.
    pub fn function_binary(&self, logical_id: &str) -> Result<PathBuf> {
        let spec = self
            .spec
            .function(logical_id)
            .with_context(|| format!("the template has no function {logical_id}"))?;
        Ok(self.launch.bin_dir.join(&spec.binary))
    }

    /// The environment a process of function `logical_id` gets here
    /// (Lambda's variables, the template's, the local endpoint), less
    /// `AWS_LAMBDA_RUNTIME_API`: for running its binary against another
    /// Runtime API, as the benchmarks do.
    pub fn function_environment(&self, logical_id: &str) -> Result<BTreeMap<String, String>> {
        let spec = self
            .spec
            .function(logical_id)
            .with_context(|| format!("the template has no function {logical_id}"))?;
        let mut env = lambda_environment(spec, &self.launch, "external", "");
        env.remove("AWS_LAMBDA_RUNTIME_API");
        Ok(env)
    }

    /// The local console's address (executions, approvals, Logs Insights).
    pub fn console_url(&self) -> String {
        format!("{}/console/", self.endpoint)
    }

    /// Every line the function processes have written so far, across all
    /// log stream files (the local copy of what was shipped).
    pub fn log_lines(&self) -> Result<Vec<String>> {
        crate::trail::read_local_lines(&self.log_dir)
    }
}

/// What each function process needs to reach the local endpoint: the SDK's
/// own endpoint variable, path-style S3, local credentials.
fn function_endpoint_env(endpoint: &str) -> BTreeMap<String, String> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("S3_FORCE_PATH_STYLE", "true"),
        ("AWS_ACCESS_KEY_ID", crate::clients::ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", crate::clients::SECRET_KEY),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn free_port() -> Result<u16> {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(socket.local_addr()?.port())
}
