include!("../gst-facerec/core/build/assets.rs");

fn main() {
    emit_assets_cfg("..");
    emit_moto_cfg();
}

/// `facerec_moto_missing`: the S3 tests need moto's server (deploy/tests/setup-moto.sh); outside
/// CI they show as ignored without it, under CI they run and fail.
fn emit_moto_cfg() {
    use std::path::{Path, PathBuf};
    println!("cargo::rustc-check-cfg=cfg(facerec_moto_missing)");
    println!("cargo::rerun-if-env-changed=FACEREC_MOTO_SERVER");
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/moto-venv/bin/moto_server");
    println!("cargo::rerun-if-changed={}", venv.display());
    let found = std::env::var_os("FACEREC_MOTO_SERVER")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .chain([venv])
        .chain(
            std::env::var_os("PATH")
                .map(|paths| {
                    std::env::split_paths(&paths)
                        .map(|d| d.join("moto_server"))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        )
        .any(|p| p.is_file());
    if !found && !on_ci() {
        println!("cargo::rustc-cfg=facerec_moto_missing");
    }
}
