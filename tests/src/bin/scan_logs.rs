//! `scan-logs <dir> <events dir>`: fails if any line kept under `<dir>`
//! holds an e-mail address, a tax id, a URL with credentials (the Sentry
//! DSN) or a personal value of the sample inputs, or if too few lines were
//! kept for the scan to mean anything. Findings name the file, the line and
//! the rule, and show only the first characters of what matched.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use tests::log_scan::{Rules, scan_dir};

/// A full run keeps about 1,700 lines, 1,300 of them from the local stacks
/// (the load test's 200 workflows); fewer than this means a capture broke
/// (`SUITE_LOG_DIR` not passed on, a test binary not run).
const MIN_LINES: usize = 1_000;

/// Sources every full run has lines from: the three tasks run as processes
/// by the task tests, and the local stacks' function log streams.
const REQUIRED_SOURCES: &[&str] = &["invoice", "notify", "backup", "local-stack"];

fn main() -> ExitCode {
    let started = Instant::now();
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
            eprintln!(
                "scan-logs: reading {}: {e} (is SUITE_LOG_DIR set for cargo test?)",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let per_source: Vec<String> = scanned
        .sources
        .iter()
        .map(|(source, lines)| format!("{source} {lines}"))
        .collect();
    println!(
        "scan-logs: {} lines in {} files ({}) in {} ms; {} known values and the e-mail, tax id and DSN rules",
        scanned.lines,
        scanned.files,
        per_source.join(", "),
        started.elapsed().as_millis(),
        rules.known.len()
    );
    let mut failed = false;
    for finding in &scanned.findings {
        eprintln!("{finding}");
    }
    if !scanned.findings.is_empty() {
        eprintln!("scan-logs: {} findings", scanned.findings.len());
        failed = true;
    }
    if scanned.lines < MIN_LINES {
        eprintln!(
            "scan-logs: only {} lines kept (expected at least {MIN_LINES}): is SUITE_LOG_DIR set for cargo test?",
            scanned.lines
        );
        failed = true;
    }
    for source in REQUIRED_SOURCES {
        if scanned.sources.get(*source).is_none_or(|n| *n == 0) {
            eprintln!("scan-logs: no lines from {source}: its capture is broken");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
