/// Whether this is a CI run, where a missing test asset fails instead of skipping: `CI` set to
/// anything but empty, `0` or `false`. The one definition: the test helpers use it as a module
/// and the build scripts `include!` it (through `build/assets.rs`).
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}
