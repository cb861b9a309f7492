//! Helpers shared by the model tool's integration tests (`cli.rs`, `gallery_format.rs`).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_facerec-model");

/// A fresh folder, removed when the returned guard drops, whether the test passes or fails.
/// Mode 0755 like a folder made by hand: tools the tests run as another user (mosquitto, VLC)
/// read files in it (tempfile's default is 0700).
pub fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("facerec-model-test-{tag}-"))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempdir()
        .unwrap()
}

/// `facerec-model ARGS`, as a user runs it.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("facerec-model runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
