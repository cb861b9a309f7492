// Shared by the build scripts of every crate whose tests read `../shared` or load ONNX Runtime
// (`include!`d, so it stays one file). Libtest has no run-time skip, so a test that cannot run
// is marked `#[cfg_attr(facerec_assets_missing, ignore = "...")]` and shows as "ignored" in the
// summary instead of a silent "ok". Under CI the cfg is never set: a missing asset fails.

include!("../src/testsupport/ci.rs");

/// Emits the `facerec_assets_missing` cfg when the shared assets or ONNX Runtime are absent and
/// `CI` is unset. `workspace_root` is the checkout root, relative to the crate's manifest.
fn emit_assets_cfg(workspace_root: &str) {
    use std::path::PathBuf;
    println!("cargo::rustc-check-cfg=cfg(facerec_assets_missing)");
    for var in ["CI", "FACEREC_SHARED_DIR", "ORT_DYLIB_PATH"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest.join(workspace_root);
    let shared = match std::env::var_os("FACEREC_SHARED_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => root.join("../shared"),
    };
    let runtime = match std::env::var_os("ORT_DYLIB_PATH") {
        Some(lib) if !lib.is_empty() => PathBuf::from(lib),
        _ => root.join(".cache/onnxruntime/libonnxruntime.so"),
    };
    let needed = [
        shared.join("models/yunet_s_dynamic.onnx"),
        shared.join("testdata/README.md"),
        runtime,
    ];
    // A path that does not exist makes cargo rerun the script on every build, which is what
    // turns the tests back on once the asset arrives.
    for path in &needed {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    if !on_ci() && needed.iter().any(|p| !p.exists()) {
        println!("cargo::rustc-cfg=facerec_assets_missing");
    }
}
