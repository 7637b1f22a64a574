//! The local stack on a template that is not ours, as a user runs it in
//! their own repository: `devstack up --template ... --bin-dir ...` (the
//! real command line), a Rust function of that project's own (`greeter`:
//! plain `lambda_runtime`, text logs), and a JSONata state machine with a
//! Map and an SQS callback, driven through the AWS SDK and CLI.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// `devstack up` running on a free port; killed if the test fails.
struct Up {
    child: Child,
    endpoint: String,
    state_dir: std::path::PathBuf,
}

impl Up {
    /// Starts `devstack up` and waits for the line that announces it.
    async fn start(template: &str) -> Self {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let binary = tests::binaries::task_binary("devstack");
        let bin_dir = std::path::Path::new(&binary)
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        let state_dir =
            std::env::temp_dir().join(format!("devstack-foreign-{}", std::process::id()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port: {e}"));
        let mut child = Command::new(&binary)
            .current_dir(&root)
            .args(["--template", template, "--bin-dir"])
            .arg(&bin_dir)
            .arg("--state-dir")
            .arg(&state_dir)
            .arg("--moto-server")
            .arg(tests::moto::moto_binary())
            .args(["up", "--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{binary}: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut lines = BufReader::new(stdout).lines();
        let endpoint = loop {
            let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("devstack up announced nothing in 120 s"))
                .unwrap_or_else(|e| panic!("reading devstack's output: {e}"))
                .unwrap_or_else(|| panic!("devstack up exited before it was up"));
            if let Some(url) = line.strip_prefix("Local stack up on ") {
                break url.trim().to_owned();
            }
        };
        // Keep reading, so the pipe never fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            endpoint,
            state_dir,
        }
    }

    fn aws(&self) -> aws_config::SdkConfig {
        devstack::clients::config(&self.endpoint, tests::moto::REGION)
    }

    /// Ctrl-C, as a user stops it: it must exit cleanly and let go of its port.
    async fn stop(mut self) {
        let pid = self
            .child
            .id()
            .unwrap_or_else(|| panic!("devstack is gone"));
        let signalled = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .await
            .unwrap_or_else(|e| panic!("kill: {e}"));
        assert!(signalled.success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("devstack did not stop on Ctrl-C"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(status.success(), "devstack up exited with {status}");
        let address = self.endpoint.trim_start_matches("http://");
        assert!(
            std::net::TcpStream::connect(address).is_err(),
            "{address} still answers after Ctrl-C"
        );
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

#[tokio::test]
async fn devstack_up_runs_a_users_own_template() {
    let up = Up::start("tests/fixtures/foreign/template.yaml").await;

    // Lambda knows the project's function by its own name.
    let listed = tests::aws_cli::aws_json(&up.endpoint, &["lambda", "list-functions"]).await;
    let names: Vec<&str> = listed["Functions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["FunctionName"].as_str())
        .collect();
    assert_eq!(names, ["local-greet-user"]);

    let sfn = aws_sdk_sfn::Client::new(&up.aws());
    let sqs = aws_sdk_sqs::Client::new(&up.aws());
    let execution = devstack::workflow::start(
        &sfn,
        "arn:aws:states:eu-west-1:123456789012:stateMachine:local-onboarding",
        "onboard-3",
        &json!({"users": [{"name": "Ana"}, {"name": "Bo"}, {"name": "Chen"}]}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));

    // The callback: a person reads the request off the queue and answers.
    let queue = sqs
        .get_queue_url()
        .queue_name("local-ConfirmationQueue")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    let body = loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue)
            .wait_time_seconds(5)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        if let Some(message) = received.messages().first() {
            break message.body().unwrap_or_default().to_owned();
        }
    };
    let request: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(request["greeted"], 3, "{request}");
    sfn.send_task_success()
        .task_token(request["token"].as_str().unwrap_or_default())
        .output(json!({"by": "ops"}).to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));

    let finished = devstack::workflow::follow(&sfn, &execution, Duration::from_secs(120), |_| {})
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let output = finished.output().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        output,
        &json!({
            "greetings": [
                {"greeting": "Welcome, Ana!", "position": 0},
                {"greeting": "Welcome, Bo!", "position": 1},
                {"greeting": "Welcome, Chen!", "position": 2}
            ],
            "confirmed_by": "ops"
        })
    );

    // Its text logs, with Lambda's lines around each invocation, are in
    // CloudWatch Logs under the function's default log group.
    let events = tests::aws_cli::aws_json(
        &up.endpoint,
        &[
            "logs",
            "filter-log-events",
            "--log-group-name",
            "/aws/lambda/local-greet-user",
        ],
    )
    .await;
    let messages: Vec<&str> = events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str())
        .collect();
    for wanted in ["greeting user number 0", "greeting user number 2"] {
        assert!(messages.contains(&wanted), "{messages:?}");
    }
    let reports = messages
        .iter()
        .filter(|m| m.starts_with("REPORT RequestId: "))
        .count();
    assert_eq!(reports, 3, "one REPORT per invocation: {messages:?}");
    up.stop().await;
}
