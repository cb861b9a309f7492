# Sourced by the scripts that `cargo install` test tools (setup-dep-tools.sh, setup.sh's
# cargo-fuzz). `tool_profile CMD...` runs CMD with the release profile turned into a quick one:
# the tools run for seconds, so optimising them costs far more than it saves.
tool_profile() {
    CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
    CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 \
    CARGO_PROFILE_RELEASE_INCREMENTAL=false \
        "$@"
}
