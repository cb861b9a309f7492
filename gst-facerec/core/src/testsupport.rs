//! Locating the shared test data and models for tests and benchmarks.
//!
//! Tests that need `../shared` skip with a loud message only when it is genuinely absent and
//! `CI` is unset; under `CI=true` a missing asset fails the test.

use std::path::PathBuf;

/// `../shared` beside the source tree, or `$FACEREC_SHARED_DIR`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("FACEREC_SHARED_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")),
    }
}

fn on_ci() -> bool {
    std::env::var("CI")
        .map(|v| !v.is_empty() && v != "0" && v != "false")
        .unwrap_or(false)
}

/// The path of a file under the shared folder, or `None` (after a loud message) when it is
/// missing outside CI. Panics when it is missing under CI.
pub fn require(relative: &str) -> Option<PathBuf> {
    let path = shared_dir().join(relative);
    if path.exists() {
        return Some(path);
    }
    if on_ci() {
        panic!(
            "required test asset {} is missing (CI=true)",
            path.display()
        );
    }
    eprintln!(
        "\n!!!! SKIPPED: test asset {} is missing (set FACEREC_SHARED_DIR) !!!!\n",
        path.display()
    );
    None
}

/// The ONNX Runtime library must be loadable for inference tests; the same skip rule applies.
pub fn require_runtime() -> bool {
    match crate::runtime::environment() {
        Ok(_) => true,
        Err(e) if on_ci() => panic!("ONNX Runtime is required under CI: {e}"),
        Err(e) => {
            eprintln!("\n!!!! SKIPPED: {e} !!!!\n");
            false
        }
    }
}
