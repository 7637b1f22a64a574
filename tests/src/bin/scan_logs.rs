//! `scan-logs <dir> <events dir>`: fails if any line kept under `<dir>`
//! holds an e-mail address, a tax id, a URL with credentials (the Sentry
//! DSN) or a personal value of the sample inputs, or if too few lines were
//! kept for the scan to mean anything.

use std::path::PathBuf;
use std::process::ExitCode;

use tests::log_scan::{Rules, scan_dir};

/// The suite writes thousands of lines; fewer means the capture broke.
const MIN_LINES: usize = 500;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [dir, events] = args.as_slice() else {
        eprintln!("usage: scan-logs <log dir> <events dir>");
        return ExitCode::from(2);
    };
    let rules = match Rules::with_events(events) {
        Ok(rules) => rules,
        Err(e) => {
            eprintln!("scan-logs: reading {}: {e}", events.display());
            return ExitCode::from(2);
        }
    };
    let scanned = match scan_dir(dir, &rules) {
        Ok(scanned) => scanned,
        Err(e) => {
            eprintln!("scan-logs: reading {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    println!(
        "scan-logs: {} lines in {} files, {} known values and the e-mail, tax id and DSN rules",
        scanned.lines,
        scanned.files,
        rules.known.len()
    );
    for finding in &scanned.findings {
        eprintln!("{finding}");
    }
    if !scanned.findings.is_empty() {
        eprintln!("scan-logs: {} findings", scanned.findings.len());
        return ExitCode::FAILURE;
    }
    if scanned.lines < MIN_LINES {
        eprintln!(
            "scan-logs: only {} lines kept (expected at least {MIN_LINES}): is SUITE_LOG_DIR set for cargo test?",
            scanned.lines
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
