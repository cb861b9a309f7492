//! `facerec-launcher`: will host the facerec pipelines and serve the annotated video over HTTP
//! (MJPEG, snapshots, a JSON/SSE API, health and metrics). Not built yet: see the launcher
//! issue. Until then, `pipelines/demo.sh` is the main job.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "facerec-launcher: not implemented yet; run pipelines/demo.sh or a pipeline in pipelines/"
    );
    ExitCode::FAILURE
}
