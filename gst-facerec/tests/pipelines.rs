//! The real `libgstfacerec.so` through `gst-launch-1.0` and `gst-inspect-1.0`, running the
//! pipelines in `pipelines/` that can run on this machine. Separate processes: loading the
//! `.so` next to the statically registered plugin would register the type twice.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A private plugin directory holding only the freshly built plugin (cargo test leaves the
/// cdylib in target/<profile>/deps, beside many unrelated libraries).
fn plugin_dir() -> PathBuf {
    // Once per test binary: copying over a library that another test's process has mapped
    // would crash that process.
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(copy_plugin).clone()
}

fn copy_plugin() -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let built = deps.join("libgstfacerec.so");
    assert!(built.exists(), "{} not built", built.display());
    let dir = temp_dir("plugin");
    std::fs::copy(&built, dir.join("libgstfacerec.so")).unwrap();
    dir
}

fn command(program: &str, plugin_dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("GST_PLUGIN_PATH", plugin_dir)
        .env("GST_REGISTRY", plugin_dir.join("registry.bin"))
        .env_remove("GST_PLUGIN_PATH_1_0");
    cmd
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn gst_inspect_shows_every_property_even_without_onnx_runtime() {
    init();
    let dir = plugin_dir();
    let output = command("gst-inspect-1.0", &dir)
        .arg("facerec")
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .expect("gst-inspect-1.0 runs");
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    for property in [
        "detector",
        "recognizer",
        "gallery",
        "provider",
        "detect-threshold",
        "match-threshold",
        "detect-interval",
        "network-width",
        "min-face-size",
        "draw",
        "live",
        "threads",
    ] {
        assert!(
            out.contains(&format!("  {property} ")),
            "{property} missing from gst-inspect:\n{out}"
        );
    }
    assert!(out.contains("License                  MPL-2.0"), "{out}");
}

#[test]
fn file_to_jpeg_pipeline_writes_every_frame() {
    if !assets_ready() {
        return;
    }
    let dir = plugin_dir();
    let out_dir = temp_dir("jpeg-out");
    let output = command("bash", &dir)
        .arg(Path::new(REPO).join("pipelines/file-to-jpeg.sh"))
        .env(
            "INPUT",
            asset("testdata/face_recognition/short_hamilton_clip.mp4"),
        )
        .env("GALLERY", hamilton_gallery())
        .env("OUT_DIR", &out_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let jpegs = std::fs::read_dir(&out_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "jpg")
        })
        .count();
    assert_eq!(jpegs, 275);
}

/// Runs pipelines/testsrc.sh into a fakesink: (exit success, stdout + stderr).
fn run_testsrc(buffers: u32, env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = command("bash", &plugin_dir());
    cmd.arg(Path::new(REPO).join("pipelines/testsrc.sh"))
        .env("SINK", "fakesink")
        .env("NUM_BUFFERS", buffers.to_string());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().unwrap();
    (output.status.success(), text(&output))
}

#[test]
fn testsrc_pipeline_runs() {
    if !assets_ready() {
        return;
    }
    let (success, out) = run_testsrc(30, &[]);
    assert!(success, "{out}");
    assert!(
        out.contains("No gallery set"),
        "the missing gallery is warned about:\n{out}"
    );
}

#[test]
fn pipelines_that_need_hardware_are_valid_scripts() {
    for script in ["camera-to-window.sh", "jetson-csi-to-window.sh"] {
        let path = Path::new(REPO).join("pipelines").join(script);
        let body = std::fs::read_to_string(&path).unwrap();
        assert!(
            body.lines().nth(1).is_some_and(|l| l.starts_with("# ")),
            "{script} has a one-line comment"
        );
        assert!(body.contains("\"${facerec[@]}\""), "{script} runs facerec");
        let status = Command::new("bash").arg("-n").arg(&path).status().unwrap();
        assert!(status.success(), "{script} is valid bash");
    }
}

#[test]
fn missing_onnx_runtime_fails_with_a_clear_error() {
    if !assets_ready() {
        return;
    }
    let (success, out) = run_testsrc(5, &[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")]);
    assert!(!success, "{out}");
    assert!(
        out.contains("ERROR: from element /GstPipeline:pipeline0/GstFaceRec:facerec0: ONNX Runtime could not be loaded (/nonexistent/libonnxruntime.so)"),
        "{out}"
    );
    assert!(
        out.contains("Run `deploy/setup.sh` or point ORT_DYLIB_PATH at libonnxruntime.so"),
        "{out}"
    );
}
