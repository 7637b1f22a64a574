//! A real browser for the console's tests: Debian's headless Chromium driven
//! through ChromeDriver (WebDriver), both from Debian packages that
//! `make test` installs (`chromium`, `chromium-driver`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::process::{Child, Command};

/// Where Debian puts them.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A ChromeDriver process on 127.0.0.1; killed on drop.
#[derive(Debug)]
pub struct Driver {
    /// Its WebDriver URL.
    pub url: String,
    _process: Child,
}

impl Driver {
    /// Starts ChromeDriver on a free port and waits until it answers `/status`.
    pub async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("finding a free port: {e}"));
        let process = Command::new(CHROMEDRIVER)
            .args([
                format!("--port={port}"),
                "--allowed-ips=127.0.0.1".to_owned(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{CHROMEDRIVER}: {e} (make test installs Debian's chromium-driver)")
            });
        let url = format!("http://127.0.0.1:{port}");
        let http = devstack::clients::http();
        for _ in 0..200 {
            let ready = http.get(format!("{url}/status")).send().await;
            if let Ok(answer) = ready
                && let Ok(status) = answer.json::<serde_json::Value>().await
                && status["value"]["ready"] == true
            {
                return Driver {
                    url,
                    _process: process,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("chromedriver did not get ready on {url}");
    }

    /// A new headless browser session.
    pub async fn browser(&self) -> fantoccini::Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1440,1100", "--hide-scrollbars"]
            }),
        );
        fantoccini::ClientBuilder::rustls()
            .unwrap_or_else(|e| panic!("{e}"))
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("starting Chromium through {}: {e}", self.url))
    }
}

/// Where the console tests keep their screenshots (test artifacts).
pub fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/console-screenshots"
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// Saves a screenshot of what `browser` shows as `<name>.png`.
pub async fn screenshot(browser: &fantoccini::Client, name: &str) {
    let png = browser
        .screenshot()
        .await
        .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
