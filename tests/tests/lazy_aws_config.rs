//! `common` loads the AWS configuration on first use, never at init, shown
//! on the `fixture-task` process through when it reads its trust store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tests::fixture::{self, envelope};

const BUDGET: Duration = Duration::from_secs(10);

/// `common` loads the AWS configuration (and with it the HTTPS client's
/// trust store, most of its cold start when it ran at init) on first use,
/// never at init. The trust store is a FIFO here: the process can only read
/// it once this test opens the writing end, so the test sees when it does.
#[tokio::test]
async fn the_aws_configuration_is_loaded_on_first_use_not_at_init() {
    let bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt")
        .unwrap_or_else(|e| panic!("the system CA bundle (Debian's ca-certificates): {e}"));
    let dir = std::env::temp_dir().join(format!("trust-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("empty")).unwrap_or_else(|e| panic!("{e}"));
    let fifo = dir.join("bundle.pem");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap_or_else(|e| panic!("mkfifo: {e}"));
    assert!(made.success());
    let opened = Arc::new(AtomicBool::new(false));
    let writer = {
        let (fifo, opened) = (fifo.clone(), opened.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            // Blocks until the task process opens the trust store.
            let mut end = std::fs::OpenOptions::new()
                .write(true)
                .open(&fifo)
                .unwrap_or_else(|e| panic!("{e}"));
            opened.store(true, Ordering::SeqCst);
            end.write_all(&bundle).unwrap_or_else(|e| panic!("{e}"));
        })
    };
    let fifo_path = fifo.to_string_lossy().into_owned();
    let empty = dir.join("empty").to_string_lossy().into_owned();
    let (api, process) = fixture::start(
        env!("CARGO_BIN_EXE_fixture-task"),
        &[("SSL_CERT_FILE", &fifo_path), ("SSL_CERT_DIR", &empty)],
    )
    .await;

    let done = api
        .invoke(
            envelope("lazy-1", 0, json!({"action": "echo", "text": "x"})),
            BUDGET,
        )
        .await;
    assert_eq!(done.response()["echo"], "x");
    assert!(
        !opened.load(Ordering::SeqCst),
        "init or a handler without AWS calls read the trust store"
    );

    let done = api
        .invoke(
            envelope("lazy-2", 0, json!({"action": "aws_client"})),
            BUDGET,
        )
        .await;
    assert_eq!(done.response()["region"], "eu-west-1");
    // The writer returns once the process has read the trust store; one
    // that never does would leave it blocked, so it is awaited with a limit.
    let joined = tokio::time::timeout(BUDGET, tokio::task::spawn_blocking(move || writer.join()))
        .await
        .unwrap_or_else(|_| panic!("the first AWS client never read the trust store"));
    assert!(matches!(joined, Ok(Ok(()))), "the writer failed");
    assert!(opened.load(Ordering::SeqCst));
    drop(process);
    let _ = std::fs::remove_dir_all(&dir);
}
