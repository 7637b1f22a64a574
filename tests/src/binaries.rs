//! Locating the workspace's task binaries from a test.

use std::path::PathBuf;

/// The path of workspace binary `name`, built in the same profile as the
/// running test (`target/<profile>/<name>`). `make test` builds every
/// binary before running the tests.
pub fn task_binary(name: &str) -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `make test` (it runs `cargo build --workspace --bins` first)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}
